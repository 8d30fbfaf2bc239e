/**
 * The saga's rules as pure functions: given a saga's state (and, after an attempt, what the
 * attempt returned), what the log must record next. No I/O, no clock of its own, no randomness of
 * its own: the driver passes `now` and `random` in, writes the result, and acts on it.
 */
import {
  backoffMs,
  hasCompensationPhase,
  pivotIndex,
  type EnginePolicies,
  type FenceOutcome,
  type Json,
  type RetryPolicy,
  type SagaDefinition,
  type SagaFailure,
  type StepDefinition,
  type StepOutcome,
} from './definition.js';
import type { NewEvent, SagaPatch, SagaRecord } from './model.js';

export type Phase = 'action' | 'compensation';

/**
 * Facts an interceptor adds to a failed or uncertain outcome (e.g. `fault_rule`: the fault
 * switchboard's rule that brought it about), written into the data of the attempt's failure event
 * beside the engine's own fields, which win on a clash.
 */
export type Annotations = Readonly<Record<string, string>>;

/** What one attempt of an action or compensation came to. */
export type AttemptOutcome =
  | { kind: 'ok'; result: Json }
  | {
      kind: 'failed';
      code: string;
      message: string;
      /**
       * Set when the definite failure is a refusal the call raised (a DefiniteError), not an answer
       * from the participant's record of the key: it speaks for this attempt only, so it does not
       * tell whether an earlier attempt with an unknown outcome had its effect.
       */
      raised?: true;
      annotations?: Annotations;
    }
  | {
      kind: 'uncertain';
      error: string;
      /**
       * What kind of failure left the outcome unknown, as the layer that raised it names it
       * (e.g. `grpc_unavailable`, `grpc_deadline_exceeded`; `attempt_timeout`: the engine's own
       * per-attempt deadline); recorded as `code` in the failure event's data. Unset when nothing
       * named it.
       */
      code?: string;
      annotations?: Annotations;
    }
  /** A pivot's fence found that the pivot had taken effect: the saga goes forward. */
  | { kind: 'took_effect'; result: Json };

/** A definite answer of an action or compensation, as an attempt's outcome. */
export function fromStepOutcome(o: StepOutcome): AttemptOutcome {
  return o.ok ? { kind: 'ok', result: o.result ?? null } : { kind: 'failed', code: o.code, message: o.message };
}

/** A fence's answer, as the outcome of the pivot's compensation-phase attempt. */
export function fromFenceOutcome(f: FenceOutcome): AttemptOutcome {
  return f.fenced ? { kind: 'ok', result: { fenced: true } } : { kind: 'took_effect', result: f.result ?? null };
}

/** A change of the saga row and the events that record it, written in one transaction. */
export interface Transition {
  patch: SagaPatch;
  events: NewEvent[];
}

/** An attempt to make: which step, in which phase, its number, and the intent to record first. */
export interface PlannedAttempt {
  kind: 'attempt';
  phase: Phase;
  index: number;
  step: StepDefinition<unknown>;
  attempt: number;
  policy: RetryPolicy;
  /** Written (durably) before the participant is called. */
  intent: Transition;
}

/** A transition with no participant call: the saga ends, or gives up before an attempt. */
export interface PlannedTransition {
  kind: 'transition';
  why: 'completed' | 'compensated' | 'deadline';
  transition: Transition;
}

export type Plan = PlannedAttempt | PlannedTransition;

/**
 * What an attempt's outcome means for the saga. `succeeded`: on to the next step (or the next
 * compensation); `compensating`: a definite refusal, or retries exhausted, before the pivot;
 * `parked`: nothing more the engine can do; `retrying`: the outcome is unknown, try again after
 * `retryInMs`.
 */
export type Verdict = 'succeeded' | 'compensating' | 'parked' | 'retrying';

export interface Settlement {
  verdict: Verdict;
  outcome: AttemptOutcome;
  transition: Transition;
  /** A step's success may be committed together with the saga's next transition (see the driver). */
  defer: boolean;
  retryInMs?: number;
  /** Why, for the log line: the failure code or the uncertain error. */
  reason?: string;
}

const RELEASE: SagaPatch = { leaseOwner: null, leaseExpiresAt: 0 };

