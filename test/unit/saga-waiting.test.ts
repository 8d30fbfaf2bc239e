import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_POLICIES, type SagaDefinition, type StepOutcome } from '../../src/saga/definition.js';
import type { SagaEvent, SagaRecord } from '../../src/saga/model.js';
import { explainWaiting, failureKindOf, progressOf, type Waiting } from '../../src/saga/waiting.js';
import { sagaRecord } from '../helpers/saga-record.js';

const ok = async (): Promise<StepOutcome> => ({ ok: true });
const fence = async () => ({ fenced: true as const });

/** The place-order shape: three compensatable steps, a fenced pivot, a retriable step after it. */
const def: SagaDefinition<unknown> = {
  name: 'place_order',
  version: 1,
  steps: [
    {
      name: 'create_order',
      kind: 'compensatable',
      action: ok,
      compensate: ok,
      calls: {
        action: { participant: 'order', method: 'CreateOrder' },
        compensation: { participant: 'order', method: 'CancelOrder' },
      },
    },
    {
      name: 'charge_payment',
      displayName: 'Payment_Charge_Step',
      kind: 'compensatable',
      action: ok,
      compensate: ok,
      calls: {
        action: { participant: 'payment', method: 'Charge' },
        compensation: { participant: 'payment', method: 'Refund' },
      },
    },
    {
      name: 'confirm_order',
      kind: 'pivot',
      action: ok,
      fence,
      calls: { action: { participant: 'order', method: 'ConfirmOrder' } },
    },
    {
      name: 'commit_stock',
      kind: 'retriable',
      action: ok,
      calls: { action: { participant: 'inventory', method: 'Commit' } },
    },
  ],
};

// 12:00:00 UTC on some day.
const T0 = Date.UTC(2026, 11, 6, 12, 0, 0);
const sec = (s: number) => T0 + s * 1000;

function saga(over: Partial<SagaRecord>): SagaRecord {
  return sagaRecord({
    input: null,
    leaseOwner: 'gw',
    leaseExpiresAt: sec(10_000),
    deadlineAt: sec(1800),
    createdAt: T0,
    updatedAt: T0,
    progressAt: T0,
    ...over,
  });
}

let seq = 0;
function ev(type: SagaEvent['type'], at: number, over: Partial<SagaEvent> = {}): SagaEvent {
  return {
    sagaId: 's1',
    seq: ++seq,
    type,
    step: null,
    attempt: null,
    error: null,
    retryable: null,
    data: null,
    traceId: null,
    spanId: null,
    at,
    ...over,
  };
}
const started = (step: string, attempt: number, at: number) => ev('STEP_STARTED', at, { step, attempt });
const failed = (step: string, attempt: number, at: number, code: string | null, retryAt?: number) =>
  ev('STEP_FAILED', at, {
    step,
    attempt,
    error: `${code ?? 'some'} error`,
    retryable: true,
    data: { ...(code ? { code } : {}), ...(retryAt === undefined ? {} : { retry_at: retryAt }) },
  });
const compStarted = (step: string, attempt: number, at: number) => ev('COMPENSATION_STARTED', at, { step, attempt });
const compFailed = (step: string, attempt: number, at: number, code: string, retryAt: number) =>
  ev('COMPENSATION_FAILED', at, { step, attempt, error: 'x', retryable: true, data: { code, retry_at: retryAt } });

/** charge_payment retried: attempts 1..n failed unreachable, 10 s apart. */
function chargeStreak(n: number, inCall = false): SagaEvent[] {
  const out: SagaEvent[] = [
    ev('SAGA_STARTED', T0),
    started('create_order', 1, sec(1)),
    ev('STEP_SUCCEEDED', sec(2), { step: 'create_order', attempt: 1 }),
  ];
  for (let a = 1; a <= n; a++) {
    out.push(started('charge_payment', a, sec(a * 10)));
    out.push(failed('charge_payment', a, sec(a * 10 + 1), 'grpc_unavailable', sec(a * 10 + 9)));
  }
  if (inCall) out.push(started('charge_payment', n + 1, sec(n * 10 + 10)));
  return out;
}

const policies = DEFAULT_POLICIES;

