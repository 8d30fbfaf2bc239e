import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_POLICIES,
  validateDefinition,
  type EnginePolicies,
  type SagaDefinition,
  type StepOutcome,
} from '../../src/saga/definition.js';
import type { SagaRecord, SagaStatus } from '../../src/saga/model.js';
import { plan, settle, type AttemptOutcome, type PlannedAttempt, type Verdict } from '../../src/saga/transitions.js';

const ok = async (): Promise<StepOutcome> => ({ ok: true });
// a, b compensatable; c has no undo; d pivot; e retriable.
const def: SagaDefinition<unknown> = {
  name: 't',
  version: 1,
  steps: [
    { name: 'a', kind: 'compensatable', action: ok, compensate: ok },
    { name: 'b', kind: 'compensatable', action: ok, compensate: ok },
    { name: 'c', kind: 'compensatable', action: ok },
    { name: 'd', kind: 'pivot', action: ok },
    { name: 'e', kind: 'retriable', action: ok },
  ],
};

// The same saga with a fence on its pivot d: an uncertain d is settled there before anything is undone.
const fenced: SagaDefinition<unknown> = {
  ...def,
  steps: def.steps.map((s) => (s.kind === 'pivot' ? { ...s, fence: async () => ({ fenced: true as const }) } : s)),
};
const defs = { plain: def, fenced };

const policies: EnginePolicies = {
  ...DEFAULT_POLICIES,
  action: { maxAttempts: 3, initialBackoffMs: 100, maxBackoffMs: 1_000, multiplier: 2 },
  compensation: { maxAttempts: 2, initialBackoffMs: 100, maxBackoffMs: 1_000, multiplier: 2 },
  forward: { maxAttempts: 60, initialBackoffMs: 100, maxBackoffMs: 1_000, multiplier: 2 },
};

const NOW = 1_000_000;

function state(over: Partial<SagaRecord>): SagaRecord {
  return {
    id: 's',
    definition: 't',
    version: 1,
    status: 'RUNNING',
    stepIndex: 0,
    compIndex: -1,
    attempt: 0,
    input: null,
    results: {},
    failure: null,
    traceparent: null,
    idempotencyKey: null,
    leaseOwner: 'me',
    leaseExpiresAt: NOW + 10_000,
    deadlineAt: NOW + 60_000,
    createdAt: NOW,
    updatedAt: NOW,
    subject: null,
    currentStep: null,
    ...over,
  };
}

const types = (events: Array<{ type: string; step?: string | null }>) =>
  events.map((e) => `${e.type}${e.step ? `:${e.step}` : ''}`);

