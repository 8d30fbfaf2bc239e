/**
 * What every SagaLog's prune must do, as node:test tests: `sagaLogRetentionConformance('SQLite',
 * factory)` registers them. A saga's age counts from its end (updated_at, by the log's clock):
 * the factory moves a finished saga's end into the past in the storage itself, as if it had
 * ended that long ago, so that ages of days are tested without waiting for them.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { NewEvent, SagaLog, SagaRecord, SagaStatus } from '../../src/saga/model.js';
import { DEFAULT_RETENTION_AGES, type RetentionAges } from '../../src/saga/retention.js';
import { STARTED, newSaga, uniqueId } from './saga-log-work.js';

export interface RetentionStorage {
  /** Another instance on this storage (another gateway's). */
  open(): Promise<SagaLog>;
  /** Moves the saga's end (updated_at) `ms` earlier, in the storage. */
  age(id: string, ms: number): Promise<void>;
  destroy(): Promise<void>;
}

export interface RetentionFactory {
  fresh(): Promise<RetentionStorage>;
}

const OWNER = 'owner-a';
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

const END_EVENT: Record<SagaStatus, NewEvent['type']> = {
  RUNNING: 'STEP_STARTED',
  COMPENSATING: 'COMPENSATION_STARTED',
  COMPLETED: 'SAGA_COMPLETED',
  COMPENSATED: 'SAGA_COMPENSATED',
  PARKED: 'SAGA_PARKED',
  RESOLVED: 'OPERATOR_ACTION',
};

/**
 * A saga taken to `status` with a few events (4 in all), ended `agoMs` ago by the storage's
 * account. A terminal one gives its lease up, as the engine's terminal patch does.
 */
async function sagaIn(
  log: SagaLog,
  storage: RetentionStorage,
  status: SagaStatus,
  agoMs: number,
  over: Partial<SagaRecord> = {},
): Promise<SagaRecord> {
  const res = await log.create(newSaga(over.id ?? uniqueId(), over), [STARTED], 60_000);
  assert.ok(res.created);
  const id = res.saga.id;
  await log.append(id, OWNER, { stepIndex: 1, attempt: 1 }, [
    { type: 'STEP_STARTED', step: 'a', attempt: 1 },
    { type: 'STEP_SUCCEEDED', step: 'a', attempt: 1, data: { ok: true } },
  ]);
  const terminal = status !== 'RUNNING' && status !== 'COMPENSATING';
  await log.append(id, OWNER, terminal ? { status, leaseOwner: null, leaseExpiresAt: 0 } : { status }, [
    { type: END_EVENT[status] },
  ]);
  if (agoMs > 0) await storage.age(id, agoMs);
  return (await log.get(id)) as SagaRecord;
}

/**
 * Prunes batch after batch until one finds nothing. (Not until a short one: beside another
 * pruner, a batch may come back short because the other holds some of its rows.)
 */
async function pruneAll(log: SagaLog, ages: RetentionAges, limit: number): Promise<{ sagas: number; events: number }> {
  const total = { sagas: 0, events: 0 };
  for (;;) {
    const r = await log.prune(ages, limit);
    assert.ok(r.sagas <= limit, `${r.sagas} sagas in a batch of ${limit}`);
    total.sagas += r.sagas;
    total.events += r.events;
    if (r.sagas === 0) return total;
  }
}

const exists = async (log: SagaLog, id: string) => (await log.get(id)) !== undefined;

