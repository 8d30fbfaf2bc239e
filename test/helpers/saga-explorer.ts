/**
 * An exhaustive, bounded explorer of the saga engine's rules: it drives the REAL pure transition
 * module (plan, settle: src/saga/transitions.ts) and operator decision (decideAction:
 * src/saga/operator.ts) against the participant model (test/helpers/saga-model.ts), breadth
 * first, through every interleaving of:
 *
 * - each attempt's fate: answered (the participant decides: ok, or a definite refusal such as a
 *   decline, a shortage, not_pending, a tombstone's refusal); answer lost (effect done, outcome
 *   uncertain); never arrived (no effect, uncertain); refused in transport (a raised DefiniteError,
 *   no effect); delayed (uncertain now, the request reaches its participant at any later point);
 * - a crash at each checkpoint of the driver (src/saga/engine.ts `attempt()`): after the create
 *   (which commits the first attempt's intent with the saga: the engine's `creation`) before the
 *   first call, before an intent is written (a step's deferred success, not yet durable, is lost
 *   and the step is replayed under the same key), after the intent before the call, after the
 *   call's effect before its outcome is durable, before a transition with no call (the deferred
 *   success is lost); recovery resumes at once from the durable row by calling plan again;
 * - the saga's deadline passing (before a plan, or while a call is out);
 * - each operator action (retry, compensate, resolve) wherever decideAction allows it, on the
 *   durable row, whoever drives the saga (the driver's next write is then refused: its deferred
 *   success and its call's outcome are dropped).
 *
 * The driver is emulated step for step as the engine runs it: the saga created with its first
 * intent (the engine's own `creation`, so the model's commit boundary is the engine's), every
 * later intent written (durably) before its call, the settlement written after, a success
 * deferred and committed with the next write. The report counts the crashes tried per
 * checkpoint, step and phase, so a test can check that a crash between every two effects was.
 * Checked at every state: the invariants that hold always (DESIGN §6.3/§6.4/§6.7); at every
 * COMPLETED or COMPENSATED state, the ends' books (§6.2-§6.4); at every PARKED state, that one
 * operator action (retry or compensate) with the faults gone reaches COMPLETED or COMPENSATED with
 * consistent books (§6.7); at every state, that with the faults gone the saga ends (§6.1); and
 * that decideAction refuses what it must. A violation is reported with its shortest trace, per
 * invariant and per minimal set of fault kinds used.
 */
import { performance } from 'node:perf_hooks';
import {
  pivotIndex,
  type EnginePolicies,
  type Json,
  type SagaDefinition,
  type StepDefinition,
} from '../../src/saga/definition.js';
import { creation } from '../../src/saga/engine.js';
import { isTerminal, type SagaRecord, type SagaStatus } from '../../src/saga/model.js';
import {
  decideAction,
  OPERATOR_ACTIONS,
  type OperatorActionKind,
  type OperatorActionRequest,
} from '../../src/saga/operator.js';
import { idempotencyKey, plan, settle, type PlannedAttempt, type Transition } from '../../src/saga/transitions.js';
import { alwaysViolations, endViolations, type Violation } from './saga-invariants.js';
import {
  formatBooks,
  initialBooks,
  outcomeOf,
  requestOf,
  serve,
  totalOf,
  type Books,
  type CallRole,
  type InboxEntry,
  type ModelOutcome,
  type Request,
  type Scenario,
} from './saga-model.js';

/** The kinds of fault a path may use; a counterexample is reported per minimal set of them. */
export const FAULT = { uncertain: 1, raised: 2, delayed: 4, crash: 8, deadline: 16, operator: 32 } as const;
export type FaultKind = keyof typeof FAULT;

export interface Bounds {
  /** Crashes of the driver per path. */
  crashes: number;
  /** Operator actions applied per path. */
  operatorActions: number;
  /** Requests delivered late per path (at most one is in flight at a time). */
  delayed: number;
}

export interface ExploreOptions {
  def: SagaDefinition<unknown>;
  /** Small attempt budgets keep the space small; backoff is irrelevant (random is () => 0). */
  policies: EnginePolicies;
  scenarios: readonly Scenario[];
  bounds: Bounds;
  /** A safety stop: the exploration fails loudly rather than running away. */
  maxNodes?: number;
}

/**
 * What the driver is doing: between attempts; about to make the first attempt, whose intent the
 * create committed (the engine's run does not plan or write it again); or holding a call's outcome
 * it has not written yet.
 */
type Driver =
  | { phase: 'idle' }
  | { phase: 'created'; attempt: PlannedAttempt }
  | { phase: 'called'; attempt: PlannedAttempt; outcome: ModelOutcome };