test('plan: what a saga that is not terminal does next', async (t) => {
  const rows: Array<{
    name: string;
    s: Partial<SagaRecord>;
    def?: keyof typeof defs;
    now?: number;
    expect: {
      kind: string;
      step?: string;
      phase?: string;
      attempt?: number;
      status?: SagaStatus;
      compIndex?: number;
      events: string[];
    };
  }> = [
    {
      name: 'first step, first attempt',
      s: {},
      expect: { kind: 'attempt', step: 'a', phase: 'action', attempt: 1, events: ['STEP_STARTED:a'] },
    },
    {
      name: 'a step being retried: next attempt number',
      s: { stepIndex: 1, attempt: 2 },
      expect: { kind: 'attempt', step: 'b', phase: 'action', attempt: 3, events: ['STEP_STARTED:b'] },
    },
    {
      name: 'no step left: completed',
      s: { stepIndex: 5 },
      expect: { kind: 'transition', status: 'COMPLETED', events: ['SAGA_COMPLETED'] },
    },
    {
      name: 'deadline passed before any attempt of the step: compensate from the step before',
      s: { stepIndex: 2, deadlineAt: NOW - 1 },
      expect: { kind: 'transition', status: 'COMPENSATING', compIndex: 1, events: ['STEP_FAILED:c'] },
    },
    {
      name: 'deadline passed after an attempt (effect unknown): compensate the step too',
      s: { stepIndex: 1, attempt: 2, deadlineAt: NOW - 1 },
      expect: { kind: 'transition', status: 'COMPENSATING', compIndex: 1, events: ['STEP_FAILED:b'] },
    },
    {
      name: 'deadline passed after the pivot: keep going forward',
      s: { stepIndex: 4, deadlineAt: NOW - 1 },
      expect: { kind: 'attempt', step: 'e', phase: 'action', attempt: 1, events: ['STEP_STARTED:e'] },
    },
    {
      name: 'compensating: the step at compIndex is undone',
      s: { status: 'COMPENSATING', compIndex: 1 },
      expect: { kind: 'attempt', step: 'b', phase: 'compensation', attempt: 1, events: ['COMPENSATION_STARTED:b'] },
    },
    {
      name: 'compensating: a step without an undo is skipped',
      s: { status: 'COMPENSATING', compIndex: 2 },
      expect: {
        kind: 'attempt',
        step: 'b',
        phase: 'compensation',
        attempt: 1,
        compIndex: 1,
        events: ['COMPENSATION_STARTED:b'],
      },
    },
    {
      name: 'deadline passed at a pivot without a fence, after an attempt: keep trying it (its outcome is unknown)',
      s: { stepIndex: 3, attempt: 1, deadlineAt: NOW - 1 },
      expect: { kind: 'attempt', step: 'd', phase: 'action', attempt: 2, events: ['STEP_STARTED:d'] },
    },
    {
      name: 'deadline passed at a fenced pivot, even before an attempt: its fence first',
      def: 'fenced',
      s: { stepIndex: 3, deadlineAt: NOW - 1 },
      expect: { kind: 'transition', status: 'COMPENSATING', compIndex: 3, events: ['STEP_FAILED:d'] },
    },
    {
      name: 'compensating from a fenced pivot: its fence runs as its compensation',
      def: 'fenced',
      s: { status: 'COMPENSATING', compIndex: 3 },
      expect: {
        kind: 'attempt',
        step: 'd',
        phase: 'compensation',
        attempt: 1,
        compIndex: 3,
        events: ['COMPENSATION_STARTED:d'],
      },
    },
    {
      name: 'compensating from a pivot without a fence: skipped like any step without an undo',
      s: { status: 'COMPENSATING', compIndex: 3 },
      expect: {
        kind: 'attempt',
        step: 'b',
        phase: 'compensation',
        attempt: 1,
        compIndex: 1,
        events: ['COMPENSATION_STARTED:b'],
      },
    },
    {
      name: 'compensating: nothing left is compensated',
      s: { status: 'COMPENSATING', compIndex: -1, failure: { step: 'b', code: 'x', message: 'x' } },
      expect: { kind: 'transition', status: 'COMPENSATED', events: ['SAGA_COMPENSATED'] },
    },
  ];
  for (const r of rows) {
    await t.test(r.name, () => {
      const p = plan(defs[r.def ?? 'plain'], state(r.s), policies, r.now ?? NOW);
      assert.equal(p.kind, r.expect.kind);
      if (p.kind === 'attempt') {
        assert.equal(p.step.name, r.expect.step);
        assert.equal(p.phase, r.expect.phase);
        assert.equal(p.attempt, r.expect.attempt);
        assert.equal(p.intent.patch.attempt, r.expect.attempt);
        if (r.expect.compIndex !== undefined) assert.equal(p.intent.patch.compIndex, r.expect.compIndex);
        assert.deepEqual(types(p.intent.events), r.expect.events);
      } else {
        assert.equal(p.transition.patch.status, r.expect.status);
        if (r.expect.compIndex !== undefined) assert.equal(p.transition.patch.compIndex, r.expect.compIndex);
        assert.deepEqual(types(p.transition.events), r.expect.events);
        if (r.expect.status === 'COMPLETED' || r.expect.status === 'COMPENSATED') {
          assert.equal(p.transition.patch.leaseOwner, null, 'a terminal saga holds no lease');
        }
      }
    });
  }
});

