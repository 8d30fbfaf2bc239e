/**
 * Operator actions driven through SagaEngine.act on a real saga log, as node:test tests:
 * `operatorScenarios('SQLite', factory)` registers them (saga-operator.test.ts, and
 * test/integration/saga-operator-postgres.test.ts for PostgreSQL). Fake participants follow a
 * mode per step that a test changes while the saga runs (a participant that "now works").
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { context as otelContext, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { pino } from 'pino';
import type {
  DefiniteError,
  EnginePolicies,
  SagaDefinition,
  StepContext,
  StepOutcome,
} from '../../src/saga/definition.js';
import { SagaEngine } from '../../src/saga/engine.js';
import type { SagaInterceptor } from '../../src/saga/interceptors.js';
import type { SagaLog, SagaRecord } from '../../src/saga/model.js';
import {
  OperatorActionError,
  type OperatorActionErrorCode,
  type OperatorActionRequest,
} from '../../src/saga/operator.js';
import { eventually } from '../helpers/system.js';

export const spans = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
provider.register();

/** One test's saga log: `log` for this engine, `another()` for a second gateway on the same storage. */
export interface OperatorLogFactory {
  /** `another` is a plain function (no `this`): the scenarios take it out of the object. */
  fresh(): Promise<{ log: SagaLog; another: () => Promise<SagaLog>; close(): Promise<void> }>;
}

type Mode = 'ok' | 'throw' | 'refuse' | 'fail' | 'hang';

/** What a transport raises for a refusal no retry can change. */
class Refused extends Error implements DefiniteError {
  readonly definite = true;
  readonly failureCode = 'refused_for_test';
}

/** Participants whose answer per step (`b`, `b:undo`) is a mode the test sets; every call recorded. */
class Participants {
  readonly calls: string[] = [];
  readonly mode = new Map<string, Mode>();

  run(name: string) {
    return async (ctx: StepContext<{ n: number }>): Promise<StepOutcome> => {
      this.calls.push(`${name}#${ctx.idempotencyKey}`);
      switch (this.mode.get(name) ?? 'ok') {
        case 'ok':
          return { ok: true, result: { step: name } };
        case 'fail':
          return { ok: false, code: 'declined', message: `${name} declined` };
        case 'throw':
          throw new Error(`${name} unavailable`);
        case 'refuse':
          throw new Refused(`${name} refused`);
        case 'hang':
          return new Promise(() => {});
      }
    };
  }

  definition(): SagaDefinition<{ n: number }> {
    const step = (name: string, kind: 'compensatable' | 'pivot' | 'retriable', undo = true) => ({
      name,
      kind,
      action: this.run(name),
      compensate: undo ? this.run(`${name}:undo`) : undefined,
      timeoutMs: 200,
    });
    return {
      name: 'op_saga',
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

  count(prefix: string): number {
    return this.calls.filter((c) => c.startsWith(`${prefix}#`)).length;
  }
}

const fast: EnginePolicies = {
  action: { maxAttempts: 3, initialBackoffMs: 1, maxBackoffMs: 2, multiplier: 2 },
  compensation: { maxAttempts: 3, initialBackoffMs: 1, maxBackoffMs: 2, multiplier: 2 },
  forward: { maxAttempts: 3, initialBackoffMs: 1, maxBackoffMs: 2, multiplier: 2 },
  stepTimeoutMs: 200,
  sagaDeadlineMs: 60_000,
};

/** A step that keeps failing with an unknown outcome, for as long as the test runs. */
const patient: EnginePolicies = {
  ...fast,
  action: { maxAttempts: 1_000_000, initialBackoffMs: 5, maxBackoffMs: 10, multiplier: 2 },
};

interface Line {
  level: number;
  msg: string;
  saga_id?: string;
  [k: string]: unknown;
}

function capture(lines: Line[]) {
  return pino({ level: 'debug' }, { write: (s: string) => lines.push(JSON.parse(s) as Line) });
}

function newId(): string {
  return `op-${randomUUID()}`;
}

async function refusedWith(p: Promise<unknown>, code: OperatorActionErrorCode): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof OperatorActionError, String(err));
    assert.equal(err.code, code, err.message);
    return true;
  });
}

