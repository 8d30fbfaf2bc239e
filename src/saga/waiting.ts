/**
 * "Why hasn't this saga moved?": what a saga in flight (or parked) waits for and until when, from
 * its row and its events, in structured fields and in one sentence in business words. Pure: the
 * caller passes the definition, the policies the engine runs with, and the time by the log's clock.
 */
import { currentStepOf, hasCompensationPhase, type EnginePolicies, type SagaDefinition } from './definition.js';
import type { SagaEvent, SagaRecord } from './model.js';
import { isForwardOnly, policyFor, type Phase } from './transitions.js';

/**
 * What kind of failure an attempt met, from the code its failure event records: `unreachable`
 * (the participant could not be reached), `timeout` (no answer in time), `overloaded`,
 * `interrupted` (the call was cancelled or aborted), `error` (an error answer whose outcome is
 * unknown), `refused` (a definite refusal), `injected` (the fault switchboard's), `unknown`
 * (nothing recorded says).
 */
export type FailureKind =
  'unreachable' | 'timeout' | 'overloaded' | 'interrupted' | 'error' | 'refused' | 'injected' | 'unknown';

/**
 * What the saga is doing: `retrying` (an attempt failed with an unknown outcome; the next is due
 * at nextAttemptAt), `calling` (an attempt's intent is written, its outcome not yet), `next` (no
 * attempt of the current step or compensation yet), `parked` (waits for an operator).
 */
export type WaitingState = 'retrying' | 'calling' | 'next' | 'parked';

export interface WaitingError {
  kind: FailureKind;
  /** The failure code the event records (e.g. `grpc_unavailable`), null when none. */
  code: string | null;
  message: string | null;
  at: number;
}

export interface Waiting {
  state: WaitingState;
  status: SagaRecord['status'];
  /** The step it is at (to run, to compensate, parked on); null when every step is done. */
  step: string | null;
  /** The name people know the step by, when its definition gives one. */
  displayName: string | null;
  phase: Phase | null;
  /** Attempts made of the step (or compensation) so far. */
  attempt: number;
  /** Attempts its policy allows before the saga compensates (or parks); null when parked. */
  maxAttempts: number | null;
  participant: string | null;
  method: string | null;
  /**
   * Since when it waits: the first failure of the current streak (retrying; a call in flight after
   * failures), the start of the call in flight, or when it parked.
   */
  since: number | null;
  lastError: WaitingError | null;
  /** When the next attempt is due (epoch ms), as the engine recorded it; null when none is planned. */
  nextAttemptAt: number | null;
  /** The saga's deadline, or null when none applies (after the pivot, compensating, parked). */
  deadlineAt: number | null;
  /** Past the pivot (or at a pivot without a fence): only forward, never compensated; parks when its budget runs out. */
  forwardOnly: boolean;
  /** When it last made progress (a change of status, step or compensation) and how long ago (ms). */
  progressAt: number;
  progressAgeMs: number;
  /** In flight without progress for longer than the threshold asked. */
  stuck: boolean;
  /** No process holds its lease (a gateway died or stopped): recovery resumes it. */
  leaseExpired: boolean;
  sentence: string;
}

export interface WaitingOptions {
  /** The threshold of `stuck` (ms); without it no saga is stuck. */
  stuckAfterMs?: number;
}

/** The codes of an uncertain failure by kind: canonical status names (gRPC's), Node's and the engine's own. */
const KIND_OF_CODE: Readonly<Record<string, FailureKind>> = {
  grpc_unavailable: 'unreachable',
  ECONNREFUSED: 'unreachable',
  ECONNRESET: 'unreachable',
  EHOSTUNREACH: 'unreachable',
  ENOTFOUND: 'unreachable',
  grpc_deadline_exceeded: 'timeout',
  attempt_timeout: 'timeout',
  ETIMEDOUT: 'timeout',
  grpc_resource_exhausted: 'overloaded',
  grpc_cancelled: 'interrupted',
  grpc_aborted: 'interrupted',
  grpc_internal: 'error',
  grpc_unknown: 'error',
  grpc_data_loss: 'error',
  unexpected_outcome: 'error',
  fault_injected: 'injected',
};

