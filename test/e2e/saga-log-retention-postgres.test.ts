/**
 * Retention on the PostgreSQL saga log (the machine's server, a fresh database per test): the
 * conformance suite, then what only PostgreSQL does: gateways pruning at once through SKIP
 * LOCKED, a row another transaction holds left alone without waiting, and the status counts
 * (kept by the delta trigger) right after a prune.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { PostgresSagaLog, type PostgresSagaLogOptions } from '../../src/saga/stores/postgres.js';
import { PRUNE_SQL } from '../../src/saga/stores/postgres-retention.js';
import { DEFAULT_RETENTION_AGES } from '../../src/saga/retention.js';
import { createTempDatabase, type TempDatabase } from '../helpers/postgres.js';
import { sagaLogRetentionConformance } from '../helpers/saga-log-retention-conformance.js';
import { STARTED, newSaga, uniqueId } from '../helpers/saga-log-work.js';
import { startPruner } from '../../src/gateway/retention.js';
import { pino } from 'pino';

function options(url: string): PostgresSagaLogOptions {
  return { url, poolSize: 4, synchronousCommit: 'on' };
}

async function sql<R extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<R[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<R>(text, values)).rows;
  } finally {
    await c.end();
  }
}

sagaLogRetentionConformance('PostgreSQL', {
  async fresh() {
    const db = await createTempDatabase('saga_retention');
    const ager = new pg.Client({ connectionString: db.url });
    let connected: Promise<unknown> | undefined;
    return {
      open: () => PostgresSagaLog.open(options(db.url)),
      age: async (id, ms) => {
        await (connected ??= ager.connect());
        await ager.query('UPDATE sagas SET updated_at = updated_at - $1::bigint WHERE id = $2', [ms, id]);
      },
      destroy: async () => {
        if (connected) await ager.end();
        await db.drop();
      },
    };
  },
});

const DAY = 86_400_000;

/** `n` sagas COMPLETED (with 4 events each), written in parallel, then all ended 60 days ago. */
async function completedLongAgo(log: PostgresSagaLog, url: string, n: number): Promise<string[]> {
  const ids = await Promise.all(
    Array.from({ length: n }, async () => {
      const res = await log.create(newSaga(uniqueId(), { idempotencyKey: uniqueId('key') }), [STARTED], 60_000);
      assert.ok(res.created);
      const id = res.saga.id;
      await log.append(id, 'owner-a', { stepIndex: 1 }, [
        { type: 'STEP_STARTED', step: 'a', attempt: 1 },
        { type: 'STEP_SUCCEEDED', step: 'a', attempt: 1 },
      ]);
      await log.append(id, 'owner-a', { status: 'COMPLETED', leaseOwner: null, leaseExpiresAt: 0 }, [
        { type: 'SAGA_COMPLETED' },
      ]);
      return id;
    }),
  );
  await sql(url, 'UPDATE sagas SET updated_at = updated_at - $1::bigint', [60 * DAY]);
  return ids;
}

describe('PostgreSQL retention: what only PostgreSQL does', () => {
  let db: TempDatabase;
  const opened: PostgresSagaLog[] = [];
  const open = async () => {
    const log = await PostgresSagaLog.open(options(db.url));
    opened.push(log);
    return log;
  };
  before(async () => {
    db = await createTempDatabase('saga_retention');
  });
  after(async () => {
    await Promise.allSettled(opened.map((l) => l.close()));
    await db?.drop();
  });

  test('two gateways’ pruners at once: no error, each saga deleted once, the counts right', async () => {
    const [a, b] = [await open(), await open()];
    const n = 3_000;
    await completedLongAgo(a, db.url, n);
    const quiet = pino({ level: 'silent' });
    const pruners = [a, b].map((log) =>
      startPruner({
        log,
        policy: { enabled: true, ages: DEFAULT_RETENTION_AGES },
        logger: quiet,
        batch: 100,
        intervalMs: 3_600_000,
      }),
    );
    try {
      // Each pass runs until a batch comes back short; beside the other pruner that may be early,
      // so each pruner passes until one finds nothing, as its next interval would.
      const totals = await Promise.all(
        pruners.map(async (p) => {
          assert.ok(p);
          const total = { sagas: 0, events: 0, passes: 0 };
          for (;;) {
            const r = await p.runPass();
            total.sagas += r.sagas;
            total.events += r.events;
            total.passes++;
            if (r.sagas === 0) return total;
          }
        }),
      );
      const [ta, tb] = totals as [(typeof totals)[number], (typeof totals)[number]];
      assert.equal(ta.sagas + tb.sagas, n, `${ta.sagas} + ${tb.sagas}`);
      assert.equal(ta.events + tb.events, 4 * n);
      assert.deepEqual(await sql(db.url, 'SELECT count(*)::integer AS n FROM sagas'), [{ n: 0 }]);
      assert.deepEqual(await sql(db.url, 'SELECT count(*)::integer AS n FROM saga_events'), [{ n: 0 }]);
      const [ca, cb] = [await a.countByStatus(), await b.countByStatus()];
      assert.equal(ca.COMPLETED, 0);
      assert.deepEqual(ca, cb);
    } finally {
      for (const p of pruners) await p?.stop();
    }
  });

  test('a saga another transaction holds is skipped, not waited for, and pruned once it is let go', async () => {
    const log = await open();
    const [held, ...rest] = await completedLongAgo(log, db.url, 5);
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT id FROM sagas WHERE id = $1 FOR UPDATE', [held]);
      const started = Date.now();
      assert.deepEqual(await log.prune(DEFAULT_RETENTION_AGES, 10), { sagas: rest.length, events: 4 * rest.length });
      assert.ok(Date.now() - started < 5_000, 'did not wait for the lock');
      assert.ok(await log.get(held as string), 'the held saga is still there');
      await holder.query('COMMIT');
      assert.deepEqual(await log.prune(DEFAULT_RETENTION_AGES, 10), { sagas: 1, events: 4 });
      assert.equal(await log.get(held as string), undefined);
    } finally {
      await holder.end();
    }
  });

  test('a prune reads each outcome through the sagas_ended index, bounded by its cutoff', async () => {
    await open(); // migrated
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      // A near-empty table is cheaper to scan: without sequential scans, which index serves it.
      await c.query('SET enable_seqscan = off');
      await c.query(`PREPARE prune (bigint, bigint, bigint, integer) AS ${PRUNE_SQL}`);
      const plan = await c.query<{ 'QUERY PLAN': string }>(
        `EXPLAIN EXECUTE prune (${7 * DAY}, ${30 * DAY}, ${90 * DAY}, 500)`,
      );
      const text = plan.rows.map((p) => p['QUERY PLAN']).join('\n');
      // Each outcome's scan is bounded by the index (its cutoff an Index Cond, not a filter);
      // small tables may be read by bitmap and sorted, large ones in index order.
      assert.equal(text.match(/Index Scan (using|on) sagas_ended/g)?.length, 3, text);
      // settled_at: a finished saga's updated_at (migration 9).
      assert.equal(text.match(/Index Cond: \(\(status = '[A-Z]+'::text\) AND \(settled_at <=/g)?.length, 3, text);
    } finally {
      await c.end();
    }
  });
});