test('explainWaiting: what a saga waits for and until when', async (t) => {
  const rows: Array<{
    name: string;
    s: Partial<SagaRecord>;
    events: SagaEvent[];
    now: number;
    stuckAfterMs?: number;
    expect: Partial<Waiting> | null;
    sentence?: RegExp;
  }> = [
    {
      name: 'RUNNING, waiting to retry: attempt, participant unreachable since the first failure, next attempt, deadline',
      s: { stepIndex: 1, attempt: 4, progressAt: sec(2) },
      events: chargeStreak(4),
      now: sec(45),
      expect: {
        state: 'retrying',
        step: 'charge_payment',
        displayName: 'Payment_Charge_Step',
        phase: 'action',
        attempt: 4,
        maxAttempts: 5,
        participant: 'payment',
        method: 'Charge',
        since: sec(11),
        nextAttemptAt: sec(49),
        deadlineAt: sec(1800),
        forwardOnly: false,
        stuck: false,
      },
      sentence:
        /^charge_payment, attempt 4 of 5, payment service unreachable since 12:00:11 UTC, next attempt at 12:00:49, saga deadline 12:30:00 \(then it compensates\)\.$/,
    },
    {
      name: 'RUNNING with a call in flight after failures: calling, since the first failure',
      s: { stepIndex: 1, attempt: 3, progressAt: sec(2) },
      events: chargeStreak(2, true),
      now: sec(31),
      expect: { state: 'calling', attempt: 3, since: sec(11), nextAttemptAt: null },
      sentence: /payment service unreachable since 12:00:11 UTC, calling Charge on the payment service, no answer yet/,
    },
    {
      name: 'RUNNING with a first call in flight: since the call started, gives up after the step timeout',
      s: { stepIndex: 0, attempt: 1 },
      events: [ev('SAGA_STARTED', T0), started('create_order', 1, sec(1))],
      now: sec(2),
      expect: { state: 'calling', step: 'create_order', since: sec(1), lastError: null },
      sentence:
        /^create_order, attempt 1 of 5, calling CreateOrder on the order service since 12:00:01 UTC, no answer yet \(gives up after 5 s\)/,
    },
    {
      name: 'RUNNING before its first attempt of a step: about to make it',
      s: { stepIndex: 1, attempt: 0 },
      events: chargeStreak(0),
      now: sec(3),
      expect: { state: 'next', step: 'charge_payment', attempt: 0, since: null },
      sentence: /^charge_payment, about to make attempt 1 of 5/,
    },
    {
      name: 'a resumption between attempts does not break the streak',
      s: { stepIndex: 1, attempt: 2 },
      events: [...chargeStreak(2), ev('SAGA_RESUMED', sec(25))],
      now: sec(26),
      expect: { state: 'retrying', since: sec(11), nextAttemptAt: sec(29) },
    },
    {
      name: "an operator's retry starts a new streak",
      s: { stepIndex: 1, attempt: 1 },
      events: [
        ...chargeStreak(2),
        ev('OPERATOR_ACTION', sec(100)),
        started('charge_payment', 1, sec(101)),
        failed('charge_payment', 1, sec(102), 'grpc_deadline_exceeded', sec(104)),
      ],
      now: sec(103),
      expect: { state: 'retrying', since: sec(102), nextAttemptAt: sec(104) },
      sentence: /payment service not answering in time since 12:01:42 UTC/,
    },
    {
      name: 'the next attempt is overdue (the gateway is gone): said, with the lease',
      s: { stepIndex: 1, attempt: 2, leaseExpiresAt: sec(40) },
      events: chargeStreak(2),
      now: sec(60),
      expect: { state: 'retrying', leaseExpired: true },
      sentence: /next attempt was due at 12:00:29.*No gateway drives it now/,
    },
    {
      name: 'after the pivot: forward budget, no deadline, parks after attempt 50',
      s: { stepIndex: 3, attempt: 7, deadlineAt: sec(10) },
      events: [
        ev('STEP_SUCCEEDED', sec(20), { step: 'confirm_order', attempt: 1 }),
        started('commit_stock', 1, sec(21)),
        failed('commit_stock', 1, sec(22), 'grpc_unavailable', sec(23)),
        started('commit_stock', 7, sec(50)),
        failed('commit_stock', 7, sec(51), 'grpc_unavailable', sec(60)),
      ],
      now: sec(55),
      expect: {
        state: 'retrying',
        step: 'commit_stock',
        maxAttempts: 50,
        deadlineAt: null,
        forwardOnly: true,
        participant: 'inventory',
        since: sec(22),
      },
      sentence:
        /^commit_stock, attempt 7 of 50, inventory service unreachable since 12:00:22 UTC, next attempt at 12:01:00, no deadline after the pivot; parks after attempt 50/,
    },
    {
      name: 'COMPENSATING, waiting to retry a refund: the compensation budget, no deadline',
      s: { status: 'COMPENSATING', stepIndex: 1, compIndex: 1, attempt: 2 },
      events: [
        ev('STEP_FAILED', sec(5), { step: 'charge_payment', attempt: 1, retryable: false, data: { code: 'x' } }),
        compStarted('charge_payment', 1, sec(6)),
        compFailed('charge_payment', 1, sec(7), 'grpc_unavailable', sec(8)),
        compStarted('charge_payment', 2, sec(8)),
        compFailed('charge_payment', 2, sec(9), 'grpc_resource_exhausted', sec(12)),
      ],
      now: sec(10),
      expect: {
        state: 'retrying',
        phase: 'compensation',
        step: 'charge_payment',
        method: 'Refund',
        maxAttempts: 10,
        deadlineAt: null,
        since: sec(7),
        nextAttemptAt: sec(12),
        lastError: { kind: 'overloaded', code: 'grpc_resource_exhausted', message: 'x', at: sec(9) },
      },
      sentence:
        /^undoing charge_payment, attempt 2 of 10, payment service overloaded since 12:00:07 UTC, next attempt at 12:00:12, no deadline while compensating; parks after attempt 10/,
    },
    {
      name: 'COMPENSATING, a compensation call in flight',
      s: { status: 'COMPENSATING', compIndex: 0, attempt: 1 },
      events: [compStarted('create_order', 1, sec(6))],
      now: sec(7),
      expect: { state: 'calling', phase: 'compensation', method: 'CancelOrder', since: sec(6) },
    },
    {
      name: 'stuck: no progress for longer than the threshold, said after the sentence',
      s: { stepIndex: 1, attempt: 4, progressAt: sec(2) },
      events: chargeStreak(4),
      now: sec(75),
      stuckAfterMs: 60_000,
      expect: { stuck: true, progressAt: sec(2), progressAgeMs: 73_000 },
      sentence: /Stuck: no progress for 1 min 13 s \(threshold 1 min\)\.$/,
    },
    {
      name: 'old but not stuck: progress is recent',
      s: { stepIndex: 1, attempt: 1, createdAt: T0, progressAt: sec(70) },
      events: chargeStreak(1),
      now: sec(75),
      stuckAfterMs: 60_000,
      expect: { stuck: false, progressAgeMs: 5_000 },
    },
    {
      name: 'PARKED: waits for an operator, since it parked, with the last failure',
      s: { status: 'PARKED', stepIndex: 3, attempt: 50, compIndex: -1 },
      events: [
        started('commit_stock', 50, sec(300)),
        failed('commit_stock', 50, sec(301), 'grpc_unavailable'),
        ev('SAGA_PARKED', sec(301), { step: 'commit_stock', data: { code: 'forward_attempts_exhausted' } }),
      ],
      now: sec(400),
      stuckAfterMs: 1,
      expect: {
        state: 'parked',
        step: 'commit_stock',
        since: sec(301),
        stuck: false,
        nextAttemptAt: null,
        maxAttempts: null,
      },
      sentence:
        /^Parked at commit_stock since 12:05:01 UTC, after attempt 50: inventory service unreachable; waits for an operator/,
    },
    { name: 'COMPLETED: waits for nothing', s: { status: 'COMPLETED' }, events: [], now: sec(1), expect: null },
    { name: 'COMPENSATED: null', s: { status: 'COMPENSATED' }, events: [], now: sec(1), expect: null },
    { name: 'RESOLVED: null', s: { status: 'RESOLVED' }, events: [], now: sec(1), expect: null },
  ];
  for (const r of rows) {
    await t.test(r.name, () => {
      const w = explainWaiting(def, saga(r.s), r.events, policies, r.now, { stuckAfterMs: r.stuckAfterMs });
      if (r.expect === null) {
        assert.equal(w, null);
        return;
      }
      assert.ok(w, 'a saga in flight or parked waits for something');
      for (const [k, v] of Object.entries(r.expect)) assert.deepEqual(w[k as keyof Waiting], v, k);
      if (r.sentence) assert.match(w.sentence, r.sentence);
    });
  }
});