const FAILED: AttemptOutcome = { kind: 'failed', code: 'payment_declined', message: 'declined' };
const UNKNOWN: AttemptOutcome = { kind: 'uncertain', error: 'unavailable' };
/** A thrown DefiniteError (e.g. gRPC INVALID_ARGUMENT), as the driver reports it. */
const REFUSED: AttemptOutcome = {
  kind: 'failed',
  code: 'grpc_invalid_argument',
  message: '3 INVALID_ARGUMENT: bad request',
  raised: true,
};
const OK: AttemptOutcome = { kind: 'ok', result: { n: 1 } };
/** A fence's answer: the pivot had taken effect. */
const TOOK_EFFECT: AttemptOutcome = { kind: 'took_effect', result: { n: 2 } };

test('settle: what an attempt outcome does to the saga', async (t) => {
  const rows: Array<{
    name: string;
    s: Partial<SagaRecord>;
    def?: keyof typeof defs;
    outcome: AttemptOutcome;
    now?: number;
    expect: {
      verdict: Verdict;
      status?: SagaStatus;
      compIndex?: number;
      stepIndex?: number;
      code?: string;
      events: string[];
      defer?: boolean;
      retry?: boolean;
    };
  }> = [
    {
      name: 'compensatable step succeeds: next step, committed with the next intent',
      s: { stepIndex: 1, attempt: 1 },
      outcome: OK,
      expect: { verdict: 'succeeded', stepIndex: 2, events: ['STEP_SUCCEEDED:b'], defer: true },
    },
    {
      name: 'definite failure: compensate from the step before (it had no effect)',
      s: { stepIndex: 1, attempt: 1 },
      outcome: FAILED,
      expect: {
        verdict: 'compensating',
        status: 'COMPENSATING',
        compIndex: 0,
        code: 'payment_declined',
        events: ['STEP_FAILED:b'],
      },
    },
    {
      name: 'definite failure of the first step: nothing to compensate',
      s: { stepIndex: 0, attempt: 1 },
      outcome: FAILED,
      expect: { verdict: 'compensating', status: 'COMPENSATING', compIndex: -1, events: ['STEP_FAILED:a'] },
    },
    {
      name: 'uncertain with attempts left: retry after a backoff',
      s: { stepIndex: 1, attempt: 1 },
      outcome: UNKNOWN,
      expect: { verdict: 'retrying', events: ['STEP_FAILED:b'], retry: true },
    },
    {
      name: 'uncertain, attempts exhausted: compensate the uncertain step too',
      s: { stepIndex: 1, attempt: 3 },
      outcome: UNKNOWN,
      expect: {
        verdict: 'compensating',
        status: 'COMPENSATING',
        compIndex: 1,
        code: 'participant_unavailable',
        events: ['STEP_FAILED:b'],
      },
    },
    {
      name: 'uncertain, the backoff would pass the deadline: compensate it too',
      s: { stepIndex: 1, attempt: 1, deadlineAt: NOW + 1 },
      outcome: UNKNOWN,
      expect: {
        verdict: 'compensating',
        status: 'COMPENSATING',
        compIndex: 1,
        code: 'saga_deadline_exceeded',
        events: ['STEP_FAILED:b'],
      },
    },
    {
      name: 'pivot refused: compensate the steps before it',
      s: { stepIndex: 3, attempt: 1 },
      outcome: FAILED,
      expect: { verdict: 'compensating', status: 'COMPENSATING', compIndex: 2, events: ['STEP_FAILED:d'] },
    },
    {
      name: 'pivot succeeds: on to the retriable step',
      s: { stepIndex: 3, attempt: 1 },
      outcome: OK,
      expect: { verdict: 'succeeded', stepIndex: 4, events: ['STEP_SUCCEEDED:d'], defer: true },
    },
    {
      name: 'retriable step uncertain, far beyond the action budget: retry',
      s: { stepIndex: 4, attempt: 50 },
      outcome: UNKNOWN,
      expect: { verdict: 'retrying', events: ['STEP_FAILED:e'], retry: true },
    },
    {
      name: 'retriable step uncertain past the deadline: still retry',
      s: { stepIndex: 4, attempt: 2, deadlineAt: NOW - 1 },
      outcome: UNKNOWN,
      expect: { verdict: 'retrying', events: ['STEP_FAILED:e'], retry: true },
    },
    {
      name: 'definite error raised on the first attempt: compensate from the step before, no retry',
      s: { stepIndex: 1, attempt: 1 },
      outcome: REFUSED,
      expect: {
        verdict: 'compensating',
        status: 'COMPENSATING',
        compIndex: 0,
        code: 'grpc_invalid_argument',
        events: ['STEP_FAILED:b'],
      },
    },
    {
      name: 'definite error raised after an uncertain attempt: that one may have had its effect, compensate the step too',
      s: { stepIndex: 1, attempt: 2 },
      outcome: REFUSED,
      expect: {
        verdict: 'compensating',
        status: 'COMPENSATING',
        compIndex: 1,
        code: 'grpc_invalid_argument',
        events: ['STEP_FAILED:b'],
      },
    },
    // A raised refusal says nothing of earlier attempts (nor of those before an operator's retry,
    // which counts afresh): at a pivot with no fence nothing can settle it, so the saga parks.
    {
      name: 'definite error raised by a pivot without a fence: parked at the pivot, nothing undone',
      s: { stepIndex: 3, attempt: 1 },
      outcome: REFUSED,
      expect: {
        verdict: 'parked',
        status: 'PARKED',
        code: 'grpc_invalid_argument',
        events: ['STEP_FAILED:d', 'SAGA_PARKED:d'],
      },
    },
    {
      name: 'pivot without a fence uncertain beyond the action budget: retried (the forward budget)',
      s: { stepIndex: 3, attempt: 3 },
      outcome: UNKNOWN,
      expect: { verdict: 'retrying', events: ['STEP_FAILED:d'], retry: true },
    },
    {
      name: 'pivot without a fence uncertain past the deadline: retried, not compensated',
      s: { stepIndex: 3, attempt: 2, deadlineAt: NOW - 1 },
      outcome: UNKNOWN,
      expect: { verdict: 'retrying', events: ['STEP_FAILED:d'], retry: true },
    },
    {
      name: 'pivot without a fence, forward budget spent: parked at the pivot (pivot_uncertain), nothing undone',
      s: { stepIndex: 3, attempt: 60 },
      outcome: UNKNOWN,
      expect: {
        verdict: 'parked',
        status: 'PARKED',
        code: 'pivot_uncertain',
        events: ['STEP_FAILED:d', 'SAGA_PARKED:d'],
      },
    },
    {
      name: 'fenced pivot refused (an answer): compensate the steps before it',
      def: 'fenced',
      s: { stepIndex: 3, attempt: 2 },
      outcome: FAILED,
      expect: {
        verdict: 'compensating',
        status: 'COMPENSATING',
        compIndex: 2,
        code: 'payment_declined',
        events: ['STEP_FAILED:d'],
      },
    },
    {
      name: 'fenced pivot, definite error raised even on attempt 1: its fence first',
      def: 'fenced',
      s: { stepIndex: 3, attempt: 1 },
      outcome: REFUSED,
      expect: {
        verdict: 'compensating',
        status: 'COMPENSATING',
        compIndex: 3,
        code: 'grpc_invalid_argument',
        events: ['STEP_FAILED:d'],
      },
    },
    {
      name: 'fenced pivot uncertain, attempts exhausted: its fence first, never a refund before it',
      def: 'fenced',
      s: { stepIndex: 3, attempt: 3 },
      outcome: UNKNOWN,
      expect: {
        verdict: 'compensating',
        status: 'COMPENSATING',
        compIndex: 3,
        code: 'participant_unavailable',
        events: ['STEP_FAILED:d'],
      },
    },
    {
      name: 'fenced pivot uncertain, the backoff would pass the deadline: its fence first',
      def: 'fenced',
      s: { stepIndex: 3, attempt: 1, deadlineAt: NOW + 1 },
      outcome: UNKNOWN,
      expect: {
        verdict: 'compensating',
        status: 'COMPENSATING',
        compIndex: 3,
        code: 'saga_deadline_exceeded',
        events: ['STEP_FAILED:d'],
      },
    },
    {
      name: 'fence: fenced, so the steps before the pivot are compensated',
      def: 'fenced',
      s: { status: 'COMPENSATING', compIndex: 3, attempt: 1 },
      outcome: OK,
      expect: { verdict: 'succeeded', compIndex: 2, events: ['COMPENSATION_SUCCEEDED:d'], defer: true },
    },
    {
      name: 'fence: the pivot had taken effect, so the saga goes forward',
      def: 'fenced',
      s: { status: 'COMPENSATING', compIndex: 3, attempt: 1 },
      outcome: TOOK_EFFECT,
      expect: { verdict: 'succeeded', status: 'RUNNING', stepIndex: 4, compIndex: -1, events: ['STEP_SUCCEEDED:d'] },
    },
    {
      name: 'fence uncertain, attempts exhausted: parked at the pivot, nothing undone',
      def: 'fenced',
      s: { status: 'COMPENSATING', compIndex: 3, attempt: 2 },
      outcome: UNKNOWN,
      expect: { verdict: 'parked', status: 'PARKED', events: ['COMPENSATION_FAILED:d', 'SAGA_PARKED:d'] },
    },
    {
      name: 'definite error raised after the pivot: parked at once, no retry',
      s: { stepIndex: 4, attempt: 1 },
      outcome: REFUSED,
      expect: {
        verdict: 'parked',
        status: 'PARKED',
        code: 'grpc_invalid_argument',
        events: ['STEP_FAILED:e', 'SAGA_PARKED:e'],
      },
    },
    {
      name: 'retriable step uncertain, forward attempts exhausted: parked, not retried forever',
      s: { stepIndex: 4, attempt: 60 },
      outcome: UNKNOWN,
      expect: {
        verdict: 'parked',
        status: 'PARKED',
        code: 'forward_attempts_exhausted',
        events: ['STEP_FAILED:e', 'SAGA_PARKED:e'],
      },
    },
    {
      name: 'retriable step uncertain, exhausted even past the deadline: parked, not compensated',
      s: { stepIndex: 4, attempt: 60, deadlineAt: NOW - 1 },
      outcome: UNKNOWN,
      expect: {
        verdict: 'parked',
        status: 'PARKED',
        code: 'forward_attempts_exhausted',
        events: ['STEP_FAILED:e', 'SAGA_PARKED:e'],
      },
    },
    {
      name: 'retriable step refused: parked (the pivot is behind it)',
      s: { stepIndex: 4, attempt: 1 },
      outcome: FAILED,
      expect: { verdict: 'parked', status: 'PARKED', events: ['STEP_FAILED:e', 'SAGA_PARKED:e'] },
    },
    {
      name: 'compensation succeeds: on to the step before',
      s: { status: 'COMPENSATING', compIndex: 1, attempt: 1 },
      outcome: OK,
      expect: { verdict: 'succeeded', compIndex: 0, events: ['COMPENSATION_SUCCEEDED:b'], defer: true },
    },
    {
      name: 'compensation uncertain with attempts left: retry',
      s: { status: 'COMPENSATING', compIndex: 1, attempt: 1 },
      outcome: UNKNOWN,
      expect: { verdict: 'retrying', events: ['COMPENSATION_FAILED:b'], retry: true },
    },
    {
      name: 'compensation uncertain, attempts exhausted: parked',
      s: { status: 'COMPENSATING', compIndex: 1, attempt: 2 },
      outcome: UNKNOWN,
      expect: { verdict: 'parked', status: 'PARKED', events: ['COMPENSATION_FAILED:b', 'SAGA_PARKED:b'] },
    },
    {
      name: 'compensation refused: parked at once',
      s: { status: 'COMPENSATING', compIndex: 1, attempt: 1 },
      outcome: FAILED,
      expect: { verdict: 'parked', status: 'PARKED', events: ['COMPENSATION_FAILED:b', 'SAGA_PARKED:b'] },
    },
    {
      name: 'definite error raised by a compensation: parked at once, no retry',
      s: { status: 'COMPENSATING', compIndex: 1, attempt: 1 },
      outcome: REFUSED,
      expect: { verdict: 'parked', status: 'PARKED', events: ['COMPENSATION_FAILED:b', 'SAGA_PARKED:b'] },
    },
  ];
  for (const r of rows) {
    await t.test(r.name, () => {
      const s = state(r.s);
      // The attempt planned from the state before its intent, as the driver does.
      const before = { ...s, attempt: s.attempt - 1 };
      const d = defs[r.def ?? 'plain'];
      const p = plan(d, { ...before, deadlineAt: NOW + 60_000 }, policies, NOW);
      assert.equal(p.kind, 'attempt');
      const a = p;
      const st = settle(d, s, a, r.outcome, r.now ?? NOW, () => 1);
      assert.equal(st.verdict, r.expect.verdict);
      assert.deepEqual(st.outcome, r.outcome);
      assert.equal(st.defer, r.expect.defer ?? false);
      assert.deepEqual(types(st.transition.events), r.expect.events);
      assert.equal(st.transition.patch.status, r.expect.status);
      if (r.expect.compIndex !== undefined) assert.equal(st.transition.patch.compIndex, r.expect.compIndex);
      if (r.expect.stepIndex !== undefined) assert.equal(st.transition.patch.stepIndex, r.expect.stepIndex);
      if (r.expect.code) assert.equal(st.transition.patch.failure?.code, r.expect.code);
      if (r.expect.retry) assert.ok(st.retryInMs !== undefined && st.retryInMs > 0, 'a retry waits a backoff');
      else assert.equal(st.retryInMs, undefined);
      if (st.verdict === 'parked') assert.equal(st.transition.patch.leaseOwner, null, 'a parked saga holds no lease');
      const failed = st.transition.events.find((e) => e.type.endsWith('_FAILED'));
      if (failed) assert.equal(failed.retryable, r.outcome.kind === 'uncertain');
      if (r.outcome.kind === 'failed')
        assert.deepEqual(failed?.data, { code: r.outcome.code }, 'the failure code is in the event');
    });
  }
});