/**
 * Where the driver crashed: after the create (first intent included) before the first call; before
 * an intent, a deferred success held; after an intent before its call; after a call before its
 * outcome is durable; before a transition with no call, a deferred success held.
 */
export type CrashPoint = 'after_create' | 'before_intent' | 'after_intent' | 'after_call' | 'before_transition';

/** One event from a state: the next state, what happened, and where the driver crashed, if it did. */
interface Edge {
  world: World;
  label: string;
  crash?: `${CrashPoint} ${string}`;
}

/** One state of the system: the saga log's row, the driver's memory, the participants' books. */
export interface World {
  sc: Scenario;
  /** The saga row as the log holds it. */
  durable: SagaRecord;
  /** A step's success held back by the driver, committed with its next write (lost in a crash). */
  pending: Transition | null;
  driver: Driver;
  /** The clock has passed the saga's deadline. */
  past: boolean;
  books: Books;
  /** A request on its way, to reach its participant later. */
  inflight: Request | null;
  crashes: number;
  operatorActions: number;
  delayed: number;
  /** FAULT bits used on the path to this state. */
  faults: number;
}

interface Node {
  world: World;
  parent: Node | null;
  /** What happened to get here from the parent. */
  label: string;
  depth: number;
}

export interface Counterexample {
  violation: Violation;
  faults: FaultKind[];
  trace: string;
  steps: number;
}

export interface Report {
  definition: string;
  /** States explored with the budget left and the fault kinds used on the way (a state may be reached by several such paths). */
  nodes: number;
  /** Distinct states of saga row, driver, clock and books, whatever the path (fault budget, kinds) to them. */
  states: number;
  ms: number;
  ends: Record<SagaStatus, number>;
  /** Crashes tried, by `<checkpoint> <phase> <step>` (e.g. `after_create action create_order`). */
  crashes: Record<string, number>;
  maxDepth: number;
  counterexamples: Counterexample[];
}

const NOW = 1_000_000;
const SAGA_ID = 'o-1';
const UNCERTAIN: ModelOutcome = { kind: 'uncertain', error: 'no answer within the attempt timeout' };
const RAISED: ModelOutcome = { kind: 'failed', code: 'fault_injected', message: 'refused in transport', raised: true };
const random = (): number => 0;
/** A fault-free run longer than this did not end: a livelock. */
const FAULT_FREE_LIMIT = 200;

const ENDED: readonly SagaStatus[] = ['COMPLETED', 'COMPENSATED', 'RESOLVED'];

/** The newer rules' StepDefinition.fence, read without depending on the field's existence. */
export function hasFence(step: StepDefinition<unknown> | undefined): boolean {
  return typeof (step as { fence?: unknown } | undefined)?.fence === 'function';
}

/** What an attempt calls: the action, the compensation, the pivot's fence, or nothing (the engine then answers ok). */
function roleOf(a: PlannedAttempt): CallRole | null {
  if (a.phase === 'action') return 'action';
  if (a.step.compensate) return 'compensation';
  return hasFence(a.step) ? 'fence' : null;
}

const mem = (w: World): SagaRecord => (w.pending ? { ...w.durable, ...w.pending.patch } : w.durable);
const nowOf = (w: World): number => (w.past ? w.durable.deadlineAt : NOW);

/** The engine's write: a deferred transition is held in memory; any other commits what is held with it. */
function write(w: World, t: Transition, defer: boolean): World {
  if (defer) return { ...w, pending: { patch: { ...w.pending?.patch, ...t.patch }, events: [] } };
  return { ...w, durable: { ...mem(w), ...t.patch }, pending: null };
}

/** The saga as the engine's create commits it (`creation`), and the attempt its run makes first. */
function initialWorld(def: SagaDefinition<unknown>, policies: EnginePolicies, sc: Scenario): World {
  const input: Json = {
    order_id: sc.orderId,
    customer_id: sc.customerId,
    items: [{ product_id: sc.productId, quantity: sc.quantity, unit_price_cents: sc.unitPriceCents }],
    total_cents: totalOf(sc),
    created_at_ms: 1,
    fingerprint: 'f',
    request_id: null,
  };
  const row: SagaRecord = {
    id: SAGA_ID,
    definition: def.name,
    version: def.version,
    status: 'RUNNING',
    stepIndex: 0,
    compIndex: -1,
    attempt: 0,
    input,
    results: {},
    failure: null,
    traceparent: null,
    idempotencyKey: null,
    leaseOwner: 'model',
    leaseExpiresAt: 0,
    deadlineAt: NOW + policies.sagaDeadlineMs,
    createdAt: NOW,
    updatedAt: NOW,
    subject: null,
    currentStep: null,
  };
  const created = creation(def, row, { type: 'SAGA_STARTED' }, policies, NOW);
  return {
    sc,
    durable: created.saga,
    pending: null,
    driver: created.first ? { phase: 'created', attempt: created.first } : { phase: 'idle' },
    past: false,
    books: initialBooks(sc),
    inflight: null,
    crashes: 0,
    operatorActions: 0,
    delayed: 0,
    faults: 0,
  };
}

