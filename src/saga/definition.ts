/**
 * What a saga is, independent of any business: ordered steps, each with an action, an optional
 * compensation, a kind, a retry policy and a per-attempt timeout.
 */
import type { StepEffect } from './preview.js';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * compensatable: has an undo. pivot: the point of no return; once it succeeds the saga must
 * complete. It has no undo, so while its outcome is unknown nothing before it may be undone: an
 * uncertain pivot is settled by its fence (see StepDefinition.fence) or, without one, retried
 * forward until its outcome is known. retriable: after the pivot; retried while its outcome is
 * unknown, up to the forward policy's attempts (then the saga parks: only an operator can finish it).
 */
export type StepKind = 'compensatable' | 'pivot' | 'retriable';

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  maxAttempts: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
  multiplier: number;
}

/** Why a saga is being compensated: the step and the business or infrastructure code. */
export interface SagaFailure {
  step: string;
  code: string;
  message: string;
}

/**
 * Each finished step's result by step name, as a definition types them (a type alias, not an
 * interface, so that it fits the index signature): what its actions answer in `result`.
 */
export type StepResults = Readonly<Record<string, Json>>;

export interface StepContext<I, R extends StepResults = StepResults> {
  sagaId: string;
  step: string;
  /** 1-based attempt of this action or compensation. */
  attempt: number;
  /** Deterministic, stable across retries, restarts and replicas: `<saga>:<step>` or `<saga>:<step>:undo`. */
  idempotencyKey: string;
  input: I;
  /** Results of the steps that succeeded so far, by step name. */
  results: Readonly<Partial<R>>;
  /** Set while compensating. */
  failure: SagaFailure | undefined;
  /** Per-attempt deadline, also enforced by the engine. */
  timeoutMs: number;
  signal: AbortSignal;
  /**
   * A fault directive the step's transport carries to its participant (gRPC metadata `x-fault`),
   * set only by the fault switchboard's interceptor; unset otherwise.
   */
  fault?: string;
}

/**
 * A definite answer. `ok: false` is a business outcome ("insufficient stock"): not retried.
 * An uncertain outcome (timeout, unavailable, crash) is a thrown error: retried with the same key,
 * unless the error is a DefiniteError.
 */
export type StepOutcome = { ok: true; result?: Json } | { ok: false; code: string; message: string };

/**
 * The failure codes the engine itself records in a saga's failure and events (a definition's
 * steps add their own). A public view shows these and the definition's, nothing else.
 */
export const ENGINE_FAILURE_CODES = [
  'saga_deadline_exceeded',
  'participant_unavailable',
  'pivot_uncertain',
  'forward_attempts_exhausted',
  'operator_compensate',
] as const;

/**
 * A thrown error that is nonetheless definite: the call was refused in a way no retry can change
 * (a malformed request, a missing permission, an unimplemented method). Retrying it would only
 * delay the saga's end (forever, after the pivot), so it is settled at once like `ok: false`, with
 * `failureCode` as the stable code in the saga's failure and events. The layer that raises the
 * error decides (the gRPC client, by status code): the engine knows no transport.
 */
export interface DefiniteError extends Error {
  readonly definite: true;
  readonly failureCode: string;
}

export function isDefiniteError(err: unknown): err is DefiniteError {
  if (!(err instanceof Error)) return false;
  const e = err as Partial<DefiniteError>;
  return e.definite === true && typeof e.failureCode === 'string' && e.failureCode !== '';
}

/**
 * The stable code a thrown error names its failure by (`failureCode`: a DefiniteError's, or one an
 * uncertain error carries, e.g. `grpc_unavailable`), else a string `code` of its own (a Node
 * system error's `ECONNREFUSED`); undefined when it names none. The engine records it with the
 * failure, so that a reader tells "unreachable" from "timed out" without parsing messages.
 */
export function failureCodeOf(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined;
  const e = err as { failureCode?: unknown; code?: unknown };
  const code = typeof e.failureCode === 'string' ? e.failureCode : typeof e.code === 'string' ? e.code : undefined;
  return code === '' ? undefined : code?.slice(0, 100);
}

/**
 * What a pivot's fence found at the pivot's participant. `fenced`: the pivot has not taken effect
 * and now never will (a late attempt is refused): the steps before it may be compensated.
 * `fenced: false`: the pivot had taken effect (with `result`, as its action would have returned):
 * the saga goes forward.
 */
export type FenceOutcome = { fenced: true } | { fenced: false; result?: Json };

export interface StepDefinition<I, R extends StepResults = StepResults> {
  name: string;
  /** A name users of an older system know the step by. */
  displayName?: string;
  kind: StepKind;
  action(ctx: StepContext<I, R>): Promise<StepOutcome>;
  /** Must be safe when the action never ran, and must then refuse a late action. Never on a pivot. */
  compensate?(ctx: StepContext<I, R>): Promise<StepOutcome>;
  /**
   * A pivot's only: settles its outcome definitively at its participant when it is unknown (its
   * attempts ran out, a refusal was raised after an uncertain attempt, the saga's deadline, an
   * operator's compensate). It is not an undo: it either makes the pivot impossible from now on
   * (a tombstone, so that a late attempt is refused) and answers `fenced`, or finds that the
   * pivot took effect. Idempotent by its key (`<saga>:<pivot>:undo`); safe whether or not the
   * pivot ever ran. The engine runs it as the pivot's compensation phase, so the fault
   * switchboard, retries and PARKED handling treat it like a compensation. A pivot with no fence
   * is retried forward (the forward budget, no deadline) and parks at the pivot when that runs
   * out: never compensated past.
   */
  fence?(ctx: StepContext<I, R>): Promise<FenceOutcome>;
  /**
   * What the step calls, in neutral words: the participant and method its action calls, and
   * those its compensation phase calls (a pivot's: its fence's). The engine does not read it;
   * tooling does (the fault switchboard's vocabulary and the calls its rules target, the console).
   */
  calls?: {
    action: { participant: string; method: string };
    compensation?: { participant: string; method: string };
  };
  /**
   * What each call of the step does, in the business's words and sums (money, stock), for an
   * operator deciding on an action (src/saga/preview.ts): its action's, and its compensation
   * phase's (a pivot's: its fence's, which settles the pivot). Given the saga's input and the
   * results of the steps that succeeded. The engine never calls it when it runs a saga; previews
   * do. Without it, a preview names the step and the calls it makes.
   */
  effects?: {
    action?: (saga: { input: I; results: Readonly<Partial<R>> }) => StepEffect;
    compensation?: (saga: { input: I; results: Readonly<Partial<R>> }) => StepEffect;
  };
  retry?: Partial<RetryPolicy>;
  compensationRetry?: Partial<RetryPolicy>;
  timeoutMs?: number;
}

