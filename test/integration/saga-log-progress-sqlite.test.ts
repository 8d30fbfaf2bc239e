/**
 * Progress and stuck sagas on the SQLite saga log (a real file): the shared suite, the migration
 * of a log written before progress_at, and the stuck listing's plan (through the index of
 * unfinished sagas, never a scan of the table).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { openDatabase } from '../../src/platform/storage/db.js';
import { SqliteSagaLog } from '../../src/saga/stores/sqlite.js';
import { MIGRATIONS } from '../../src/saga/stores/sqlite-migrations.js';
import { sagaLogProgressSuite } from '../helpers/saga-log-progress.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sagas-progress-sqlite-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

let n = 0;
sagaLogProgressSuite('SQLite', async () => {
  const dir = path.join(root, String(++n));
  const log = new SqliteSagaLog({ file: path.join(dir, 'saga.db') });
  return { log, close: async () => log.close() };
});

test('a log written before progress_at: in-flight rows get their updated_at, finished ones read it', async () => {
  const file = path.join(root, 'before', 'saga.db');
  const step = MIGRATIONS.findIndex((m) => m.includes('ADD COLUMN progress_at'));
  assert.ok(step > 0, 'the progress_at step exists');
  const db = openDatabase(file, { migrations: MIGRATIONS.slice(0, step) });
  db.exec(`INSERT INTO sagas (id, definition, version, status, step_index, comp_index, attempt, input, results, failure, traceparent,
  idempotency_key, lease_owner, lease_expires_at, deadline_at, next_event_seq, created_at, updated_at)
  VALUES ('run-1', 'place_order', 1, 'RUNNING', 2, -1, 3, '{}', '{}', NULL, NULL, NULL, NULL, 0, 0, 2, 1000, 2000),
         ('done-1', 'place_order', 1, 'COMPLETED', 5, -1, 0, '{}', '{}', NULL, NULL, NULL, NULL, 0, 0, 2, 3000, 4000)`);
  db.close();
  // A read-only tool on the older log: progress reads as updated_at.
  const ro = new SqliteSagaLog({ file, readonly: true });
  try {
    assert.equal((await ro.get('run-1'))?.progressAt, 2000);
  } finally {
    await ro.close();
  }
  const log = new SqliteSagaLog({ file });
  try {
    assert.equal((await log.get('run-1'))?.progressAt, 2000);
    assert.equal((await log.get('done-1'))?.progressAt, 4000);
    const raw = openDatabase(file, { readonly: true, migrations: [] });
    try {
      const rows = raw
        .prepare<[], { id: string; progress_at: number | null }>('SELECT id, progress_at FROM sagas ORDER BY id')
        .all();
      assert.deepEqual(
        rows.map((r) => ({ ...r })),
        [
          { id: 'done-1', progress_at: null },
          { id: 'run-1', progress_at: 2000 },
        ],
      );
    } finally {
      raw.close();
    }
    // Stuck since 2000: counted and listed.
    assert.equal((await log.liveStats(1_000)).stuck, 1);
    assert.deepEqual(
      (await log.list({ stuckForMs: 1_000, limit: 5 })).sagas.map((s) => s.id),
      ['run-1'],
    );
  } finally {
    await log.close();
  }
});

test('the stuck reads go through an index of in-flight sagas; no index on progress_at is kept', async () => {
  const file = path.join(root, 'plan', 'saga.db');
  const log = new SqliteSagaLog({ file });
  await log.close();
  const db = openDatabase(file, { readonly: true, migrations: [] });
  try {
    const plan = (sql: string) =>
      db
        .prepare<[number], { detail: string }>(`EXPLAIN QUERY PLAN ${sql}`)
        .all(0)
        .map((r) => r.detail)
        .join('; ');
    const list = plan(
      `SELECT * FROM sagas INDEXED BY sagas_unfinished WHERE status IN ('RUNNING', 'COMPENSATING')
       AND COALESCE(progress_at, updated_at) < ? ORDER BY seq DESC LIMIT 51`,
    );
    assert.match(list, /sagas_unfinished/);
    const count = plan(
      `SELECT COUNT(*) AS n, MIN(created_at) AS oldest, SUM(COALESCE(progress_at, updated_at) < ?) AS stuck
       FROM sagas WHERE status IN ('RUNNING', 'COMPENSATING')`,
    );
    // The count reads the in-flight rows only, through an index (as the in-flight gauge always did).
    assert.match(count, /SEARCH sagas USING INDEX (sagas_unfinished|sagas_status)/);
    const indexed = db
      .prepare<[], { name: string }>(`SELECT name FROM sqlite_master WHERE type = 'index' AND sql LIKE '%progress_at%'`)
      .all();
    assert.deepEqual(indexed, [], 'an append updates no more index entries than before');
  } finally {
    db.close();
  }
});