function outcomeText(o: ModelOutcome): string {
  switch (o.kind) {
    case 'ok':
      return `ok${o.result === null ? '' : ` ${JSON.stringify(o.result)}`}`;
    case 'failed':
      return `${o.raised ? 'raised ' : ''}definite failure ${o.code}`;
    case 'uncertain':
      return 'uncertain';
    default:
      return `took_effect${o.result === null ? '' : ` ${JSON.stringify(o.result)}`}`;
  }
}

function attemptText(a: PlannedAttempt): string {
  return `${a.phase} ${a.step.name}#${a.attempt}`;
}

type Delivery = 'answered' | 'answer lost' | 'never arrived' | 'refused in transport' | 'delayed';

class Explorer {
  private readonly pivot: number;
  private readonly live = new Set<string>();
  /** The repair check's verdict per PARKED system state (several paths reach the same one). */
  private readonly repairs = new Map<string, Violation[]>();
  /** Interned sub-strings of state keys: keys stay short, so the visited set stays fast. */
  private readonly interned = new Map<string, number>();
  private readonly decisions = new Map<string, ReturnType<typeof decideAction>>();
  /** Codes of immutable parts of states, by identity: a successor shares most parts with its parent. */
  private readonly codes = new WeakMap<object, string>();

  constructor(private readonly o: ExploreOptions) {
    this.pivot = pivotIndex(o.def);
  }

  initial(): World[] {
    return this.o.scenarios.map((sc) => initialWorld(this.o.def, this.o.policies, sc));
  }

  private id(text: string): number {
    let n = this.interned.get(text);
    if (n === undefined) {
      n = this.interned.size;
      this.interned.set(text, n);
    }
    return n;
  }

  private code<T extends object>(part: T, encode: (part: T) => string): string {
    let c = this.codes.get(part);
    if (c === undefined) {
      c = encode(part);
      this.codes.set(part, c);
    }
    return c;
  }

  private rowCode(row: SagaRecord): string {
    return this.code(row, (d) => {
      const failure = d.failure ? this.id(`${d.failure.step}/${d.failure.code}`) : '-';
      return `${d.status},${d.stepIndex},${d.compIndex},${d.attempt},${this.id(JSON.stringify(d.results))},${failure}`;
    });
  }

  private booksCode(books: Books): string {
    return this.code(books, (b) => this.encodeBooks(b));
  }

  private encodeBooks(b: Books): string {
    const o = b.order;
    const s = b.stock;
    const p = b.payment;
    const inbox = (['order', 'inventory', 'payment'] as const).map((name) => {
      const box = b.inbox[name];
      const entries = Object.keys(box)
        .sort()
        .map((k) => {
          const e = box[k] as InboxEntry;
          return `${k}=${e.method}:${e.outcome}:${this.id(e.fingerprint)}`;
        });
      return this.id(entries.join(' '));
    });
    return `${o.status},${o.reason},${o.tombstone},${s.available},${s.reserved},${s.sold},${s.reservation},${s.tombstoned},${p.status},${p.amountCents},${p.tombstoned},${p.charges},${p.refunds},${inbox.join(',')}`;
  }

  /** The system state's identity (saga row, driver, clock, books, what is in flight), without the path's budget. */
  baseKey(w: World): string {
    const json = (part: object) => this.code(part, (p) => String(this.id(JSON.stringify(p))));
    const drv =
      w.driver.phase === 'idle'
        ? '-'
        : w.driver.phase === 'created'
          ? `c${w.driver.attempt.phase},${w.driver.attempt.index},${w.driver.attempt.attempt}`
          : `${w.driver.attempt.phase},${w.driver.attempt.index},${w.driver.attempt.attempt},${json(w.driver.outcome)}`;
    const pending = w.pending ? json(w.pending.patch) : '-';
    const inflight = w.inflight ? json(w.inflight) : '-';
    return `${this.id(w.sc.name)}|${this.rowCode(w.durable)}|${pending}|${drv}|${w.past ? 1 : 0}|${this.booksCode(w.books)}|${inflight}`;
  }

