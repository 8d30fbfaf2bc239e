import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { SagaEngine } from '../../src/saga/engine.js';
import { SqliteSagaLog } from '../../src/saga/stores/sqlite.js';
import type {
  DefiniteError,
  EnginePolicies,
  SagaDefinition,
  StepContext,
  StepOutcome,
} from '../../src/saga/definition.js';
import { backoffMs } from '../../src/saga/definition.js';

const logger = pino({ level: 'silent' });

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'saga-engine-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

function tempStore(now?: () => number): SqliteSagaLog {
  const dir = fs.mkdtempSync(path.join(root, 'store-'));
  return new SqliteSagaLog({ file: path.join(dir, 'saga.db'), now });
}

type Script = Record<string, Array<StepOutcome | 'throw' | 'hang' | 'refuse'>>;

/** What a transport raises for a refusal no retry can change (the gRPC client marks INVALID_ARGUMENT so). */
class RefusedForTest extends Error implements DefiniteError {
  readonly definite = true;
  readonly failureCode = 'refused_for_test';
}

/** A four-step definition whose steps follow a script and record every call. */
function scripted(script: Script, calls: string[]): SagaDefinition<{ n: number }> {
  const run =
    (name: string) =>
    async (ctx: StepContext<{ n: number }>): Promise<StepOutcome> => {
      calls.push(`${name}#${ctx.idempotencyKey}`);
      const next = script[name]?.shift() ?? { ok: true, result: { step: name } };
      if (next === 'throw') throw new Error(`${name} unavailable`);
      if (next === 'refuse') throw new RefusedForTest(`${name} refused`);
      if (next === 'hang') return new Promise(() => {});
      return next;
    };
  const step = (name: string, kind: 'compensatable' | 'pivot' | 'retriable', undo = true) => ({
    name,
    kind,
    action: run(name),
    compensate: undo ? run(`${name}:undo`) : undefined,
    timeoutMs: 50,
  });
  return {
    name: 'test_saga',
    version: 1,
    steps: [
      step('a', 'compensatable'),
      step('b', 'compensatable'),
      step('c', 'compensatable'),
      step('d', 'pivot', false),
      step('e', 'retriable', false),
    ],
  };
}

const fast: EnginePolicies = {
  action: { maxAttempts: 3, initialBackoffMs: 1, maxBackoffMs: 2, multiplier: 2 },
  compensation: { maxAttempts: 3, initialBackoffMs: 1, maxBackoffMs: 2, multiplier: 2 },
  forward: { maxAttempts: Infinity, initialBackoffMs: 1, maxBackoffMs: 2, multiplier: 2 },
  stepTimeoutMs: 50,
  sagaDeadlineMs: 60_000,
};

async function runSaga(script: Script, id = 's1', policies: EnginePolicies = fast) {
  const store = tempStore();
  const calls: string[] = [];
  const engine = new SagaEngine({ log: store, logger, policies });
  engine.register(scripted(script, calls));
  await engine.start('test_saga', { id, input: { n: 1 } });
  const final = await engine.waitFor(id, 5_000);
  const types = (await store.events(id)).map((e) => `${e.type}${e.step ? `:${e.step}` : ''}`);
  return { store, engine, calls, final, types };
}

test('a saga whose steps all succeed runs them in order and completes', async () => {
  const { final, calls, types, store } = await runSaga({});
  assert.equal(final?.status, 'COMPLETED');
  assert.deepEqual(calls, ['a#s1:a', 'b#s1:b', 'c#s1:c', 'd#s1:d', 'e#s1:e']);
  assert.deepEqual(types, [
    'SAGA_STARTED',
    ...['a', 'b', 'c', 'd', 'e'].flatMap((s) => [`STEP_STARTED:${s}`, `STEP_SUCCEEDED:${s}`]),
    'SAGA_COMPLETED',
  ]);
  assert.deepEqual(
    (await store.events('s1')).map((e) => e.seq),
    types.map((_, i) => i + 1),
  );
  assert.deepEqual(final?.results.c, { step: 'c' });
});

test('a definite failure compensates the finished steps in reverse order, not the failed one', async () => {
  const { final, calls, types } = await runSaga({ c: [{ ok: false, code: 'payment_declined', message: 'declined' }] });
  assert.equal(final?.status, 'COMPENSATED');
  assert.deepEqual(final?.failure, { step: 'c', code: 'payment_declined', message: 'declined' });
  assert.deepEqual(calls, ['a#s1:a', 'b#s1:b', 'c#s1:c', 'b:undo#s1:b:undo', 'a:undo#s1:a:undo']);
  assert.deepEqual(types.slice(-6), [
    'STEP_FAILED:c',
    'COMPENSATION_STARTED:b',
    'COMPENSATION_SUCCEEDED:b',
    'COMPENSATION_STARTED:a',
    'COMPENSATION_SUCCEEDED:a',
    'SAGA_COMPENSATED',
  ]);
});