const types = async (log: SagaLog, id: string) =>
  (await log.events(id)).map((e) => `${e.type}${e.step ? `:${e.step}` : ''}`);

export function operatorScenarios(name: string, factory: OperatorLogFactory): void {
  describe(`operator actions through the engine: ${name}`, () => {
    /** An engine with its participants and log lines on a fresh log; everything closed after. */
    const withEngine = (title: string, fn: (h: Harness) => Promise<void>): void => {
      test(title, { timeout: 30_000 }, async () => {
        const storage = await factory.fresh();
        const engines: SagaEngine[] = [];
        const make = (
          log: SagaLog,
          owner: string,
          policies: EnginePolicies = fast,
          interceptors: SagaInterceptor[] = [],
        ) => {
          const p = new Participants();
          const lines: Line[] = [];
          const engine = new SagaEngine({
            log,
            logger: capture(lines),
            policies,
            owner,
            leaseMs: 10_000,
            interceptors,
          });
          engine.register(p.definition());
          engines.push(engine);
          return { engine, p, lines };
        };
        try {
          await fn({ log: storage.log, another: storage.another, make });
        } finally {
          await Promise.allSettled(engines.map((e) => e.shutdown(500)));
          await storage.close();
        }
      });
    };

    /** Plain functions, not methods: each scenario destructures the ones it needs. */
    interface Harness {
      log: SagaLog;
      another: () => Promise<SagaLog>;
      make: (
        log: SagaLog,
        owner: string,
        policies?: EnginePolicies,
        interceptors?: SagaInterceptor[],
      ) => { engine: SagaEngine; p: Participants; lines: Line[] };
    }

    /** Runs a saga to PARKED in compensation: c declines, then b's compensation is refused. */
    async function parkedInCompensation(engine: SagaEngine, p: Participants, id: string): Promise<SagaRecord> {
      p.mode.set('c', 'fail');
      p.mode.set('b:undo', 'refuse');
      await engine.start('op_saga', { id, input: { n: 1 } });
      const parked = await engine.waitFor(id, 10_000);
      assert.equal(parked?.status, 'PARKED');
      assert.equal(parked?.compIndex, 1);
      return parked;
    }

    withEngine(
      'retry of a saga parked in compensation resumes that compensation with a fresh budget, to COMPENSATED',
      async ({ log, make }) => {
        const { engine, p, lines } = make(log, 'gw-1');
        const id = newId();
        // Started inside a span: its traceparent is stored, and the operator's span links to it.
        const root = trace.getTracer('test').startSpan('request');
        await otelContext.with(trace.setSpan(otelContext.active(), root), () => parkedInCompensation(engine, p, id));
        root.end();
        p.mode.set('b:undo', 'ok'); // the participant works again
        const before = p.calls.length;
        const res = await engine.act({
          sagaId: id,
          action: 'retry',
          actionId: 'act-1',
          actor: 'alice',
          note: 'inventory is back',
        });
        assert.equal(res.replayed, false);
        assert.equal(res.saga.status, 'COMPENSATING');
        assert.equal(res.saga.compIndex, 1);
        assert.equal(res.saga.attempt, 0);
        assert.equal(res.saga.leaseOwner, 'gw-1');
        const final = await engine.waitFor(id, 10_000);
        assert.equal(final?.status, 'COMPENSATED');
        assert.equal(final?.failure?.code, 'declined', 'the original failure stays');
        assert.equal(final?.leaseOwner, null);
        assert.deepEqual(p.calls.slice(before), [`b:undo#${id}:b:undo`, `a:undo#${id}:a:undo`]);
        const t = await types(log, id);
        assert.deepEqual(t.slice(t.indexOf('SAGA_PARKED:b')), [
          'SAGA_PARKED:b',
          'OPERATOR_ACTION:b',
          'SAGA_RESUMED',
          'COMPENSATION_STARTED:b',
          'COMPENSATION_SUCCEEDED:b',
          'COMPENSATION_STARTED:a',
          'COMPENSATION_SUCCEEDED:a',
          'SAGA_COMPENSATED',
        ]);
        const ev = (await log.events(id)).find((e) => e.type === 'OPERATOR_ACTION');
        assert.deepEqual(ev?.data, { action: 'retry', action_id: 'act-1', actor: 'alice', note: 'inventory is back' });
        // The event carries the ids of the saga.operator_action span, which links to the saga's trace.
        const span = spans
          .getFinishedSpans()
          .find((s) => s.name === 'saga.operator_action' && s.attributes['saga.id'] === id);
        assert.ok(span, 'a saga.operator_action span');
        assert.equal(ev?.traceId, span.spanContext().traceId);
        assert.equal(ev?.spanId, span.spanContext().spanId);
        assert.deepEqual(
          span.links.map((l) => l.context.traceId),
          [root.spanContext().traceId],
        );
        // One info line for the action, with who and what and the trace.
        const line = lines.filter((l) => l.msg === 'operator action retry');
        assert.equal(line.length, 1);
        assert.equal(line[0]?.level, 30);
        assert.deepEqual(
          [
            line[0]?.saga_id,
            line[0]?.action,
            line[0]?.actor,
            line[0]?.action_id,
            line[0]?.trace_id,
            line[0]?.span_id,
            line[0]?.note,
          ],
          [id, 'retry', 'alice', 'act-1', ev?.traceId, ev?.spanId, 'inventory is back'],
        );
      },
    );

    withEngine(
      'retry of a saga parked after its pivot resumes its step forward, to COMPLETED',
      async ({ log, make }) => {
        const applied: string[] = [];
        const counter: SagaInterceptor = {
          name: 'count',
          async saga(op, next) {
            await next();
            if (op.kind === 'operator_action' && op.result && !op.result.replayed)
              applied.push(`${op.request.action}:${op.result.saga.id}`);
          },
        };
        const { engine, p } = make(log, 'gw-1', fast, [counter]);
        const id = newId();
        p.mode.set('e', 'refuse');
        await engine.start('op_saga', { id, input: { n: 1 } });
        const parked = await engine.waitFor(id, 10_000);
        assert.equal(parked?.status, 'PARKED');
        assert.equal(parked?.stepIndex, 4);
        p.mode.set('e', 'ok');
        const res = await engine.act({ sagaId: id, action: 'retry', actionId: 'act-1', actor: 'alice' });
        assert.deepEqual(
          [res.saga.status, res.saga.stepIndex, res.saga.attempt, res.saga.failure],
          ['RUNNING', 4, 0, null],
        );
        const final = await engine.waitFor(id, 10_000);
        assert.equal(final?.status, 'COMPLETED');
        assert.equal(final?.failure, null);
        assert.equal(p.count('e'), 2);
        assert.equal(p.count('d'), 1, 'nothing before the parked step runs again');
        assert.deepEqual(applied, [`retry:${id}`]);
        assert.deepEqual((await log.events(id)).find((e) => e.type === 'OPERATOR_ACTION')?.data, {
          action: 'retry',
          action_id: 'act-1',
          actor: 'alice',
          note: null,
        });
      },
    );

    withEngine(
      'compensate of a saga retrying an unavailable participant before its pivot compensates it, the step in flight too',
      async ({ log, make }) => {
        const { engine, p, lines } = make(log, 'gw-1', patient);
        const id = newId();
        p.mode.set('b', 'throw');
        await engine.start('op_saga', { id, input: { n: 1 } });
        await eventually('b to fail twice', async () => (p.count('b') >= 2 ? true : undefined));
        const res = await engine.act({
          sagaId: id,
          action: 'compensate',
          actionId: 'stop-1',
          actor: 'bob',
          note: 'payment provider down for hours',
        });
        assert.deepEqual(
          [res.saga.status, res.saga.compIndex, res.saga.attempt, res.saga.failure?.code],
          ['COMPENSATING', 1, 0, 'operator_compensate'],
        );
        const final = await engine.waitFor(id, 10_000);
        assert.equal(final?.status, 'COMPENSATED');
        assert.equal(final?.failure?.code, 'operator_compensate');
        assert.equal(final?.failure?.step, 'b');
        assert.deepEqual(
          p.calls.filter((c) => c.includes(':undo')),
          [`b:undo#${id}:b:undo`, `a:undo#${id}:a:undo`],
        );
        const bCalls = p.count('b');
        await new Promise((r) => setTimeout(r, 100));
        assert.equal(p.count('b'), bCalls, 'the step is not tried again');
        assert.equal(engine.inFlight, 0);
        const t = await types(log, id);
        const after = t.slice(t.indexOf('OPERATOR_ACTION:b') + 1);
        assert.ok(!after.some((x) => x.startsWith('STEP_')), `no forward event after the action: ${after.join(', ')}`);
        assert.ok(!lines.some((l) => l.level >= 50), 'the stopped driver goes quietly');
      },
    );

    withEngine(
      'compensate while another engine holds the lease: that one stops, this one compensates',
      async ({ log, another, make }) => {
        const a = make(log, 'gw-a', patient);
        const b = make(await another(), 'gw-b');
        const id = newId();
        a.p.mode.set('b', 'throw');
        await a.engine.start('op_saga', { id, input: { n: 1 } });
        await eventually('b to fail on gateway A', async () => (a.p.count('b') >= 2 ? true : undefined));
        assert.equal((await log.get(id))?.leaseOwner, 'gw-a');
        const res = await b.engine.act({ sagaId: id, action: 'compensate', actionId: 'x-1', actor: 'carol' });
        assert.equal(res.saga.leaseOwner, 'gw-b');
        const final = await b.engine.waitFor(id, 10_000);
        assert.equal(final?.status, 'COMPENSATED');
        assert.deepEqual(b.p.calls, [`b:undo#${id}:b:undo`, `a:undo#${id}:a:undo`], 'gateway B compensates');
        await eventually('gateway A to stop driving it', async () => (a.engine.inFlight === 0 ? true : undefined));
        const aCalls = a.p.calls.length;
        await new Promise((r) => setTimeout(r, 100));
        assert.equal(a.p.calls.length, aCalls, 'gateway A calls no more');
        assert.ok(!a.p.calls.some((c) => c.includes(':undo')));
        assert.ok(a.lines.some((l) => l.msg.startsWith('lost the lease') && l.saga_id === id));
        assert.ok(!a.lines.some((l) => l.level >= 50), 'gateway A logs no error');
        const t = await types(log, id);
        assert.ok(!t.slice(t.indexOf('OPERATOR_ACTION:b') + 1).some((x) => x.startsWith('STEP_')), t.join(', '));
      },
    );

    withEngine(
      'resolve closes a PARKED saga as RESOLVED, only with a note; it counts as terminal',
      async ({ log, make }) => {
        const { engine, p } = make(log, 'gw-1');
        const id = newId();
        await parkedInCompensation(engine, p, id);
        const eventsBefore = await log.events(id);
        await refusedWith(
          engine.act({ sagaId: id, action: 'resolve', actionId: 'r-0', actor: 'dan' }),
          'note_required',
        );
        await refusedWith(
          engine.act({ sagaId: id, action: 'resolve', actionId: 'r-0', actor: 'dan', note: '  \n\t ' }),
          'note_required',
        );
        await refusedWith(
          engine.act({ sagaId: id, action: 'resolve', actionId: 'r-0', actor: 'dan', note: 'x'.repeat(1001) }),
          'note_required',
        );
        await refusedWith(
          engine.act({ sagaId: id, action: 'retry', actionId: 'r-0', actor: 'dan', note: 'y'.repeat(1001) }),
          'note_required',
        );
        assert.deepEqual(await log.events(id), eventsBefore, 'refusals write nothing');
        assert.equal((await log.get(id))?.status, 'PARKED');

        const heard: string[] = [];
        log.onFinished((sagaId) => heard.push(sagaId)); // what wakes waiters
        const res = await engine.act({
          sagaId: id,
          action: 'resolve',
          actionId: 'r-1',
          actor: 'dan',
          note: `  ${'n'.repeat(998)}.  `,
        });
        assert.equal(res.replayed, false);
        assert.deepEqual([res.saga.status, res.saga.leaseOwner, res.saga.leaseExpiresAt], ['RESOLVED', null, 0]);
        await eventually('the end to be announced', async () => (heard.includes(id) ? true : undefined));
        assert.equal((await engine.waitFor(id, 1_000))?.status, 'RESOLVED');
        const ev = (await log.events(id)).at(-1);
        assert.equal(ev?.type, 'OPERATOR_ACTION');
        assert.deepEqual(ev?.data, { action: 'resolve', action_id: 'r-1', actor: 'dan', note: `${'n'.repeat(998)}.` });
        assert.equal((await log.countByStatus()).RESOLVED, 1);
        const live = await log.liveStats();
        assert.deepEqual([live.inflight, live.parked], [0, 0]);
        assert.equal(await engine.recoverOnce(), 0, 'recovery never claims it');
        assert.deepEqual(
          (await log.list({ limit: 10, status: 'RESOLVED' })).sagas.map((s) => s.id),
          [id],
        );
      },
    );

    withEngine(
      'an action id answers a replay with the saga as it is, and is refused for another action or note',
      async ({ log, make }) => {
        const { engine, p, lines } = make(log, 'gw-1');
        const id = newId();
        await parkedInCompensation(engine, p, id);
        p.mode.set('b:undo', 'ok');
        const first = await engine.act({ sagaId: id, action: 'retry', actionId: 'same', actor: 'eve' });
        assert.equal(first.replayed, false);
        const done = await engine.waitFor(id, 10_000);
        assert.equal(done?.status, 'COMPENSATED');
        const events = await log.events(id);
        const again = await engine.act({ sagaId: id, action: 'retry', actionId: 'same', actor: 'eve' });
        assert.equal(again.replayed, true);
        assert.equal(again.saga.status, 'COMPENSATED', 'the saga as it is now');
        assert.deepEqual(await log.events(id), events, 'no new event');
        assert.equal(p.count('b:undo'), 2, 'nothing run again');
        await refusedWith(
          engine.act({ sagaId: id, action: 'resolve', actionId: 'same', actor: 'eve', note: 'n' }),
          'action_id_reused',
        );
        await refusedWith(
          engine.act({ sagaId: id, action: 'retry', actionId: 'same', actor: 'eve', note: 'now with a note' }),
          'action_id_reused',
        );
        await refusedWith(
          engine.act({ sagaId: id, action: 'retry', actionId: 'other', actor: 'eve' }),
          'action_not_allowed',
        );
        assert.deepEqual(await log.events(id), events);
        assert.ok(lines.some((l) => l.msg.includes('replayed') && l.action_id === 'same' && l.level === 30));

        // Resolve: the same id and note again (whitespace aside) is a replay; another note is not.
        const id2 = newId();
        await parkedInCompensation(engine, p, id2);
        await engine.act({ sagaId: id2, action: 'resolve', actionId: 'fix-1', actor: 'eve', note: 'refunded by hand' });
        const replay = await engine.act({
          sagaId: id2,
          action: 'resolve',
          actionId: 'fix-1',
          actor: 'eve',
          note: ' refunded by hand ',
        });
        assert.deepEqual([replay.replayed, replay.saga.status], [true, 'RESOLVED']);
        await refusedWith(
          engine.act({ sagaId: id2, action: 'resolve', actionId: 'fix-1', actor: 'eve', note: 'something else' }),
          'action_id_reused',
        );
        // Ids are scoped to the saga: the same id on another saga is a new action.
        const id3 = newId();
        await parkedInCompensation(engine, p, id3);
        assert.equal(
          (
            await engine.act({
              sagaId: id3,
              action: 'resolve',
              actionId: 'fix-1',
              actor: 'eve',
              note: 'refunded by hand',
            })
          ).replayed,
          false,
        );
        // Concurrent identical requests: one applies, the other is its replay.
        const id4 = newId();
        await parkedInCompensation(engine, p, id4);
        const both = await Promise.all(
          [1, 2].map(() => engine.act({ sagaId: id4, action: 'resolve', actionId: 'dup', actor: 'eve', note: 'n' })),
        );
        assert.deepEqual(both.map((r) => r.replayed).sort(), [false, true]);
        assert.equal((await log.events(id4)).filter((e) => e.type === 'OPERATOR_ACTION').length, 1);
      },
    );

    withEngine('refused actions leave the saga row and its events as they were', async ({ log, make }) => {
      const { engine, p } = make(log, 'gw-1');
      const completed = newId();
      await engine.start('op_saga', { id: completed, input: { n: 1 } });
      assert.equal((await engine.waitFor(completed, 10_000))?.status, 'COMPLETED');
      const compensated = newId();
      p.mode.set('b', 'fail');
      await engine.start('op_saga', { id: compensated, input: { n: 1 } });
      assert.equal((await engine.waitFor(compensated, 10_000))?.status, 'COMPENSATED');
      p.mode.delete('b');
      const parked = newId();
      await parkedInCompensation(engine, p, parked);
      // A RUNNING saga past its pivot, driven elsewhere (a row as another gateway left it).
      const now = Date.now();
      const forward: SagaRecord = {
        id: newId(),
        definition: 'op_saga',
        version: 1,
        status: 'RUNNING',
        stepIndex: 4,
        compIndex: -1,
        attempt: 2,
        input: { n: 1 },
        results: {},
        failure: null,
        traceparent: null,
        idempotencyKey: null,
        leaseOwner: 'gw-elsewhere',
        leaseExpiresAt: 0,
        deadlineAt: now + 60_000,
        createdAt: now,
        updatedAt: now,
        subject: null,
        currentStep: 'e',
      };
      assert.ok((await log.create(forward, [{ type: 'SAGA_STARTED' }], 60_000)).created);
      // One at its pivot, in flight elsewhere: its outcome is the engine's to settle first.
      const atPivot: SagaRecord = { ...forward, id: newId(), stepIndex: 3, attempt: 1, currentStep: 'd' };
      assert.ok((await log.create(atPivot, [{ type: 'SAGA_STARTED' }], 60_000)).created);

      const refusals: Array<[string, OperatorActionRequest['action'], OperatorActionErrorCode]> = [
        [completed, 'retry', 'action_not_allowed'],
        [completed, 'compensate', 'action_not_allowed'],
        [completed, 'resolve', 'action_not_allowed'],
        [compensated, 'retry', 'action_not_allowed'],
        [compensated, 'compensate', 'action_not_allowed'],
        [compensated, 'resolve', 'action_not_allowed'],
        [atPivot.id, 'compensate', 'pivot_uncertain'],
        [atPivot.id, 'retry', 'action_not_allowed'],
        [forward.id, 'compensate', 'action_not_allowed'],
        [forward.id, 'retry', 'action_not_allowed'],
        [forward.id, 'resolve', 'action_not_allowed'],
        ['no-such-saga', 'retry', 'saga_not_found'],
      ];
      for (const [id, action, code] of refusals) {
        const row = await log.get(id);
        const events = await log.events(id);
        await refusedWith(
          engine.act({ sagaId: id, action, actionId: `${action}-${id}`, actor: 'frank', note: 'n' }),
          code,
        );
        assert.deepEqual(await log.get(id), row, `${action} on ${row?.status ?? id}: the row as it was`);
        assert.deepEqual(await log.events(id), events, `${action} on ${row?.status ?? id}: no event`);
      }
      assert.equal(engine.inFlight, 0);
    });
  });
}