  /** decideAction, memoized on the row's fields it may read (status, indexes, attempt, results, failure) and the request. */
  private decide(w: World, action: OperatorActionKind): ReturnType<typeof decideAction> {
    const req = this.request(w, action);
    const k = `${this.rowCode(w.durable)}|${action}|${req.actionId}`;
    let d = this.decisions.get(k);
    if (d === undefined) {
      d = decideAction(this.o.def, w.durable, req, []);
      this.decisions.set(k, d);
    }
    return d;
  }

  // ---- the driver, one checkpoint at a time ------------------------------------------------

  /** The attempt's call reaching (or not) its participant, after its intent was written. */
  private call(w: World, a: PlannedAttempt, how: Delivery): Edge {
    const role = roleOf(a);
    if (role === null) {
      // The engine's call() answers ok at once for a phase the step has no function for.
      return {
        world: { ...w, driver: { phase: 'called', attempt: a, outcome: { kind: 'ok', result: null } } },
        label: `call ${attemptText(a)}: the step has no function for it; the engine answers ok`,
      };
    }
    const key = idempotencyKey(w.durable.id, a.step.name, a.phase);
    const req = requestOf(a.step.name, role, key, w.sc, mem(w).failure);
    const what = `call ${attemptText(a)} → ${req.participant}.${req.method}${role === 'fence' ? ' (fence)' : ''} [${key}]`;
    let books = w.books;
    let outcome: ModelOutcome;
    let faults = w.faults;
    let inflight = w.inflight;
    let delayed = w.delayed;
    let answerText = '';
    switch (how) {
      case 'answered': {
        const r = serve(w.books, w.sc, req);
        books = r.books;
        outcome = outcomeOf(a.step.name, role, r.answer, w.sc);
        answerText = ` ${r.answer.kind === 'response' ? r.answer.outcome : `raised ${r.answer.code}`} →`;
        break;
      }
      case 'answer lost':
        books = serve(w.books, w.sc, req).books;
        outcome = UNCERTAIN;
        faults |= FAULT.uncertain;
        break;
      case 'never arrived':
        outcome = UNCERTAIN;
        faults |= FAULT.uncertain;
        break;
      case 'refused in transport':
        outcome = RAISED;
        faults |= FAULT.raised;
        break;
      case 'delayed':
        inflight = req;
        delayed += 1;
        outcome = UNCERTAIN;
        faults |= FAULT.delayed;
        break;
    }
    return {
      world: { ...w, books, inflight, delayed, faults, driver: { phase: 'called', attempt: a, outcome } },
      label: `${what}: ${how}${answerText} ${outcomeText(outcome)}`,
    };
  }

  private settleCalled(w: World): Edge {
    if (w.driver.phase !== 'called') throw new Error('no call to settle');
    const { attempt: a, outcome } = w.driver;
    // A ModelOutcome is an AttemptOutcome without took_effect: the newer rules make that only from a fence's answer.
    const st = settle(this.o.def, mem(w), a, outcome, nowOf(w), random);
    const next = write({ ...w, driver: { phase: 'idle' } }, st.transition, st.defer);
    return {
      world: next,
      label: `settle ${attemptText(a)} (${outcomeText(outcome)}): ${st.verdict}${st.defer ? ' (deferred: not durable until the next write)' : ''}`,
    };
  }

