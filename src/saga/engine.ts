/**
 * The driver: runs sagas through their definitions. It asks the pure transition module what to
 * record and do next, writes that to the saga log before acting on it, and runs every attempt
 * through the interceptor chain. Any process sharing the log can resume a saga whose lease expired.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import {
  context as otelContext,
  propagation,
  trace,
  isSpanContextValid,
  ROOT_CONTEXT,
  SpanStatusCode,
  type Link,
} from '@opentelemetry/api';
import type { Logger } from '../platform/telemetry/logger.js';
import {
  currentStepOf,
  DEFAULT_POLICIES,
  failureCodeOf,
  isDefiniteError,
  SUBJECT_MAX,
  validateDefinition,
  type EnginePolicies,
  type Json,
  type SagaDefinition,
  type StepContext,
  type StepResults,
} from './definition.js';
import {
  InterceptorContractError,
  runChain,
  type AttemptContext,
  type RunCause,
  type SagaInterceptor,
  type SagaOp,
  type StepOp,
  type Tags,
} from './interceptors.js';
import {
  isTerminal,
  LeaseLostError,
  SagaLogError,
  type NewEvent,
  type SagaLog,
  type EventPage,
  type SagaEvent,
  type SagaPatch,
  type SagaReads,
  type SagaRecord,
} from './model.js';
import {
  MigrationError,
  planMigration,
  refName,
  strandedVersions,
  versionViews,
  VersionsStrandedError,
  type DefinitionRef,
  type MigrationItem,
  type MigrationReport,
  type MigrationRequest,
  type VersionView,
} from './versions.js';
import {
  decideAction,
  normalizeNote,
  OperatorActionError,
  priorActions,
  type OperatorActionRequest,
  type OperatorActionResult,
} from './operator.js';
import {
  fromFenceOutcome,
  fromStepOutcome,
  idempotencyKey,
  plan,
  settle,
  type AttemptOutcome,
  type PlannedAttempt,
  type Settlement,
  type Transition,
} from './transitions.js';

/** How many sagas one process drives at most through recovery. */
const MAX_DRIVEN = 1_000;

const NO_STEPS = { added: [], replayed: [], unrun: [] } as const satisfies Partial<MigrationItem>;

/** How many times an operator's action is decided again when the saga changed under it. */
const MAX_ACT_ROUNDS = 5;

const tracer = trace.getTracer('ecommerce-sagas/saga');

export interface EngineOptions {
  log: SagaLog;
  logger: Logger;
  /** Identifies this process in leases; unique per process. */
  owner?: string;
  /** How long a lease lasts without renewal; another process resumes the saga after it. */
  leaseMs?: number;
  policies?: Partial<EnginePolicies>;
  /** Outermost first. */
  interceptors?: readonly SagaInterceptor[];
  now?: () => number;
  random?: () => number;
}

export interface StartRequest<I> {
  id: string;
  input: I;
  idempotencyKey?: string;
  /**
   * Refuse (EngineOverloadedError, nothing stored) when this engine already drives or is starting
   * this many sagas. The slot is taken when `start` is called, before its first await, so
   * concurrent starts cannot overshoot the cap.
   */
  maxInFlight?: number;
}

/** A saga of a known definition: its input and its steps' results typed as the definition types them. */
export type TypedSaga<I, R extends StepResults = StepResults> = Omit<SagaRecord, 'input' | 'results'> & {
  readonly input: I;
  readonly results: Readonly<Partial<R>>;
};

/**
 * A registered definition's typed door (what `register` returns): start its sagas and read them
 * with their input's type, so that no caller casts. A read of a saga of another definition is
 * undefined, as is one that does not exist.
 */
export interface SagaHandle<I, R extends StepResults = StepResults> {
  readonly name: string;
  /** The version this handle starts sagas on (a saga read through it may be of any version). */
  readonly version: number;
  start(req: StartRequest<I>): Promise<{ saga: TypedSaga<I, R>; created: boolean }>;
  get(id: string): Promise<TypedSaga<I, R> | undefined>;
  getByIdempotencyKey(key: string): Promise<TypedSaga<I, R> | undefined>;
  /** The saga once it is terminal, or as it stands after `timeoutMs` or when `signal` aborts (see SagaEngine.waitFor). */
  waitFor(id: string, timeoutMs: number, signal?: AbortSignal): Promise<TypedSaga<I, R> | undefined>;
}

/** A page of a saga's timeline, with the names people know its steps by. */
export interface Timeline {
  saga: SagaRecord;
  events: SagaEvent[];
  /** The step's display name (e.g. an older system's), when its definition gives one. */
  displayName: (step: string | null) => string | undefined;
  /** The `afterSeq` of the next page, or null when this page was not full. */
  nextAfterSeq: number | null;
}

export class EngineStoppingError extends Error {
  readonly code = 'engine_stopping';
}

export class EngineOverloadedError extends Error {
  readonly code = 'engine_overloaded';
}