test('a failure at the first step has nothing to compensate', async () => {
  const { final, calls } = await runSaga({ a: [{ ok: false, code: 'insufficient_stock', message: 'no' }] });
  assert.equal(final?.status, 'COMPENSATED');
  assert.deepEqual(calls, ['a#s1:a']);
});

test('an uncertain outcome is retried with the same key and the saga goes on', async () => {
  const { final, calls, store } = await runSaga({ b: ['throw', 'hang'] });
  assert.equal(final?.status, 'COMPLETED');
  assert.deepEqual(
    calls.filter((c) => c.startsWith('b#')),
    ['b#s1:b', 'b#s1:b', 'b#s1:b'],
  );
  const failed = (await store.events('s1')).filter((e) => e.type === 'STEP_FAILED');
  assert.deepEqual(
    failed.map((e) => [e.step, e.attempt, e.retryable]),
    [
      ['b', 1, true],
      ['b', 2, true],
    ],
  );
});

test('when retries run out the uncertain step is compensated too', async () => {
  const { final, calls } = await runSaga({ b: ['throw', 'throw', 'throw'] });
  assert.equal(final?.status, 'COMPENSATED');
  assert.equal(final?.failure?.code, 'participant_unavailable');
  assert.deepEqual(calls.slice(-2), ['b:undo#s1:b:undo', 'a:undo#s1:a:undo']);
});

test('a compensation that keeps failing parks the saga', async () => {
  const { final, types } = await runSaga({
    c: [{ ok: false, code: 'x', message: 'x' }],
    'b:undo': ['throw', 'throw', 'throw'],
  });
  assert.equal(final?.status, 'PARKED');
  assert.equal(types.at(-1), 'SAGA_PARKED:b');
  assert.ok(!types.includes('COMPENSATION_STARTED:a'), 'stops at the stuck compensation');
});

test('a definite refusal of a compensation parks the saga at once', async () => {
  const { final, types } = await runSaga({
    c: [{ ok: false, code: 'x', message: 'x' }],
    'b:undo': [{ ok: false, code: 'y', message: 'cannot undo' }],
  });
  assert.equal(final?.status, 'PARKED');
  assert.equal(types.filter((t) => t === 'COMPENSATION_FAILED:b').length, 1);
});

test('a pivot failure compensates; after the pivot a step is retried beyond the action budget', async () => {
  const pivotFail = await runSaga({ d: [{ ok: false, code: 'order_not_pending', message: 'no' }] });
  assert.equal(pivotFail.final?.status, 'COMPENSATED');
  const after = await runSaga({ e: ['throw', 'throw', 'throw', 'throw', 'throw'] });
  assert.equal(after.final?.status, 'COMPLETED');
  assert.equal(after.calls.filter((c) => c.startsWith('e#')).length, 6);
});

test('a step that raises a definite error compensates at once: no retry, the failed step not undone', async () => {
  const { final, calls, store } = await runSaga({ b: ['refuse'] });
  assert.equal(final?.status, 'COMPENSATED');
  assert.deepEqual(final?.failure, { step: 'b', code: 'refused_for_test', message: 'b refused' });
  assert.deepEqual(calls, ['a#s1:a', 'b#s1:b', 'a:undo#s1:a:undo']);
  const failed = (await store.events('s1')).filter((e) => e.type === 'STEP_FAILED');
  assert.deepEqual(
    failed.map((e) => [e.step, e.attempt, e.retryable, e.data]),
    [['b', 1, false, { code: 'refused_for_test' }]],
  );
});

test('a definite error after an uncertain attempt compensates the step too (the first attempt may have had its effect)', async () => {
  const { final, calls } = await runSaga({ b: ['throw', 'refuse'] });
  assert.equal(final?.status, 'COMPENSATED');
  assert.equal(final?.failure?.code, 'refused_for_test');
  assert.deepEqual(calls, ['a#s1:a', 'b#s1:b', 'b#s1:b', 'b:undo#s1:b:undo', 'a:undo#s1:a:undo']);
});

test('after the pivot a definite error parks the saga at once', async () => {
  const { final, calls, types } = await runSaga({ e: ['refuse'] });
  assert.equal(final?.status, 'PARKED');
  assert.equal(final?.failure?.code, 'refused_for_test');
  assert.equal(calls.filter((c) => c.startsWith('e#')).length, 1);
  assert.equal(types.at(-1), 'SAGA_PARKED:e');
});