test('failureKindOf: the kind from the recorded code, never from the message', async (t) => {
  const rows: Array<[string, Pick<SagaEvent, 'retryable' | 'data'>, string]> = [
    ['gRPC UNAVAILABLE', { retryable: true, data: { code: 'grpc_unavailable' } }, 'unreachable'],
    ['gRPC DEADLINE_EXCEEDED', { retryable: true, data: { code: 'grpc_deadline_exceeded' } }, 'timeout'],
    ["the engine's own deadline", { retryable: true, data: { code: 'attempt_timeout' } }, 'timeout'],
    ['a definite refusal', { retryable: false, data: { code: 'payment_declined' } }, 'refused'],
    ['an injected fault', { retryable: true, data: { fault_rule: 'r1' } }, 'injected'],
    ['an unknown code', { retryable: true, data: { code: 'grpc_something' } }, 'error'],
    ['no code (an older event)', { retryable: true, data: null }, 'unknown'],
  ];
  for (const [name, e, kind] of rows) await t.test(name, () => assert.equal(failureKindOf(e), kind));
});

test('progressOf: stuck is in flight without progress past the threshold, from the row alone', () => {
  assert.deepEqual(progressOf(saga({ progressAt: sec(0) }), sec(61), 60_000), {
    stuck: true,
    progressAt: sec(0),
    progressAgeMs: 61_000,
  });
  assert.equal(progressOf(saga({ progressAt: sec(0) }), sec(60), 60_000)?.stuck, false);
  assert.equal(progressOf(saga({ status: 'PARKED' }), sec(600), 1), null);
  assert.equal(progressOf(saga({ status: 'COMPENSATING', progressAt: sec(0) }), sec(2), 1_000)?.stuck, true);
});
