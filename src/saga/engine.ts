import { randomBytes } from 'node:crypto';
import os from 'node:os';
import {
  context as otelContext,
  propagation,
  trace,
  isSpanContextValid,
  SpanStatusCode,
  type Context,
  type Span,
  type Link,
} from '@opentelemetry/api';
import type { Logger } from '../platform/logger.js';
import { crashPoint } from '../platform/crash.js';
import {
  DEFAULT_POLICIES,
  backoffMs,
  pivotIndex,
  validateDefinition,
  type EnginePolicies,
  type Json,
  type RetryPolicy,
  type SagaDefinition,
  type SagaFailure,
  type StepContext,
  type StepDefinition,
  type StepOutcome,
} from './definition.js';
import { isTerminal, LeaseLostError, type NewEvent, type SagaPatch, type SagaRecord, type SagaStore } from './model.js';

const tracer = trace.getTracer('ecommerce-sagas/saga');

/** How many sagas one process drives at most through recovery. */
const MAX_DRIVEN = 1_000;

/** Hooks for metrics; every method is optional. */
export interface SagaObserver {
  started?(saga: SagaRecord): void;
  finished?(saga: SagaRecord, durationMs: number): void;
  step?(step: string, phase: 'action' | 'compensation', durationMs: number, outcome: 'ok' | 'failed' | 'uncertain'): void;
  retry?(step: string, phase: 'action' | 'compensation'): void;
  recovered?(saga: SagaRecord): void;
}

export interface EngineOptions {
  store: SagaStore;
  logger: Logger;
  /** Identifies this process in leases; unique per process. */
  owner?: string;
  /** How long a lease lasts without renewal; another process resumes the saga after it. */
  leaseMs?: number;
  policies?: Partial<EnginePolicies>;
  observer?: SagaObserver;
  now?: () => number;
  random?: () => number;
}

export interface StartRequest<I> {
  id: string;
  input: I;
  idempotencyKey?: string;
}

type Attempt = { kind: 'ok'; result: Json } | { kind: 'failed'; code: string; message: string } | { kind: 'uncertain'; error: string };

class Stopped extends Error {
  readonly code = 'engine_stopping';
}

function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

function outcomeLabel(a: Attempt): string {
  return a.kind === 'ok' ? 'succeeded' : a.kind === 'failed' ? a.code : 'uncertain';
}

function spanIds(span: Span | undefined): { traceId: string | null; spanId: string | null } {
  const sc = span?.spanContext();
  return sc && isSpanContextValid(sc) ? { traceId: sc.traceId, spanId: sc.spanId } : { traceId: null, spanId: null };
}

/**
 * Drives sagas through their definitions, writing every transition to the store before acting on
 * it. Any process can pick up any unfinished saga whose lease has expired and carry it on.
 */
export class SagaEngine {
  readonly owner: string;
  private readonly store: SagaStore;
  private readonly logger: Logger;
  private readonly leaseMs: number;
  private readonly policies: EnginePolicies;
  private readonly observer: SagaObserver;
  private readonly now: () => number;
  private readonly random: () => number;
  // Definitions are generic over their input; the engine only passes inputs through.
  private readonly definitions = new Map<string, SagaDefinition<unknown>>();
  private readonly active = new Map<string, Promise<void>>();
  private readonly waiters = new Map<string, Set<(s: SagaRecord) => void>>();
  private readonly stop = new AbortController();
  private readonly deferred = new Map<string, { patch: SagaPatch; events: NewEvent[] }>();
  private timers: NodeJS.Timeout[] = [];