test('after the pivot an uncertain step parks once the forward attempts are spent', async () => {
  const policies = { ...fast, forward: { ...fast.forward, maxAttempts: 4 } };
  const { final, calls, types } = await runSaga({ e: ['throw', 'throw', 'throw', 'throw', 'throw'] }, 's1', policies);
  assert.equal(final?.status, 'PARKED');
  assert.equal(final?.failure?.code, 'forward_attempts_exhausted');
  assert.equal(calls.filter((c) => c.startsWith('e#')).length, 4);
  assert.deepEqual(types.slice(-2), ['STEP_FAILED:e', 'SAGA_PARKED:e']);
});

test('a compensation that raises a definite error parks at once', async () => {
  const { final, calls } = await runSaga({ c: [{ ok: false, code: 'x', message: 'x' }], 'b:undo': ['refuse'] });
  assert.equal(final?.status, 'PARKED');
  assert.equal(calls.filter((c) => c.startsWith('b:undo#')).length, 1);
});

test('an idempotency key maps to one saga', async () => {
  const store = tempStore();
  const engine = new SagaEngine({ log: store, logger, policies: fast });
  engine.register(scripted({}, []));
  const first = await engine.start('test_saga', { id: 'k1', input: { n: 1 }, idempotencyKey: 'key-1' });
  const second = await engine.start('test_saga', { id: 'k2', input: { n: 1 }, idempotencyKey: 'key-1' });
  assert.equal(first.created, true);
  assert.equal(second.created, false);
  assert.equal(second.saga.id, 'k1');
  await engine.waitFor('k1', 5_000);
  assert.equal(await store.get('k2'), undefined);
});

test('a saga whose owner died is resumed from its log with the same keys', async () => {
  let clock = 1_000_000;
  const store = tempStore(() => clock);
  const callsA: string[] = [];
  const a = new SagaEngine({ log: store, logger, policies: fast, leaseMs: 1_000, now: () => clock, owner: 'A' });
  a.register(scripted({ c: ['hang', 'hang', 'hang'] }, callsA));
  await a.start('test_saga', { id: 'r1', input: { n: 1 } });
  // Owner A is stuck in step c; it "dies" (we simply stop looking at it) and its lease expires.
  while (!(await store.events('r1')).some((e) => e.type === 'STEP_STARTED' && e.step === 'c'))
    await new Promise((r) => setImmediate(r));
  clock += 5_000;
  const callsB: string[] = [];
  const b = new SagaEngine({ log: store, logger, policies: fast, leaseMs: 1_000, now: () => clock, owner: 'B' });
  b.register(scripted({}, callsB));
  assert.equal(await b.recoverOnce(), 1);
  const final = await b.waitFor('r1', 5_000);
  assert.equal(final?.status, 'COMPLETED');
  assert.deepEqual(callsB, ['c#r1:c', 'd#r1:d', 'e#r1:e']);
  assert.ok((await store.events('r1')).some((e) => e.type === 'SAGA_RESUMED'));
  assert.equal(await b.recoverOnce(), 0, 'a finished saga is not claimed again');
});

test('listing is newest first with a cursor', async () => {
  const store = tempStore();
  const engine = new SagaEngine({ log: store, logger, policies: fast });
  engine.register(scripted({}, []));
  for (const id of ['l1', 'l2', 'l3']) await engine.start('test_saga', { id, input: { n: 1 } });
  await Promise.all(['l1', 'l2', 'l3'].map((id) => engine.waitFor(id, 5_000)));
  const p1 = await store.list({ limit: 2 });
  assert.deepEqual(
    p1.sagas.map((s) => s.id),
    ['l3', 'l2'],
  );
  assert.ok(p1.nextCursor);
  const p2 = await store.list({ limit: 2, cursor: p1.nextCursor });
  assert.deepEqual(
    p2.sagas.map((s) => s.id),
    ['l1'],
  );
  assert.equal(p2.nextCursor, null);
  assert.equal((await store.list({ limit: 10, status: 'COMPLETED' })).sagas.length, 3);
  await assert.rejects(store.list({ limit: 1, cursor: 'bogus' }), { code: 'invalid_cursor' });
});

test('backoff is bounded by the policy and grows exponentially', () => {
  const p = { maxAttempts: 5, initialBackoffMs: 100, maxBackoffMs: 1_000, multiplier: 2 };
  assert.equal(
    backoffMs(p, 1, () => 1),
    100,
  );
  assert.equal(
    backoffMs(p, 3, () => 1),
    400,
  );
  assert.equal(
    backoffMs(p, 10, () => 1),
    1_000,
  );
  assert.equal(
    backoffMs(p, 3, () => 0),
    0,
  );
});

