/**
 * The engine's one extension point: an ordered chain of interceptors, each with at most two
 * members — `saga`, around what the engine does to a whole saga, and `step`, around what it does
 * within one attempt of a step (the shape of Restate's `handler`/`run` hooks). Tracing, metrics,
 * crash points and the fault switchboard are each one interceptor.
 *
 * The contract (the engine enforces what it can, with InterceptorContractError):
 * 1. Call `next()` at most once, and await it. Its rejection is the operation's: rethrow it (a
 *    finally is fine); never turn a failed write into a success.
 * 2. Call `next()` exactly once, except around a `call`, which may be answered without calling
 *    the participant by setting `op.outcome` instead (an injected refusal, say). Skipping any
 *    other operation would skip a durable write: the engine refuses it.
 * 3. Change nothing in `op` but what is marked writable: a `call`'s `transport` before `next()`,
 *    its `outcome` after (or instead of) it. Records (`saga`, `settlement`) are the engine's.
 * 4. Inside `next()` runs with the async context active where it was called (e.g. a span made
 *    active by an outer interceptor): log rows written inside carry its ids.
 * 5. Throwing (other than rethrowing) stops this process driving the saga, as a crash would: the
 *    saga's state is durable and another pass of recovery resumes it. Only crash points mean it.
 *
 * Order: the first interceptor of the chain is outermost. Nesting within one attempt: `attempt`
 * holds `intent` (the intent's durable write), then `call` (the participant call under its
 * deadline), then `outcome` (the outcome's durable write); the checkpoints of the crash matrix
 * are just before and after `intent` and `outcome`.
 *
 * `intent` of a saga's first attempt (`withCreate`): that intent was committed with the saga's
 * create, in one transaction with the row and SAGA_STARTED (STEP_STARTED is its second event), so
 * the op stands for an intent already durable: `next()` writes nothing, yet it must be called as
 * for any intent (rule 2), and the checkpoints before and after it still strike there, between
 * the create's commit and the call. Both see the same durable state: the saga created with its
 * first attempt on record, which recovery retries under the same key. (A saga whose first move is
 * not an attempt, e.g. one started past its deadline, is created with SAGA_STARTED alone.)
 */
import {
  context as otelContext,
  propagation,
  trace,
  isSpanContextValid,
  SpanStatusCode,
  type Link,
} from '@opentelemetry/api';
import { crashPoint } from '../platform/process/crash.js';
import type { SagaDefinition, StepDefinition } from './definition.js';
import type { SagaRecord } from './model.js';
import type { OperatorActionRequest, OperatorActionResult } from './operator.js';
import type { AttemptOutcome, Phase, Settlement } from './transitions.js';

export type Tags = Readonly<Record<string, string | number | boolean>>;

/**
 * Why this process drives a saga now: it started it, recovery claimed it (its owner died or
 * stopped), or an operator's action (applied, or refused after its driver was stopped) moved it.
 */
export type RunCause = 'started' | 'recovered' | 'operator';

/** What the engine does to a whole saga, as the `saga` member sees it. */
export type SagaOp =
  | {
      /** A run of a saga in this process, until it ends or this process stops driving it. */
      readonly kind: 'run';
      /** The state when this process began (or resumed) driving the saga. */
      readonly saga: SagaRecord;
      readonly definition: SagaDefinition<unknown>;
      readonly cause: RunCause;
      /** Whether the saga has a past (resumed by recovery, or driven again after an operator's action). */
      readonly resumed: boolean;
      /** Attributes the definition gives its sagas (e.g. `order.id`). */
      readonly tags: Tags;
      /** Set by the engine when the run returns: the saga as it stood then (terminal, or not if it stopped). */
      final?: SagaRecord;
    }
  | {
      /** One recovery pass that claimed `claimed` sagas; their runs are launched inside `next()`. */
      readonly kind: 'recovery';
      readonly claimed: readonly SagaRecord[];
    }
  | {
      /** An operator's action. */
      readonly kind: 'operator_action';
      readonly request: OperatorActionRequest;
      /** Set by the engine when the action is applied or replayed (a refusal rejects `next()`). */
      result?: OperatorActionResult;
    };

/** What every operation within one attempt knows. */
export interface AttemptContext {
  /**
   * The state before the attempt's intent was written; for an intent committed with the create
   * (`withCreate`), the saga as created, that intent included.
   */
  readonly saga: SagaRecord;
  readonly definition: SagaDefinition<unknown>;
  readonly step: StepDefinition<unknown>;
  readonly phase: Phase;
  readonly attempt: number;
  readonly idempotencyKey: string;
  readonly tags: Tags;
  /** The call's per-attempt deadline. */
  readonly timeoutMs: number;
}

/** What the engine does within one attempt, as the `step` member sees it (nesting: see the contract above). */
export type StepOp =
  | (AttemptContext & {
      readonly kind: 'attempt';
      /** Set by the engine once the attempt's outcome is written. */
      settlement?: Settlement;
    })
  | (AttemptContext & {
      readonly kind: 'intent';
      /** The saga's first attempt: its intent was committed with the create, and `next()` writes nothing (see the contract above). */
      readonly withCreate: boolean;
    })
  | (AttemptContext & {
      readonly kind: 'call';
      /** Writable before `next()`: what the call carries besides its request (StepContext.fault). */
      readonly transport: { fault?: string };
      /** Writable: what the call came to. Set by the engine in `next()`; an interceptor may replace it, or set it instead of calling `next()`. */
      outcome?: AttemptOutcome;
    })
  | (AttemptContext & {
      readonly kind: 'outcome';
      /** What is about to be written, and what the saga does next. */
      readonly settlement: Settlement;
    });

export type Next = () => Promise<void>;

