/**
 * The saga log on PostgreSQL: the conformance suite against fresh databases on the machine's
 * server (127.0.0.1:5432), then what only PostgreSQL does (migrations under a lock, read-only
 * sessions, a refused statement inside a batch) and its faults against a private cluster that
 * the tests stop, kill and restart.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { LeaseLostError, SagaLogUnavailableError, type SagaLog } from '../../src/saga/model.js';
import { PostgresSagaLog, type PostgresSagaLogOptions } from '../../src/saga/stores/postgres.js';
import { MIGRATIONS } from '../../src/saga/stores/postgres-migrations.js';
import { createTempDatabase, TestPostgres, type TempDatabase } from '../helpers/postgres.js';
import { sagaLogConformance } from '../helpers/saga-log-conformance.js';
import { STARTED, newSaga, uniqueId } from '../helpers/saga-log-work.js';
import { eventually, freePort } from '../helpers/system.js';

/** Two sagas as a gateway of schema 1 wrote them. */
const OLD_ROWS = `INSERT INTO sagas (id, definition, version, status, step_index, comp_index, attempt, input, results, failure, traceparent,
  idempotency_key, lease_owner, lease_expires_at, deadline_at, next_event_seq, created_at, updated_at)
  VALUES ('old-1', 'place_order', 1, 'PARKED', 4, -1, 0, '{"customer_id":"c1"}', '{}', NULL, NULL, NULL, NULL, 0, 0, 2, 1000, 2000),
         ('old-2', 'place_order', 1, 'COMPLETED', 5, -1, 0, '{"customer_id":"c1"}', '{}', NULL, NULL, NULL, NULL, 0, 0, 2, 3000, 4000)`;

function options(url: string, over: Partial<PostgresSagaLogOptions> = {}): PostgresSagaLogOptions {
  return { url, poolSize: 4, synchronousCommit: 'on', ...over };
}

