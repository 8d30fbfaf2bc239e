/**
 * HOT appends on the PostgreSQL saga log (migration 9; a database of its own per test on the
 * machine's server): the writes a saga in flight makes (a step's intent and outcome, a retry, a
 * lease claimed or renewed) change no column that any index of `sagas` uses, so PostgreSQL
 * rewrites the row on its page without an index entry (a HOT update), through every write path
 * (a lone append, the batch statement of a group commit, claimExpired, renewLeases). A status
 * change is not HOT (status is indexed), which shows the count below can tell. And a log written
 * before the migration reads the same after it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { DEFAULT_RETENTION_AGES } from '../../src/saga/retention.js';
import { PostgresSagaLog } from '../../src/saga/stores/postgres.js';
import { MIGRATIONS } from '../../src/saga/stores/postgres-migrations.js';
import { createTempDatabase } from '../helpers/postgres.js';
import { STARTED, newSaga, uniqueId } from '../helpers/saga-log-work.js';
import { eventually } from '../helpers/system.js';

async function sql<R extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<R[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<R>(text, values)).rows;
  } finally {
    await c.end();
  }
}

interface Updates {
  upd: number;
  hot: number;
}

/**
 * The updates of `sagas` counted by the server once they reach `expected`. A backend reports its
 * counts when it goes idle (at most once a second, else ten seconds later) and when it ends: the
 * caller closes the log first, and the probe waits for the total it knows was written, never for
 * a time (the backends end after the log's connections close). Snapshots are cleared each read.
 */
async function updatesOnceCounted(url: string, expected: number): Promise<Updates> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await eventually(`pg_stat_user_tables to count ${expected} updates of sagas`, async () => {
      await c.query('SELECT pg_stat_clear_snapshot()');
      const { rows } = await c.query<{ upd: string; hot: string }>(
        `SELECT n_tup_upd AS upd, n_tup_hot_upd AS hot FROM pg_stat_user_tables WHERE relname = 'sagas'`,
      );
      const r = { upd: Number(rows[0]?.upd), hot: Number(rows[0]?.hot) };
      return r.upd >= expected ? r : undefined;
    });
  } finally {
    await c.end();
  }
}

/** The columns an in-flight saga's writes change: none may be in an index (key, expression or predicate). */
const MOVING_COLUMNS = [
  'updated_at',
  'current_step',
  'step_index',
  'comp_index',
  'attempt',
  'results',
  'failure',
  'lease_owner',
  'lease_expires_at',
  'next_event_seq',
  'progress_at',
];

async function indexesUsingMovingColumns(url: string): Promise<string[]> {
  const defs = await sql<{ def: string }>(
    url,
    `SELECT pg_get_indexdef(indexrelid) AS def FROM pg_index WHERE indrelid = 'sagas'::regclass`,
  );
  const moving = new RegExp(`\\b(${MOVING_COLUMNS.join('|')})\\b`);
  return defs.map((d) => d.def).filter((d) => moving.test(d));
}

/**
 * HOT is PostgreSQL's choice, not the schema's: an update stays on its page only if the new
 * version fits there, and the space of the versions before it comes back only when the page is
 * pruned, which PostgreSQL does opportunistically (on a read of a nearly full page, and only if no
 * other backend pins the page at that instant). The eight sagas below share one page and each
 * write adds up to eight versions, so whether a write found room depended on when a prune had
 * managed to run: a CI run counted 75 HOT of 93. The test makes the room itself, a VACUUM after
 * each write (no snapshot is open then; the rows stay under 440 bytes, so sixteen versions fit the
 * 8 KiB page), and the count shows what the schema decides: whether an update changes an indexed
 * column.
 */
async function roomOnThePage(url: string): Promise<void> {
  await sql(url, 'VACUUM sagas');
}

const open = (url: string) => PostgresSagaLog.open({ url, poolSize: 4, synchronousCommit: 'on' });

