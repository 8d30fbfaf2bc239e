/**
 * How many times a saga commits to its log, and what its create carries: the saga row,
 * SAGA_STARTED and its first step's intent (STEP_STARTED, attempt 1) in one commit, before any
 * participant call, so that a happy saga of five steps commits six times (issue 27). On a real
 * SQLite log, through a wrapper that records each committed write.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { context as otelContext, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { pino } from 'pino';
import { SagaEngine } from '../../src/saga/engine.js';
import { tracing, type SagaInterceptor } from '../../src/saga/interceptors.js';
import { type NewEvent, type SagaLog, type SagaEvent } from '../../src/saga/model.js';
import { SqliteSagaLog } from '../../src/saga/stores/sqlite.js';
import type { EnginePolicies, SagaDefinition, StepContext, StepOutcome } from '../../src/saga/definition.js';

const logger = pino({ level: 'silent' });
const exported = new InMemorySpanExporter();
new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exported)] }).register();

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'saga-commits-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

function tempStore(now?: () => number): SqliteSagaLog {
  return new SqliteSagaLog({ file: path.join(fs.mkdtempSync(path.join(root, 'store-')), 'saga.db'), now });
}

const label = (e: Pick<NewEvent, 'type' | 'step' | 'attempt'>) =>
  `${e.type}${e.step ? `:${e.step}` : ''}${e.attempt ? `#${e.attempt}` : ''}`;

/** The log, and every write of it that committed, in order, as the labels of its events. */
function counting(log: SagaLog): { log: SagaLog; commits: string[][] } {
  const commits: string[][] = [];
  const wrapped: SagaLog = Object.create(log) as SagaLog;
  wrapped.create = async (saga, events, leaseMs) => {
    const res = await log.create(saga, events, leaseMs);
    if (res.created) commits.push(events.map(label));
    return res;
  };
  wrapped.append = async (id, owner, patch, events) => {
    await log.append(id, owner, patch, events);
    commits.push(events.map(label));
  };
  wrapped.takeOver = async (id, expect, owner, leaseMs, patch, events) => {
    const taken = await log.takeOver(id, expect, owner, leaseMs, patch, events);
    if (taken) commits.push(events.map(label));
    return taken;
  };
  return { log: wrapped, commits };
}

const fast: EnginePolicies = {
  action: { maxAttempts: 3, initialBackoffMs: 1, maxBackoffMs: 2, multiplier: 2 },
  compensation: { maxAttempts: 3, initialBackoffMs: 1, maxBackoffMs: 2, multiplier: 2 },
  forward: { maxAttempts: Infinity, initialBackoffMs: 1, maxBackoffMs: 2, multiplier: 2 },
  stepTimeoutMs: 200,
  sagaDeadlineMs: 60_000,
};

type Call = (ctx: StepContext<{ n: number }>) => Promise<StepOutcome>;

/** Five steps shaped like place-order's (three compensatable, a pivot, a retriable one); `on` sees each action's call. */
function fiveSteps(on: Call = async () => ({ ok: true }), name = 'five', version = 1): SagaDefinition<{ n: number }> {
  const step = (s: string, kind: 'compensatable' | 'pivot' | 'retriable') => ({
    name: s,
    kind,
    action: on,
    ...(kind === 'compensatable' ? { compensate: async (): Promise<StepOutcome> => ({ ok: true }) } : {}),
  });
  return {
    name,
    version,
    steps: [
      step('a', 'compensatable'),
      step('b', 'compensatable'),
      step('c', 'compensatable'),
      step('d', 'pivot'),
      step('e', 'retriable'),
    ],
  };
}

const types = (events: SagaEvent[]) => events.map(label);

