/**
 * Progress and stuck sagas on the PostgreSQL saga log (a database of its own on the machine's
 * server): the shared suite, through every write path (a lone append, the batch statement of a
 * group commit, takeOver), stamped by the database's clock; and the migration of a log written
 * before progress_at.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { PostgresSagaLog } from '../../src/saga/stores/postgres.js';
import { MIGRATIONS } from '../../src/saga/stores/postgres-migrations.js';
import { createTempDatabase } from '../helpers/postgres.js';
import { sagaLogProgressSuite } from '../helpers/saga-log-progress.js';

sagaLogProgressSuite('PostgreSQL', async () => {
  const db = await createTempDatabase('saga_progress_test');
  try {
    const log = await PostgresSagaLog.open({ url: db.url, poolSize: 4, synchronousCommit: 'on' });
    return {
      log,
      close: async () => {
        await log.close();
        await db.drop();
      },
    };
  } catch (err) {
    await db.drop();
    throw err;
  }
});

async function sql<R extends pg.QueryResultRow>(url: string, text: string): Promise<R[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<R>(text)).rows;
  } finally {
    await c.end();
  }
}

test('a log written before progress_at: in-flight rows get their updated_at, finished ones read it', async () => {
  const db = await createTempDatabase('saga_progress_test');
  try {
    const step = MIGRATIONS.findIndex((m) => m.includes('ADD COLUMN progress_at'));
    assert.ok(step > 0, 'the progress_at step exists');
    // The schema as it was before the step, as migrate() would have left it.
    await sql(
      db.url,
      `BEGIN; CREATE TABLE saga_log_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
       ${MIGRATIONS.slice(0, step).join('\n')};
       INSERT INTO saga_log_migrations (version) SELECT generate_series(1, ${step}); COMMIT;`,
    );
    await sql(
      db.url,
      `INSERT INTO sagas (id, definition, version, status, step_index, comp_index, attempt, input, results, failure, traceparent,
        idempotency_key, lease_owner, lease_expires_at, deadline_at, next_event_seq, created_at, updated_at)
       VALUES ('run-1', 'place_order', 1, 'RUNNING', 2, -1, 3, '{}', '{}', NULL, NULL, NULL, NULL, 0, 0, 2, 1000, 2000),
              ('done-1', 'place_order', 1, 'COMPLETED', 5, -1, 0, '{}', '{}', NULL, NULL, NULL, NULL, 0, 0, 2, 3000, 4000)`,
    );
    // A read-only tool on the older log reads progress as updated_at.
    const ro = await PostgresSagaLog.open({ url: db.url, poolSize: 2, readonly: true, synchronousCommit: 'on' });
    try {
      assert.equal((await ro.get('run-1'))?.progressAt, 2000);
    } finally {
      await ro.close();
    }
    const log = await PostgresSagaLog.open({ url: db.url, poolSize: 2, synchronousCommit: 'on' });
    try {
      assert.equal((await log.get('run-1'))?.progressAt, 2000);
      assert.equal((await log.get('done-1'))?.progressAt, 4000);
      const rows = await sql<{ id: string; progress_at: string | null }>(
        db.url,
        'SELECT id, progress_at FROM sagas ORDER BY id',
      );
      assert.deepEqual(
        rows.map((r) => [r.id, r.progress_at]),
        [
          ['done-1', null],
          ['run-1', '2000'],
        ],
      );
      assert.equal((await log.liveStats(1_000)).stuck, 1);
      assert.deepEqual(
        (await log.list({ stuckForMs: 1_000, limit: 5 })).sagas.map((s) => s.id),
        ['run-1'],
      );
      const indexed = await sql(db.url, `SELECT indexname FROM pg_indexes WHERE indexdef LIKE '%progress_at%'`);
      assert.deepEqual(indexed, [], 'an append keeps its HOT update: no index on progress_at');
    } finally {
      await log.close();
    }
  } finally {
    await db.drop();
  }
});

test('the stuck reads go through the partial index of unfinished sagas, also among many finished ones', async () => {
  const db = await createTempDatabase('saga_progress_test');
  try {
    const log = await PostgresSagaLog.open({ url: db.url, poolSize: 2, synchronousCommit: 'on' });
    await log.close();
    // 50,000 sagas, one in a thousand in flight, and the planner's statistics of them.
    await sql(
      db.url,
      `INSERT INTO sagas (id, definition, version, status, step_index, comp_index, attempt, input, results,
         lease_expires_at, deadline_at, next_event_seq, created_at, updated_at, progress_at)
       SELECT 's' || g, 'place_order', 1, CASE WHEN g % 1000 = 0 THEN 'RUNNING' ELSE 'COMPLETED' END, 0, -1, 0, '{}', '{}',
         0, 0, 2, g, g, g FROM generate_series(1, 50000) g;
       ANALYZE sagas`,
    );
    const plan = async (q: string) =>
      (await sql<{ 'QUERY PLAN': string }>(db.url, `EXPLAIN ${q}`)).map((r) => r['QUERY PLAN']).join('\n');
    const page = await plan(
      `SELECT * FROM sagas WHERE status IN ('RUNNING', 'COMPENSATING')
       AND COALESCE(progress_at, updated_at) < (extract(epoch from clock_timestamp()) * 1000)::bigint - 60000::bigint
       ORDER BY seq DESC LIMIT 51`,
    );
    // Keyed by seq (migration 9): the newest first is the index read backwards.
    assert.match(page, /Index Scan Backward using sagas_unfinished/, page);
    const count = await plan(
      `SELECT count(*) FILTER (WHERE COALESCE(progress_at, updated_at) < 5) FROM sagas WHERE status IN ('RUNNING', 'COMPENSATING')`,
    );
    assert.match(count, /Index Scan using sagas_unfinished/, count);
  } finally {
    await db.drop();
  }
});