export function idempotencyKey(sagaId: string, step: string, phase: Phase): string {
  return phase === 'action' ? `${sagaId}:${step}` : `${sagaId}:${step}:undo`;
}

export function isAfterPivot(def: SagaDefinition<unknown>, index: number): boolean {
  const pivot = pivotIndex(def);
  return pivot >= 0 && index > pivot;
}

/**
 * Whether the step at `index` can only go forward: every step after the pivot, and a pivot with
 * no fence (its outcome can be learned only by retrying it). Such a step has the forward budget,
 * ignores the saga's deadline, and parks when its budget runs out: it is never compensated past.
 */
export function isForwardOnly(def: SagaDefinition<unknown>, index: number): boolean {
  const pivot = pivotIndex(def);
  return pivot >= 0 && (index > pivot || (index === pivot && !def.steps[pivot]?.fence));
}

/** The retry policy of a step in a phase: steps that can only go forward have the (generous) forward budget. */
export function policyFor(
  policies: EnginePolicies,
  step: StepDefinition<unknown>,
  phase: Phase,
  forwardOnly: boolean,
): RetryPolicy {
  if (phase === 'compensation') return { ...policies.compensation, ...step.compensationRetry };
  if (forwardOnly) return { ...policies.forward, ...step.retry };
  return { ...policies.action, ...step.retry };
}

/** What a saga that is not terminal does next. */
export function plan(def: SagaDefinition<unknown>, s: SagaRecord, policies: EnginePolicies, now: number): Plan {
  return s.status === 'COMPENSATING' ? planCompensation(def, s, policies) : planForward(def, s, policies, now);
}

function planForward(def: SagaDefinition<unknown>, s: SagaRecord, policies: EnginePolicies, now: number): Plan {
  const i = s.stepIndex;
  const step = def.steps[i];
  if (!step) {
    return {
      kind: 'transition',
      why: 'completed',
      transition: { patch: { status: 'COMPLETED', ...RELEASE }, events: [{ type: 'SAGA_COMPLETED' }] },
    };
  }
  const forwardOnly = isForwardOnly(def, i);
  if (!forwardOnly && now >= s.deadlineAt) {
    const failure: SagaFailure = {
      step: step.name,
      code: 'saga_deadline_exceeded',
      message: 'the saga ran past its deadline',
    };
    // An attempt already made may have had its effect: compensate the step too. At the pivot its
    // fence runs first whatever the attempt count: an attempt before an operator's retry (which
    // counts afresh) may have taken effect, and the fence is safe when none did.
    const compIndex = i === pivotIndex(def) || s.attempt > 0 ? i : i - 1;
    return {
      kind: 'transition',
      why: 'deadline',
      transition: {
        patch: { status: 'COMPENSATING', compIndex, attempt: 0, failure },
        events: [
          {
            type: 'STEP_FAILED',
            step: step.name,
            attempt: s.attempt,
            error: failure.message,
            retryable: false,
            data: { code: failure.code },
          },
        ],
      },
    };
  }
  const attempt = s.attempt + 1;
  return {
    kind: 'attempt',
    phase: 'action',
    index: i,
    step,
    attempt,
    policy: policyFor(policies, step, 'action', forwardOnly),
    intent: { patch: { attempt }, events: [{ type: 'STEP_STARTED', step: step.name, attempt }] },
  };
}

function planCompensation(def: SagaDefinition<unknown>, s: SagaRecord, policies: EnginePolicies): Plan {
  let j = s.compIndex;
  while (j >= 0 && !hasCompensationPhase(def.steps[j])) j--;
  const step = j >= 0 ? def.steps[j] : undefined;
  if (!step) {
    return {
      kind: 'transition',
      why: 'compensated',
      transition: {
        patch: { status: 'COMPENSATED', compIndex: -1, ...RELEASE },
        events: [{ type: 'SAGA_COMPENSATED', data: s.failure ? { code: s.failure.code, step: s.failure.step } : null }],
      },
    };
  }
  const attempt = s.attempt + 1;
  return {
    kind: 'attempt',
    phase: 'compensation',
    index: j,
    step,
    attempt,
    policy: policyFor(policies, step, 'compensation', false),
    intent: { patch: { compIndex: j, attempt }, events: [{ type: 'COMPENSATION_STARTED', step: step.name, attempt }] },
  };
}