export function sagaLogRetentionConformance(name: string, factory: RetentionFactory): void {
  const it = (title: string, fn: (log: SagaLog, storage: RetentionStorage) => Promise<void>): void => {
    test(title, { timeout: 60_000 }, async () => {
      const storage = await factory.fresh();
      const log = await storage.open();
      try {
        await fn(log, storage);
      } finally {
        await log.close();
        await storage.destroy();
      }
    });
  };

  describe(`SagaLog retention conformance: ${name}`, () => {
    it('each outcome goes once its own age has passed since it ended, not before', async (log, storage) => {
      const past: string[] = [];
      const within: string[] = [];
      for (const status of ['COMPLETED', 'COMPENSATED', 'RESOLVED'] as const) {
        const age = DEFAULT_RETENTION_AGES[status];
        past.push((await sagaIn(log, storage, status, age + HOUR)).id);
        within.push((await sagaIn(log, storage, status, age - HOUR)).id);
      }
      // COMPLETED just past a week is gone; COMPENSATED of 8 days is not (its age is 30 days).
      const compensated8d = (await sagaIn(log, storage, 'COMPENSATED', 8 * DAY)).id;
      const r = await log.prune(DEFAULT_RETENTION_AGES, 100);
      assert.deepEqual(r, { sagas: 3, events: 3 * 4 });
      for (const id of past) assert.equal(await exists(log, id), false, `${id} pruned`);
      for (const id of [...within, compensated8d]) assert.equal(await exists(log, id), true, `${id} kept`);
      assert.deepEqual(await log.prune(DEFAULT_RETENTION_AGES, 100), { sagas: 0, events: 0 }, 'nothing more');
    });

    it('an outcome left out of the ages is kept for ever; no ages at all prunes nothing', async (log, storage) => {
      const resolved = (await sagaIn(log, storage, 'RESOLVED', 1_000 * DAY)).id;
      const completed = (await sagaIn(log, storage, 'COMPLETED', 1_000 * DAY)).id;
      assert.deepEqual(await log.prune({}, 100), { sagas: 0, events: 0 });
      assert.deepEqual(await log.prune({ COMPLETED: DAY, COMPENSATED: DAY }, 100), { sagas: 1, events: 4 });
      assert.equal(await exists(log, completed), false);
      assert.equal(await exists(log, resolved), true);
    });

    it('never a PARKED, RUNNING or COMPENSATING saga, however old', async (log, storage) => {
      const kept = await Promise.all(
        (['PARKED', 'RUNNING', 'COMPENSATING'] as const).map(
          async (s) => (await sagaIn(log, storage, s, 5_000 * DAY)).id,
        ),
      );
      const done = (await sagaIn(log, storage, 'COMPLETED', 5_000 * DAY)).id;
      const zero: RetentionAges = { COMPLETED: 0, COMPENSATED: 0, RESOLVED: 0 };
      assert.deepEqual(await pruneAll(log, zero, 10), { sagas: 1, events: 4 });
      assert.equal(await exists(log, done), false);
      for (const id of kept) {
        assert.equal(await exists(log, id), true, `${id} kept`);
        assert.equal((await log.events(id)).length, 4, 'with all its events');
      }
    });

    it('at most `limit` sagas a batch, the oldest ends first', async (log, storage) => {
      // Ended 8..32 days ago, one a day; created in another order than they ended.
      const ids: string[] = [];
      for (let i = 0; i < 25; i++) ids.push((await sagaIn(log, storage, 'COMPLETED', (8 + ((i * 7) % 25)) * DAY)).id);
      const byAge = ids
        .map((id, i) => ({ id, days: 8 + ((i * 7) % 25) }))
        .sort((a, b) => b.days - a.days)
        .map((x) => x.id);
      const r1 = await log.prune(DEFAULT_RETENTION_AGES, 10);
      assert.deepEqual(r1, { sagas: 10, events: 40 });
      const left = async () => {
        const out: string[] = [];
        for (const id of byAge) if (await exists(log, id)) out.push(id);
        return out;
      };
      assert.deepEqual(await left(), byAge.slice(10), 'the ten oldest went first');
      assert.equal((await log.prune(DEFAULT_RETENTION_AGES, 10)).sagas, 10);
      assert.deepEqual(await left(), byAge.slice(20));
      assert.deepEqual(await log.prune(DEFAULT_RETENTION_AGES, 10), { sagas: 5, events: 20 });
      assert.deepEqual(await log.prune(DEFAULT_RETENTION_AGES, 0), { sagas: 0, events: 0 }, 'a limit of 0 prunes none');
    });

    it("a pruned saga's events are gone with it, and no other saga's", async (log, storage) => {
      const old = await sagaIn(log, storage, 'COMPENSATED', 31 * DAY);
      const young = await sagaIn(log, storage, 'COMPENSATED', DAY);
      assert.equal((await log.events(old.id)).length, 4);
      assert.deepEqual(await log.prune(DEFAULT_RETENTION_AGES, 10), { sagas: 1, events: 4 });
      assert.deepEqual(await log.events(old.id), []);
      assert.deepEqual(
        (await log.events(young.id)).map((e) => e.seq),
        [1, 2, 3, 4],
      );
    });

    it("a pruned saga's idempotency key is free again: a create with it makes a new saga", async (log, storage) => {
      const key = uniqueId('key');
      const first = await sagaIn(log, storage, 'COMPLETED', 8 * DAY, { idempotencyKey: key });
      const retried = await log.create(newSaga(uniqueId(), { idempotencyKey: key }), [STARTED], 1_000);
      assert.deepEqual(retried, { created: false, existingId: first.id }, 'kept: the key still finds its saga');
      assert.equal((await log.prune(DEFAULT_RETENTION_AGES, 10)).sagas, 1);
      assert.equal(await log.getByIdempotencyKey(key), undefined);
      const again = await log.create(newSaga(uniqueId(), { idempotencyKey: key }), [STARTED], 1_000);
      assert.ok(again.created, 'pruned: the key makes a new saga');
      assert.notEqual(again.saga.id, first.id);
      assert.equal((await log.getByIdempotencyKey(key))?.id, again.saga.id);
    });

    it('countByStatus agrees with what is left after pruning', async (log, storage) => {
      const plan: Array<[SagaStatus, number, number]> = [
        // status, how many, ended how long ago
        ['COMPLETED', 6, 10 * DAY],
        ['COMPLETED', 3, DAY],
        ['COMPENSATED', 4, 40 * DAY],
        ['RESOLVED', 2, 100 * DAY],
        ['RESOLVED', 1, 10 * DAY],
        ['PARKED', 2, 400 * DAY],
        ['RUNNING', 2, 0],
        ['COMPENSATING', 1, 0],
      ];
      for (const [status, n, ago] of plan) for (let i = 0; i < n; i++) await sagaIn(log, storage, status, ago);
      const before = await log.countByStatus();
      assert.deepEqual(before, {
        RUNNING: 2,
        COMPENSATING: 1,
        COMPLETED: 9,
        COMPENSATED: 4,
        PARKED: 2,
        RESOLVED: 3,
      });
      assert.deepEqual(await pruneAll(log, DEFAULT_RETENTION_AGES, 5), { sagas: 12, events: 48 });
      assert.deepEqual(await log.countByStatus(), {
        RUNNING: 2,
        COMPENSATING: 1,
        COMPLETED: 3,
        COMPENSATED: 0,
        PARKED: 2,
        RESOLVED: 1,
      });
      const listed = await log.list({ limit: 100 });
      assert.equal(listed.sagas.length, 9, 'the listing agrees');
      const live = await log.liveStats();
      assert.deepEqual([live.inflight, live.parked], [3, 2]);
    });

    it('two instances pruning at once: no error, every saga deleted once', async (log, storage) => {
      const other = await storage.open();
      try {
        const n = 120;
        for (let i = 0; i < n; i++) await sagaIn(log, storage, i % 2 ? 'COMPLETED' : 'COMPENSATED', 60 * DAY);
        const [a, b] = await Promise.all([
          pruneAll(log, DEFAULT_RETENTION_AGES, 7),
          pruneAll(other, DEFAULT_RETENTION_AGES, 7),
        ]);
        assert.equal(a.sagas + b.sagas, n, `${a.sagas} + ${b.sagas}`);
        assert.equal(a.events + b.events, 4 * n);
        const counts = await other.countByStatus();
        assert.deepEqual([counts.COMPLETED, counts.COMPENSATED], [0, 0]);
      } finally {
        await other.close();
      }
    });
  });
}