sagaLogConformance('PostgreSQL', {
  sharedNotifications: true,
  async fresh() {
    const db = await createTempDatabase();
    return {
      config: { kind: 'postgres', url: db.url, poolSize: 4, synchronousCommit: 'on' },
      open: () => PostgresSagaLog.open(options(db.url)),
      destroy: () => db.drop(),
    };
  },
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

async function create(log: SagaLog, owner = 'owner-a', leaseMs = 60_000): Promise<string> {
  const res = await log.create(newSaga(uniqueId(), { leaseOwner: owner }), [STARTED], leaseMs);
  assert.ok(res.created);
  return res.saga.id;
}

function isUnavailable(err: unknown): true {
  assert.ok(err instanceof SagaLogUnavailableError, `expected saga_log_unavailable, got ${String(err)}`);
  assert.equal(err.code, 'saga_log_unavailable');
  return true;
}

describe('PostgreSQL saga log: what only PostgreSQL does', () => {
  let db: TempDatabase;
  const opened: SagaLog[] = [];
  const open = async (over: Partial<PostgresSagaLogOptions> = {}) => {
    const log = await PostgresSagaLog.open(options(db.url, over));
    opened.push(log);
    return log;
  };
  before(async () => {
    db = await createTempDatabase();
  });
  after(async () => {
    await Promise.allSettled(opened.map((l) => l.close()));
    await db?.drop();
  });

  test('gateways opening at once migrate once, under the lock, and share one identity', async () => {
    const logs = await Promise.all(
      Array.from({ length: 6 }, (_, i) => open({ synchronousCommit: i % 2 ? 'off' : 'on' })),
    );
    const versions = await sql<{ version: number }>(db.url, 'SELECT version FROM saga_log_migrations ORDER BY version');
    assert.deepEqual(
      versions.map((v) => v.version),
      MIGRATIONS.map((_, i) => i + 1),
    );
    const ids = new Set(await Promise.all(logs.map((l) => l.identity())));
    assert.equal(ids.size, 1);
    assert.match([...ids][0] as string, /^[0-9a-f-]{36}$/);
  });

  test('read-only: no migrations on an empty database; reads work, writes are refused', async () => {
    const empty = await createTempDatabase('saga_log_ro');
    try {
      const ro = await PostgresSagaLog.open(options(empty.url, { readonly: true }));
      await ro.close();
      assert.deepEqual(await sql(empty.url, `SELECT tablename FROM pg_tables WHERE schemaname = 'public'`), []);
    } finally {
      await empty.drop();
    }
    const writer = await open();
    const id = await create(writer);
    const ro = await open({ readonly: true });
    assert.equal((await ro.get(id))?.id, id);
    assert.equal((await ro.list({ limit: 10 })).sagas.length >= 1, true);
    await assert.rejects(ro.create(newSaga(uniqueId()), [STARTED], 1_000), /read-only/);
    await assert.rejects(ro.renewLeases('owner-a', [id], 1_000), /read-only/);
  });

  test('counts per status are kept by deltas: right under concurrent writers from two instances, folded as they are read', async () => {
    const [a, b] = [await open(), await open()];
    const truth = async () => {
      const rows = await sql<{ status: string; n: number }>(
        db.url,
        'SELECT status, count(*)::integer AS n FROM sagas GROUP BY status',
      );
      return Object.fromEntries(rows.map((r) => [r.status, r.n]));
    };
    const nonZero = (c: Record<string, number>) => Object.fromEntries(Object.entries(c).filter(([, n]) => n !== 0));
    const ids = await Promise.all(Array.from({ length: 60 }, (_, i) => create(i % 2 ? a : b, 'owner-a')));
    await Promise.all(
      ids.map(async (id, i) => {
        const log = i % 2 ? b : a;
        await log.append(id, 'owner-a', { status: 'COMPENSATING' }, [{ type: 'STEP_FAILED' }]);
        if (i % 3 === 0)
          await log.append(id, 'owner-a', { status: 'COMPENSATED', leaseOwner: null, leaseExpiresAt: 0 }, [
            { type: 'SAGA_COMPENSATED' },
          ]);
        else if (i % 3 === 1)
          await log.append(id, 'owner-a', { status: 'PARKED', leaseOwner: null, leaseExpiresAt: 0 }, [
            { type: 'SAGA_PARKED' },
          ]);
      }),
    );
    const [ca, cb] = await Promise.all([a.countByStatus(), b.countByStatus()]);
    assert.deepEqual(nonZero(ca), await truth());
    assert.deepEqual(ca, cb);
    assert.deepEqual(await sql(db.url, 'SELECT * FROM saga_status_deltas'), [], 'folded');
    await a.takeOver(
      ids[1] as string,
      { status: 'PARKED' },
      'op',
      1_000,
      { status: 'RESOLVED', leaseOwner: null, leaseExpiresAt: 0 },
      [{ type: 'OPERATOR_ACTION' }],
    );
    const ro = await open({ readonly: true });
    assert.deepEqual(
      nonZero(await ro.countByStatus()),
      await truth(),
      'a read-only session reads the deltas not folded yet',
    );
    assert.equal((await sql(db.url, 'SELECT * FROM saga_status_deltas')).length, 2);
  });

  test('a log of schema 1 (before the filter columns): read by a read-only session, then migrated with its rows counted', async () => {
    const old = await createTempDatabase('saga_log_v1');
    try {
      await sql(
        old.url,
        `${MIGRATIONS[0]}
        CREATE TABLE saga_log_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
        INSERT INTO saga_log_migrations (version) VALUES (1);
        ${OLD_ROWS}`,
      );
      const ro = await PostgresSagaLog.open(options(old.url, { readonly: true }));
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
      const rw = await PostgresSagaLog.open(options(old.url));
      try {
        const counts = await rw.countByStatus();
        assert.deepEqual([counts.PARKED, counts.COMPLETED, counts.RUNNING], [1, 1, 0], 'seeded from the rows');
        await create(rw);
        assert.equal((await rw.countByStatus()).RUNNING, 1);
        assert.deepEqual(
          (await rw.list({ limit: 5, step: 'commit_stock' })).sagas,
          [],
          'old rows have no current step',
        );
      } finally {
        await rw.close();
      }
    } finally {
      await old.drop();
    }
  });

  test('leases are stamped by the database clock, whatever this process’s clock says', async () => {
    const log = await open();
    const realNow = Date.now.bind(Date);
    const HOUR = 3_600_000;
    Date.now = () => realNow() - HOUR; // this process is an hour behind
    try {
      const id = await create(log, 'owner-a', 30_000);
      const stored = await log.get(id);
      assert.ok(
        stored && Math.abs(stored.leaseExpiresAt - (realNow() + 30_000)) < 2_000,
        'create: database now + leaseMs',
      );
      assert.deepEqual(await log.claimExpired('owner-b', 30_000, 100), [], 'not expired by the database clock');
      assert.deepEqual(await log.renewLeases('owner-a', [id], 120_000), []);
      assert.ok(
        Math.abs(((await log.get(id))?.leaseExpiresAt ?? 0) - (realNow() + 120_000)) < 2_000,
        'renew: database now + leaseMs',
      );
      await log.append(id, 'owner-a', {}, [{ type: 'STEP_STARTED', step: 's' }]);
      const [, event] = await log.events(id);
      assert.ok(event && Math.abs(event.at - realNow()) < 2_000, 'an event is stamped by the database clock');
    } finally {
      Date.now = realNow;
    }
  });

  test('a statement the database refuses fails alone; the rest of its batch commits', async () => {
    const log = await open();
    const ids = await Promise.all(Array.from({ length: 5 }, () => create(log)));
    const bad = await create(log);
    const writes = [
      ...ids.map((id) => log.append(id, 'owner-a', { attempt: 1 }, [{ type: 'STEP_STARTED', step: 's', attempt: 1 }])),
      log.append(bad, 'owner-a', { attempt: 2 ** 31 }, [{ type: 'STEP_STARTED', step: 's' }]),
      log.append(ids[0] as string, 'owner-b', {}, [{ type: 'STEP_STARTED', step: 's' }]),
      log.append(ids[1] as string, 'owner-a', { attempt: 2 }, [
        { type: 'STEP_SUCCEEDED', step: 's', error: 'a NUL \u0000 in a message' },
      ]),
    ];
    const settled = await Promise.allSettled(writes);
    assert.deepEqual(
      settled.map((s) => s.status),
      ['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'rejected', 'fulfilled'],
    );
    const refused = settled[5] as PromiseRejectedResult;
    assert.equal((refused.reason as { code?: string }).code, '22003', 'integer out of range');
    assert.ok((settled[6] as PromiseRejectedResult).reason instanceof LeaseLostError);
    for (const id of ids) assert.equal((await log.events(id)).length, id === ids[1] ? 3 : 2);
    assert.equal((await log.get(ids[1] as string))?.attempt, 2);
    assert.equal((await log.events(ids[1] as string))[2]?.error, 'a NUL \uFFFD in a message');
    assert.equal((await log.events(bad)).length, 1);
    assert.equal((await log.get(bad))?.attempt, 0);
  });
});

describe('PostgreSQL saga log: faults', () => {
  let server: TestPostgres;
  before(async () => {
    server = await TestPostgres.start();
  });
  after(async () => {
    await server?.destroy();
  });

  test('an unreachable server at open is saga_log_unavailable, naming the URL but not its password', async () => {
    const port = await freePort();
    const url = `postgres://sagas:hunter2-secret@127.0.0.1:${port}/sagas`;
    await assert.rejects(PostgresSagaLog.open(options(url)), (err: unknown) => {
      isUnavailable(err);
      const message = (err as Error).message;
      assert.doesNotMatch(message, /hunter2/);
      assert.match(message, new RegExp(`sagas:\\*\\*\\*@127\\.0\\.0\\.1:${port}/sagas`));
      assert.match(message, /ECONNREFUSED/);
      assert.ok((err as Error).cause);
      return true;
    });
  });

  test('the server crashes mid-run: calls fail as unavailable, no append is half-written, and all resumes after the restart', async () => {
    const db = await createTempDatabase('saga_log_fault', server.url);
    const log = await PostgresSagaLog.open(options(db.url));
    const watcher = await PostgresSagaLog.open(options(db.url));
    try {
      const heard: string[] = [];
      watcher.onFinished((id) => heard.push(id));
      const ids = await Promise.all(Array.from({ length: 20 }, () => create(log)));
      const acked = new Map(ids.map((id) => [id, 0]));
      const failures: unknown[] = [];
      // Each saga appends three events per round until a write fails; the crash comes mid-stream.
      const writers = ids.map(async (id) => {
        for (let k = 1; ; k++) {
          try {
            await log.append(id, 'owner-a', { attempt: k }, [
              { type: 'STEP_STARTED', step: 's', attempt: k },
              { type: 'STEP_FAILED', step: 's', attempt: k, retryable: true, error: 'uncertain' },
              { type: 'STEP_STARTED', step: 's', attempt: k + 1 },
            ]);
            acked.set(id, k);
          } catch (err) {
            failures.push(err);
            return;
          }
        }
      });
      await eventually('appends to commit', async () =>
        [...acked.values()].reduce((a, b) => a + b, 0) >= 200 ? true : undefined,
      );
      await server.kill();
      await Promise.all(writers);
      assert.equal(failures.length, ids.length);
      failures.forEach(isUnavailable);
      await assert.rejects(log.get(ids[0] as string), isUnavailable);
      await assert.rejects(log.append(ids[0] as string, 'owner-a', {}, [{ type: 'SAGA_RESUMED' }]), isUnavailable);
      await assert.rejects(log.claimExpired('owner-b', 1_000, 10), isUnavailable);

      await server.restart();
      // The next calls work: the pool dropped its broken connections and opens new ones.
      for (const id of ids) {
        const saga = await log.get(id);
        assert.ok(saga);
        const events = await log.events(id);
        // Whole appends or none: 1 + 3 events per committed round, numbered without a gap.
        assert.deepEqual(
          events.map((e) => e.seq),
          Array.from({ length: 1 + 3 * saga.attempt }, (_, i) => i + 1),
          `events of ${id}`,
        );
        const ack = acked.get(id) ?? 0;
        assert.ok(saga.attempt === ack || saga.attempt === ack + 1, `acknowledged ${ack}, stored ${saga.attempt}`);
        await log.append(id, 'owner-a', { attempt: saga.attempt + 1 }, [{ type: 'SAGA_RESUMED' }]);
        assert.equal((await log.events(id)).length, events.length + 1);
      }
      // LISTEN reconnects by itself: a saga ended through one instance is heard by the other again.
      await eventually('notifications to resume after the restart', async () => {
        const id = await create(log);
        await log.append(id, 'owner-a', { status: 'COMPLETED' }, [{ type: 'SAGA_COMPLETED' }]);
        return heard.includes(id) ? true : undefined;
      });
    } finally {
      await Promise.allSettled([log.close(), watcher.close()]);
      await db.drop();
    }
  });

  test('a clean shutdown (every session terminated) is saga_log_unavailable too, and writes resume after it', async () => {
    const db = await createTempDatabase('saga_log_fault', server.url);
    const log = await PostgresSagaLog.open(options(db.url));
    try {
      const id = await create(log);
      await server.stop();
      await assert.rejects(create(log), isUnavailable);
      await assert.rejects(log.list({ limit: 5 }), isUnavailable);
      await assert.rejects(log.renewLeases('owner-a', [id], 1_000), isUnavailable);
      await server.restart();
      await log.append(id, 'owner-a', { attempt: 1 }, [{ type: 'STEP_STARTED', step: 's' }]);
      assert.equal((await log.events(id)).length, 2);
      assert.ok(await create(log));
    } finally {
      await log.close();
      await db.drop();
    }
  });
});
