import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { SagaEngine, type SagaDefinition, type SagaInterceptor, type StepOutcome } from '../../src/saga/index.js';
import { SqliteSagaLog } from '../../src/saga/stores/sqlite.js';

const logger = pino({ level: 'silent' });
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'saga-interceptors-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

function tempStore(): SqliteSagaLog {
  return new SqliteSagaLog({ file: path.join(fs.mkdtempSync(path.join(root, 'store-')), 'saga.db') });
}

type Answers = Partial<Record<'a' | 'a:undo' | 'b' | 'b:undo', () => StepOutcome>>;

/** Two compensatable steps, `a` and `b`; each call is recorded and answers as told (ok by default). */
function twoSteps(calls: string[], answers: Answers = {}): SagaDefinition<{ n: number }> {
  const record = (name: keyof Answers) => async (): Promise<StepOutcome> => {
    calls.push(name);
    return answers[name]?.() ?? { ok: true };
  };
  const step = (name: 'a' | 'b') => ({
    name,
    kind: 'compensatable' as const,
    action: record(name),
    compensate: record(`${name}:undo`),
    timeoutMs: 200,
  });
  return { name: 'two', version: 1, steps: [step('a'), step('b')] };
}

/** A logger that hands over the first InterceptorContractError the engine logs. */
function contractErrorLogger() {
  let seen: (e: { message: string }) => void = () => {};
  const logged = new Promise<{ message: string }>((resolve) => (seen = resolve));
  const log = pino(
    { level: 'error' },
    {
      write: (line: string) => {
        const err = (JSON.parse(line) as { err?: { type?: string; message: string } }).err;
        if (err?.type === 'InterceptorContractError') seen(err);
      },
    },
  );
  return { log, logged };
}

const fast = {
  action: { maxAttempts: 2, initialBackoffMs: 1, maxBackoffMs: 2, multiplier: 2 },
  compensation: { maxAttempts: 2, initialBackoffMs: 1, maxBackoffMs: 2, multiplier: 2 },
};

async function run(interceptors: SagaInterceptor[], answers?: Answers) {
  const log = tempStore();
  const calls: string[] = [];
  const engine = new SagaEngine({ log, logger, interceptors, policies: fast });
  const handle = engine.register(twoSteps(calls, answers));
  const { saga } = await handle.start({ id: 'ord_1', input: { n: 1 } });
  const final = await handle.waitFor(saga.id, 5_000);
  const events = await log.events(saga.id);
  await engine.shutdown();
  await log.close();
  return { final, events, calls };
}

test('the two members see, in order, the run and each attempt holding its intent, call and outcome', async () => {
  const seen: string[] = [];
  const spy: SagaInterceptor = {
    name: 'spy',
    async saga(op, next) {
      seen.push(`saga:${op.kind}`);
      await next();
      if (op.kind === 'run') seen.push(`final:${op.final?.status}`);
    },
    async step(op, next) {
      seen.push(`>${op.kind}:${op.step.name}`);
      await next();
      seen.push(`<${op.kind}:${op.step.name}`);
    },
  };
  const { final } = await run([spy]);
  assert.equal(final?.status, 'COMPLETED');
  const attempt = (s: string) => [
    `>attempt:${s}`,
    `>intent:${s}`,
    `<intent:${s}`,
    `>call:${s}`,
    `<call:${s}`,
    `>outcome:${s}`,
    `<outcome:${s}`,
    `<attempt:${s}`,
  ];
  assert.deepEqual(seen, ['saga:run', ...attempt('a'), ...attempt('b'), 'final:COMPLETED']);
});

test('the first interceptor is outermost', async () => {
  const seen: string[] = [];
  const named = (name: string): SagaInterceptor => ({
    name,
    async step(op, next) {
      if (op.kind === 'call' && op.step.name === 'a') seen.push(`>${name}`);
      await next();
      if (op.kind === 'call' && op.step.name === 'a') seen.push(`<${name}`);
    },
  });
  await run([named('outer'), named('inner')]);
  assert.deepEqual(seen, ['>outer', '>inner', '<inner', '<outer']);
});