export interface SagaInterceptor {
  readonly name: string;
  saga?(op: SagaOp, next: Next): Promise<void>;
  step?(op: StepOp, next: Next): Promise<void>;
}

/** An interceptor broke the contract above; the operation was not (or not twice) performed. */
export class InterceptorContractError extends Error {
  readonly code = 'interceptor_contract';
}

type Around<O> = (op: O, next: Next) => Promise<void>;

/**
 * Runs `perform` inside every interceptor's `around`, the first outermost, holding the chain to
 * the contract: `perform` runs at most once, and (unless `mayAnswer` says the op was answered
 * without it) exactly once.
 */
export function runChain<O extends { kind: string }>(
  arounds: ReadonlyArray<Around<O>>,
  op: O,
  perform: () => Promise<void>,
  mayAnswer?: (op: O) => boolean,
): Promise<void> {
  // On every attempt's four operations: one promise per link, no async frame of its own.
  let performed = false;
  const last = (): Promise<void> => {
    if (performed) return Promise.reject(new InterceptorContractError(`next() called twice around ${op.kind}`));
    performed = true;
    return perform();
  };
  const call = (i: number): Promise<void> => {
    const around = arounds[i];
    return around ? around(op, () => call(i + 1)) : last();
  };
  return call(0).then(() => {
    if (!performed && !mayAnswer?.(op))
      throw new InterceptorContractError(`an interceptor skipped next() around ${op.kind}`);
  });
}

const tracer = trace.getTracer('ecommerce-sagas/saga');

function outcomeLabel(o: AttemptOutcome): string {
  switch (o.kind) {
    case 'ok':
      return 'succeeded';
    case 'failed':
      return o.code;
    case 'took_effect':
      // A pivot's fence that found the pivot done.
      return 'took_effect';
    case 'uncertain':
      return 'uncertain';
  }
}

/**
 * One span per saga run (a child of the request that started it, or of the stored traceparent
 * when resumed, linked to the recovery that resumed it) and one per attempt, made the active
 * context so that the log rows written inside carry their ids.
 */
export function tracing(): SagaInterceptor {
  return {
    name: 'tracing',
    saga(op, next) {
      if (op.kind === 'run') return traceRun(op, next);
      if (op.kind === 'recovery') return traceRecovery(op.claimed.length, next);
      return next();
    },
    step(op, next) {
      return op.kind === 'attempt' ? traceAttempt(op, next) : next();
    },
  };
}

async function traceRun(op: Extract<SagaOp, { kind: 'run' }>, next: Next): Promise<void> {
  const active = otelContext.active();
  const current = trace.getSpanContext(active);
  const parent =
    op.resumed && op.saga.traceparent ? propagation.extract(active, { traceparent: op.saga.traceparent }) : active;
  const links: Link[] = op.resumed && current && isSpanContextValid(current) ? [{ context: current }] : [];
  const span = tracer.startSpan(
    `saga ${op.definition.name}`,
    {
      links,
      attributes: {
        'saga.id': op.saga.id,
        'saga.definition': op.definition.name,
        'saga.resumed': op.resumed,
        ...op.tags,
      },
    },
    parent,
  );
  try {
    await otelContext.with(trace.setSpan(parent, span), next);
    if (op.final) {
      span.setAttribute('saga.status', op.final.status);
      if (op.final.status === 'PARKED') span.setStatus({ code: SpanStatusCode.ERROR, message: 'parked' });
    }
  } catch (err) {
    span.recordException(err instanceof Error ? err : new Error(String(err)));
    throw err;
  } finally {
    span.end();
  }
}

function traceAttempt(op: Extract<StepOp, { kind: 'attempt' }>, next: Next): Promise<void> {
  // A pivot's compensation phase is its fence, not an undo: named so in the trace.
  const name =
    op.phase === 'action'
      ? `saga.step ${op.step.name}`
      : `${op.step.fence ? 'saga.fence' : 'saga.compensate'} ${op.step.name}`;
  const attributes = {
    'saga.id': op.saga.id,
    'saga.step': op.step.name,
    'saga.phase': op.phase,
    'saga.attempt': op.attempt,
    ...op.tags,
  };
  return tracer.startActiveSpan(name, { attributes }, async (span) => {
    try {
      await next();
      if (op.settlement) span.setAttribute('saga.outcome', outcomeLabel(op.settlement.outcome));
    } finally {
      span.end();
    }
  });
}

/** One span per recovery pass: the runs it launches link to it. */
async function traceRecovery(count: number, next: Next): Promise<void> {
  const span = tracer.startSpan('saga.recovery', { attributes: { 'saga.count': count } });
  try {
    await otelContext.with(trace.setSpan(otelContext.active(), span), next);
  } finally {
    span.end();
  }
}

/**
 * Test-only crash points (`CRASH_AT=saga.<step>[.undo].<checkpoint>`): the process dies there as
 * with kill -9. The checkpoints are just before and after an attempt's two durable writes (a
 * saga's first intent: written with its create, so both of its checkpoints come after that commit).
 */
export function crashPoints(): SagaInterceptor {
  return {
    name: 'crash-points',
    step(op, next) {
      if (op.kind !== 'intent' && op.kind !== 'outcome') return next();
      const at = `saga.${op.step.name}.${op.phase === 'compensation' ? 'undo.' : ''}`;
      crashPoint(`${at}before_${op.kind}`);
      return next().then(() => crashPoint(`${at}after_${op.kind}`));
    },
  };
}

/** The checkpoint an attempt's write is at: `before_intent`, `after_outcome`, … (the crash matrix's names). */
export type Checkpoint = 'before_intent' | 'after_intent' | 'before_outcome' | 'after_outcome';