/** This process no longer holds the saga's lease: another process drives it now. */
class Abandoned extends Error {
  readonly code = 'abandoned';
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function activeSpanIds(): { traceId: string | null; spanId: string | null } {
  const sc = trace.getActiveSpan()?.spanContext();
  return sc && isSpanContextValid(sc) ? { traceId: sc.traceId, spanId: sc.spanId } : { traceId: null, spanId: null };
}

/** `order.id` → `order_id`: the definition's tags as log fields. */
function logFields(tags: Tags): Record<string, string | number | boolean> {
  return Object.fromEntries(Object.entries(tags).map(([k, v]) => [k.replace(/\./g, '_'), v]));
}

interface Driven {
  run: Promise<void>;
  /** Aborted when this process must stop driving the saga (shutdown, or its lease moved). */
  stop: AbortController;
  /** A step's success held back to be committed with the saga's next transition. */
  deferred: Transition | undefined;
  def: SagaDefinition<unknown>;
  /** The run's first attempt when the create committed its intent (see `creation`): made next, its intent not written again. */
  begun: PlannedAttempt | undefined;
}

/** What every write checks first: this process still drives the saga (else it throws Abandoned). */
function assertDriving(d: Driven): void {
  if (d.stop.signal.reason instanceof Abandoned) throw d.stop.signal.reason;
}

/**
 * The patch with the saga's current step name when it changes (the log indexes it; it knows no
 * step names). `s` is the row as the log holds it: a deferred patch is not written yet.
 */
function withCurrentStep(def: SagaDefinition<unknown> | undefined, s: SagaRecord, patch: SagaPatch): SagaPatch {
  if (!def) return patch;
  const step = currentStepOf(def, { ...s, ...patch });
  return step === s.currentStep ? patch : { ...patch, currentStep: step };
}

/**
 * What a saga's create commits, by the engine's own rule: its row and SAGA_STARTED, and, when the
 * saga's first move is an attempt (plan's answer for the row as created, on the version it starts
 * on), that attempt's intent too: the row with the intent's patch, and its STEP_STARTED after
 * SAGA_STARTED. The first participant call then follows one commit, not two, and its intent is
 * still durable before it. `first` is that attempt (the run makes it next, without writing its
 * intent again); undefined when the first move is a transition (a saga already past its deadline,
 * or one with no step to run), which the run writes as any other.
 */
export function creation(
  def: SagaDefinition<unknown>,
  saga: SagaRecord,
  started: NewEvent,
  policies: EnginePolicies,
  now: number,
): { saga: SagaRecord; events: NewEvent[]; first: PlannedAttempt | undefined } {
  const next = plan(def, saga, policies, now);
  if (next.kind !== 'attempt') return { saga, events: [started], first: undefined };
  const patch = withCurrentStep(def, saga, next.intent.patch);
  return { saga: { ...saga, ...patch }, events: [started, ...next.intent.events], first: next };
}

export class SagaEngine {
  readonly owner: string;
  private readonly log: SagaLog;
  private readonly logger: Logger;
  private readonly leaseMs: number;
  private readonly policies: EnginePolicies;
  /** The interceptors' two members, outermost first, bound once. */
  private readonly chains: {
    saga: NonNullable<SagaInterceptor['saga']>[];
    step: NonNullable<SagaInterceptor['step']>[];
  };
  private readonly now: () => number;
  private readonly random: () => number;
  // Definitions are generic over their input; the engine only passes inputs through. Keyed by
  // refName (`place_order@2`): a saga runs on the version it started on.
  private readonly definitions = new Map<string, SagaDefinition<unknown>>();
  /** Per definition name, the version new sagas start on (`register`'s `startsNew`, else the newest). */
  private readonly startVersions = new Map<string, { version: number; explicit: boolean }>();
  private readonly driven = new Map<string, Driven>();
  private readonly waiters = new Map<string, Set<(s: SagaRecord | undefined) => void>>();
  private readonly stopping_ = new AbortController();
  private readonly unsubscribe: () => void;
  private timers: NodeJS.Timeout[] = [];
  private logUnavailable = false;
  /**
   * The saga log's clock minus this process's (ms), measured by syncClock: deadlines are stamped
   * and judged by the log's clock, as leases are, so gateways whose clocks disagree agree on them.
   */
  private clockOffset = 0;

  /** Reads of sagas and their events: the only way to them outside the engine (no writes, no leases). */
  readonly reads: SagaReads;