/**
 * What the log records after an attempt, and what the saga does next. `s` is the state after the
 * attempt's intent was written.
 */
export function settle(
  def: SagaDefinition<unknown>,
  s: SagaRecord,
  a: PlannedAttempt,
  outcome: AttemptOutcome,
  now: number,
  random: () => number,
): Settlement {
  const settled =
    a.phase === 'action'
      ? settleAction(def, s, a, outcome, now, random)
      : settleCompensation(s, a, outcome, now, random);
  const notes = outcome.kind === 'failed' || outcome.kind === 'uncertain' ? outcome.annotations : undefined;
  return { ...settled, transition: notes ? annotate(settled.transition, a, notes) : settled.transition, outcome };
}

/** The attempt's failure event with the outcome's annotations in its data. */
function annotate(t: Transition, a: PlannedAttempt, notes: Annotations): Transition {
  const failure = a.phase === 'action' ? 'STEP_FAILED' : 'COMPENSATION_FAILED';
  const events = t.events.map((e) => {
    if (e.type !== failure || e.step !== a.step.name || e.attempt !== a.attempt) return e;
    const own = e.data && typeof e.data === 'object' && !Array.isArray(e.data) ? e.data : {};
    return { ...e, data: { ...notes, ...own } };
  });
  return { ...t, events };
}

type Decision = Omit<Settlement, 'outcome'>;

function settleAction(
  def: SagaDefinition<unknown>,
  s: SagaRecord,
  a: PlannedAttempt,
  outcome: AttemptOutcome,
  now: number,
  random: () => number,
): Decision {
  const { step, attempt, index: i } = a;
  if (outcome.kind === 'ok') {
    return {
      verdict: 'succeeded',
      defer: true,
      transition: {
        patch: { stepIndex: i + 1, attempt: 0, results: { ...s.results, [step.name]: outcome.result } },
        events: [{ type: 'STEP_SUCCEEDED', step: step.name, attempt, data: outcome.result }],
      },
    };
  }
  if (outcome.kind === 'took_effect') throw new Error(`an action cannot answer took_effect (step ${step.name})`);
  const afterPivot = isAfterPivot(def, i);
  const forwardOnly = isForwardOnly(def, i);
  const atPivot = i === pivotIndex(def);
  const park = (failure: SagaFailure, failed: NewEvent): Decision => ({
    verdict: 'parked',
    defer: false,
    reason: failure.code,
    transition: {
      patch: { status: 'PARKED', failure, ...RELEASE },
      events: [failed, { type: 'SAGA_PARKED', step: step.name, error: failure.message, data: { code: failure.code } }],
    },
  });
  if (outcome.kind === 'failed') {
    const failure: SagaFailure = { step: step.name, code: outcome.code, message: outcome.message };
    const failed: NewEvent = {
      type: 'STEP_FAILED',
      step: step.name,
      attempt,
      error: outcome.message,
      retryable: false,
      data: { code: outcome.code },
    };
    if (afterPivot) return park(failure, failed);
    // A definite failure had no effect: compensation starts with the step before it. A refusal
    // the call raised speaks for its own attempt only: after an earlier attempt whose outcome is
    // unknown (which may have had its effect), the step is compensated too. At the pivot any
    // raised refusal counts as unknown (attempts before an operator's retry are not counted), so
    // its fence settles it first; a pivot with no fence cannot be settled, so the saga parks.
    if (atPivot && outcome.raised && forwardOnly) return park(failure, failed);
    const compIndex = outcome.raised && (attempt > 1 || atPivot) ? i : i - 1;
    return {
      verdict: 'compensating',
      defer: false,
      reason: outcome.code,
      transition: { patch: { status: 'COMPENSATING', compIndex, attempt: 0, failure }, events: [failed] },
    };
  }
  const failed: NewEvent = {
    type: 'STEP_FAILED',
    step: step.name,
    attempt,
    error: outcome.error,
    retryable: true,
    ...uncertainData(outcome.code),
  };
  const delay = backoffMs(a.policy, attempt, random);
  const attemptsLeft = attempt < a.policy.maxAttempts;
  const timeLeft = forwardOnly || now + delay < s.deadlineAt;
  if (attemptsLeft && timeLeft) {
    return {
      verdict: 'retrying',
      defer: false,
      retryInMs: delay,
      reason: outcome.error,
      transition: { patch: {}, events: [{ ...failed, ...uncertainData(outcome.code, now + delay) }] },
    };
  }
  if (forwardOnly) {
    // Nothing before it may be undone while its outcome is unknown, and the forward budget is
    // spent: an operator must look (a retry resumes the step).
    const code = afterPivot ? 'forward_attempts_exhausted' : 'pivot_uncertain';
    return park({ step: step.name, code, message: outcome.error }, failed);
  }
  // The outcome is still unknown: the step may have had its effect, so it is compensated too
  // (a pivot: its fence settles it before anything earlier is undone).
  const failure: SagaFailure = {
    step: step.name,
    code: attemptsLeft ? 'saga_deadline_exceeded' : 'participant_unavailable',
    message: outcome.error,
  };
  return {
    verdict: 'compensating',
    defer: false,
    reason: failure.code,
    transition: { patch: { status: 'COMPENSATING', compIndex: i, attempt: 0, failure }, events: [failed] },
  };
}