/** A saga: its steps, with `I` the type of its input and `R` of its steps' results by name. */
export interface SagaDefinition<I, R extends StepResults = StepResults> {
  name: string;
  version: number;
  steps: readonly StepDefinition<I, R>[];
  /**
   * Attributes of a saga in its business's words (e.g. `order.id`), put on its spans and, with
   * dots as underscores, on its log lines. The engine itself names no business.
   */
  tags?(saga: { id: string; input: I }): Record<string, string | number | boolean>;
  /**
   * Whom a saga acts for, in its business's words (e.g. the customer's id): stored with the saga
   * and indexed, so that an operator can list one customer's sagas. At most 200 characters.
   */
  subject?(saga: { id: string; input: I }): string | null | undefined;
}

/** Longest subject kept; a longer one is cut (it is a search key, not data). */
export const SUBJECT_MAX = 200;

/**
 * The step a saga is at, by name: RUNNING, the step to run; COMPENSATING, the step to compensate;
 * PARKED, the step it is stuck on (a compensation's when it parked compensating, else the step
 * after the pivot that ran out of attempts); null for any other status.
 */
export function currentStepOf<I>(
  def: Pick<SagaDefinition<I>, 'steps'>,
  s: { status: string; stepIndex: number; compIndex: number },
): string | null {
  const at = (i: number) => def.steps[i]?.name ?? null;
  switch (s.status) {
    case 'RUNNING':
      return at(s.stepIndex);
    case 'COMPENSATING':
      return at(s.compIndex);
    case 'PARKED':
      return at(s.compIndex >= 0 ? s.compIndex : s.stepIndex);
    default:
      return null;
  }
}

export interface EnginePolicies {
  action: RetryPolicy;
  compensation: RetryPolicy;
  /**
   * For retriable steps after the pivot. They cannot be compensated, so the budget is generous;
   * when it runs out the saga parks for an operator instead of retrying forever.
   */
  forward: RetryPolicy;
  stepTimeoutMs: number;
  sagaDeadlineMs: number;
}

export const DEFAULT_POLICIES: EnginePolicies = {
  action: { maxAttempts: 5, initialBackoffMs: 100, maxBackoffMs: 2_000, multiplier: 2 },
  compensation: { maxAttempts: 10, initialBackoffMs: 200, maxBackoffMs: 5_000, multiplier: 2 },
  // 50 attempts under a 10 s backoff cap (full jitter): about four minutes of outage before parking.
  forward: { maxAttempts: 50, initialBackoffMs: 200, maxBackoffMs: 10_000, multiplier: 2 },
  stepTimeoutMs: 5_000,
  sagaDeadlineMs: 120_000,
};

export function pivotIndex<I>(def: Pick<SagaDefinition<I>, 'steps'>): number {
  return def.steps.findIndex((s) => s.kind === 'pivot');
}

/** Whether a step has a compensation phase: its undo, or, for a pivot, its fence. */
export function hasCompensationPhase<I>(step: StepDefinition<I> | undefined): boolean {
  return step !== undefined && (step.compensate !== undefined || step.fence !== undefined);
}

/** Checks a definition's shape once, at registration: a wrong one is a programming error. */
export function validateDefinition<I>(def: SagaDefinition<I>): void {
  const names = new Set<string>();
  const pivot = pivotIndex(def);
  def.steps.forEach((s, i) => {
    if (names.has(s.name)) throw new Error(`saga ${def.name}: duplicate step ${s.name}`);
    names.add(s.name);
    if (s.kind === 'pivot' && i !== pivot) throw new Error(`saga ${def.name}: more than one pivot`);
    if (s.kind === 'retriable' && (pivot < 0 || i < pivot)) {
      throw new Error(`saga ${def.name}: retriable step ${s.name} must come after the pivot`);
    }
    if (s.kind === 'compensatable' && pivot >= 0 && i > pivot) {
      throw new Error(`saga ${def.name}: compensatable step ${s.name} after the pivot can never be compensated`);
    }
    if (s.kind === 'pivot' && s.compensate)
      throw new Error(`saga ${def.name}: the pivot ${s.name} has no undo (give it a fence instead)`);
    if (s.fence && s.kind !== 'pivot')
      throw new Error(`saga ${def.name}: only the pivot may have a fence, not ${s.name}`);
  });
}

/** Exponential backoff with full jitter: uniformly random in [0, min(max, initial·mult^(n-1))]. */
export function backoffMs(policy: RetryPolicy, failedAttempts: number, random: () => number = Math.random): number {
  const ceiling = Math.min(
    policy.maxBackoffMs,
    policy.initialBackoffMs * policy.multiplier ** Math.max(0, failedAttempts - 1),
  );
  return Math.round(random() * ceiling);
}
