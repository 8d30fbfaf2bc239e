/**
 * The driver's one extension point: an ordered chain of interceptors around a saga's run, each
 * step attempt and each participant call (the shape of Temporal's interceptors). Tracing, metrics
 * and crash points are interceptors; so are operator hooks and fault injection to come.
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
import type { OperatorActionRequest } from './operator.js';
import type { AttemptOutcome, Phase, Settlement } from './transitions.js';

export type Tags = Readonly<Record<string, string | number | boolean>>;

export interface SagaRunContext {
  /** The state when this process began (or resumed) driving the saga. */
  readonly saga: SagaRecord;
  readonly definition: SagaDefinition<unknown>;
  readonly resumed: boolean;
  /** Attributes the definition gives its sagas (e.g. `order.id`). */
  readonly tags: Tags;
}

export interface AttemptContext {
  /** The state before the attempt's intent was written. */
  readonly saga: SagaRecord;
  readonly definition: SagaDefinition<unknown>;
  readonly step: StepDefinition<unknown>;
  readonly phase: Phase;
  readonly attempt: number;
  readonly idempotencyKey: string;
  readonly tags: Tags;
  /** The call's per-attempt deadline. */
  readonly timeoutMs: number;
  /**
   * What the call carries to the participant besides its request, set by an interceptor inside
   * `aroundCall` (the fault switchboard's directive); the step sees it as StepContext.fault.
   */
  readonly transport: { fault?: string };
}

/** The named instants of an attempt, in order: around the intent's commit and the outcome's. */
export type Checkpoint = 'before_intent' | 'after_intent' | 'before_outcome' | 'after_outcome';

export interface SagaInterceptor {
  readonly name: string;
  /** Wraps a whole run of a saga in this process, until it ends or this process stops driving it. */
  aroundSaga?(ctx: SagaRunContext, next: () => Promise<SagaRecord>): Promise<SagaRecord>;
  /** Wraps one attempt: its intent write, the participant call and the outcome write. */
  aroundAttempt?(ctx: AttemptContext, next: () => Promise<Settlement>): Promise<Settlement>;
  /** Wraps the participant call alone, under its deadline; may replace the outcome. */
  aroundCall?(ctx: AttemptContext, next: () => Promise<AttemptOutcome>): Promise<AttemptOutcome>;
  /** Wraps one recovery pass that claimed `claimed` sagas (they are launched inside `next`). */
  aroundRecovery?(claimed: readonly SagaRecord[], next: () => void): void;
  at?(point: Checkpoint, ctx: AttemptContext): void;
  onStarted?(saga: SagaRecord): void;
  onRecovered?(saga: SagaRecord): void;
  /** An operator's action was applied (not replayed, not refused); `saga` is its state right after. */
  onOperatorAction?(saga: SagaRecord, req: OperatorActionRequest): void;
}

type Around<C, T> = (ctx: C, next: () => Promise<T>) => Promise<T>;

/** Runs `last` inside every interceptor's `around`, the first interceptor outermost. */
export function runChain<C, T>(arounds: ReadonlyArray<Around<C, T>>, ctx: C, last: () => Promise<T>): Promise<T> {
  const call = (i: number): Promise<T> => {
    const around = arounds[i];
    return around ? around(ctx, () => call(i + 1)) : last();
  };
  return call(0);
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
    aroundSaga(ctx, next) {
      const active = otelContext.active();
      const current = trace.getSpanContext(active);
      const parent =
        ctx.resumed && ctx.saga.traceparent
          ? propagation.extract(active, { traceparent: ctx.saga.traceparent })
          : active;
      const links: Link[] = ctx.resumed && current && isSpanContextValid(current) ? [{ context: current }] : [];
      const span = tracer.startSpan(
        `saga ${ctx.definition.name}`,
        {
          links,
          attributes: {
            'saga.id': ctx.saga.id,
            'saga.definition': ctx.definition.name,
            'saga.resumed': ctx.resumed,
            ...ctx.tags,
          },
        },
        parent,
      );
      return otelContext.with(trace.setSpan(parent, span), next).then(
        (final) => {
          span.setAttribute('saga.status', final.status);
          if (final.status === 'PARKED') span.setStatus({ code: SpanStatusCode.ERROR, message: 'parked' });
          span.end();
          return final;
        },
        (err: unknown) => {
          span.recordException(err instanceof Error ? err : new Error(String(err)));
          span.end();
          throw err;
        },
      );
    },
    aroundAttempt(ctx, next) {
      // A pivot's compensation phase is its fence, not an undo: named so in the trace.
      const name =
        ctx.phase === 'action'
          ? `saga.step ${ctx.step.name}`
          : `${ctx.step.fence ? 'saga.fence' : 'saga.compensate'} ${ctx.step.name}`;
      const attributes = {
        'saga.id': ctx.saga.id,
        'saga.step': ctx.step.name,
        'saga.phase': ctx.phase,
        'saga.attempt': ctx.attempt,
        ...ctx.tags,
      };
      return tracer.startActiveSpan(name, { attributes }, async (span) => {
        try {
          const settled = await next();
          span.setAttribute('saga.outcome', outcomeLabel(settled.outcome));
          return settled;
        } finally {
          span.end();
        }
      });
    },
    aroundRecovery(claimed, next) {
      const span = tracer.startSpan('saga.recovery', { attributes: { 'saga.count': claimed.length } });
      try {
        otelContext.with(trace.setSpan(otelContext.active(), span), next);
      } finally {
        span.end();
      }
    },
  };
}

/** Test-only crash points (`CRASH_AT=saga.<step>[.undo].<checkpoint>`): the process dies there as with kill -9. */
export function crashPoints(): SagaInterceptor {
  return {
    name: 'crash-points',
    at(point, ctx) {
      crashPoint(`saga.${ctx.step.name}.${ctx.phase === 'compensation' ? 'undo.' : ''}${point}`);
    },
  };
}
