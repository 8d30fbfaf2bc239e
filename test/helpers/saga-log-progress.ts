/**
 * What every saga log must do about progress (SagaRecord.progressAt), run against each store by
 * its own test file: progress_at moves when a write changes a saga's status, stepIndex or
 * compIndex (on every write path: create, append alone or batched with others, takeOver), never on
 * a failed attempt; and the stuck read (liveStats' count, list's `stuckForMs` page) finds the
 * sagas in flight without progress since the cutoff, through the log's own clock.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NewEvent, SagaLog, SagaPatch, SagaRecord } from '../../src/saga/model.js';
import { STARTED, newSaga, uniqueId } from './saga-log-work.js';

export interface ProgressStore {
  log: SagaLog;
  close(): Promise<void>;
}

const OWNER = 'owner-a';
const FAILED: NewEvent = {
  type: 'STEP_FAILED',
  step: 's',
  attempt: 1,
  error: 'unavailable',
  retryable: true,
  data: { code: 'grpc_unavailable', retry_at: 1 },
};

async function started(log: SagaLog, over: Partial<SagaRecord> = {}): Promise<SagaRecord> {
  // Created by the log's clock, as the engine does, so that ages compare like with like.
  const now = await log.clock();
  const res = await log.create(newSaga(uniqueId(), { createdAt: now, updatedAt: now, ...over }), [STARTED], 60_000);
  assert.ok(res.created);
  return res.saga;
}

async function get(log: SagaLog, id: string): Promise<SagaRecord> {
  const s = await log.get(id);
  assert.ok(s, `saga ${id} exists`);
  return s;
}

/** Waits (on the log's clock, not a sleep) until it reads at least `t`. */
async function clockPast(log: SagaLog, t: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  while ((await log.clock()) < t) {
    if (Date.now() > deadline) throw new Error(`the log's clock did not reach ${t}`);
    await new Promise((r) => setImmediate(r));
  }
}

/** Waits until the log's clock has moved past every time `ids` were stamped with. */
async function afterWrites(log: SagaLog, ...ids: string[]): Promise<number> {
  let latest = 0;
  for (const id of ids) {
    const s = await get(log, id);
    latest = Math.max(latest, s.updatedAt, s.progressAt ?? 0);
  }
  await clockPast(log, latest + 2);
  return latest;
}