test('settle: a fence that finds the pivot done records its result, clears the failure and leaves compensation', () => {
  const s = state({
    status: 'COMPENSATING',
    stepIndex: 3,
    compIndex: 3,
    attempt: 1,
    results: { a: 1 },
    failure: { step: 'd', code: 'participant_unavailable', message: 'x' },
  });
  const a = plan(fenced, { ...s, attempt: 0 }, policies, NOW) as PlannedAttempt;
  const st = settle(fenced, s, a, TOOK_EFFECT, NOW, () => 0.5);
  assert.deepEqual(st.transition.patch, {
    status: 'RUNNING',
    stepIndex: 4,
    compIndex: -1,
    attempt: 0,
    failure: null,
    results: { a: 1, d: { n: 2 } },
  });
});

test('a definition: a pivot has no undo, and only a pivot has a fence', () => {
  const undoOnPivot: SagaDefinition<unknown> = {
    ...def,
    steps: def.steps.map((s) => (s.kind === 'pivot' ? { ...s, compensate: ok } : s)),
  };
  assert.throws(() => validateDefinition(undoOnPivot), /the pivot d has no undo/);
  const fenceOnStep: SagaDefinition<unknown> = {
    ...def,
    steps: def.steps.map((s) => (s.name === 'b' ? { ...s, fence: async () => ({ fenced: true as const }) } : s)),
  };
  assert.throws(() => validateDefinition(fenceOnStep), /only the pivot may have a fence, not b/);
  validateDefinition(fenced);
});

