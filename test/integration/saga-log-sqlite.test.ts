import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openDatabase } from '../../src/platform/storage/db.js';
import { SqliteSagaLog } from '../../src/saga/stores/sqlite.js';
import { MIGRATIONS } from '../../src/saga/stores/sqlite-migrations.js';
import { sagaLogConformance } from '../helpers/saga-log-conformance.js';
import { STARTED, newSaga } from '../helpers/saga-log-work.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sagas-log-sqlite-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

let n = 0;
sagaLogConformance('SQLite', {
  sharedNotifications: false,
  async fresh() {
    const dir = path.join(root, String(++n));
    const file = path.join(dir, 'saga.db');
    return {
      config: { kind: 'sqlite', file, synchronous: 'normal' },
      open: async () => new SqliteSagaLog({ file }),
      destroy: async () => fs.rmSync(dir, { recursive: true, force: true }),
    };
  },
});

test('a log of schema 1 (before the filter columns): read by a read-only tool, then migrated by a gateway', async () => {
  const file = path.join(root, 'v1', 'saga.db');
  const db = openDatabase(file, { migrations: MIGRATIONS.slice(0, 1) });
  db.exec(`INSERT INTO sagas (id, definition, version, status, step_index, comp_index, attempt, input, results, failure, traceparent,
  idempotency_key, lease_owner, lease_expires_at, deadline_at, next_event_seq, created_at, updated_at)
  VALUES ('old-1', 'place_order', 1, 'PARKED', 4, -1, 0, '{"customer_id":"c1"}', '{}', NULL, NULL, NULL, NULL, 0, 0, 2, 1000, 2000),
         ('old-2', 'place_order', 1, 'COMPLETED', 5, -1, 0, '{"customer_id":"c1"}', '{}', NULL, NULL, NULL, NULL, 0, 0, 2, 3000, 4000)`);
  db.close();
  const ro = new SqliteSagaLog({ file, readonly: true });
  try {
    assert.deepEqual([(await ro.get('old-1'))?.subject, (await ro.get('old-1'))?.currentStep], [null, null]);
    assert.deepEqual(
      (await ro.list({ limit: 5 })).sagas.map((s) => s.id),
      ['old-2', 'old-1'],
    );
    assert.deepEqual(
      (await ro.parked(5)).map((s) => s.id),
      ['old-1'],
    );
    assert.equal((await ro.countByStatus()).PARKED, 1);
  } finally {
    await ro.close();
  }
  const rw = new SqliteSagaLog({ file });
  try {
    assert.ok((await rw.create(newSaga('new-1', { subject: 'c1', currentStep: 'a' }), [STARTED], 1_000)).created);
    assert.deepEqual(
      (await rw.list({ limit: 5, subject: 'c1' })).sagas.map((s) => s.id),
      ['new-1'],
      'old rows have no subject',
    );
    assert.deepEqual((await rw.countByStatus()).PARKED, 1);
  } finally {
    await rw.close();
  }
});