  constructor(opts: EngineOptions) {
    this.log = opts.log;
    const log = opts.log;
    this.reads = {
      get: (id) => log.get(id),
      getByIdempotencyKey: (key) => log.getByIdempotencyKey(key),
      events: (id, page) => log.events(id, page),
      list: (q) => log.list(q),
      parked: (limit) => log.parked(limit),
      countByStatus: () => log.countByStatus(),
      liveStats: (stuckAfterMs) => log.liveStats(stuckAfterMs),
    };
    this.logger = opts.logger;
    this.owner = opts.owner ?? `${os.hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
    this.leaseMs = opts.leaseMs ?? 15_000;
    this.policies = { ...DEFAULT_POLICIES, ...opts.policies };
    const is = opts.interceptors ?? [];
    this.chains = {
      saga: is.flatMap((i) => (i.saga ? [i.saga.bind(i)] : [])),
      step: is.flatMap((i) => (i.step ? [i.step.bind(i)] : [])),
    };
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
    // Any process sharing the log may finish a saga somebody here waits for.
    this.unsubscribe = this.log.onFinished((id) => {
      // Its waiters are woken by the run here, if any (with the final record), or read it.
      if (this.waiters.has(id)) this.afterRun(id, () => void this.wake(id));
    });
  }

  /**
   * Registers one version of a definition; several versions of one definition may be registered,
   * and each saga is driven by the version it started on. New sagas started by name (`start`)
   * begin on the version registered with `startsNew`, else on the newest; the handle returned
   * starts its own version.
   */
  register<I, R extends StepResults = StepResults>(
    def: SagaDefinition<I, R>,
    opts: { startsNew?: boolean } = {},
  ): SagaHandle<I, R> {
    // Stored untyped: the engine only passes inputs and results through (the handle types them).
    const stored = def as unknown as SagaDefinition<unknown>;
    validateDefinition(stored);
    if (!Number.isInteger(def.version) || def.version < 1)
      throw new Error(`saga ${def.name}: version must be an integer >= 1, not ${def.version}`);
    const ref = refName({ definition: def.name, version: def.version });
    if (this.definitions.has(ref)) throw new Error(`saga ${ref} is registered twice`);
    this.definitions.set(ref, stored);
    const starts = this.startVersions.get(def.name);
    if (opts.startsNew) {
      if (starts?.explicit) throw new Error(`saga ${def.name}: two versions are marked startsNew`);
      this.startVersions.set(def.name, { version: def.version, explicit: true });
    } else if (!starts || (!starts.explicit && def.version > starts.version)) {
      this.startVersions.set(def.name, { version: def.version, explicit: false });
    }
    // The one place a stored input gets its definition's type: a saga of this definition was
    // made by this handle's start (or by an earlier process's, from the same definition).
    const own = (s: SagaRecord | undefined): TypedSaga<I, R> | undefined =>
      s && s.definition === def.name ? (s as unknown as TypedSaga<I, R>) : undefined;
    return {
      name: def.name,
      version: def.version,
      start: async (req) => {
        const r = await this.startOn(stored, req as unknown as StartRequest<Json>);
        return { saga: r.saga as unknown as TypedSaga<I, R>, created: r.created };
      },
      get: async (id) => own(await this.log.get(id)),
      getByIdempotencyKey: async (key) => own(await this.log.getByIdempotencyKey(key)),
      waitFor: async (id, timeoutMs, signal) => own(await this.waitFor(id, timeoutMs, signal)),
    };
  }

  /**
   * A page of a saga's timeline (`limit` events after `afterSeq`), or undefined when there is no
   * such saga. A saga retried for long has a long timeline: it is read in pages.
   */
  async timeline(id: string, page: Required<EventPage>): Promise<Timeline | undefined> {
    const saga = await this.log.get(id);
    if (!saga) return undefined;
    const events = await this.log.events(id, page);
    const names = new Map(
      (this.definitionOf(saga.definition, saga.version)?.steps ?? []).map((s) => [s.name, s.displayName]),
    );
    // A full page may have a next one; asking for it costs one read that may come back empty.
    const nextAfterSeq = events.length === page.limit ? (events.at(-1)?.seq ?? null) : null;
    return { saga, events, displayName: (step) => (step ? names.get(step) : undefined), nextAfterSeq };
  }

  /** A registered version of a definition; without a version, the one new sagas start on. */
  definitionOf(name: string, version?: number): SagaDefinition<unknown> | undefined {
    const v = version ?? this.startVersions.get(name)?.version;
    return v === undefined ? undefined : this.definitions.get(refName({ definition: name, version: v }));
  }

  /** The definitions' versions this process drives. */
  registeredRefs(): DefinitionRef[] {
    return this.registered().map((d) => ({ definition: d.name, version: d.version }));
  }

  /** The retry policies, deadlines and timeouts this engine runs sagas with (read-only: tooling explains waits by them). */
  get policiesInEffect(): Readonly<EnginePolicies> {
    return this.policies;
  }

  /** Every registered definition (each version), in the order registered. */
  registered(): SagaDefinition<unknown>[] {
    return [...this.definitions.values()];
  }

  get stopping(): boolean {
    return this.stopping_.signal.aborted;
  }

  /** Sagas this engine drives, and those being started (their create not yet committed). */
  get inFlight(): number {
    return this.driven.size + this.starting;
  }

  private starting = 0;

  /**
   * Makes the saga durable (SAGA_STARTED with its input and traceparent, and its first step's
   * intent in the same commit: `creation`) and runs it in the background. With an idempotency key
   * already used, returns the existing saga instead (nothing is written or run then).
   */
  async start<I extends Json>(defName: string, req: StartRequest<I>): Promise<{ saga: SagaRecord; created: boolean }> {
    const def = this.definitionOf(defName);
    if (!def) throw new Error(`unknown saga definition ${defName}`);
    return this.startOn(def, req);
  }

  private async startOn<I extends Json>(
    def: SagaDefinition<unknown>,
    req: StartRequest<I>,
  ): Promise<{ saga: SagaRecord; created: boolean }> {
    if (this.stopping) throw new EngineStoppingError('the saga engine is shutting down');
    if (req.maxInFlight !== undefined && this.inFlight >= req.maxInFlight) {
      throw new EngineOverloadedError(`this engine drives ${this.inFlight} sagas already (cap ${req.maxInFlight})`);
    }
    this.starting++;
    try {
      return await this.create(def, req);
    } finally {
      this.starting--;
    }
  }

  private async create<I extends Json>(
    def: SagaDefinition<unknown>,
    req: StartRequest<I>,
  ): Promise<{ saga: SagaRecord; created: boolean }> {
    const now = this.logNow();
    const traceparent = currentTraceparent();
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
      traceparent,
      idempotencyKey: req.idempotencyKey ?? null,
      leaseOwner: this.owner,
      leaseExpiresAt: 0,
      deadlineAt: now + this.policies.sagaDeadlineMs,
      createdAt: now,
      updatedAt: now,
      subject: null,
      currentStep: null,
    };
    const subject = def.subject?.({ id: req.id, input: req.input });
    saga.subject = typeof subject === 'string' && subject !== '' ? subject.slice(0, SUBJECT_MAX) : null;
    saga.currentStep = currentStepOf(def, saga);
    const started: NewEvent = {
      type: 'SAGA_STARTED',
      data: { input: req.input, traceparent, definition: def.name, version: def.version },
    };
    const created = creation(def, saga, started, this.policies, now);
    // Both events are written by the span that creates the saga (the request's): the first
    // attempt's span does not exist yet when its intent is committed.
    const ids = activeSpanIds();
    const events = created.events.map((e) => ({ ...e, ...ids }));
    const res = await this.log.create(created.saga, events, this.leaseMs);
    if (!res.created) {
      const existing = await this.log.get(res.existingId);
      if (!existing) throw new Error(`saga for idempotency key vanished: ${res.existingId}`);
      return { saga: existing, created: false };
    }
    this.launch(res.saga, 'started', created.first);
    return { saga: res.saga, created: true };
  }

  /**
   * The one way to wait for a saga: resolves with it once it is terminal, or with its current
   * state after `timeoutMs`, when `signal` aborts (a server closing its connections) or when this
   * engine shuts down, whichever comes first and whichever process drives it (the log tells every
   * process sharing it when a saga ends). Undefined when it does not exist or cannot be read then.
   */
  async waitFor(id: string, timeoutMs: number, signal?: AbortSignal): Promise<SagaRecord | undefined> {
    if (timeoutMs <= 0 || signal?.aborted) return this.log.get(id);
    return new Promise((resolve) => {
      const set = this.waiters.get(id) ?? new Set();
      this.waiters.set(id, set);
      const done = (s: SagaRecord | undefined) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', early);
        set.delete(done);
        if (set.size === 0) this.waiters.delete(id);
        resolve(s);
      };
      // A log that cannot be read at the end leaves the caller with the state it already has.
      const early = () => void this.log.get(id).then(done, () => done(undefined));
      const timer = setTimeout(early, timeoutMs);
      signal?.addEventListener('abort', early, { once: true });
      set.add(done);
      // Registered before this read: an end committed in between is seen by one or the other.
      const read = () =>
        void this.log.get(id).then(
          (s) => {
            if (!s || isTerminal(s.status)) done(s);
          },
          (err: unknown) =>
            this.logger.debug({ err, saga_id: id }, 'could not read a saga being waited for; waiting on'),
        );
      this.afterRun(id, () => set.has(done) && read());
    });
  }

  /**
   * Runs `fn` now, or, for a saga this engine drives, once its run has ended: the run wakes the
   * saga's waiters with its final record, so a read is needed only if it ended without doing so
   * (it stopped before the end another process wrote).
   */
  private afterRun(id: string, fn: () => void): void {
    const d = this.driven.get(id);
    if (d) void d.run.then(fn, fn);
    else fn();
  }

  private async wake(id: string, known?: SagaRecord): Promise<void> {
    if (known === undefined && !this.waiters.has(id)) return;
    try {
      const s = known ?? (await this.log.get(id));
      if (s && isTerminal(s.status)) this.waiters.get(id)?.forEach((w) => w(s));
    } catch (err) {
      // The waiter's own timeout reads the saga again.
      this.logger.debug({ err, saga_id: id }, 'could not read a finished saga for its waiters');
    }
  }

  /**
   * An operator's action on a saga (retry, compensate, resolve), as an engine transition: the
   * pure decision (decideAction) written through the log's takeOver, conditional on the state it
   * was decided on, with an OPERATOR_ACTION event `{action, action_id, actor, note}` carrying the
   * ids of a `saga.operator_action` span (linked to the saga's own trace). A retried or
   * compensated saga is then driven by this engine to a terminal state; whoever drove it before
   * (this engine, or another sharing the log) stops at its next write. Idempotent by
   * `req.actionId` within the saga. Refusals are OperatorActionError (saga_not_found,
   * action_not_allowed, note_required, action_id_reused); nothing is written then.
   */
  async act(req: OperatorActionRequest): Promise<OperatorActionResult> {
    if (this.stopping) throw new EngineStoppingError('the saga engine is shutting down');
    const op: SagaOp & { kind: 'operator_action' } = { kind: 'operator_action', request: req };
    await runChain<SagaOp>(this.chains.saga, op, async () => {
      op.result = await this.applyAction(req);
    });
    if (!op.result) throw new InterceptorContractError('an interceptor answered an operator action');
    return op.result;
  }

  private async applyAction(req: OperatorActionRequest): Promise<OperatorActionResult> {
    const first = await this.log.get(req.sagaId);
    const stored = first?.traceparent
      ? trace.getSpanContext(propagation.extract(ROOT_CONTEXT, { traceparent: first.traceparent }))
      : undefined;
    const links: Link[] = stored && isSpanContextValid(stored) ? [{ context: stored }] : [];
    const attributes = {
      'saga.id': req.sagaId,
      'saga.operator.action': String(req.action),
      'saga.operator.actor': req.actor,
      'saga.operator.action_id': req.actionId,
    };
    return tracer.startActiveSpan('saga.operator_action', { links, attributes }, async (span) => {
      const ids = activeSpanIds();
      const fields = {
        saga_id: req.sagaId,
        action: req.action,
        actor: req.actor,
        action_id: req.actionId,
        trace_id: ids.traceId ?? undefined,
        span_id: ids.spanId ?? undefined,
      };
      let stopped: Driven | undefined;
      try {
        // A takeOver that finds the row changed (a driver moved it meanwhile, or a concurrent
        // action) decides again on the new state: a replay of the same action id, or a refusal.
        for (let round = 0; ; round++) {
          const saga = round === 0 ? first : await this.log.get(req.sagaId);
          const prior = saga ? priorActions(await this.log.events(saga.id)) : [];
          const decision = decideAction(
            saga ? this.definitionOf(saga.definition, saga.version) : undefined,
            saga,
            req,
            prior,
          );
          if (decision.kind === 'refused' || (decision.kind === 'apply' && round >= MAX_ACT_ROUNDS)) {
            const code = decision.kind === 'refused' ? decision.code : 'action_not_allowed';
            const message =
              decision.kind === 'refused' ? decision.message : `saga ${req.sagaId} kept changing; try again`;
            span.setAttribute('saga.operator.outcome', code);
            span.setStatus({ code: SpanStatusCode.ERROR, message: code });
            this.logger.info({ ...fields, status: saga?.status, code, reason: message }, 'operator action refused');
            throw new OperatorActionError(code, message);
          }
          if (decision.kind === 'replayed') {
            span.setAttribute('saga.operator.outcome', 'replayed');
            this.logger.info(
              { ...fields, status: saga?.status, replayed: true },
              'operator action replayed; nothing done',
            );
            return { saga: saga as SagaRecord, replayed: true };
          }
          const current = saga as SagaRecord;
          // This engine's own driver of the saga stops before the takeOver commits: its writes
          // share our lease owner, so the log alone would not refuse them.
          if (decision.drive) stopped ??= this.stopDriving(current.id);
          const events = decision.transition.events.map((e) => ({ ...e, ...ids }));
          const patch = withCurrentStep(
            this.definitionOf(current.definition, current.version),
            current,
            decision.transition.patch,
          );
          const taken = await this.log.takeOver(current.id, decision.expect, this.owner, this.leaseMs, patch, events);
          if (!taken) continue;
          stopped = undefined;
          span.setAttribute('saga.operator.outcome', 'applied');
          span.setAttribute('saga.status', taken.status);
          this.logger.info(
            {
              ...fields,
              from_status: current.status,
              status: taken.status,
              step: events[0]?.step ?? undefined,
              note: normalizeNote(req.note) ?? undefined,
            },
            `operator action ${req.action}`,
          );
          if (decision.drive && !isTerminal(taken.status)) this.launch(taken, 'operator');
          else if (isTerminal(taken.status)) void this.wake(taken.id, taken);
          return { saga: taken, replayed: false };
        }
      } finally {
        // A driver stopped for an action that was then refused: the saga goes on here as it was.
        if (stopped) await this.resumeOwn(req.sagaId);
        span.end();
      }
    });
  }

  /**
   * Every version registered here or with sagas in flight in the log (RUNNING, COMPENSATING,
   * PARKED), with its counts and what this process makes of it (versions.ts).
   */
  async versions(): Promise<VersionView[]> {
    const counts = await this.log.versionCounts();
    const starting = new Map([...this.startVersions].map(([name, v]) => [name, v.version]));
    return versionViews(this.registeredRefs(), starting, counts);
  }

  /**
   * What a process checks before it serves: VersionsStrandedError when the log holds sagas in
   * flight on a version this process dropped (no process would drive them); the views otherwise.
   */
  async checkVersions(): Promise<VersionView[]> {
    const views = await this.versions();
    const why = strandedVersions(views);
    if (why) throw new VersionsStrandedError(why);
    return views;
  }

  /**
   * An operator's move of in-flight sagas of one version to another (versions.ts, planMigration),
   * saga by saga: each move is one takeOver, conditional on the saga being as it was planned on,
   * with an OPERATOR_ACTION `{action: 'migrate', ...}` event; a moved saga in flight is then driven
   * here on its new version. A dry run writes nothing. Refused as a whole (MigrationError) when
   * this process lacks either version or the map names steps that do not exist.
   */
  async migrate(req: MigrationRequest): Promise<MigrationReport> {
    if (this.stopping) throw new EngineStoppingError('the saga engine is shutting down');
    const ref = (version: number) => refName({ definition: req.definition, version });
    if (req.from === req.to) throw new MigrationError('same_version', `${ref(req.from)} is already that version`);
    const from = this.definitionOf(req.definition, req.from);
    const to = this.definitionOf(req.definition, req.to);
    for (const [v, def] of [
      [req.from, from],
      [req.to, to],
    ] as const)
      if (!def) throw new MigrationError('unknown_version', `this gateway does not register ${ref(v)}`);
    if (!from || !to) throw new MigrationError('unknown_version', 'unreachable');
    for (const [old, renamed] of Object.entries(req.map)) {
      if (!from.steps.some((st) => st.name === old))
        throw new MigrationError('invalid_map', `${ref(req.from)} has no step ${old}`);
      if (!to.steps.some((st) => st.name === renamed))
        throw new MigrationError('invalid_map', `${ref(req.to)} has no step ${renamed}`);
    }
    const limit = req.limit ?? 10_000;
    const report: MigrationReport = {
      definition: req.definition,
      from: req.from,
      to: req.to,
      dryRun: req.dryRun,
      actionId: req.actionId,
      scanned: 0,
      moved: 0,
      stayed: 0,
      changed: 0,
      byCode: {},
      items: [],
      truncated: false,
    };
    const attributes = {
      'saga.definition': req.definition,
      'saga.migration.from': req.from,
      'saga.migration.to': req.to,
      'saga.migration.dry_run': req.dryRun,
      'saga.operator.actor': req.actor,
      'saga.operator.action_id': req.actionId,
    };
    return tracer.startActiveSpan('saga.migrate', { attributes }, async (span) => {
      try {
        scan: for (const status of ['RUNNING', 'COMPENSATING', 'PARKED'] as const) {
          let cursor: string | undefined;
          do {
            const page = await this.log.list({ status, limit: 500, ...(cursor ? { cursor } : {}) });
            for (const saga of page.sagas) {
              if (saga.definition !== req.definition || saga.version !== req.from) continue;
              if (report.scanned >= limit) {
                report.truncated = true;
                break scan;
              }
              report.scanned++;
              const item = await this.migrateOne(saga, from, to, req);
              report.items.push(item);
              if (item.outcome === 'moved' || item.outcome === 'would_move') report.moved++;
              else if (item.outcome === 'changed') report.changed++;
              else if (item.code) {
                report.stayed++;
                report.byCode[item.code] = (report.byCode[item.code] ?? 0) + 1;
              }
            }
            cursor = page.nextCursor ?? undefined;
          } while (cursor);
        }
        span.setAttribute('saga.migration.moved', report.moved);
        span.setAttribute('saga.migration.stayed', report.stayed);
        this.logger.info(
          {
            definition: req.definition,
            from_version: req.from,
            to_version: req.to,
            dry_run: req.dryRun,
            actor: req.actor,
            action_id: req.actionId,
            scanned: report.scanned,
            moved: report.moved,
            stayed: report.stayed,
          },
          req.dryRun ? 'migration planned (dry run)' : 'sagas migrated',
        );
        return report;
      } finally {
        span.end();
      }
    });
  }

  /** One saga's move (or its plan, in a dry run); planned again when it changed under the move. */
  private async migrateOne(
    first: SagaRecord,
    from: SagaDefinition<unknown>,
    to: SagaDefinition<unknown>,
    req: MigrationRequest,
  ): Promise<MigrationItem> {
    let saga: SagaRecord | undefined = first;
    for (let round = 0; saga && round < MAX_ACT_ROUNDS; round++) {
      const item = { sagaId: saga.id, status: saga.status };
      if (saga.definition !== from.name || saga.version !== from.version)
        return {
          ...item,
          outcome: 'changed',
          fromStep: saga.currentStep,
          toStep: null,
          ...NO_STEPS,
          reason: `it is now ${refName({ definition: saga.definition, version: saga.version })}`,
        };
      const plan = planMigration(from, to, req.map, saga);
      if (plan.kind === 'stay')
        return {
          ...item,
          outcome: 'stay',
          fromStep: plan.fromStep,
          toStep: null,
          ...NO_STEPS,
          code: plan.code,
          reason: plan.reason,
        };
      const moved = {
        ...item,
        fromStep: plan.fromStep,
        toStep: plan.toStep,
        added: plan.added,
        replayed: plan.replayed,
        unrun: plan.unrun,
      };
      if (req.dryRun) return { ...moved, outcome: 'would_move' };
      const event: NewEvent = {
        type: 'OPERATOR_ACTION',
        step: plan.toStep,
        data: {
          action: 'migrate',
          action_id: req.actionId,
          actor: req.actor,
          note: normalizeNote(req.note),
          from_version: from.version,
          to_version: to.version,
          from_step: plan.fromStep,
          added: plan.added,
          replayed: plan.replayed,
          unrun: plan.unrun,
        },
        ...activeSpanIds(),
      };
      const parked = saga.status === 'PARKED';
      const stopped = parked ? undefined : this.stopDriving(saga.id);
      const patch = withCurrentStep(
        to,
        saga,
        parked ? { ...plan.patch, leaseOwner: null, leaseExpiresAt: 0 } : plan.patch,
      );
      const expect = {
        status: saga.status,
        stepIndex: saga.stepIndex,
        compIndex: saga.compIndex,
        version: saga.version,
      };
      const taken = await this.log.takeOver(saga.id, expect, this.owner, this.leaseMs, patch, [event]);
      if (taken) {
        this.logger.info(
          {
            saga_id: saga.id,
            from_version: from.version,
            to_version: to.version,
            step: plan.toStep,
            action_id: req.actionId,
            actor: req.actor,
          },
          'saga migrated',
        );
        if (!isTerminal(taken.status) && !this.stopping) this.launch(taken, 'operator');
        return { ...moved, outcome: 'moved', status: taken.status };
      }
      if (stopped) await this.resumeOwn(saga.id);
      saga = await this.log.get(saga.id);
    }
    return {
      sagaId: first.id,
      status: saga?.status ?? first.status,
      outcome: 'changed',
      fromStep: first.currentStep,
      toStep: null,
      ...NO_STEPS,
      reason: saga ? 'it kept changing; try again' : 'it no longer exists',
    };
  }

  /** Stops this engine's driver of a saga, if any, quietly: its next write is refused. */
  private stopDriving(id: string): Driven | undefined {
    const d = this.driven.get(id);
    if (!d || d.stop.signal.aborted) return undefined;
    this.logger.debug({ saga_id: id }, 'an operator takes the saga over; its driver stops');
    d.stop.abort(new Abandoned('an operator took the saga over'));
    return d;
  }

  /** Drives again a saga whose driver was stopped for nothing, if it is still ours and unfinished. */
  private async resumeOwn(id: string): Promise<void> {
    const s = await this.log.get(id).catch(() => undefined);
    if (s && !isTerminal(s.status) && s.leaseOwner === this.owner && !this.stopping) this.launch(s, 'operator');
  }

  /**
   * Claims unfinished sagas whose lease expired (a crashed or stopped owner) and resumes them, at
   * most as many as keep this process under MAX_DRIVEN sagas at once: a large backlog drains
   * tick by tick instead of all at once.
   */
  async recoverOnce(limit = Math.max(0, MAX_DRIVEN - this.driven.size)): Promise<number> {
    if (this.stopping || limit === 0) return 0;
    const claimed = (await this.log.claimExpired(this.owner, this.leaseMs, limit, this.registeredRefs())).filter(
      (s) => !this.driven.has(s.id),
    );
    if (claimed.length === 0) return 0;
    let launched = false;
    const launchAll = async () => {
      launched = true;
      for (const saga of claimed) {
        this.logger.warn(
          { saga_id: saga.id, status: saga.status, step_index: saga.stepIndex, comp_index: saga.compIndex },
          'resuming saga',
        );
        this.launch(saga, 'recovered');
      }
    };
    await runChain<SagaOp>(this.chains.saga, { kind: 'recovery', claimed }, launchAll).catch((err: unknown) => {
      // An interceptor's fault must not strand the sagas just claimed until their leases expire.
      this.logger.error({ err }, 'an interceptor failed around a recovery pass');
      if (!launched) return launchAll();
    });
    return claimed.length;
  }

  /** The time by the saga log's clock, as last measured (this process's clock until syncClock ran). */
  private logNow(): number {
    return this.now() + this.clockOffset;
  }

  /** How far the saga log's clock is ahead of this process's (ms), as last measured. */
  get clockOffsetMs(): number {
    return this.clockOffset;
  }

  /**
   * Measures the saga log's clock against this process's (half the round trip is the error), so
   * that deadlines are stamped and judged by the log's clock. Run by the background tick; a log
   * that cannot be read leaves the last measure.
   */
  async syncClock(): Promise<number> {
    const before = this.now();
    const logTime = await this.log.clock();
    const after = this.now();
    const offset = Math.round(logTime - (before + after) / 2);
    if (Math.abs(offset - this.clockOffset) >= 1_000)
      this.logger.warn(
        { clock_offset_ms: offset },
        "this process's clock disagrees with the saga log's; deadlines are judged by the log's",
      );
    this.clockOffset = offset;
    return offset;
  }

  /** Recovery now and every `intervalMs`, lease renewal for the sagas this process drives, and the log's clock. */
  startBackground(intervalMs = Math.max(1_000, Math.floor(this.leaseMs / 3))): void {
    const tick = async () => {
      try {
        await this.syncClock();
        if (this.driven.size > 0) {
          const lost = await this.log.renewLeases(this.owner, [...this.driven.keys()], this.leaseMs);
          for (const id of lost) this.abandon(id, 'its lease was not renewed');
        }
        await this.recoverOnce();
        if (this.logUnavailable) this.logger.info('the saga log is reachable again');
        this.logUnavailable = false;
      } catch (err) {
        // Said once per outage, not every tick.
        if (err instanceof SagaLogError && err.code === 'saga_log_unavailable') {
          if (!this.logUnavailable)
            this.logger.error({ err }, 'saga log unavailable; recovery and lease renewal wait for it');
          this.logUnavailable = true;
        } else {
          this.logger.error({ err }, 'saga recovery tick failed');
        }
      }
    };
    void tick();
    const timer = setInterval(() => void tick(), intervalMs);
    timer.unref();
    this.timers.push(timer);
  }

  /**
   * Stops taking new sagas, lets each running one finish the call it is making and record its
   * outcome, then gives up the leases so the next process resumes them at once.
   */
  async shutdown(graceMs = 5_000): Promise<void> {
    this.stopping_.abort();
    this.timers.forEach(clearInterval);
    this.timers = [];
    for (const d of this.driven.values()) d.stop.abort();
    const all = Promise.allSettled([...this.driven.values()].map((d) => d.run));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
    const left = [...this.driven.keys()];
    if (left.length > 0)
      this.logger.warn({ sagas: left.length }, 'sagas still in a call at shutdown; their leases will expire');
    this.unsubscribe();
    for (const [id, set] of this.waiters) for (const w of set) void this.log.get(id).then(w, () => w(undefined));
  }

  private definition(name: string, version: number): SagaDefinition<unknown> {
    const def = this.definitionOf(name, version);
    if (!def) throw new Error(`unknown saga definition ${refName({ definition: name, version })}`);
    return def;
  }

  /** This process stops driving the saga at its next write (its lease moved to another). */
  private abandon(id: string, why: string): void {
    const d = this.driven.get(id);
    if (!d || d.stop.signal.aborted) return;
    this.logger.warn({ saga_id: id, reason: why }, 'lost the lease; another process drives this saga now');
    d.stop.abort(new Abandoned(why));
  }

  /** Drives `saga` in the background; `begun`: the attempt whose intent its create committed (a started saga's). */
  private launch(saga: SagaRecord, cause: RunCause, begun?: PlannedAttempt): void {
    const def = this.definition(saga.definition, saga.version);
    const tags: Tags = def.tags?.({ id: saga.id, input: saga.input }) ?? {};
    const d: Driven = { run: Promise.resolve(), stop: new AbortController(), deferred: undefined, def, begun };
    const resumed = cause !== 'started';
    const op: SagaOp & { kind: 'run' } = { kind: 'run', saga, definition: def, cause, resumed, tags };
    let last = saga;
    d.run = runChain<SagaOp>(this.chains.saga, op, async () => {
      op.final = last = await this.drive(def, saga, d, resumed, tags, (s) => (last = s));
    })
      .then(
        () => {
          if (op.final && isTerminal(op.final.status)) void this.wake(op.final.id, op.final);
        },
        (err: unknown) => this.stopped(saga.id, err, d, last),
      )
      .finally(() => {
        // An operator's action may have launched a new run of the saga meanwhile: that one stays.
        if (this.driven.get(saga.id) === d) this.driven.delete(saga.id);
      });
    this.driven.set(saga.id, d);
  }

  /** A run that ended before the saga did: say why, once, and give the lease up when that is safe. */
  private async stopped(id: string, err: unknown, d: Driven, last: SagaRecord): Promise<void> {
    const reason = d.stop.signal.reason as unknown;
    if (err instanceof LeaseLostError || reason instanceof Abandoned) {
      if (!(reason instanceof Abandoned))
        this.logger.warn({ saga_id: id }, 'lost the lease; another process drives this saga now');
      return;
    }
    if (err instanceof EngineStoppingError) {
      // Checkpoint: the saga's state is durable; give the lease up so the next process resumes it at once.
      if (!isTerminal(last.status)) await this.log.releaseLeases(this.owner, [id]).catch(() => undefined);
      return;
    }
    if (err instanceof SagaLogError && err.code === 'saga_log_unavailable') {
      this.logger.error(
        { saga_id: id, err },
        'saga log unavailable; the saga resumes once it is back and its lease has expired',
      );
      return;
    }
    this.logger.error({ err, saga_id: id }, 'saga driver failed; it will be recovered');
  }

  private async drive(
    def: SagaDefinition<unknown>,
    initial: SagaRecord,
    d: Driven,
    resumed: boolean,
    tags: Tags,
    track: (s: SagaRecord) => void,
  ): Promise<SagaRecord> {
    let s = initial;
    const log = this.logger.child({ saga_id: s.id, ...logFields(tags) });
    const write = async (t: Transition, defer = false) => {
      s = await this.write(s, d, t, defer);
      track(s);
    };
    if (resumed) await write({ patch: {}, events: [{ type: 'SAGA_RESUMED', data: { owner: this.owner } }] });
    while (!isTerminal(s.status)) {
      if (d.stop.signal.aborted) {
        if (d.deferred && !(d.stop.signal.reason instanceof Abandoned)) await write({ patch: {}, events: [] });
        throw d.stop.signal.reason instanceof Abandoned
          ? d.stop.signal.reason
          : new EngineStoppingError('checkpointed for shutdown');
      }
      // The first attempt of a saga just created was planned, and its intent committed, with the create.
      const begun = d.begun;
      d.begun = undefined;
      const next = begun ?? plan(def, s, this.policies, this.logNow());
      if (next.kind === 'transition') {
        if (next.why === 'deadline')
          log.warn({ step: s.failure?.step ?? def.steps[s.stepIndex]?.name }, 'saga deadline exceeded; compensating');
        await write(next.transition);
        continue;
      }
      const settled = await this.attempt(def, s, next, d, tags, write, log, begun !== undefined);
      if (settled.verdict === 'retrying') await this.sleep(settled.retryInMs ?? 0, d.stop.signal);
    }
    const level = s.status === 'PARKED' ? 'error' : 'info';
    log[level]({ status: s.status, failure: s.failure ?? undefined }, `saga ${s.status.toLowerCase()}`);
    return s;
  }

  /**
   * One attempt through the interceptors' `step` member: the attempt, and inside it its intent
   * write, the participant call and its outcome write (the contract in ./interceptors.ts). With
   * `withCreate` the intent is durable already (committed with the create): its op still runs
   * through the chain, and writes nothing.
   */
  private async attempt(
    def: SagaDefinition<unknown>,
    s: SagaRecord,
    a: PlannedAttempt,
    d: Driven,
    tags: Tags,
    write: (t: Transition, defer?: boolean) => Promise<void>,
    log: Logger,
    withCreate: boolean,
  ): Promise<Settlement> {
    const ctx: AttemptContext = {
      saga: s,
      definition: def,
      step: a.step,
      phase: a.phase,
      attempt: a.attempt,
      idempotencyKey: idempotencyKey(s.id, a.step.name, a.phase),
      tags,
      timeoutMs: a.step.timeoutMs ?? this.policies.stepTimeoutMs,
    };
    const chain = this.chains.step;
    const attempt: StepOp & { kind: 'attempt' } = { ...ctx, kind: 'attempt' };
    await runChain<StepOp>(chain, attempt, async () => {
      // An intent committed with the create is not written again; a driver stopped since (an
      // operator took the saga over) still calls nothing, as its write would have refused.
      const intent = withCreate ? async () => assertDriving(d) : () => write(a.intent);
      await runChain<StepOp>(chain, { ...ctx, kind: 'intent', withCreate }, intent);
      const current = { ...s, ...a.intent.patch };
      const call: StepOp & { kind: 'call' } = { ...ctx, kind: 'call', transport: {} };
      await runChain<StepOp>(
        chain,
        call,
        async () => {
          call.outcome = await this.call(a, current, ctx.idempotencyKey, log, call.transport.fault);
        },
        () => call.outcome !== undefined,
      );
      if (!call.outcome) throw new InterceptorContractError('an interceptor took the outcome of a call away');
      const settled = settle(def, current, a, call.outcome, this.logNow(), this.random);
      this.logSettlement(log, a, settled);
      await runChain<StepOp>(chain, { ...ctx, kind: 'outcome', settlement: settled }, () =>
        write(settled.transition, settled.defer),
      );
      attempt.settlement = settled;
    });
    if (!attempt.settlement) throw new InterceptorContractError('an attempt ended without its outcome');
    return attempt.settlement;
  }

  private logSettlement(log: Logger, a: PlannedAttempt, st: Settlement): void {
    const f = { step: a.step.name, attempt: a.attempt, reason: st.reason };
    const what = a.phase === 'action' ? 'step' : 'compensation';
    if (st.verdict === 'retrying') log.warn({ ...f, backoff_ms: st.retryInMs }, `${what} outcome unknown; retrying`);
    else if (st.verdict === 'parked') log.error(f, `${what} cannot complete; parking the saga for an operator`);
    else if (st.outcome.kind === 'took_effect')
      log.warn(f, 'the pivot had taken effect (its fence found it done); going forward');
    else if (st.verdict === 'compensating') {
      if (st.outcome.kind === 'uncertain')
        log.error(f, 'step retries exhausted; compensating it and the steps before it');
      else if (st.outcome.kind === 'failed' && st.outcome.raised)
        log.warn(f, 'step refused in a way no retry can change; compensating');
      else log.info(f, 'step failed; compensating');
    }
  }

  /**
   * Durably applies a transition. A deferred transition (a step's success) is held in memory and
   * committed together with the saga's next one (the next step's intent, or the end): the outcome
   * is still durable before any further effect, at half the commits. Lost in a crash, it costs
   * only a replay of the step under the same key.
   */
  private async write(s: SagaRecord, d: Driven, t: Transition, defer: boolean): Promise<SagaRecord> {
    const ids = activeSpanIds();
    const events = t.events.map((e) => ({ ...e, ...ids }));
    const held = d.deferred;
    if (defer) {
      d.deferred = { patch: { ...held?.patch, ...t.patch }, events: [...(held?.events ?? []), ...events] };
      return { ...s, ...t.patch };
    }
    assertDriving(d);
    const patch: SagaPatch = withCurrentStep(d.def, s, held ? { ...held.patch, ...t.patch } : t.patch);
    const all = held ? [...held.events, ...events] : events;
    d.deferred = undefined;
    await this.log.append(s.id, this.owner, patch, all);
    return { ...s, ...patch, updatedAt: this.logNow() };
  }

  /** The participant call under the per-attempt deadline; anything but a definite answer or a DefiniteError is uncertain. */
  private async call(
    a: PlannedAttempt,
    s: SagaRecord,
    key: string,
    log: Logger,
    fault: string | undefined,
  ): Promise<AttemptOutcome> {
    const fn = invocationOf(a);
    if (!fn) return { kind: 'ok', result: null };
    const timeoutMs = a.step.timeoutMs ?? this.policies.stepTimeoutMs;
    const abort = new AbortController();
    const ctx: StepContext<unknown> = {
      sagaId: s.id,
      step: a.step.name,
      attempt: a.attempt,
      idempotencyKey: key,
      input: s.input,
      results: s.results,
      failure: s.failure ?? undefined,
      timeoutMs,
      signal: abort.signal,
      ...(fault === undefined ? {} : { fault }),
    };
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<AttemptOutcome>((resolve) => {
      timer = setTimeout(() => {
        abort.abort();
        resolve({ kind: 'uncertain', error: `no answer within ${timeoutMs} ms`, code: 'attempt_timeout' });
      }, timeoutMs + 50);
    });
    const call = fn(ctx).catch((err: unknown): AttemptOutcome => {
      log.debug({ err, step: a.step.name, phase: a.phase }, 'attempt failed');
      if (isDefiniteError(err)) return { kind: 'failed', code: err.failureCode, message: err.message, raised: true };
      const code = failureCodeOf(err);
      return { kind: 'uncertain', error: errorText(err), ...(code === undefined ? {} : { code }) };
    });
    const result = await Promise.race([call, deadline]);
    clearTimeout(timer);
    return result;
  }

  private sleep(ms: number, signal: AbortSignal): Promise<void> {
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

/** What an attempt calls: the step's action, or in the compensation phase its undo or (a pivot) its fence. */
function invocationOf(a: PlannedAttempt): ((ctx: StepContext<unknown>) => Promise<AttemptOutcome>) | undefined {
  const { step } = a;
  if (a.phase === 'action') return (ctx) => step.action(ctx).then(fromStepOutcome);
  const compensate = step.compensate?.bind(step);
  const fence = step.fence?.bind(step);
  if (compensate) return (ctx) => compensate(ctx).then(fromStepOutcome);
  if (fence) return (ctx) => fence(ctx).then(fromFenceOutcome);
  return undefined;
}

/** The W3C traceparent of the active context, stored with the saga so a resumption continues its trace. */
function currentTraceparent(): string | null {
  const carrier: Record<string, string> = {};
  propagation.inject(otelContext.active(), carrier);
  return carrier.traceparent ?? null;
}