test('an ordinary append is a HOT update, on every write path; a status change is not', async () => {
  const db = await createTempDatabase('saga_hot_test');
  let log = await open(db.url);
  try {
    assert.deepEqual(await indexesUsingMovingColumns(db.url), []);
    const [options] = await sql<{ reloptions: string[] }>(
      db.url,
      `SELECT reloptions FROM pg_class WHERE oid = 'sagas'::regclass`,
    );
    assert.deepEqual(options?.reloptions, ['fillfactor=50']);

    // Created with an expired lease (0 ms), then claimed: the claim moves the lease.
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) {
      const res = await log.create(
        newSaga(uniqueId(), { leaseOwner: 'owner-a', subject: `cust_${i % 3}`, currentStep: 'a' }),
        [STARTED],
        0,
      );
      assert.ok(res.created);
      ids.push(res.saga.id);
    }
    let updates = 0;
    const claimed = await log.claimExpired('owner-b', 60_000, 100);
    assert.deepEqual(claimed.map((s) => s.id).sort(), [...ids].sort());
    updates += claimed.length;
    await roomOnThePage(db.url);

    const steps = ['a', 'b', 'c', 'd', 'e'];
    for (let k = 0; k < steps.length; k++) {
      const step = steps[k] as string;
      // All sagas in one turn: one batch statement. Each step's outcome moves the step (its
      // index, its name, its results) with the next step's intent.
      await Promise.all(
        ids.map((id) =>
          log.append(
            id,
            'owner-b',
            { stepIndex: k + 1, attempt: 1, currentStep: steps[k + 1] ?? null, results: { [step]: { k, id } } },
            [
              { type: 'STEP_SUCCEEDED', step, attempt: 1, data: { k } },
              { type: 'STEP_STARTED', step: steps[k + 1] ?? null, attempt: 1 },
            ],
          ),
        ),
      );
      updates += ids.length;
      await roomOnThePage(db.url);
      // One saga alone: the lone statement; a retry of its step (a failed attempt, then the next).
      const one = ids[k] as string;
      await log.append(one, 'owner-b', { attempt: 2 }, [
        { type: 'STEP_FAILED', step, attempt: 1, error: 'deadline exceeded', retryable: true },
        { type: 'STEP_STARTED', step, attempt: 2 },
      ]);
      updates += 1;
      await roomOnThePage(db.url);
      assert.deepEqual(await log.renewLeases('owner-b', ids, 60_000), []);
      updates += ids.length;
      await roomOnThePage(db.url);
    }
    await log.close();
    const inFlight = await updatesOnceCounted(db.url, updates);
    assert.deepEqual(inFlight, { upd: updates, hot: updates }, 'every in-flight write a HOT update');

    // The reads that no longer have an index on what changed still find the sagas.
    log = await open(db.url);
    assert.equal((await log.list({ step: 'a', limit: 10 })).sagas.length, 0);
    assert.equal((await log.list({ status: 'RUNNING', limit: 10 })).sagas.length, ids.length);
    assert.equal((await log.list({ subject: 'cust_1', limit: 10 })).sagas.length, 3);

    // Each saga's end changes its status: an index entry each, as it must be.
    await Promise.all(
      ids.map((id) =>
        log.append(id, 'owner-b', { status: 'COMPLETED', currentStep: null, leaseOwner: null, leaseExpiresAt: 0 }, [
          { type: 'SAGA_COMPLETED' },
        ]),
      ),
    );
    await log.close();
    const ended = await updatesOnceCounted(db.url, updates + ids.length);
    assert.deepEqual(ended, { upd: updates + ids.length, hot: updates });
  } finally {
    await log.close();
    await db.drop();
  }
});