test('settle: a step result is kept with the results before it', () => {
  const s = state({ stepIndex: 1, attempt: 1, results: { a: { x: 1 } } });
  const a = plan(def, { ...s, attempt: 0 }, policies, NOW) as PlannedAttempt;
  const st = settle(def, s, a, { kind: 'ok', result: { y: 2 } }, NOW, () => 0.5);
  assert.deepEqual(st.transition.patch.results, { a: { x: 1 }, b: { y: 2 } });
});

test('settle: a retried failure records when the next attempt is due (retry_at) and its failure code', async (t) => {
  const rows: Array<{
    name: string;
    s: Partial<SagaRecord>;
    outcome: AttemptOutcome;
    now?: number;
    expect: { verdict: Verdict; data: unknown };
  }> = [
    {
      name: 'action retried: retry_at = now + backoff, with the transport code',
      s: { stepIndex: 1, attempt: 1 },
      outcome: { kind: 'uncertain', error: '14 UNAVAILABLE: no connection', code: 'grpc_unavailable' },
      expect: { verdict: 'retrying', data: { code: 'grpc_unavailable', retry_at: NOW + 100 } },
    },
    {
      name: 'action retried without a code: retry_at only',
      s: { stepIndex: 1, attempt: 2 },
      outcome: UNKNOWN,
      expect: { verdict: 'retrying', data: { retry_at: NOW + 200 } },
    },
    {
      name: 'retriable step after the pivot: retry_at even past the deadline',
      s: { stepIndex: 4, attempt: 1, deadlineAt: NOW - 1 },
      outcome: { kind: 'uncertain', error: 'no answer within 5000 ms', code: 'attempt_timeout' },
      expect: { verdict: 'retrying', data: { code: 'attempt_timeout', retry_at: NOW + 100 } },
    },
    {
      name: 'compensation retried: retry_at by the compensation policy',
      s: { status: 'COMPENSATING', compIndex: 1, attempt: 1 },
      outcome: { kind: 'uncertain', error: 'x', code: 'grpc_deadline_exceeded' },
      expect: { verdict: 'retrying', data: { code: 'grpc_deadline_exceeded', retry_at: NOW + 100 } },
    },
    {
      name: 'attempts exhausted: the code, no retry_at (no next attempt)',
      s: { stepIndex: 1, attempt: 3 },
      outcome: { kind: 'uncertain', error: 'x', code: 'grpc_unavailable' },
      expect: { verdict: 'compensating', data: { code: 'grpc_unavailable' } },
    },
    {
      name: 'compensation exhausted: parked, the code, no retry_at',
      s: { status: 'COMPENSATING', compIndex: 1, attempt: 2 },
      outcome: { kind: 'uncertain', error: 'x', code: 'grpc_unavailable' },
      expect: { verdict: 'parked', data: { code: 'grpc_unavailable' } },
    },
    {
      name: "an interceptor's annotations stay beside the engine's fields",
      s: { stepIndex: 1, attempt: 1 },
      outcome: { kind: 'uncertain', error: 'x', annotations: { fault_rule: 'r1' } },
      expect: { verdict: 'retrying', data: { fault_rule: 'r1', retry_at: NOW + 100 } },
    },
  ];
  for (const r of rows) {
    await t.test(r.name, () => {
      const s = state(r.s);
      const before = { ...s, attempt: s.attempt - 1 };
      const a = plan(def, before, policies, NOW);
      assert.equal(a.kind, 'attempt');
      // random() = 1: the backoff is its ceiling, 100 ms · 2^(attempt-1).
      const st = settle(def, s, a, r.outcome, r.now ?? NOW, () => 1);
      assert.equal(st.verdict, r.expect.verdict);
      const failed = st.transition.events.find((e) => e.type.endsWith('_FAILED'));
      assert.deepEqual(failed?.data, r.expect.data);
      if (st.verdict === 'retrying') {
        const data = failed?.data as { retry_at: number };
        assert.equal(data.retry_at, NOW + (st.retryInMs ?? -1), 'retry_at is when the driver wakes');
      }
    });
  }
});
