/**
 * Retention on the SQLite saga log (real files): the conformance suite, then what only SQLite
 * does: incremental vacuum, which gives pruned pages back so the file shrinks, and the
 * conversion of a file made without it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { openDatabase, type Db } from '../../src/platform/storage/db.js';
import { SqliteSagaLog } from '../../src/saga/stores/sqlite.js';
import { MIGRATIONS } from '../../src/saga/stores/sqlite-migrations.js';
import { enableIncrementalVacuum } from '../../src/saga/stores/sqlite-retention.js';
import { DEFAULT_RETENTION_AGES } from '../../src/saga/retention.js';
import { sagaLogRetentionConformance } from '../helpers/saga-log-retention-conformance.js';
import { STARTED, newSaga, uniqueId } from '../helpers/saga-log-work.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sagas-retention-sqlite-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

let n = 0;
const freshFile = () => path.join(root, String(++n), 'saga.db');

/** A second connection on the file, as a tool beside the gateway would hold. */
const side = (file: string): Db => openDatabase(file, { migrations: MIGRATIONS });

sagaLogRetentionConformance('SQLite', {
  async fresh() {
    const file = freshFile();
    const opened: SqliteSagaLog[] = [];
    let ager: Db | undefined;
    return {
      open: async () => {
        const log = new SqliteSagaLog({ file });
        opened.push(log);
        return log;
      },
      age: async (id, ms) => {
        ager ??= side(file);
        ager.prepare('UPDATE sagas SET updated_at = updated_at - ? WHERE id = ?').run(ms, id);
      },
      destroy: async () => {
        ager?.close();
        fs.rmSync(path.dirname(file), { recursive: true, force: true });
      },
    };
  },
});

const pragma = (db: Db, name: string): number =>
  Object.values(db.prepare<[], Record<string, number>>(`PRAGMA ${name}`).get() ?? {})[0] ?? 0;

/** `count` sagas completed with `events` events each of realistic size, then all ended 60 days ago. */
async function fill(log: SqliteSagaLog, file: string, count: number, events: number): Promise<void> {
  const payload = {
    customer_id: 'cust_123',
    items: Array.from({ length: 3 }, (_, i) => ({ product_id: `prod_${i}`, quantity: 2, price_cents: 2_500 })),
  };
  await Promise.all(
    Array.from({ length: count }, async () => {
      const res = await log.create(
        newSaga(uniqueId(), { input: payload, idempotencyKey: uniqueId('key') }),
        [STARTED],
        60_000,
      );
      assert.ok(res.created);
      const id = res.saga.id;
      const evs = Array.from({ length: events - 2 }, (_, i) => ({
        type: i % 2 ? ('STEP_SUCCEEDED' as const) : ('STEP_STARTED' as const),
        step: `step_${i >> 1}`,
        attempt: 1,
        data: { order_id: id, detail: 'x'.repeat(120) },
        traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
        spanId: '00f067aa0ba902b7',
      }));
      await log.append(id, 'owner-a', { stepIndex: 5 }, evs);
      await log.append(id, 'owner-a', { status: 'COMPLETED', leaseOwner: null, leaseExpiresAt: 0 }, [
        { type: 'SAGA_COMPLETED' },
      ]);
    }),
  );
  const db = side(file);
  try {
    db.prepare('UPDATE sagas SET updated_at = updated_at - ?').run(60 * 86_400_000);
  } finally {
    db.close();
  }
}

describe('SQLite retention: the file gives pruned pages back', () => {
  test('a new log is in incremental vacuum mode; prune + incremental vacuum shrinks the file', async () => {
    const file = freshFile();
    const log = new SqliteSagaLog({ file });
    const db = side(file);
    try {
      assert.equal(pragma(db, 'auto_vacuum'), 2, 'INCREMENTAL');
      await fill(log, file, 2_000, 10);
      const before = pragma(db, 'page_count');
      let pruned = 0;
      for (;;) {
        const r = await log.prune(DEFAULT_RETENTION_AGES, 500);
        assert.ok(r.sagas <= 500);
        pruned += r.sagas;
        if (r.sagas === 0) break;
      }
      assert.equal(pruned, 2_000);
      const afterPrune = pragma(db, 'page_count');
      assert.ok(afterPrune < before / 5, `page_count ${before} → ${afterPrune}`);
      assert.ok(pragma(db, 'freelist_count') < 50, 'the free pages were given back, not kept');
      db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
      assert.equal(fs.statSync(file).size, afterPrune * pragma(db, 'page_size'), 'the file itself shrank');
      assert.ok(fs.statSync(file).size < (before * pragma(db, 'page_size')) / 5);
    } finally {
      db.close();
      await log.close();
    }
  });

  test('an existing small file made without it is converted at open, its sagas kept', async () => {
    const file = freshFile();
    const made = openDatabase(file, { migrations: MIGRATIONS });
    assert.equal(pragma(made, 'auto_vacuum'), 0, 'SQLite’s default: NONE');
    made.close();
    const first = new SqliteSagaLog({ file });
    const id = uniqueId();
    assert.ok((await first.create(newSaga(id), [STARTED], 1_000)).created);
    await first.close();
    const db = side(file);
    try {
      assert.equal(pragma(db, 'auto_vacuum'), 2);
    } finally {
      db.close();
    }
    const again = new SqliteSagaLog({ file });
    try {
      assert.equal((await again.get(id))?.id, id);
    } finally {
      await again.close();
    }
  });

  test('a file over the size limit is left as it is: pruning works, its pages are kept for reuse', async () => {
    const file = freshFile();
    const log = new SqliteSagaLog({ file });
    const db = side(file);
    try {
      await fill(log, file, 300, 10);
      // As a file made before this release would be (SQLite's default, NONE).
      db.exec('PRAGMA auto_vacuum = NONE');
      db.exec('VACUUM');
      assert.equal(enableIncrementalVacuum(db, 0), false, 'over the limit: no VACUUM at open');
      assert.equal(pragma(db, 'auto_vacuum'), 0);
      const before = pragma(db, 'page_count');
      assert.deepEqual(await log.prune(DEFAULT_RETENTION_AGES, 500), { sagas: 300, events: 3_000 });
      assert.ok(pragma(db, 'page_count') >= before, 'the file keeps its size (a free-list page may be added)');
      assert.ok(pragma(db, 'freelist_count') > before / 2, 'the pruned pages wait on the free list');
      assert.equal(enableIncrementalVacuum(db), true, 'under the limit (the next open): converted');
      assert.ok(pragma(db, 'page_count') < before / 2);
    } finally {
      db.close();
      await log.close();
    }
  });

  test('a read-only open converts nothing', async () => {
    const file = freshFile();
    openDatabase(file, { migrations: MIGRATIONS }).close();
    const ro = new SqliteSagaLog({ file, readonly: true });
    await ro.close();
    const db = side(file);
    try {
      assert.equal(pragma(db, 'auto_vacuum'), 0);
    } finally {
      db.close();
    }
  });
});