export function sagaLogProgressSuite(name: string, open: () => Promise<ProgressStore>): void {
  describe(`saga log progress: ${name}`, () => {
    const withLog = (fn: (log: SagaLog) => Promise<void>) => async () => {
      const store = await open();
      try {
        await fn(store.log);
      } finally {
        await store.close();
      }
    };

    it(
      'create: progress is the creation; a failed attempt or a new attempt number is no progress',
      withLog(async (log) => {
        const s = await started(log);
        assert.equal(s.progressAt, s.updatedAt);
        assert.equal((await get(log, s.id)).progressAt, s.updatedAt);
        await afterWrites(log, s.id);
        // An attempt: its intent (attempt 1), its failure (no patch), the next intent.
        await log.append(s.id, OWNER, { attempt: 1 }, [{ type: 'STEP_STARTED', step: 's', attempt: 1 }]);
        await log.append(s.id, OWNER, {}, [FAILED]);
        await log.append(s.id, OWNER, { attempt: 2, currentStep: 's' }, [
          { type: 'STEP_STARTED', step: 's', attempt: 2 },
        ]);
        const after = await get(log, s.id);
        assert.ok(after.updatedAt > s.updatedAt, 'the row was written');
        assert.equal(after.progressAt, s.progressAt, 'failed attempts are no progress');
      }),
    );

    it(
      'append: a changed stepIndex, status or compIndex is progress; the same value written again is not',
      withLog(async (log) => {
        const s = await started(log);
        const cases: Array<[string, SagaPatch, boolean]> = [
          ['the next step', { stepIndex: 1, attempt: 0 }, true],
          ['the same stepIndex again', { stepIndex: 1, attempt: 1 }, false],
          ['compensating', { status: 'COMPENSATING', compIndex: 0, attempt: 0 }, true],
          // A compensation's intent names its compIndex on every attempt.
          ['a compensation intent, same compIndex', { compIndex: 0, attempt: 1 }, false],
          ['the same status again', { status: 'COMPENSATING', attempt: 2 }, false],
          ['the compensation done', { compIndex: -1, attempt: 0 }, true],
        ];
        for (const [what, patch, moves] of cases) {
          const before = await get(log, s.id);
          await afterWrites(log, s.id);
          await log.append(s.id, OWNER, patch, [{ type: 'STEP_STARTED', step: 's' }]);
          const after = await get(log, s.id);
          if (moves) {
            assert.ok((after.progressAt ?? 0) > (before.progressAt ?? 0), `${what}: progress`);
            assert.ok(Math.abs((after.progressAt ?? 0) - after.updatedAt) <= 1, `${what}: at the write's time`);
          } else assert.equal(after.progressAt, before.progressAt, `${what}: no progress`);
        }
      }),
    );

    it(
      'appends of one turn (batched together): each saga moves on its own patch',
      withLog(async (log) => {
        const sagas = await Promise.all([0, 1, 2, 3, 4, 5].map(() => started(log)));
        await afterWrites(log, ...sagas.map((s) => s.id));
        const patches: SagaPatch[] = [
          { stepIndex: 1, attempt: 0 },
          { attempt: 1 },
          {},
          { status: 'COMPENSATING', compIndex: 0 },
          { stepIndex: 0, attempt: 2 },
          { status: 'COMPLETED', leaseOwner: null, leaseExpiresAt: 0 },
        ];
        await Promise.all(sagas.map((s, i) => log.append(s.id, OWNER, patches[i] as SagaPatch, [FAILED])));
        const moved = await Promise.all(
          sagas.map(async (s) => ((await get(log, s.id)).progressAt ?? 0) > (s.progressAt ?? 0)),
        );
        assert.deepEqual(moved, [true, false, false, true, false, true]);
      }),
    );

    it(
      "takeOver: an operator's transition that changes the status is progress; one that does not is none",
      withLog(async (log) => {
        const parked = await started(log);
        await log.append(parked.id, OWNER, { status: 'PARKED', leaseOwner: null, leaseExpiresAt: 0 }, [
          { type: 'SAGA_PARKED' },
        ]);
        const p0 = await get(log, parked.id);
        await afterWrites(log, parked.id);
        const retried = await log.takeOver(
          parked.id,
          { status: 'PARKED' },
          'op',
          60_000,
          { status: 'RUNNING', attempt: 0 },
          [{ type: 'OPERATOR_ACTION', data: { action: 'retry' } }],
        );
        assert.ok(retried);
        assert.ok((retried.progressAt ?? 0) > (p0.progressAt ?? 0), 'PARKED → RUNNING is progress');
        assert.equal((await get(log, parked.id)).progressAt, retried.progressAt);
        await afterWrites(log, parked.id);
        const same = await log.takeOver(parked.id, { status: 'RUNNING' }, 'op', 60_000, { attempt: 0 }, [
          { type: 'OPERATOR_ACTION', data: { action: 'noop' } },
        ]);
        assert.ok(same);
        assert.equal(same.progressAt, retried.progressAt, 'the same status is no progress');
      }),
    );

    it(
      'stuck: liveStats counts, and list pages, the sagas in flight without progress since the cutoff',
      withLog(async (log) => {
        const THRESHOLD = 1_000;
        const old1 = await started(log);
        const old2 = await started(log, { status: 'COMPENSATING', compIndex: 0 });
        const moving = await started(log);
        const parked = await started(log);
        await log.append(parked.id, OWNER, { status: 'PARKED', leaseOwner: null, leaseExpiresAt: 0 }, [
          { type: 'SAGA_PARKED' },
        ]);
        const done = await started(log);
        await log.append(done.id, OWNER, { status: 'COMPLETED', leaseOwner: null, leaseExpiresAt: 0 }, [
          { type: 'SAGA_COMPLETED' },
        ]);
        const latest = await afterWrites(log, old1.id, old2.id, moving.id, parked.id, done.id);
        await clockPast(log, latest + THRESHOLD + 50);
        // old1 keeps failing (no progress); moving goes to its next step (progress).
        await log.append(old1.id, OWNER, { attempt: 1 }, [FAILED]);
        await log.append(moving.id, OWNER, { stepIndex: 1, attempt: 0 }, [{ type: 'STEP_SUCCEEDED', step: 's' }]);

        const live = await log.liveStats(THRESHOLD);
        assert.equal(live.inflight, 3);
        assert.equal(live.stuck, 2, 'old1 and old2: in flight, no progress for longer than the threshold');
        assert.equal((await log.liveStats()).stuck, 0, 'no threshold asked, none counted');

        const page = await log.list({ stuckForMs: THRESHOLD, limit: 10 });
        assert.deepEqual(
          page.sagas.map((s) => s.id),
          [old2.id, old1.id],
          'newest first; not the one that moved, nor the parked or finished ones',
        );
        assert.equal(page.nextCursor, null);
        assert.deepEqual(
          (await log.list({ stuckForMs: THRESHOLD, status: 'RUNNING', limit: 10 })).sagas.map((s) => s.id),
          [old1.id],
        );
        assert.deepEqual((await log.list({ stuckForMs: THRESHOLD, status: 'PARKED', limit: 10 })).sagas, []);
        // Paged one at a time with the cursor.
        const first = await log.list({ stuckForMs: THRESHOLD, limit: 1 });
        assert.deepEqual(
          first.sagas.map((s) => s.id),
          [old2.id],
        );
        assert.ok(first.nextCursor);
        const second = await log.list({ stuckForMs: THRESHOLD, limit: 1, cursor: first.nextCursor });
        assert.deepEqual(
          second.sagas.map((s) => s.id),
          [old1.id],
        );
        // A generous threshold: none is stuck yet.
        assert.equal((await log.liveStats(600_000)).stuck, 0);
        assert.deepEqual((await log.list({ stuckForMs: 600_000, limit: 10 })).sagas, []);
      }),
    );
  });
}