test('a call may be answered without calling the participant; its annotations reach the failure event', async () => {
  const refuseB: SagaInterceptor = {
    name: 'refuse-b',
    async step(op, next) {
      if (op.kind !== 'call' || op.step.name !== 'b') return next();
      op.outcome = { kind: 'failed', code: 'refused_here', message: 'no', raised: true, annotations: { why: 'test' } };
    },
  };
  const { final, events, calls } = await run([refuseB]);
  assert.equal(final?.status, 'COMPENSATED');
  assert.deepEqual(calls, ['a', 'a:undo'], 'b was never called');
  const failed = events.find((e) => e.type === 'STEP_FAILED' && e.step === 'b');
  assert.deepEqual(failed?.data, { why: 'test', code: 'refused_here' }, "the engine's own field kept beside it");
  const others = events.filter((e) => e !== failed && e.data && typeof e.data === 'object' && 'why' in e.data);
  assert.deepEqual(others, [], 'only the failed attempt is annotated');
});

test('an interceptor that skips a durable write is refused: nothing is called after it, the saga is not ended', async () => {
  const skipIntent: SagaInterceptor = {
    name: 'skip-intent',
    async step(op, next) {
      if (op.kind === 'intent' && op.step.name === 'b') return; // breaks rule 2
      return next();
    },
  };
  const log = tempStore();
  const calls: string[] = [];
  const errors = contractErrorLogger();
  const engine = new SagaEngine({ log, logger: errors.log, interceptors: [skipIntent], policies: fast });
  const handle = engine.register(twoSteps(calls));
  const { saga } = await handle.start({ id: 'ord_2', input: { n: 1 } });
  assert.match((await errors.logged).message, /skipped next\(\) around intent/);
  assert.equal((await handle.get(saga.id))?.status, 'RUNNING', 'the run stopped; recovery would resume it');
  assert.deepEqual(calls, ['a'], 'b was not called without its intent on record');
  await engine.shutdown();
  await log.close();
});

test('calling next() twice is refused: the participant is called once', async () => {
  const twice: SagaInterceptor = {
    name: 'twice',
    async step(op, next) {
      await next();
      if (op.kind === 'call' && op.step.name === 'a') await next(); // breaks rule 1
    },
  };
  const log = tempStore();
  const calls: string[] = [];
  const errors = contractErrorLogger();
  const engine = new SagaEngine({ log, logger: errors.log, interceptors: [twice], policies: fast });
  const handle = engine.register(twoSteps(calls));
  await handle.start({ id: 'ord_3', input: { n: 1 } });
  assert.match((await errors.logged).message, /next\(\) called twice around call/);
  assert.deepEqual(calls, ['a'], 'a called once, and nothing after the broken chain');
  await engine.shutdown();
  await log.close();
});

test('operator actions pass through `saga` with what they did (applied, then replayed)', async () => {
  const seen: string[] = [];
  const spy: SagaInterceptor = {
    name: 'spy',
    async saga(op, next) {
      await next();
      if (op.kind === 'operator_action') seen.push(`action:${op.request.action}:${String(op.result?.replayed)}`);
      if (op.kind === 'run') seen.push(`run:${op.cause}:${op.final?.status}`);
    },
  };
  const log = tempStore();
  const calls: string[] = [];
  // b refused, then a's undo refused: nothing more the engine can do, so the saga parks.
  const nope = () => ({ ok: false as const, code: 'nope', message: 'nope' });
  const first = new SagaEngine({ log, logger, policies: fast });
  const h1 = first.register(twoSteps(calls, { b: nope, 'a:undo': nope }));
  const { saga } = await h1.start({ id: 'ord_4', input: { n: 1 } });
  const parked = await h1.waitFor(saga.id, 5_000);
  await first.shutdown();
  const second = new SagaEngine({ log, logger, policies: fast, interceptors: [spy], owner: 'gw-2' });
  second.register(twoSteps(calls));
  const res = await second.act({
    sagaId: saga.id,
    action: 'resolve',
    actionId: 'r1',
    actor: 'ops',
    note: 'done by hand',
  });
  await second.act({ sagaId: saga.id, action: 'resolve', actionId: 'r1', actor: 'ops', note: 'done by hand' });
  assert.equal(res.saga.status, 'RESOLVED', `from ${parked?.status}`);
  assert.deepEqual(seen, ['action:resolve:false', 'action:resolve:true']);
  await second.shutdown();
  await log.close();
});