  /** Every event of the driver from this state (no fault budget spent when `faultFree`); the fault-free one first. */
  private driverEdges(w: World, faultFree: boolean): Edge[] {
    if (isTerminal(w.durable.status)) return [];
    const b = this.o.bounds;
    const canCrash = !faultFree && w.crashes < b.crashes;
    const crash = (from: World, point: CrashPoint, a: PlannedAttempt | undefined, label: string): Edge => ({
      world: {
        ...from,
        pending: null,
        driver: { phase: 'idle' },
        crashes: from.crashes + 1,
        faults: from.faults | FAULT.crash,
      },
      label,
      crash: `${point} ${a ? `${a.phase} ${a.step.name}` : '-'}`,
    });
    if (w.driver.phase === 'called') {
      const a = w.driver.attempt;
      const out = [this.settleCalled(w)];
      if (canCrash)
        out.push(
          crash(
            w,
            'after_call',
            a,
            `crash after the call of ${attemptText(a)}, before its outcome is durable; recovery resumes from the log`,
          ),
        );
      return out;
    }
    // The run's first attempt: planned, and its intent committed, by the create.
    if (w.driver.phase === 'created') {
      const a = w.driver.attempt;
      const out = this.callEdges(w, a, faultFree);
      if (canCrash)
        out.push(crash(w, 'after_create', a, `created with the intent of ${attemptText(a)}; crash before the call`));
      return out;
    }
    const p = plan(this.o.def, mem(w), this.o.policies, nowOf(w));
    if (p.kind === 'transition') {
      const out: Edge[] = [
        { world: write(w, p.transition, false), label: `plan: ${p.why} → ${p.transition.patch.status ?? 'written'}` },
      ];
      if (canCrash && w.pending)
        out.push(
          crash(w, 'before_transition', undefined, 'crash before the next write (the deferred success is lost)'),
        );
      return out;
    }
    const intent = write(w, p.intent, false);
    const out = this.callEdges(intent, p, faultFree);
    if (canCrash && w.pending)
      out.push(
        crash(w, 'before_intent', p, `crash before the intent of ${attemptText(p)} (the deferred success is lost)`),
      );
    if (canCrash)
      out.push(crash(intent, 'after_intent', p, `intent of ${attemptText(p)} written; crash before the call`));
    return out;
  }

  /** The attempt's call, its intent durable, in each way it may reach its participant (answered only, when `faultFree`). */
  private callEdges(intent: World, p: PlannedAttempt, faultFree: boolean): Edge[] {
    const b = this.o.bounds;
    const out = [this.call(intent, p, 'answered')];
    if (faultFree || roleOf(p) === null) return out;
    out.push(
      this.call(intent, p, 'answer lost'),
      this.call(intent, p, 'never arrived'),
      this.call(intent, p, 'refused in transport'),
    );
    if (intent.inflight === null && intent.delayed < b.delayed) out.push(this.call(intent, p, 'delayed'));
    return out;
  }

  // ---- the environment: deadline, late deliveries, operators ---------------------------------

  private arrive(w: World): Edge {
    if (!w.inflight) throw new Error('nothing in flight');
    const r = serve(w.books, w.sc, w.inflight);
    const answer = r.answer.kind === 'response' ? r.answer.outcome : `raised ${r.answer.code}`;
    return {
      world: { ...w, books: r.books, inflight: null },
      label: `late arrival of ${w.inflight.participant}.${w.inflight.method} [${w.inflight.key}]: ${answer} (nobody hears the answer)`,
    };
  }

  private request(w: World, action: OperatorActionKind): OperatorActionRequest {
    return {
      sagaId: w.durable.id,
      action,
      actionId: `op-${w.operatorActions + 1}`,
      actor: 'model-checker',
      ...(action === 'resolve' ? { note: 'repaired by hand' } : {}),
    };
  }

  /** An operator's action through decideAction and the log's takeOver; undefined when refused. */
  private act(w: World, action: OperatorActionKind): Edge | undefined {
    const d = this.decide(w, action);
    if (d.kind !== 'apply') return undefined;
    if (
      d.expect.status !== w.durable.status ||
      (d.expect.stepIndex !== undefined && d.expect.stepIndex !== w.durable.stepIndex)
    )
      return undefined;
    const world: World = {
      ...w,
      durable: { ...w.durable, ...d.transition.patch },
      // Whoever drove the saga stops at its next write: what it held, and its call's outcome, are dropped.
      pending: null,
      driver: { phase: 'idle' },
      operatorActions: w.operatorActions + 1,
      faults: w.faults | FAULT.operator,
    };
    return {
      world,
      label: `operator ${action}${action === 'resolve' ? ' (note: repaired by hand)' : ''} on ${w.durable.status} → ${world.durable.status}`,
    };
  }

  edges(w: World): Edge[] {
    const out = this.driverEdges(w, false);
    const b = this.o.bounds;
    if (!w.past && !ENDED.includes(w.durable.status))
      out.push({ world: { ...w, past: true, faults: w.faults | FAULT.deadline }, label: "the saga's deadline passes" });
    if (w.inflight) out.push(this.arrive(w));
    if (w.operatorActions < b.operatorActions) {
      for (const action of OPERATOR_ACTIONS) {
        const e = this.act(w, action);
        if (e) out.push(e);
      }
    }
    return out;
  }

  // ---- checks ------------------------------------------------------------------------------