test('a happy saga of five steps commits six times: the create carries the first intent, then each outcome with the next intent', async () => {
  const store = tempStore();
  const { log, commits } = counting(store);
  // What the log holds when each participant call is made.
  const seenAtCall: string[][] = [];
  const engine = new SagaEngine({ log, logger, policies: fast });
  const handle = engine.register(
    fiveSteps(async (ctx) => {
      seenAtCall.push(types(await store.events(ctx.sagaId)).slice(-1));
      return { ok: true, result: { step: ctx.step } };
    }),
  );
  const { saga, created } = await handle.start({ id: 'h1', input: { n: 1 } });
  assert.equal(created, true);
  // What start returns is the row as committed: at the first step, its first attempt on record.
  assert.deepEqual([saga.status, saga.stepIndex, saga.attempt, saga.currentStep], ['RUNNING', 0, 1, 'a']);
  assert.equal(saga.progressAt, saga.createdAt, 'the create is its progress so far; the intent adds none');
  const final = await handle.waitFor('h1', 5_000);
  assert.equal(final?.status, 'COMPLETED');
  assert.deepEqual(commits, [
    ['SAGA_STARTED', 'STEP_STARTED:a#1'],
    ['STEP_SUCCEEDED:a#1', 'STEP_STARTED:b#1'],
    ['STEP_SUCCEEDED:b#1', 'STEP_STARTED:c#1'],
    ['STEP_SUCCEEDED:c#1', 'STEP_STARTED:d#1'],
    ['STEP_SUCCEEDED:d#1', 'STEP_STARTED:e#1'],
    ['STEP_SUCCEEDED:e#1', 'SAGA_COMPLETED'],
  ]);
  assert.equal(commits.length, 6, 'six commits (seven before the create carried the first intent)');
  // Every call is made with its own intent durable, the first one's committed by the create.
  assert.deepEqual(seenAtCall, [
    ['STEP_STARTED:a#1'],
    ['STEP_STARTED:b#1'],
    ['STEP_STARTED:c#1'],
    ['STEP_STARTED:d#1'],
    ['STEP_STARTED:e#1'],
  ]);
  const events = await store.events('h1');
  assert.deepEqual(
    events.map((e) => e.seq),
    events.map((_, i) => i + 1),
  );
  assert.deepEqual(types(events).slice(0, 2), ['SAGA_STARTED', 'STEP_STARTED:a#1']);
  assert.equal(events[1]?.at, events[0]?.at, 'one commit: the create stamps both');
  await engine.shutdown();
  await store.close();
});

test("both of the create's events carry the ids of the span that creates the saga; later intents carry their attempt's", async () => {
  exported.reset();
  const store = tempStore();
  const engine = new SagaEngine({ log: store, logger, policies: fast, interceptors: [tracing()] });
  const handle = engine.register(fiveSteps());
  const request = trace.getTracer('test').startSpan('POST /orders');
  await otelContext.with(trace.setSpan(otelContext.active(), request), () =>
    handle.start({ id: 't1', input: { n: 1 } }),
  );
  request.end();
  assert.equal((await handle.waitFor('t1', 5_000))?.status, 'COMPLETED');
  const events = await store.events('t1');
  const { traceId, spanId } = request.spanContext();
  for (const e of events.slice(0, 2)) assert.deepEqual([label(e), e.traceId, e.spanId], [label(e), traceId, spanId]);
  const attemptSpan = (step: string) => exported.getFinishedSpans().find((s) => s.name === `saga.step ${step}`);
  const byType = (l: string) => events.find((e) => label(e) === l);
  assert.equal(byType('STEP_SUCCEEDED:a#1')?.spanId, attemptSpan('a')?.spanContext().spanId);
  assert.equal(byType('STEP_STARTED:b#1')?.spanId, attemptSpan('b')?.spanContext().spanId);
  assert.ok(
    events.every((e) => e.traceId === traceId),
    'one trace',
  );
  await engine.shutdown();
  await store.close();
});

test("the first attempt's intent op still runs through the chain, marked as committed with the create; a crash there is recovered under the same key", async () => {
  let clock = 1_000_000;
  const store = tempStore(() => clock);
  const calls: string[] = [];
  const intents: string[] = [];
  // A crash point at the first intent (before_intent or after_intent: both come after the create's commit).
  const crashAtFirstIntent: SagaInterceptor = {
    name: 'crash',
    async step(op, next) {
      if (op.kind !== 'intent') return next();
      intents.push(`${op.step.name}#${op.attempt}:${op.withCreate}`);
      if (op.step.name === 'a' && op.attempt === 1) throw new Error('crash at saga.a.before_intent');
      return next();
    },
  };
  const record: Call = async (ctx) => {
    calls.push(`${ctx.step}#${ctx.attempt}:${ctx.idempotencyKey}`);
    return { ok: true };
  };
  const opts = { log: store, logger, policies: fast, leaseMs: 1_000, now: () => clock };
  const first = new SagaEngine({ ...opts, owner: 'A', interceptors: [crashAtFirstIntent] });
  const h = first.register(fiveSteps(record));
  await h.start({ id: 'c1', input: { n: 1 } });
  // The run stops at the crash point: nothing is called, the create's intent is on record.
  await first.shutdown();
  assert.deepEqual(calls, []);
  assert.deepEqual(types(await store.events('c1')), ['SAGA_STARTED', 'STEP_STARTED:a#1']);
  assert.equal((await store.get('c1'))?.attempt, 1);
  clock += 5_000;
  const second = new SagaEngine({ ...opts, owner: 'B', interceptors: [crashAtFirstIntent] });
  second.register(fiveSteps(record));
  assert.equal(await second.recoverOnce(), 1);
  assert.equal((await second.waitFor('c1', 5_000))?.status, 'COMPLETED');
  // Recovery plans the step again from the row: attempt 2, its intent written by the driver, the same key.
  assert.deepEqual(calls[0], 'a#2:c1:a');
  assert.deepEqual(intents.slice(0, 3), ['a#1:true', 'a#2:false', 'b#1:false']);
  assert.deepEqual(types(await store.events('c1')).slice(0, 5), [
    'SAGA_STARTED',
    'STEP_STARTED:a#1',
    'SAGA_RESUMED',
    'STEP_STARTED:a#2',
    'STEP_SUCCEEDED:a#2',
  ]);
  await second.shutdown();
  await store.close();
});