/** The kind of a failure event: by its recorded code; a definite one is a refusal. */
export function failureKindOf(e: Pick<SagaEvent, 'retryable' | 'data'>): FailureKind {
  const data = e.data && typeof e.data === 'object' && !Array.isArray(e.data) ? e.data : {};
  const code = typeof data.code === 'string' ? data.code : undefined;
  const known = code === undefined ? undefined : KIND_OF_CODE[code];
  if (known) return known;
  if (e.retryable === false) return 'refused';
  if (typeof data.fault_rule === 'string') return 'injected';
  return code === undefined ? 'unknown' : 'error';
}

const KIND_WORDS: Record<FailureKind, string> = {
  unreachable: 'unreachable',
  timeout: 'not answering in time',
  overloaded: 'overloaded',
  interrupted: 'interrupting calls',
  error: 'answering with errors',
  refused: 'refusing',
  injected: 'failing (an injected fault)',
  unknown: 'failing',
};

/** 12:03:10: the sentence's times, in UTC; the structured fields carry epoch ms for any other zone. */
function clock(ms: number): string {
  return new Date(ms).toISOString().slice(11, 19);
}

/** The sentence's time formatter: the first time it writes says its zone (12:03:10 UTC), the others not. */
function clockOnce(): (ms: number) => string {
  let said = false;
  return (ms) => {
    const t = clock(ms);
    if (said) return t;
    said = true;
    return `${t} UTC`;
  };
}

/** 1.5 s, 40 s, 2 min 5 s, 1 h 3 min. */
export function duration(ms: number): string {
  if (ms < 9_950) return `${Math.max(0, Math.round(ms / 100) / 10)} s`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 === 0 ? `${m} min` : `${m} min ${s % 60} s`;
  const h = Math.floor(m / 60);
  return m % 60 === 0 ? `${h} h` : `${h} h ${m % 60} min`;
}

const TYPES: Record<Phase, { started: SagaEvent['type']; failed: SagaEvent['type'] }> = {
  action: { started: 'STEP_STARTED', failed: 'STEP_FAILED' },
  compensation: { started: 'COMPENSATION_STARTED', failed: 'COMPENSATION_FAILED' },
};

/** Events that say nothing about the attempts (a resumption by another process). */
const NEUTRAL: ReadonlySet<SagaEvent['type']> = new Set(['SAGA_RESUMED']);

/**
 * The current streak of attempts of `step` in `phase`: the events of it since anything else
 * happened (another step, an operator's action, a success), oldest first.
 */
function currentStreak(events: readonly SagaEvent[], step: string, phase: Phase): SagaEvent[] {
  const { started, failed } = TYPES[phase];
  const streak: SagaEvent[] = [];
  for (let k = events.length - 1; k >= 0; k--) {
    const e = events[k] as SagaEvent;
    if (NEUTRAL.has(e.type)) continue;
    if ((e.type === started || e.type === failed) && e.step === step) streak.unshift(e);
    else break;
  }
  return streak;
}

function retryAtOf(e: SagaEvent | undefined): number | null {
  const data = e?.data && typeof e.data === 'object' && !Array.isArray(e.data) ? e.data : {};
  return typeof data.retry_at === 'number' ? data.retry_at : null;
}

function asError(e: SagaEvent): WaitingError {
  const data = e.data && typeof e.data === 'object' && !Array.isArray(e.data) ? e.data : {};
  return {
    kind: failureKindOf(e),
    code: typeof data.code === 'string' ? data.code : null,
    message: e.error,
    at: e.at,
  };
}

/**
 * What `saga` waits for, or null when it is terminal (COMPLETED, COMPENSATED, RESOLVED) and
 * waits for nothing. `events` are the saga's (at least those of its current step, in order);
 * `now` is by the log's clock, as the saga's times are.
 */
