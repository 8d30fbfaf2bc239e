import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { SagaEngine, type SagaDefinition, type SagaLog, type StepOutcome } from '../../src/saga/index.js';
import { openSagaLog } from '../../src/saga/stores/open.js';
import { createTempDatabase, type TempDatabase } from '../helpers/postgres.js';
import { eventually } from '../helpers/system.js';

// Two gateways' engines on one PostgreSQL saga log, one clock 30 s fast and one 30 s slow: the
// deadline of a saga started on one and driven by the other, and the takeover of a saga whose
// owner died, are judged by the log's clock — the same whatever the gateways' clocks say.

const SKEW_MS = 30_000;
const DEADLINE_MS = 3_000;
const LEASE_MS = 1_500;
const silent = pino({ level: 'silent' });

const policies = {
  // Step b never answers: retried until the deadline, then compensated.
  action: { maxAttempts: 10_000, initialBackoffMs: 50, maxBackoffMs: 50, multiplier: 1 },
  compensation: { maxAttempts: 5, initialBackoffMs: 10, maxBackoffMs: 10, multiplier: 1 },
  stepTimeoutMs: 1_000,
  sagaDeadlineMs: DEADLINE_MS,
};

function definition(): SagaDefinition<{ n: number }> {
  const ok = async (): Promise<StepOutcome> => ({ ok: true });
  return {
    name: 'skewed',
    version: 1,
    steps: [
      { name: 'a', kind: 'compensatable', action: ok, compensate: ok },
      {
        name: 'b',
        kind: 'compensatable',
        action: () => Promise.reject(new Error('b unreachable')),
        compensate: ok,
      },
    ],
  };
}

let db: TempDatabase;
const logs: SagaLog[] = [];
const engines: SagaEngine[] = [];

async function engine(owner: string, skewMs: number): Promise<{ engine: SagaEngine; log: SagaLog }> {
  const log = await openSagaLog({ kind: 'postgres', url: db.url, poolSize: 2, synchronousCommit: 'on' });
  const e = new SagaEngine({ log, logger: silent, policies, owner, leaseMs: LEASE_MS, now: () => Date.now() + skewMs });
  e.register(definition());
  logs.push(log);
  engines.push(e);
  return { engine: e, log };
}

before(async () => {
  db = await createTempDatabase('sagas_clock_skew');
});
after(async () => {
  for (const e of engines) await e.shutdown(100);
  for (const l of logs) await l.close().catch(() => undefined);
  await db?.drop();
});

test('each engine measures its offset from the log; a saga is stamped by the log clock whichever clock started it', async () => {
  const fast = await engine('fast', SKEW_MS);
  const slow = await engine('slow', -SKEW_MS);
  const offFast = await fast.engine.syncClock();
  const offSlow = await slow.engine.syncClock();
  assert.ok(Math.abs(offFast + SKEW_MS) < 1_000, `fast gateway's offset ${offFast} ms`);
  assert.ok(Math.abs(offSlow - SKEW_MS) < 1_000, `slow gateway's offset ${offSlow} ms`);
  for (const [id, e] of [
    ['c-fast', fast],
    ['c-slow', slow],
  ] as const) {
    const logBefore = await e.log.clock();
    const { saga } = await e.engine.start('skewed', { id, input: { n: 1 } });
    const logAfter = await e.log.clock();
    assert.ok(
      saga.createdAt >= logBefore - 1_000 && saga.createdAt <= logAfter + 1_000,
      `${id}: created at ${saga.createdAt - logBefore} ms from the log's clock`,
    );
    assert.equal(saga.deadlineAt - saga.createdAt, DEADLINE_MS);
  }
});

test("a saga started on a fast gateway and driven by a slow one meets its deadline by the log's clock, not 60 s late", async () => {
  const fast = await engine('fast-2', SKEW_MS);
  const slow = await engine('slow-2', -SKEW_MS);
  await fast.engine.syncClock();
  await slow.engine.syncClock();
  const { saga } = await fast.engine.start('skewed', { id: 'd-1', input: { n: 1 } });
  // The fast gateway stops at its next checkpoint and gives the lease back; the slow one resumes it.
  await fast.engine.shutdown(2_000);
  await eventually('the slow gateway claims the saga', async () =>
    (await slow.engine.recoverOnce()) > 0 ? true : undefined,
  );
  const final = await slow.engine.waitFor(saga.id, 15_000);
  assert.equal(final?.status, 'COMPENSATED', `status ${final?.status}: the deadline was not judged in time`);
  // The forward run ends at the deadline: by the deadline's own transition, or one backoff (50 ms)
  // before it, when the next attempt would start past it. Either way by the log's clock.
  const events = await slow.log.events(saga.id);
  const lastTry = events.filter((e) => e.type === 'STEP_FAILED' && e.step === 'b').at(-1);
  assert.ok(lastTry, 'step b was tried');
  const late = lastTry.at - saga.deadlineAt;
  console.log(`forward run ended ${late} ms from the deadline (log clock), driven by the gateway 30 s slow`);
  assert.ok(late >= -200 && late < 1_500, `judged ${late} ms from the deadline by the log's clock`);
});

test("a dead owner's saga is taken over when its lease expires by the log's clock, by a gateway whose clock is 30 s slow", async () => {
  const fast = await engine('fast-3', SKEW_MS);
  const slow = await engine('slow-3', -SKEW_MS);
  await fast.engine.syncClock();
  await slow.engine.syncClock();
  const { saga } = await fast.engine.start('skewed', { id: 't-1', input: { n: 1 } });
  // The owner dies as with kill -9: its connection to the log is gone, its lease is not given back.
  await fast.log.close();
  const held = await eventually('the lease stops being renewed', async () => {
    const s = await slow.log.get(saga.id);
    return s && s.leaseOwner === 'fast-3' ? s : undefined;
  });
  await eventually('the slow gateway takes the saga over', async () => {
    await slow.engine.recoverOnce();
    return (await slow.log.get(saga.id))?.leaseOwner === 'slow-3' ? true : undefined;
  });
  // Its first write after the claim: SAGA_RESUMED, stamped by the log's clock.
  const resumed = await eventually('the slow gateway records the resumption', async () =>
    (await slow.log.events(saga.id)).find((e) => e.type === 'SAGA_RESUMED'),
  );
  const afterExpiry = resumed.at - held.leaseExpiresAt;
  console.log(`takeover ${afterExpiry} ms after the lease expired (log clock), lease ${LEASE_MS} ms`);
  assert.ok(afterExpiry >= 0, `never before the lease expired (${afterExpiry} ms)`);
  assert.ok(afterExpiry < 2_000, `within the polling of recovery (${afterExpiry} ms)`);
});