  /**
   * decideAction must refuse: retry and resolve unless PARKED; anything on an ended saga;
   * compensate where the pivot may have taken effect and nothing settles it first.
   */
  private refusals(w: World): Violation[] {
    const s = w.durable;
    const v: Violation[] = [];
    for (const action of OPERATOR_ACTIONS) {
      const d = this.decide(w, action);
      if (d.kind !== 'apply') continue;
      const pivotUnsettled =
        this.pivot >= 0 &&
        (s.stepIndex > this.pivot ||
          (s.stepIndex === this.pivot && (s.status === 'RUNNING' || !hasFence(this.o.def.steps[this.pivot]))));
      const mustRefuse =
        ENDED.includes(s.status) ||
        (action !== 'compensate' && s.status !== 'PARKED') ||
        // Compensating past a pivot that may have taken effect: RUNNING at or after it; PARKED
        // outside compensation after it, or at it with no fence to settle it first.
        (action === 'compensate' &&
          (s.status === 'RUNNING' || (s.status === 'PARKED' && s.compIndex < 0)) &&
          pivotUnsettled);
      if (mustRefuse) {
        const where =
          s.stepIndex === this.pivot && s.compIndex < 0
            ? ' at the pivot (its outcome may be unknown)'
            : s.stepIndex > this.pivot && s.compIndex < 0
              ? ' after the pivot'
              : '';
        v.push({
          invariant: `operator ${action} allowed on ${s.status}${where}`,
          detail: `decideAction applied ${action} on ${s.status} step ${s.stepIndex} comp ${s.compIndex} → ${JSON.stringify(d.transition.patch)}`,
        });
      }
    }
    return v;
  }

  /** The driver alone, every call answered, no crash, no operator: to the saga's end (or the limit). */
  private runFaultFree(start: World): { world: World; violations: Violation[]; steps: number; trail: string[] } {
    const trail: string[] = [];
    let w = start;
    if (start.inflight) {
      const e = this.arrive(start);
      trail.push(e.label);
      w = e.world;
    }
    for (let steps = 0; steps < FAULT_FREE_LIMIT; steps++) {
      const v = alwaysViolations(w.books, w.sc);
      if (v.length > 0 || isTerminal(w.durable.status)) return { world: w, violations: v, steps, trail };
      const e = this.driverEdges(w, true)[0];
      if (!e) return { world: w, violations: [], steps, trail };
      trail.push(e.label);
      w = e.world;
    }
    return {
      world: w,
      violations: [
        {
          invariant: 'does not end with the faults gone',
          detail: `still ${w.durable.status} after ${FAULT_FREE_LIMIT} fault-free events`,
        },
      ],
      steps: FAULT_FREE_LIMIT,
      trail,
    };
  }

  /**
   * With the faults gone, the saga ends (§6.1): the fault-free run from here, memoized by system
   * state (a run stops at a state known to end, and marks every state it went through).
   */
  private liveness(start: World, startKey: string): Violation[] {
    const through: string[] = [];
    let w = start;
    let k = startKey;
    for (let steps = 0; steps < FAULT_FREE_LIMIT; steps++) {
      if (this.live.has(k) || isTerminal(w.durable.status)) break;
      through.push(k);
      const e = w.inflight ? this.arrive(w) : this.driverEdges(w, true)[0];
      if (!e) break;
      w = e.world;
      k = this.baseKey(w);
    }
    if (!this.live.has(k) && !isTerminal(w.durable.status)) {
      return [
        {
          invariant: 'does not end with the faults gone',
          detail: `still ${w.durable.status} after ${FAULT_FREE_LIMIT} fault-free events`,
        },
      ];
    }
    for (const t of through) this.live.add(t);
    return [];
  }

  /** A PARKED saga is repairable by one operator action with the faults gone (§6.7). */
  private repairable(w: World): Violation[] {
    const tried: string[] = [];
    for (const action of ['retry', 'compensate'] as const) {
      const acted = this.act({ ...w, operatorActions: 0 }, action);
      if (!acted) {
        tried.push(`${action}: refused`);
        continue;
      }
      const r = this.runFaultFree(acted.world);
      const end = r.world.durable.status;
      const bad = [
        ...r.violations,
        ...(end === 'COMPLETED' || end === 'COMPENSATED' ? endViolations(end, r.world.books, w.sc) : []),
      ];
      if ((end === 'COMPLETED' || end === 'COMPENSATED') && bad.length === 0) return [];
      tried.push(
        `${action}: ${r.trail.join('; ')} ⇒ ${end}${bad.length ? ` [${bad.map((x) => x.invariant).join(', ')}]` : ''} — ${formatBooks(r.world.books)}`,
      );
    }
    return [{ invariant: 'PARKED and not repairable by one operator action', detail: tried.join('\n      ') }];
  }