  constructor(opts: EngineOptions) {
    this.store = opts.store;
    this.logger = opts.logger;
    this.owner = opts.owner ?? `${os.hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
    this.leaseMs = opts.leaseMs ?? 15_000;
    this.policies = { ...DEFAULT_POLICIES, ...opts.policies };
    this.observer = opts.observer ?? {};
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
  }

  register<I>(def: SagaDefinition<I>): void {
    validateDefinition(def);
    this.definitions.set(def.name, def as SagaDefinition<unknown>);
  }

  definitionOf(name: string): SagaDefinition<unknown> | undefined {
    return this.definitions.get(name);
  }

  get stopping(): boolean {
    return this.stop.signal.aborted;
  }

  get inFlight(): number {
    return this.active.size;
  }

  /**
   * Makes the saga durable (SAGA_STARTED with its input and traceparent) and runs it in the
   * background. With an idempotency key already used, returns the existing saga instead.
   */
  async start<I extends Json>(defName: string, req: StartRequest<I>): Promise<{ saga: SagaRecord; created: boolean }> {
    if (this.stop.signal.aborted) throw new Stopped('the saga engine is shutting down');
    const def = this.definition(defName);
    const now = this.now();
    const carrier: Record<string, string> = {};
    propagation.inject(otelContext.active(), carrier);
    const saga: SagaRecord = {
      id: req.id,
      definition: def.name,
      version: def.version,
      status: 'RUNNING',
      stepIndex: 0,
      compIndex: -1,
      attempt: 0,
      input: req.input,
      results: {},
      failure: null,
      traceparent: carrier.traceparent ?? null,
      idempotencyKey: req.idempotencyKey ?? null,
      leaseOwner: this.owner,
      leaseExpiresAt: now + this.leaseMs,
      deadlineAt: now + this.policies.sagaDeadlineMs,
      createdAt: now,
      updatedAt: now,
    };
    const res = await this.store.create(saga, {
      type: 'SAGA_STARTED',
      data: { input: req.input, traceparent: saga.traceparent, definition: def.name, version: def.version },
      ...spanIds(trace.getActiveSpan()),
    });
    if (!res.created) {
      const existing = this.store.get(res.existingId);
      if (!existing) throw new Error(`saga for idempotency key vanished: ${res.existingId}`);
      return { saga: existing, created: false };
    }
    this.observer.started?.(saga);
    this.launch(saga, otelContext.active(), []);
    return { saga, created: true };
  }

  /** Resolves with the saga once it is terminal, or with its current state after `timeoutMs`. */
  waitFor(id: string, timeoutMs: number): Promise<SagaRecord | undefined> {
    // A saga this process drives will report its end; only others need a read first.
    if (!this.active.has(id) || timeoutMs <= 0) {
      const current = this.store.get(id);
      if (!current || isTerminal(current.status) || timeoutMs <= 0) return Promise.resolve(current);
    }
    return new Promise((resolve) => {
      const set = this.waiters.get(id) ?? new Set();
      this.waiters.set(id, set);
      const done = (s: SagaRecord | undefined) => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0) this.waiters.delete(id);
        resolve(s);
      };
      const timer = setTimeout(() => done(this.store.get(id)), timeoutMs);
      set.add(done);
    });
  }

  /**
   * Claims unfinished sagas whose lease expired (a crashed or stopped owner) and resumes them, at
   * most as many as keep this process under MAX_DRIVEN sagas at once: a large backlog drains
   * tick by tick instead of all at once.
   */
  recoverOnce(limit = Math.max(0, MAX_DRIVEN - this.active.size)): number {
    if (this.stop.signal.aborted || limit === 0) return 0;
    const claimed = this.store.claimExpired(this.owner, this.now(), this.leaseMs, limit);
    const recoverySpan = claimed.length > 0 ? tracer.startSpan('saga.recovery', { attributes: { 'saga.count': claimed.length } }) : undefined;
    for (const saga of claimed) {
      if (this.active.has(saga.id)) continue;
      if (!this.definitions.has(saga.definition)) {
        this.logger.error({ saga_id: saga.id, definition: saga.definition }, 'cannot resume saga: unknown definition');
        continue;
      }
      this.logger.warn({ saga_id: saga.id, status: saga.status, step_index: saga.stepIndex, comp_index: saga.compIndex }, 'resuming saga');
      this.observer.recovered?.(saga);
      const parent = saga.traceparent ? propagation.extract(otelContext.active(), { traceparent: saga.traceparent }) : otelContext.active();
      const links: Link[] = recoverySpan ? [{ context: recoverySpan.spanContext() }] : [];
      this.launch(saga, parent, links, true);
    }
    recoverySpan?.end();
    return claimed.length;
  }

  /** Recovery now and every `intervalMs`, and lease renewal for the sagas this process drives. */
  startBackground(intervalMs = Math.max(1_000, Math.floor(this.leaseMs / 3))): void {
    this.recoverOnce();
    const tick = setInterval(() => {
      try {
        if (this.active.size > 0) this.store.renewLeases(this.owner, [...this.active.keys()], this.now() + this.leaseMs);
        this.recoverOnce();
      } catch (err) {
        this.logger.error({ err }, 'saga recovery tick failed');
      }
    }, intervalMs);
    tick.unref();
    this.timers.push(tick);
  }

  /**
   * Stops taking new sagas, lets each running one finish the call it is making and record its
   * outcome, then gives up the leases so the next process resumes them at once.
   */
  async shutdown(graceMs = 5_000): Promise<void> {
    this.stop.abort();
    this.timers.forEach(clearInterval);
    this.timers = [];
    const all = Promise.allSettled([...this.active.values()]);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
    const left = [...this.active.keys()];
    if (left.length > 0) this.logger.warn({ sagas: left.length }, 'sagas still in a call at shutdown; their leases will expire');
  }

  private definition(name: string): SagaDefinition<unknown> {
    const def = this.definitions.get(name);
    if (!def) throw new Error(`unknown saga definition ${name}`);
    return def;
  }

  private launch(saga: SagaRecord, parent: Context, links: Link[], resumed = false): void {
    const def = this.definition(saga.definition);
    const span = tracer.startSpan(
      `saga ${def.name}`,
      { links, attributes: { 'saga.id': saga.id, 'saga.definition': def.name, 'saga.resumed': resumed, 'order.id': saga.id } },
      parent,
    );
    const ctx = trace.setSpan(parent, span);
    const run = otelContext
      .with(ctx, () => this.drive(def, saga, ctx, resumed))
      .then(
        (final) => {
          if (final && isTerminal(final.status)) {
            span.setAttribute('saga.status', final.status);
            if (final.status === 'PARKED') span.setStatus({ code: SpanStatusCode.ERROR, message: 'parked' });
          }
        },
        (err: unknown) => {
          span.recordException(err instanceof Error ? err : new Error(String(err)));
          if (err instanceof LeaseLostError) this.logger.warn({ saga_id: saga.id }, 'lost the lease; another process drives this saga');
          else if (!(err instanceof Stopped)) this.logger.error({ err, saga_id: saga.id }, 'saga driver failed; it will be recovered');
        },
      )
      .finally(() => {
        span.end();
        this.active.delete(saga.id);
        this.deferred.delete(saga.id);
        if (this.stop.signal.aborted && !isTerminal(this.store.get(saga.id)?.status ?? 'COMPLETED')) {
          // Checkpoint: the saga's state is durable; give the lease up so a restart resumes it at once.
          this.store.releaseLeases(this.owner, [saga.id]);
        }
      });
    this.active.set(saga.id, run);
  }

  private async drive(def: SagaDefinition<unknown>, initial: SagaRecord, ctx: Context, resumed: boolean): Promise<SagaRecord> {
    let s = initial;
    const log = this.logger.child({ saga_id: s.id, order_id: s.id });
    if (resumed) s = await this.write(s, {}, [{ type: 'SAGA_RESUMED', data: { owner: this.owner }, ...spanIds(trace.getSpan(ctx)) }]);
    while (!isTerminal(s.status)) {
      if (this.stop.signal.aborted) {
        if (this.deferred.has(s.id)) await this.write(s, {}, []);
        throw new Stopped('checkpointed for shutdown');
      }
      s = s.status === 'RUNNING' ? await this.forward(def, s, ctx, log) : await this.compensate(def, s, ctx, log);
    }
    this.observer.finished?.(s, this.now() - s.createdAt);
    const level = s.status === 'PARKED' ? 'error' : 'info';
    log[level]({ status: s.status, failure: s.failure ?? undefined }, `saga ${s.status.toLowerCase()}`);
    this.waiters.get(s.id)?.forEach((w) => w(s));
    return s;
  }

  /**
   * Durably applies a transition, then returns the state it produced. A deferred transition (a
   * step's success) is held in memory and committed together with the saga's next one (the next
   * step's intent, or the end): the outcome is still durable before any further effect, at half
   * the commits. Lost in a crash, it costs only a replay of the step under the same key.
   */
  private async write(s: SagaRecord, patch: SagaPatch, events: NewEvent[], defer = false): Promise<SagaRecord> {
    const held = this.deferred.get(s.id);
    if (defer) {
      this.deferred.set(s.id, { patch: { ...held?.patch, ...patch }, events: [...(held?.events ?? []), ...events] });
      return { ...s, ...patch };
    }
    if (held) {
      this.deferred.delete(s.id);
      patch = { ...held.patch, ...patch };
      events = [...held.events, ...events];
    }
    await this.store.append(s.id, this.owner, patch, events);
    return { ...s, ...patch, updatedAt: this.now() };
  }

  private async forward(def: SagaDefinition<unknown>, s: SagaRecord, ctx: Context, log: Logger): Promise<SagaRecord> {
    const i = s.stepIndex;
    const step = def.steps[i];
    if (!step) return this.write(s, { status: 'COMPLETED', leaseOwner: null, leaseExpiresAt: 0 }, [{ type: 'SAGA_COMPLETED', ...spanIds(trace.getSpan(ctx)) }]);
    const pivot = pivotIndex(def);
    const afterPivot = pivot >= 0 && i > pivot;
    if (!afterPivot && this.now() >= s.deadlineAt) {
      const failure = { step: step.name, code: 'saga_deadline_exceeded', message: 'the saga ran past its deadline' };
      log.warn({ step: step.name }, 'saga deadline exceeded; compensating');
      // An attempt already made may have had its effect: compensate the step too.
      return this.write(s, { status: 'COMPENSATING', compIndex: s.attempt > 0 ? i : i - 1, attempt: 0, failure }, [
        { type: 'STEP_FAILED', step: step.name, attempt: s.attempt, error: failure.message, retryable: false, data: { code: failure.code } },
      ]);
    }
    const attempt = s.attempt + 1;
    const policy = this.policy(step, 'action', afterPivot);
    return this.inStepSpan(ctx, s.id, step, 'action', attempt, async (span) => {
      const ids = spanIds(span);
      crashPoint(`saga.${step.name}.before_intent`);
      s = await this.write(s, { attempt }, [{ type: 'STEP_STARTED', step: step.name, attempt, ...ids }]);
      crashPoint(`saga.${step.name}.after_intent`);
      const outcome = await this.attempt(step, 'action', s, attempt, log);
      span.setAttribute('saga.outcome', outcomeLabel(outcome));
      crashPoint(`saga.${step.name}.before_outcome`);
      let next: SagaRecord;
      if (outcome.kind === 'ok') {
        next = await this.write(
          s,
          { stepIndex: i + 1, attempt: 0, results: { ...s.results, [step.name]: outcome.result } },
          [{ type: 'STEP_SUCCEEDED', step: step.name, attempt, data: outcome.result, ...ids }],
          true,
        );
      } else if (outcome.kind === 'failed') {
        const failure: SagaFailure = { step: step.name, code: outcome.code, message: outcome.message };
        const failed: NewEvent = { type: 'STEP_FAILED', step: step.name, attempt, error: outcome.message, retryable: false, data: { code: outcome.code }, ...ids };
        if (afterPivot) {
          log.error({ step: step.name, code: outcome.code }, 'step after the pivot refused; parking the saga');
          next = await this.write(s, { status: 'PARKED', failure, leaseOwner: null, leaseExpiresAt: 0 }, [
            failed,
            { type: 'SAGA_PARKED', step: step.name, error: outcome.message, ...ids },
          ]);
        } else {
          log.info({ step: step.name, code: outcome.code }, 'step failed; compensating');
          // A definite failure had no effect: compensation starts with the step before it.
          next = await this.write(s, { status: 'COMPENSATING', compIndex: i - 1, attempt: 0, failure }, [failed]);
        }
      } else {
        const failed: NewEvent = { type: 'STEP_FAILED', step: step.name, attempt, error: outcome.error, retryable: true, ...ids };
        const delay = backoffMs(policy, attempt, this.random);
        const attemptsLeft = attempt < policy.maxAttempts;
        const timeLeft = afterPivot || this.now() + delay < s.deadlineAt;
        if (attemptsLeft && timeLeft) {
          this.observer.retry?.(step.name, 'action');
          log.warn({ step: step.name, attempt, error: outcome.error, backoff_ms: delay }, 'step outcome unknown; retrying');
          next = await this.write(s, {}, [failed]);
          await this.sleep(delay);
        } else {
          const code = attemptsLeft ? 'saga_deadline_exceeded' : 'participant_unavailable';
          const failure: SagaFailure = { step: step.name, code, message: outcome.error };
          log.error({ step: step.name, attempt, error: outcome.error }, 'step retries exhausted; compensating it and the steps before it');
          next = await this.write(s, { status: 'COMPENSATING', compIndex: i, attempt: 0, failure }, [failed]);
        }
      }
      crashPoint(`saga.${step.name}.after_outcome`);
      return next;
    });
  }

  private async compensate(def: SagaDefinition<unknown>, s: SagaRecord, ctx: Context, log: Logger): Promise<SagaRecord> {
    let j = s.compIndex;
    while (j >= 0 && !def.steps[j]?.compensate) j--;
    const step = j >= 0 ? def.steps[j] : undefined;
    if (!step) {
      return this.write(s, { status: 'COMPENSATED', compIndex: -1, leaseOwner: null, leaseExpiresAt: 0 }, [
        { type: 'SAGA_COMPENSATED', data: s.failure ? { code: s.failure.code, step: s.failure.step } : null, ...spanIds(trace.getSpan(ctx)) },
      ]);
    }
    const attempt = s.attempt + 1;
    const policy = this.policy(step, 'compensation', false);
    return this.inStepSpan(ctx, s.id, step, 'compensation', attempt, async (span) => {
      const ids = spanIds(span);
      crashPoint(`saga.${step.name}.undo.before_intent`);
      s = await this.write(s, { compIndex: j, attempt }, [{ type: 'COMPENSATION_STARTED', step: step.name, attempt, ...ids }]);
      crashPoint(`saga.${step.name}.undo.after_intent`);
      const outcome = await this.attempt(step, 'compensation', s, attempt, log);
      span.setAttribute('saga.outcome', outcomeLabel(outcome));
      crashPoint(`saga.${step.name}.undo.before_outcome`);
      let next: SagaRecord;
      if (outcome.kind === 'ok') {
        next = await this.write(s, { compIndex: j - 1, attempt: 0 }, [
          { type: 'COMPENSATION_SUCCEEDED', step: step.name, attempt, data: outcome.result, ...ids },
        ], true);
      } else {
        const error = outcome.kind === 'failed' ? outcome.message : outcome.error;
        const retryable = outcome.kind === 'uncertain';
        const failed: NewEvent = { type: 'COMPENSATION_FAILED', step: step.name, attempt, error, retryable, ...ids };
        const delay = backoffMs(policy, attempt, this.random);
        if (retryable && attempt < policy.maxAttempts) {
          this.observer.retry?.(step.name, 'compensation');
          log.warn({ step: step.name, attempt, error, backoff_ms: delay }, 'compensation outcome unknown; retrying');
          next = await this.write(s, {}, [failed]);
          await this.sleep(delay);
        } else {
          log.error({ step: step.name, attempt, error }, 'compensation cannot complete; parking the saga for an operator');
          next = await this.write(s, { status: 'PARKED', leaseOwner: null, leaseExpiresAt: 0 }, [
            failed,
            { type: 'SAGA_PARKED', step: step.name, error, ...ids },
          ]);
        }
      }
      crashPoint(`saga.${step.name}.undo.after_outcome`);
      return next;
    });
  }

  private policy(step: StepDefinition<unknown>, phase: 'action' | 'compensation', afterPivot: boolean): RetryPolicy {
    if (phase === 'compensation') return { ...this.policies.compensation, ...step.compensationRetry };
    if (afterPivot) return { ...this.policies.forward, ...step.retry, maxAttempts: Infinity };
    return { ...this.policies.action, ...step.retry };
  }

  private inStepSpan<T>(ctx: Context, sagaId: string, step: StepDefinition<unknown>, phase: 'action' | 'compensation', attempt: number, fn: (span: Span) => Promise<T>): Promise<T> {
    const name = phase === 'action' ? `saga.step ${step.name}` : `saga.compensate ${step.name}`;
    return tracer.startActiveSpan(
      name,
      { attributes: { 'saga.id': sagaId, 'order.id': sagaId, 'saga.step': step.name, 'saga.phase': phase, 'saga.attempt': attempt } },
      ctx,
      async (span) => {
        try {
          return await fn(span);
        } finally {
          span.end();
        }
      },
    );
  }

  /** One attempt under the per-attempt deadline; anything but a definite answer is uncertain. */
  private async attempt(step: StepDefinition<unknown>, phase: 'action' | 'compensation', s: SagaRecord, attempt: number, log: Logger): Promise<Attempt> {
    const fn = phase === 'action' ? step.action : step.compensate;
    if (!fn) return { kind: 'ok', result: null };
    const timeoutMs = step.timeoutMs ?? this.policies.stepTimeoutMs;
    const abort = new AbortController();
    const ctx: StepContext<unknown> = {
      sagaId: s.id,
      step: step.name,
      attempt,
      idempotencyKey: phase === 'action' ? `${s.id}:${step.name}` : `${s.id}:${step.name}:undo`,
      input: s.input,
      results: s.results,
      failure: s.failure ?? undefined,
      timeoutMs,
      signal: abort.signal,
    };
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<Attempt>((resolve) => {
      timer = setTimeout(() => {
        abort.abort();
        resolve({ kind: 'uncertain', error: `no answer within ${timeoutMs} ms` });
      }, timeoutMs + 50);
    });
    const call = fn(ctx).then(
      (o: StepOutcome): Attempt => (o.ok ? { kind: 'ok', result: o.result ?? null } : { kind: 'failed', code: o.code, message: o.message }),
      (err: unknown): Attempt => {
        log.debug({ err, step: step.name, phase }, 'attempt failed');
        return { kind: 'uncertain', error: errorText(err) };
      },
    );
    const result = await Promise.race([call, deadline]);
    clearTimeout(timer);
    this.observer.step?.(step.name, phase, performance.now() - started, result.kind);
    return result;
  }

  private sleep(ms: number): Promise<void> {
    const signal = this.stop.signal;
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const done = () => {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });
  }
}