export function explainWaiting(
  def: SagaDefinition<unknown>,
  saga: SagaRecord,
  events: readonly SagaEvent[],
  policies: EnginePolicies,
  now: number,
  opts: WaitingOptions = {},
): Waiting | null {
  const inFlight = saga.status === 'RUNNING' || saga.status === 'COMPENSATING';
  if (!inFlight && saga.status !== 'PARKED') return null;
  const progressAt = saga.progressAt ?? saga.updatedAt;
  const progressAgeMs = Math.max(0, now - progressAt);
  const stuck = inFlight && opts.stuckAfterMs !== undefined && progressAgeMs > opts.stuckAfterMs;
  const leaseExpired = inFlight && saga.leaseExpiresAt <= now;
  const common = { status: saga.status, progressAt, progressAgeMs, stuck, leaseExpired };

  if (saga.status === 'PARKED') return parked(def, saga, events, common);

  const phase: Phase = saga.status === 'COMPENSATING' ? 'compensation' : 'action';
  let index = phase === 'action' ? saga.stepIndex : saga.compIndex;
  if (phase === 'compensation') while (index >= 0 && !hasCompensationPhase(def.steps[index])) index--;
  const step = index >= 0 ? def.steps[index] : undefined;
  if (!step) {
    const sentence =
      phase === 'action' ? 'Every step is done; the saga is completing.' : 'Every step is undone; the saga is ending.';
    return {
      ...common,
      state: 'next',
      step: null,
      displayName: null,
      phase,
      attempt: 0,
      maxAttempts: null,
      participant: null,
      method: null,
      since: null,
      lastError: null,
      nextAttemptAt: null,
      deadlineAt: null,
      forwardOnly: false,
      sentence: withTail(sentence, common, opts),
    };
  }
  const forwardOnly = phase === 'action' && isForwardOnly(def, index);
  const policy = policyFor(policies, step, phase, forwardOnly);
  const call = phase === 'action' ? step.calls?.action : step.calls?.compensation;
  const streak = currentStreak(events, step.name, phase);
  const failures = streak.filter((e) => e.type === TYPES[phase].failed);
  const last = streak.at(-1);
  const lastFailure = failures.at(-1);
  const state: WaitingState = last === undefined ? 'next' : last.type === TYPES[phase].started ? 'calling' : 'retrying';
  const since = failures[0]?.at ?? (state === 'calling' ? (last?.at ?? null) : null);
  const nextAttemptAt = state === 'retrying' ? retryAtOf(last) : null;
  const deadlineAt = phase === 'action' && !forwardOnly ? saga.deadlineAt : null;
  const w: Omit<Waiting, 'sentence'> = {
    ...common,
    state,
    step: step.name,
    displayName: step.displayName ?? null,
    phase,
    attempt: saga.attempt,
    maxAttempts: policy.maxAttempts,
    participant: call?.participant ?? null,
    method: call?.method ?? null,
    since,
    lastError: lastFailure ? asError(lastFailure) : null,
    nextAttemptAt,
    deadlineAt,
    forwardOnly,
  };
  return { ...w, sentence: withTail(inFlightSentence(w, policies.stepTimeoutMs, step.timeoutMs, now), common, opts) };
}

function service(participant: string | null): string {
  return participant ? `${participant} service` : 'participant';
}

function inFlightSentence(
  w: Omit<Waiting, 'sentence'>,
  defaultTimeoutMs: number,
  stepTimeoutMs: number | undefined,
  now: number,
): string {
  const clock = clockOnce();
  const what = w.phase === 'compensation' ? `undoing ${w.step}` : (w.step ?? '');
  const parts = [`${what}, attempt ${w.attempt} of ${w.maxAttempts}`];
  const err = w.lastError;
  if (err) parts.push(`${service(w.participant)} ${KIND_WORDS[err.kind]} since ${clock(w.since ?? err.at)}`);
  if (w.state === 'retrying') {
    if (w.nextAttemptAt === null) parts.push('next attempt after a backoff');
    else if (w.nextAttemptAt >= now) parts.push(`next attempt at ${clock(w.nextAttemptAt)}`);
    else parts.push(`next attempt was due at ${clock(w.nextAttemptAt)}`);
  } else if (w.state === 'calling') {
    const call = w.method ? `${w.method} on the ${service(w.participant)}` : `the ${service(w.participant)}`;
    const started = err ? '' : ` since ${clock(w.since ?? now)}`;
    parts.push(
      `calling ${call}${started}, no answer yet (gives up after ${duration(stepTimeoutMs ?? defaultTimeoutMs)})`,
    );
  } else {
    parts[0] = `${what}, about to make attempt ${w.attempt + 1} of ${w.maxAttempts}`;
  }
  if (w.phase === 'compensation') parts.push(`no deadline while compensating; parks after attempt ${w.maxAttempts}`);
  else if (w.forwardOnly) parts.push(`no deadline after the pivot; parks after attempt ${w.maxAttempts}`);
  else if (w.deadlineAt !== null) parts.push(`saga deadline ${clock(w.deadlineAt)} (then it compensates)`);
  return `${parts.join(', ')}.`;
}

