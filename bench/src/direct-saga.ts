/**
 * Runs a saga definition straight through, in this process, with no engine and no saga log: each
 * step's action in definition order, and on a definite failure the compensations of the steps
 * before it, newest first — the calls the engine makes on the happy and the compensating paths,
 * with the same idempotency keys, and nothing else. No retries and no recovery: an uncertain
 * outcome (a thrown error) ends the run as an error, because retrying is the engine's work and the
 * floor measures only the participants.
 */
import { status as grpcStatus } from '@grpc/grpc-js';
import { isServiceError } from '../../src/platform/grpc/grpc.js';
import {
  DEFAULT_POLICIES,
  pivotIndex,
  type Json,
  type SagaDefinition,
  type SagaFailure,
  type StepContext,
  type StepDefinition,
} from '../../src/saga/definition.js';
import { idempotencyKey, type Phase } from '../../src/saga/transitions.js';

export type DirectOutcome =
  | { ok: true; status: 'COMPLETED' }
  | { ok: true; status: 'COMPENSATED'; failure: SagaFailure }
  /** `kind` names what went wrong and where, e.g. `grpc:reserve_stock:UNAVAILABLE`. */
  | { ok: false; kind: string };

// Nothing aborts a direct run: a call ends with its own gRPC deadline.
const NEVER = new AbortController().signal;

class Stop extends Error {
  constructor(readonly kind: string) {
    super(kind);
  }
}

export async function runDirect<I>(
  def: SagaDefinition<I>,
  sagaId: string,
  input: I,
  defaultTimeoutMs = DEFAULT_POLICIES.stepTimeoutMs,
): Promise<DirectOutcome> {
  const results: Record<string, Json> = {};
  const pivot = pivotIndex(def);
  const attempt = async (step: StepDefinition<I>, phase: Phase, failure: SagaFailure | undefined) => {
    const fn = phase === 'action' ? step.action.bind(step) : step.compensate?.bind(step);
    const where = phase === 'action' ? step.name : `${step.name}:undo`;
    const ctx: StepContext<I> = {
      sagaId,
      step: step.name,
      attempt: 1,
      idempotencyKey: idempotencyKey(sagaId, step.name, phase),
      input,
      results,
      failure,
      timeoutMs: step.timeoutMs ?? defaultTimeoutMs,
      signal: NEVER,
    };
    try {
      // `fn` is the action, or a compensation that exists: callers check.
      return await (fn as NonNullable<typeof fn>).call(step, ctx);
    } catch (err) {
      if (isServiceError(err)) throw new Stop(`grpc:${where}:${grpcStatus[err.code] ?? err.code}`);
      // A step's own error may carry a code (the saga's UnexpectedOutcome: `unexpected_outcome`).
      const code = err instanceof Error ? (err as Error & { code?: unknown }).code : undefined;
      throw new Stop(`${typeof code === 'string' ? code : 'error'}:${where}`);
    }
  };
  try {
    for (const [i, step] of def.steps.entries()) {
      const out = await attempt(step, 'action', undefined);
      if (out.ok) {
        results[step.name] = out.result ?? null;
        continue;
      }
      const failure: SagaFailure = { step: step.name, code: out.code, message: out.message };
      // The engine parks a saga whose step fails after the pivot: for the floor, an error.
      if (pivot >= 0 && i > pivot) return { ok: false, kind: `parked:${step.name}:${out.code}` };
      // A definite failure had no effect: compensation starts with the step before it.
      for (const done of def.steps.slice(0, i).reverse()) {
        if (!done.compensate) continue;
        const undo = await attempt(done, 'compensation', failure);
        if (!undo.ok) return { ok: false, kind: `compensation_failed:${done.name}:${undo.code}` };
      }
      return { ok: true, status: 'COMPENSATED', failure };
    }
    return { ok: true, status: 'COMPLETED' };
  } catch (err) {
    if (err instanceof Stop) return { ok: false, kind: err.kind };
    throw err;
  }
}