test('past the saga deadline, a saga before its pivot compensates, including the uncertain step', async () => {
  const store = tempStore();
  const calls: string[] = [];
  let clock = 1_000_000;
  const engine = new SagaEngine({ log: store, logger, policies: { ...fast, sagaDeadlineMs: 1_000 }, now: () => clock });
  const def = scripted({ b: ['throw', 'throw'] }, calls);
  // The clock jumps past the deadline while step b is failing.
  const b = def.steps[1];
  const action = b!.action.bind(b);
  (b as { action: typeof action }).action = async (ctx) => {
    clock += 600;
    return action(ctx);
  };
  engine.register(def);
  await engine.start('test_saga', { id: 'd1', input: { n: 1 } });
  const final = await engine.waitFor('d1', 5_000);
  assert.equal(final?.status, 'COMPENSATED');
  assert.equal(final?.failure?.code, 'saga_deadline_exceeded');
  assert.deepEqual(calls.slice(-2), ['b:undo#d1:b:undo', 'a:undo#d1:a:undo']);
});

test('writes issued in one turn are committed together and each caller learns its own outcome', async () => {
  const store = tempStore();
  const engine = new SagaEngine({ log: store, logger, policies: fast });
  engine.register(scripted({}, []));
  const ids = Array.from({ length: 50 }, (_, i) => `g${i}`);
  const started = await Promise.all(
    ids.map((id) =>
      engine.start('test_saga', { id, input: { n: 1 }, idempotencyKey: id === 'g1' ? 'dup' : `k-${id}` }),
    ),
  );
  assert.ok(started.every((s) => s.created));
  // A duplicate key inside a batch fails alone; the rest of the batch stands.
  const [dup, fresh] = await Promise.all([
    engine.start('test_saga', { id: 'g-dup', input: { n: 1 }, idempotencyKey: 'dup' }),
    engine.start('test_saga', { id: 'g-new', input: { n: 1 }, idempotencyKey: 'k-new' }),
  ]);
  assert.equal(dup.created, false);
  assert.equal(dup.saga.id, 'g1');
  assert.equal(fresh.created, true);
  await Promise.all([...ids, 'g-new'].map((id) => engine.waitFor(id, 5_000)));
  assert.equal((await store.countByStatus()).COMPLETED, 51);
});

test('the saga row keeps its subject and current step: listed by them while it is at a step, none once it ends', async () => {
  const store = tempStore();
  const calls: string[] = [];
  const engine = new SagaEngine({ log: store, logger, policies: fast });
  const declined: StepOutcome = { ok: false, code: 'declined', message: 'no' };
  // s-park: c is declined, then b's undo is refused: parked compensating b. s-fwd: e (after the pivot) refused: parked on e.
  const script: Script = { c: [declined], 'b:undo': [declined], e: [{ ok: true }, declined] };
  engine.register({ ...scripted(script, calls), subject: ({ input }) => `customer-${input.n}` });
  await engine.start('test_saga', { id: 's-park', input: { n: 1 } });
  assert.equal((await engine.waitFor('s-park', 5_000))?.status, 'PARKED');
  await engine.start('test_saga', { id: 's-done', input: { n: 2 } });
  assert.equal((await engine.waitFor('s-done', 5_000))?.status, 'COMPLETED');
  await engine.start('test_saga', { id: 's-fwd', input: { n: 1 } });
  assert.equal((await engine.waitFor('s-fwd', 5_000))?.status, 'PARKED');
  const row = async (id: string) => {
    const s = await store.get(id);
    return [s?.subject, s?.currentStep];
  };
  assert.deepEqual(await row('s-park'), ['customer-1', 'b']);
  assert.deepEqual(await row('s-done'), ['customer-2', null]);
  assert.deepEqual(await row('s-fwd'), ['customer-1', 'e']);
  assert.deepEqual(
    (await store.list({ limit: 10, step: 'b' })).sagas.map((s) => s.id),
    ['s-park'],
  );
  assert.deepEqual(
    (await store.list({ limit: 10, subject: 'customer-1' })).sagas.map((s) => s.id),
    ['s-fwd', 's-park'],
  );
  // An operator's retry moves it on: compensating b again, then compensated (no step).
  await engine.act({ sagaId: 's-park', action: 'retry', actionId: 'r1', actor: 'op' });
  assert.equal((await engine.waitFor('s-park', 5_000))?.status, 'COMPENSATED');
  assert.deepEqual(await row('s-park'), ['customer-1', null]);
  await engine.shutdown(1_000);
  await store.close();
});