test('a saga whose first move is no attempt (started past its deadline) is created with SAGA_STARTED alone', async () => {
  const store = tempStore();
  const { log, commits } = counting(store);
  const calls: string[] = [];
  const engine = new SagaEngine({ log, logger, policies: { ...fast, sagaDeadlineMs: 0 } });
  const handle = engine.register(
    fiveSteps(async (ctx) => {
      calls.push(ctx.step);
      return { ok: true };
    }),
  );
  const { saga } = await handle.start({ id: 'p1', input: { n: 1 } });
  assert.equal(saga.attempt, 0);
  assert.equal((await handle.waitFor('p1', 5_000))?.status, 'COMPENSATED');
  assert.deepEqual(calls, []);
  assert.deepEqual(commits, [['SAGA_STARTED'], ['STEP_FAILED:a'], ['SAGA_COMPENSATED']]);
  await engine.shutdown();
  await store.close();
});

test('a start that replays an idempotency key commits nothing and starts no attempt', async () => {
  const store = tempStore();
  const { log, commits } = counting(store);
  let release = () => {};
  const gate = new Promise<void>((r) => (release = r));
  const calls: string[] = [];
  const engine = new SagaEngine({ log, logger, policies: fast });
  const handle = engine.register(
    fiveSteps(async (ctx) => {
      calls.push(`${ctx.sagaId}:${ctx.step}`);
      if (ctx.step === 'a') await gate;
      return { ok: true };
    }),
  );
  assert.equal((await handle.start({ id: 'k1', input: { n: 1 }, idempotencyKey: 'key' })).created, true);
  const again = await handle.start({ id: 'k2', input: { n: 1 }, idempotencyKey: 'key' });
  assert.deepEqual([again.created, again.saga.id], [false, 'k1']);
  release();
  assert.equal((await handle.waitFor('k1', 5_000))?.status, 'COMPLETED');
  assert.equal(await store.get('k2'), undefined);
  assert.deepEqual(
    calls.filter((c) => c.endsWith(':a')),
    ['k1:a'],
  );
  assert.equal(commits.length, 6, "only k1's six commits");
  await engine.shutdown();
  await store.close();
});

test("the create's intent is the first step of the version the saga starts on", async () => {
  const store = tempStore();
  const engine = new SagaEngine({ log: store, logger, policies: fast });
  const v1 = engine.register(fiveSteps(undefined, 'versioned', 1), { startsNew: true });
  const v2def = fiveSteps(undefined, 'versioned', 2);
  const v2 = engine.register({ ...v2def, steps: v2def.steps.map((st, i) => (i === 0 ? { ...st, name: 'a2' } : st)) });
  const byName = await engine.start('versioned', { id: 'v-1', input: { n: 1 } });
  const onV2 = await v2.start({ id: 'v-2', input: { n: 1 } });
  assert.deepEqual([byName.saga.version, byName.saga.currentStep], [v1.version, 'a']);
  assert.deepEqual([onV2.saga.version, onV2.saga.currentStep], [2, 'a2']);
  await Promise.all(['v-1', 'v-2'].map((id) => engine.waitFor(id, 5_000)));
  assert.deepEqual(types(await store.events('v-1')).slice(0, 2), ['SAGA_STARTED', 'STEP_STARTED:a#1']);
  assert.deepEqual(types(await store.events('v-2')).slice(0, 2), ['SAGA_STARTED', 'STEP_STARTED:a2#1']);
  await engine.shutdown();
  await store.close();
});