function parked(
  def: SagaDefinition<unknown>,
  saga: SagaRecord,
  events: readonly SagaEvent[],
  common: Pick<Waiting, 'status' | 'progressAt' | 'progressAgeMs' | 'stuck' | 'leaseExpired'>,
): Waiting {
  const stepName = currentStepOf(def, saga);
  const step = def.steps.find((s) => s.name === stepName);
  const phase: Phase = saga.compIndex >= 0 ? 'compensation' : 'action';
  const call = phase === 'action' ? step?.calls?.action : step?.calls?.compensation;
  let parkedAt: SagaEvent | undefined;
  let failed: SagaEvent | undefined;
  for (let k = events.length - 1; k >= 0; k--) {
    const e = events[k] as SagaEvent;
    if (!parkedAt && e.type === 'SAGA_PARKED') parkedAt = e;
    else if (parkedAt && (e.type === 'STEP_FAILED' || e.type === 'COMPENSATION_FAILED')) {
      failed = e;
      break;
    }
  }
  const since = parkedAt?.at ?? saga.updatedAt;
  const lastError = failed ? asError(failed) : null;
  const what = phase === 'compensation' ? `undoing ${stepName ?? 'a step'}` : (stepName ?? 'a step');
  const why = lastError
    ? `after attempt ${failed?.attempt ?? saga.attempt}: ${service(call?.participant ?? null)} ${KIND_WORDS[lastError.kind]}`
    : (saga.failure?.code ?? 'its budget ran out');
  const sentence =
    `Parked at ${what} since ${clock(since)} UTC, ${why}; waits for an operator: ` +
    'retry once the fault is gone, or compensate.';
  return {
    ...common,
    state: 'parked',
    step: stepName,
    displayName: step?.displayName ?? null,
    phase,
    attempt: saga.attempt,
    maxAttempts: null,
    participant: call?.participant ?? null,
    method: call?.method ?? null,
    since,
    lastError,
    nextAttemptAt: null,
    deadlineAt: null,
    forwardOnly: false,
    sentence,
  };
}

/** The sentence with what the row alone says: no progress for long, or no process driving it. */
function withTail(
  sentence: string,
  w: Pick<Waiting, 'progressAgeMs' | 'stuck' | 'leaseExpired'>,
  opts: WaitingOptions,
): string {
  const tail: string[] = [];
  if (w.stuck && opts.stuckAfterMs !== undefined)
    tail.push(`Stuck: no progress for ${duration(w.progressAgeMs)} (threshold ${duration(opts.stuckAfterMs)}).`);
  if (w.leaseExpired) tail.push('No gateway drives it now (its lease expired); recovery resumes it.');
  return [sentence, ...tail].join(' ');
}

/**
 * What a listing can tell without the events: whether the saga is stuck and how long it has made
 * no progress. Null for a saga that is not in flight.
 */
export function progressOf(
  saga: Pick<SagaRecord, 'status' | 'progressAt' | 'updatedAt'>,
  now: number,
  stuckAfterMs: number,
): { stuck: boolean; progressAt: number; progressAgeMs: number } | null {
  if (saga.status !== 'RUNNING' && saga.status !== 'COMPENSATING') return null;
  const progressAt = saga.progressAt ?? saga.updatedAt;
  const progressAgeMs = Math.max(0, now - progressAt);
  return { stuck: progressAgeMs > stuckAfterMs, progressAt, progressAgeMs };
}