test('a log written before migration 9 reads the same after it, and its in-flight sagas then append HOT', async () => {
  const db = await createTempDatabase('saga_hot_test');
  try {
    const step = MIGRATIONS.findIndex((m) => m.includes('settled_at'));
    assert.ok(step > 0, 'the settled_at step exists');
    // The schema as it was before the step, as migrate() would have left it, and its rows.
    await sql(
      db.url,
      `BEGIN; CREATE TABLE saga_log_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
       ${MIGRATIONS.slice(0, step).join('\n')};
       INSERT INTO saga_log_migrations (version) SELECT generate_series(1, ${step}); COMMIT;`,
    );
    const now = Date.now();
    const DAY = 86_400_000;
    const old = now - 400 * DAY;
    await sql(
      db.url,
      `INSERT INTO sagas (id, definition, version, status, step_index, comp_index, attempt, input, results, failure, traceparent,
         idempotency_key, lease_owner, lease_expires_at, deadline_at, next_event_seq, created_at, updated_at, subject,
         current_step, progress_at)
       VALUES
         ('run-live', 'place_order', 1, 'RUNNING', 1, -1, 1, '{"n":1}', '{"a":1}', NULL, NULL, 'k1', 'gw-1', $1, 0, 3, $2, $2, 'c1', 'reserve', $2),
         ('run-lost', 'place_order', 1, 'RUNNING', 2, -1, 1, '{"n":2}', '{"a":1}', NULL, NULL, NULL, 'gw-0', 0, 0, 3, 1000, 1500, 'c1', 'charge', 1500),
         ('comp', 'place_order', 1, 'COMPENSATING', 2, 1, 0, '{"n":3}', '{"a":1}', '{"step":"charge"}', NULL, NULL, 'gw-1', $1, 0, 3, 1100, 1600, 'c2', 'reserve', 1600),
         ('parked-late', 'place_order', 1, 'PARKED', 4, -1, 0, '{"n":4}', '{}', '{"step":"commit"}', NULL, NULL, NULL, 0, 0, 9, 1200, 3000, 'c2', 'charge', 3000),
         ('parked-early', 'place_order', 1, 'PARKED', 2, 0, 0, '{"n":5}', '{}', '{"step":"charge"}', NULL, NULL, NULL, 0, 0, 9, 1300, 2000, 'c3', 'charge', 2000),
         ('done-old', 'place_order', 1, 'COMPLETED', 5, -1, 0, '{"n":6}', '{}', NULL, NULL, NULL, NULL, 0, 0, 9, 1400, $3, 'c3', NULL, $3),
         ('done-new', 'place_order', 1, 'COMPLETED', 5, -1, 0, '{"n":7}', '{}', NULL, NULL, NULL, NULL, 0, 0, 9, $2, $2, 'c3', NULL, $2)`,
      [now + 3_600_000, now, old],
    );
    const all = ['run-live', 'run-lost', 'comp', 'parked-late', 'parked-early', 'done-old', 'done-new'];
    // What a reader of the older log sees (read-only: it migrates nothing).
    const ro = await PostgresSagaLog.open({ url: db.url, poolSize: 2, readonly: true, synchronousCommit: 'on' });
    const reads = async (log: PostgresSagaLog) => ({
      sagas: await Promise.all(all.map((id) => log.get(id))),
      charge: (await log.list({ step: 'charge', limit: 10 })).sagas.map((s) => s.id),
      reserve: (await log.list({ step: 'reserve', limit: 10 })).sagas.map((s) => s.id),
      parkedCharge: (await log.list({ step: 'charge', status: 'PARKED', limit: 10 })).sagas.map((s) => s.id),
      chargePage: await log.list({ step: 'charge', limit: 1 }),
      parked: (await log.parked(10)).map((s) => s.id),
      stats: await log.liveStats(),
    });
    let before;
    try {
      before = await reads(ro);
    } finally {
      await ro.close();
    }
    assert.deepEqual(before.charge, ['parked-early', 'parked-late', 'run-lost']);
    assert.deepEqual(before.parked, ['parked-early', 'parked-late']);

    let log = await open(db.url);
    try {
      const after = await reads(log);
      assert.deepEqual({ ...after, stats: undefined }, { ...before, stats: undefined });
      assert.deepEqual(
        { ...after.stats, oldestAgeSeconds: 0 },
        { ...before.stats, oldestAgeSeconds: 0 },
        'the overview counts the same',
      );
      const nextPage = await log.list({ step: 'charge', limit: 2, cursor: after.chargePage.nextCursor ?? undefined });
      assert.deepEqual(
        nextPage.sagas.map((s) => s.id),
        ['parked-late', 'run-lost'],
      );
      const settled = await sql<{ id: string; settled_at: string | null; settled_step: string | null }>(
        db.url,
        'SELECT id, settled_at, settled_step FROM sagas ORDER BY seq',
      );
      assert.deepEqual(
        settled.map((r) => [r.id, r.settled_at, r.settled_step]),
        [
          ['run-live', null, null],
          ['run-lost', null, null],
          ['comp', null, null],
          ['parked-late', '3000', 'charge'],
          ['parked-early', '2000', 'charge'],
          ['done-old', String(old), null],
          ['done-new', String(now), null],
        ],
      );
      assert.deepEqual(await indexesUsingMovingColumns(db.url), []);

      // Recovery finds the saga whose lease expired before the upgrade; retention the old end.
      assert.deepEqual(
        (await log.claimExpired('gw-2', 60_000, 10)).map((s) => s.id),
        ['run-lost'],
      );
      assert.deepEqual(await log.prune(DEFAULT_RETENTION_AGES, 10), { sagas: 1, events: 0 });
      assert.equal(await log.get('done-old'), undefined);

      // The converted in-flight rows append HOT, as new ones do. Updated once so far (the
      // rewrite is none): the claim.
      await log.close();
      assert.deepEqual(await updatesOnceCounted(db.url, 1), { upd: 1, hot: 1 });
      log = await open(db.url);
      await log.append('run-live', 'gw-1', { stepIndex: 2, currentStep: 'charge', results: { a: 1, b: 2 } }, [
        { type: 'STEP_SUCCEEDED', step: 'reserve' },
        { type: 'STEP_STARTED', step: 'charge' },
      ]);
      await log.append('run-lost', 'gw-2', { attempt: 2 }, [{ type: 'STEP_STARTED', step: 'charge', attempt: 2 }]);
      await log.close();
      assert.deepEqual(await updatesOnceCounted(db.url, 3), { upd: 3, hot: 3 });
      log = await open(db.url);
      assert.deepEqual(
        (await log.list({ step: 'charge', limit: 10 })).sagas.map((s) => s.id),
        ['parked-early', 'parked-late', 'run-lost', 'run-live'],
      );
    } finally {
      await log.close();
    }
  } finally {
    await db.drop();
  }
});