/**
 * The data of an uncertain attempt's failure event: its failure code when one was named, and, when
 * it is retried, `retry_at`: when the next attempt is due (epoch ms by the engine's clock, the saga
 * log's), so that a reader of the log can tell what the saga waits for and until when.
 */
function uncertainData(code: string | undefined, retryAt?: number): { data?: Json } {
  if (code === undefined && retryAt === undefined) return {};
  return { data: { ...(code === undefined ? {} : { code }), ...(retryAt === undefined ? {} : { retry_at: retryAt }) } };
}

function settleCompensation(
  s: SagaRecord,
  a: PlannedAttempt,
  outcome: AttemptOutcome,
  now: number,
  random: () => number,
): Decision {
  const { step, attempt, index: j } = a;
  if (outcome.kind === 'took_effect') {
    if (!step.fence) throw new Error(`only a pivot's fence can answer took_effect (step ${step.name})`);
    // The pivot had taken effect: there is nothing to compensate, only the steps after it to run.
    return {
      verdict: 'succeeded',
      defer: false,
      transition: {
        patch: {
          status: 'RUNNING',
          stepIndex: j + 1,
          compIndex: -1,
          attempt: 0,
          failure: null,
          results: { ...s.results, [step.name]: outcome.result },
        },
        events: [{ type: 'STEP_SUCCEEDED', step: step.name, attempt, data: outcome.result }],
      },
    };
  }
  if (outcome.kind === 'ok') {
    return {
      verdict: 'succeeded',
      defer: true,
      transition: {
        patch: { compIndex: j - 1, attempt: 0 },
        events: [{ type: 'COMPENSATION_SUCCEEDED', step: step.name, attempt, data: outcome.result }],
      },
    };
  }
  const error = outcome.kind === 'failed' ? outcome.message : outcome.error;
  // A definite refusal of a compensation, answered or raised, cannot succeed on retry: parked at once.
  const retryable = outcome.kind === 'uncertain';
  const failed: NewEvent = {
    type: 'COMPENSATION_FAILED',
    step: step.name,
    attempt,
    error,
    retryable,
    ...(outcome.kind === 'failed' ? { data: { code: outcome.code } } : uncertainData(outcome.code)),
  };
  if (retryable && attempt < a.policy.maxAttempts) {
    const delay = backoffMs(a.policy, attempt, random);
    return {
      verdict: 'retrying',
      defer: false,
      retryInMs: delay,
      reason: error,
      transition: { patch: {}, events: [{ ...failed, ...uncertainData(outcome.code, now + delay) }] },
    };
  }
  return {
    verdict: 'parked',
    defer: false,
    reason: error,
    transition: {
      patch: { status: 'PARKED', ...RELEASE },
      events: [failed, { type: 'SAGA_PARKED', step: step.name, error }],
    },
  };
}