  /**
   * `broken`: the state itself violates DESIGN §6 (its descendants only repeat it: not explored
   * further). `refused`: decideAction allowed here what it must refuse (recorded; the exploration
   * goes on, and applies the action where the budget allows, to show what it leads to).
   */
  check(w: World, base: string): { broken: Violation[]; refused: Violation[] } {
    const broken = alwaysViolations(w.books, w.sc);
    const s = w.durable.status;
    if (s === 'COMPLETED' || s === 'COMPENSATED') broken.push(...endViolations(s, w.books, w.sc));
    if (s === 'PARKED' && broken.length === 0) {
      let r = this.repairs.get(base);
      if (r === undefined) {
        r = this.repairable(w);
        this.repairs.set(base, r);
      }
      broken.push(...r);
    }
    if (broken.length === 0) broken.push(...this.liveness(w, base));
    return { broken, refused: this.refusals(w) };
  }

  // ---- reporting ---------------------------------------------------------------------------

  describe(w: World): string {
    const d = w.durable;
    const step = (i: number) => this.o.def.steps[i]?.name ?? '-';
    const pending = w.pending ? ` | not yet durable: ${JSON.stringify(w.pending.patch)}` : '';
    const created =
      w.driver.phase === 'created'
        ? ` | next: the call of ${attemptText(w.driver.attempt)} (intent committed with the create)`
        : '';
    const failure = d.failure ? ` failure=${d.failure.step}/${d.failure.code}` : '';
    const flags = [
      w.past ? 'past deadline' : '',
      w.inflight ? `in flight: ${w.inflight.method} [${w.inflight.key}]` : '',
    ]
      .filter(Boolean)
      .join(', ');
    return (
      `saga: ${d.status} stepIndex=${d.stepIndex}(${step(d.stepIndex)}) compIndex=${d.compIndex}${d.compIndex >= 0 ? `(${step(d.compIndex)})` : ''} attempt=${d.attempt}${failure}${pending}${created}${flags ? ` | ${flags}` : ''}\n` +
      `      books: ${formatBooks(w.books)}`
    );
  }
}

function faultNames(mask: number): FaultKind[] {
  return (Object.keys(FAULT) as FaultKind[]).filter((k) => (mask & FAULT[k]) !== 0);
}

function traceOf(ex: Explorer, node: Node): string {
  const path: Node[] = [];
  for (let n: Node | null = node; n; n = n.parent) path.push(n);
  path.reverse();
  return path.map((n, i) => `  #${String(i).padStart(2)} ${n.label}\n      ${ex.describe(n.world)}`).join('\n');
}

/** Breadth first over every state within the bounds; the first path to a violation is its shortest. */
export function explore(o: ExploreOptions): Report {
  const started = performance.now();
  const ex = new Explorer(o);
  // Per system state, the paths kept to it: a path is dropped when one kept (so no longer, in
  // breadth-first order) spent no more of any budget and used no fault kind it did not.
  const seen = new Map<string, World[]>();
  const dominated = (base: string, w: World): boolean => {
    const kept = seen.get(base);
    if (
      kept?.some(
        (k) =>
          k.crashes <= w.crashes &&
          k.operatorActions <= w.operatorActions &&
          k.delayed <= w.delayed &&
          (k.faults & w.faults) === k.faults,
      )
    )
      return true;
    seen.set(base, [...(kept ?? []), w]);
    return false;
  };
  const queue: Node[] = [];
  for (const world of ex.initial()) {
    dominated(ex.baseKey(world), world);
    const first = world.driver.phase === 'created' ? ` with the intent of ${attemptText(world.driver.attempt)}` : '';
    queue.push({ world, parent: null, label: `created (${world.sc.name})${first}, in one commit`, depth: 0 });
  }
  const ends = { RUNNING: 0, COMPENSATING: 0, COMPLETED: 0, COMPENSATED: 0, PARKED: 0, RESOLVED: 0 } satisfies Record<
    SagaStatus,
    number
  >;
  // Per invariant, the shortest counterexample of each minimal set of fault kinds.
  const found = new Map<string, Array<{ mask: number; node: Node; violation: Violation }>>();
  const crashes: Record<string, number> = {};
  let maxDepth = 0;
  const maxNodes = o.maxNodes ?? 3_000_000;
  for (let head = 0; head < queue.length; head++) {
    const node = queue[head] as Node;
    if (head >= maxNodes) throw new Error(`the exploration passed ${maxNodes} nodes: tighten the bounds`);
    const w = node.world;
    const base = ex.baseKey(w);
    maxDepth = Math.max(maxDepth, node.depth);
    if (isTerminal(w.durable.status)) ends[w.durable.status] += 1;
    const { broken, refused } = ex.check(w, base);
    for (const violation of [...broken, ...refused]) {
      const list = found.get(violation.invariant) ?? [];
      if (list.some((f) => (f.mask & w.faults) === f.mask)) continue;
      found.set(violation.invariant, [
        ...list.filter((f) => (f.mask & w.faults) !== w.faults),
        { mask: w.faults, node, violation },
      ]);
    }
    // A broken state's descendants only repeat it.
    if (broken.length > 0) continue;
    for (const e of ex.edges(w)) {
      // Counted when tried: a crash may lead to a state reached otherwise already (a crash before
      // an intent, its step's success deferred, leaves the log as a crash after that step's call).
      if (e.crash) crashes[e.crash] = (crashes[e.crash] ?? 0) + 1;
      if (dominated(ex.baseKey(e.world), e.world)) continue;
      queue.push({ world: e.world, parent: node, label: e.label, depth: node.depth + 1 });
    }
    // Free what only the queue held; the node stays as a parent for traces.
    queue[head] = undefined as unknown as Node;
  }
  // Grouped by invariant (the group with the shortest counterexample first); within a group, the
  // fewest fault kinds first, then the shortest.
  const groups = [...found.values()].map((list) =>
    [...list].sort((a, b) => faultNames(a.mask).length - faultNames(b.mask).length || a.node.depth - b.node.depth),
  );
  groups.sort((a, b) => Math.min(...a.map((f) => f.node.depth)) - Math.min(...b.map((f) => f.node.depth)));
  const counterexamples = groups.flat().map(({ mask, node, violation }) => ({
    violation,
    faults: faultNames(mask),
    trace: traceOf(ex, node),
    steps: node.depth,
  }));
  return {
    definition: `${o.def.name} v${o.def.version}`,
    nodes: queue.length,
    states: seen.size,
    ms: performance.now() - started,
    ends,
    crashes,
    maxDepth,
    counterexamples,
  };
}

const CRASH_POINTS: readonly CrashPoint[] = [
  'after_create',
  'before_intent',
  'after_intent',
  'after_call',
  'before_transition',
];

/** How many crashes the exploration made at a checkpoint, over every step and phase. */
export function crashesAt(r: Report, point: CrashPoint): number {
  return Object.entries(r.crashes).reduce((n, [k, c]) => (k.startsWith(`${point} `) ? n + c : n), 0);
}

/** The report for humans: the counts, and each counterexample as a readable trace. */
export function formatReport(r: Report, o: ExploreOptions): string {
  const p = o.policies;
  const pivot = o.def.steps[pivotIndex(o.def)];
  const head = [
    `saga model check: ${r.definition}, pivot ${pivot?.name ?? 'none'}${hasFence(pivot) ? ' (fenced)' : ' (no fence)'}`,
    `  budgets: action ${p.action.maxAttempts}, compensation ${p.compensation.maxAttempts}, forward ${p.forward.maxAttempts} attempts; per path at most ${o.bounds.crashes} crash(es), ${o.bounds.operatorActions} operator action(s), ${o.bounds.delayed} late delivery(ies)`,
    `  scenarios: ${o.scenarios.map((s) => s.name).join('; ')}`,
    `  explored ${r.nodes} nodes, ${r.states} distinct states (saga row × driver × books), depth ≤ ${r.maxDepth}, in ${(r.ms / 1000).toFixed(2)} s`,
    `  terminal nodes: ${(['COMPLETED', 'COMPENSATED', 'PARKED', 'RESOLVED'] as const).map((s) => `${s} ${r.ends[s]}`).join(', ')}`,
    `  crashes tried: ${CRASH_POINTS.map((c) => `${c} ${crashesAt(r, c)}`).join(', ')}`,
    r.counterexamples.length === 0
      ? '  no violation'
      : `  ${r.counterexamples.length} counterexample(s), the shortest per invariant and per minimal set of fault kinds:`,
    ...r.counterexamples.map(
      (c, i) =>
        `    ${String(i + 1).padStart(2)}. ${c.violation.invariant} — ${c.steps} events; fault kinds: ${c.faults.join(', ') || 'none'}`,
    ),
  ];
  const bodies = r.counterexamples.map(
    (c, i) =>
      `\nCOUNTEREXAMPLE ${i + 1}: ${c.violation.invariant} — ${c.steps} events; fault kinds used: ${c.faults.join(', ') || 'none'}\n  ${c.violation.detail}\n${c.trace}`,
  );
  return [...head, ...bodies].join('\n');
}
