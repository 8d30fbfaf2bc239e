/**
 * The nemesis's schedule, pure: what it does and when — fault plans installed and cleared, kills
 * and the delays before each restart, participant outages, operator sweeps — and the order mix,
 * as functions of a seed and a few options, nothing else (no clock, no Math.random, no I/O). The
 * same seed and options give the same schedule: a run that found a violation can be replayed
 * (the system's own timing differs, the nemesis's actions and their parameters do not).
 */
import { CRASH_POINTS, type FaultKind, type FaultPhase, type FaultRule, type FaultTarget } from '../faults/plan.js';
import { callSitesOf, type CallSite } from '../faults/vocabulary.js';
import { PLACE_ORDER_DEFINITION } from '../gateway/place-order.js';
import type { OrderBody } from './orders.js';

// ---------------------------------------------------------------------------------------------
// Randomness

/** mulberry32: a small 32-bit generator, deterministic from `seed`, good enough for schedules. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A seed derived from `seed` and `parts` (e.g. the stream's name and an order's index): each
 * concern draws from its own stream, so the order mix does not shift when the duration adds a
 * fault plan, and order i is computed without drawing orders 0..i-1.
 */
export function deriveSeed(seed: number, ...parts: number[]): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (const p of [...parts, parts.length]) {
    h = Math.imul(h ^ (p >>> 0), 0x85ebca6b) >>> 0;
    h = (h ^ (h >>> 13)) >>> 0;
    h = Math.imul(h, 0xc2b2ae35) >>> 0;
    h = (h ^ (h >>> 16)) >>> 0;
  }
  return h;
}

const STREAM = { faults: 1, kills: 2, operator: 3, orders: 4 } as const;

type Random = () => number;

const between = (r: Random, lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));
function pick<T>(r: Random, items: readonly T[]): T {
  return items[Math.floor(r() * items.length)] as T;
}
function weighted<T>(r: Random, items: ReadonlyArray<readonly [T, number]>): T {
  const total = items.reduce((s, [, w]) => s + w, 0);
  let x = r() * total;
  for (const [v, w] of items) {
    if ((x -= w) < 0) return v;
  }
  return (items.at(-1) as readonly [T, number])[0];
}
function shuffled<T>(r: Random, items: readonly T[]): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [a[i], a[j]] = [a[j] as T, a[i] as T];
  }
  return a;
}

// ---------------------------------------------------------------------------------------------
// Durations as typed on a command line

/** `90s`, `5m`, `1h30m`, `500ms`, or a bare number of seconds → milliseconds; undefined when it is none of these. */
export function parseDuration(text: string): number | undefined {
  const t = text.trim();
  if (/^\d+$/.test(t)) return Number(t) * 1000;
  if (!/^(\d+(ms|h|m|s))+$/.test(t)) return undefined;
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let ms = 0;
  for (const m of t.matchAll(/(\d+)(ms|h|m|s)/g)) ms += Number(m[1]) * (unit[m[2] as string] as number);
  return ms;
}

/** 90000 → `1m30s`, for the report. */
export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  const parts = [
    [Math.floor(s / 3600), 'h'],
    [Math.floor((s % 3600) / 60), 'm'],
    [s % 60, 's'],
  ] as const;
  const text = parts
    .filter(([n]) => n > 0)
    .map(([n, u]) => `${n}${u}`)
    .join('');
  return text || `${ms}ms`;
}

// ---------------------------------------------------------------------------------------------
// The schedule

export const PARTICIPANTS = ['order', 'inventory', 'payment'] as const;
export type Participant = (typeof PARTICIPANTS)[number];

/** A fault rule as the nemesis sends it (PUT /api/faults): the switchboard's rule without its count of firings. */
export type FaultRuleSpec = Omit<FaultRule, 'fired' | 'enabled'> & { enabled?: boolean };

export type OperatorChoice = 'retry' | 'compensate';

export type NemesisEvent =
  /** Replace the fault plan (on every gateway) with these rules. */
  | { at: number; kind: 'faults'; plan: number; rules: FaultRuleSpec[] }
  /** Remove plan `plan`'s rules. */
  | { at: number; kind: 'faults_clear'; plan: number }
  /** SIGKILL `target` (a gateway, a participant or Redis), start it again `downMs` later. `long`: down past a step's attempt budget. */
  | { at: number; kind: 'kill'; target: string; downMs: number; long: boolean }
  /**
   * A latency rule held on for `holdMs` alongside the plan, set shortly before a kill: sagas take
   * hundreds of milliseconds at a step instead of a few, so the kill finds many of them in flight
   * (at a few orders a second a saga of 50 ms is rarely caught by an instant's kill).
   */
  | { at: number; kind: 'drag'; rule: FaultRuleSpec; holdMs: number }
  /**
   * A running system's processes cannot be killed from here: a participant is made unreachable
   * through the switchboard instead (every call to it uncertain, before its handler) for `downMs`.
   */
  | { at: number; kind: 'outage'; participant: Participant; downMs: number; long: boolean }
  /**
   * An operator looks at the PARKED queue (oldest first) and acts on the first ones, `actions[k]`
   * on the k-th; with `running` set, also `compensate` on one RUNNING saga (the `running`-th
   * modulo how many there are), as an operator tired of a saga stuck retrying would.
   */
  | { at: number; kind: 'operator'; sweep: number; actions: OperatorChoice[]; running: number | null };

export interface NemesisScheduleOptions {
  seed: number;
  durationMs: number;
  /**
   * What can be killed: the processes of a system the nemesis started (gateway names as
   * `gatewayName` gives them, the participants, `redis` when it runs its own). Empty: a running
   * system, where participants go down through the switchboard instead and nothing crashes.
   */
  killable: readonly string[];
  /** An outage at least this long outlasts a step's attempt budget (and the saga's deadline). */
  longOutageMs: number;
}

export interface NemesisSchedule {
  seed: number;
  durationMs: number;
  /** Sorted by `at` (ms from the start of the run); ties keep generation order. */
  events: NemesisEvent[];
}

/** Every (participant, method, step, phase) a fault may target: the place-order saga's calls, as its definition says. */
const CALL_SITES: readonly CallSite[] = callSitesOf([PLACE_ORDER_DEFINITION]);

/** One random transient rule: a kind, a place, a probability and a count limit (never unlimited). */
function faultRule(r: Random, id: string, crashes: boolean): FaultRuleSpec {
  const kinds: Array<readonly [FaultKind, number]> = [
    ['after_effect', 3],
    ['uncertain', 3],
    ['latency', 2],
    ['error', 2],
    ['crash', crashes ? 1 : 0],
  ];
  const kind = weighted(r, kinds);
  const site = pick(r, CALL_SITES);
  // Where it strikes: the gateway around the step (step + phase), or the participant (its method,
  // or every method of it). after_effect always acts at the participant, whatever names it.
  const style = weighted(r, [
    ['step', 4],
    ['method', 4],
    ['participant', kind === 'crash' ? 0 : 1],
  ] as const);
  let target: FaultTarget;
  let phase: FaultPhase | undefined;
  if (style === 'step') {
    target = { step: site.step };
    phase = site.phase;
  } else if (style === 'method') target = { participant: site.participant, method: site.method };
  else target = { participant: site.participant };
  const rule: FaultRuleSpec = {
    id,
    target,
    ...(phase ? { phase } : {}),
    kind,
    probability: pick(r, [1, 1, 0.5, 0.25]),
    // Crashes are kept rare: each one restarts a process and the next fires on the restarted one.
    limit: { count: kind === 'crash' ? between(r, 1, 2) : between(r, 1, 8) },
  };
  if (kind === 'latency') {
    // Up to several seconds: past the attempt's timeout it is an uncertain outcome.
    rule.latency_ms = between(r, 100, 5000);
    rule.jitter_ms = between(r, 0, 500);
  }
  if (kind === 'crash' && style === 'step') rule.crash_point = pick(r, CRASH_POINTS);
  return rule;
}

function faultEvents(seed: number, durationMs: number, crashes: boolean): NemesisEvent[] {
  const r = prng(deriveSeed(seed, STREAM.faults));
  const out: NemesisEvent[] = [];
  let plan = 0;
  for (let t = between(r, 1000, 4000); t < durationMs;) {
    plan++;
    const n = between(r, 1, 3);
    const rules = Array.from({ length: n }, (_, k) => faultRule(r, `p${plan}-${k + 1}`, crashes));
    const off = Math.min(durationMs, t + between(r, 3000, 15_000));
    out.push({ at: t, kind: 'faults', plan, rules }, { at: off, kind: 'faults_clear', plan });
    t = off + between(r, 500, 8000);
  }
  return out;
}

/**
 * Kills (or, on a running system, switchboard outages): the first round kills every target once,
 * in a seeded order, and keeps its first participant down past the budget, so that even a short
 * run has each kind; after that targets are drawn at random. A target is never killed again
 * while it is (or may still be) down.
 */
function killEvents(
  seed: number,
  durationMs: number,
  killable: readonly string[],
  longOutageMs: number,
): NemesisEvent[] {
  const r = prng(deriveSeed(seed, STREAM.kills));
  const running = killable.length === 0;
  const targets: readonly string[] = running ? PARTICIPANTS : killable;
  const isParticipant = (t: string) => (PARTICIPANTS as readonly string[]).includes(t);
  const firstRound = shuffled(r, targets);
  const stepsOf = (participant: string) =>
    CALL_SITES.filter((c) => c.phase === 'action' && c.participant === participant).map((c) => c.step);
  const allSteps = [...new Set(CALL_SITES.map((c) => c.step))];
  const firstLong = firstRound.find(isParticipant);
  // What a restart may take on a loaded machine, so the next kill of a target finds it up.
  const restartAllowanceMs = 5000;
  const busyUntil = new Map<string, number>();
  const out: NemesisEvent[] = [];
  let round = 0;
  for (let t = between(r, 2000, 5000); t < durationMs; t += between(r, 3000, 10_000), round++) {
    const wanted = round < firstRound.length ? (firstRound[round] as string) : pick(r, targets);
    const free = (x: string) => (busyUntil.get(x) ?? 0) <= t;
    const target = free(wanted) ? wanted : targets.find(free);
    const longDraw = r();
    const shortDown = between(r, 100, 3000);
    const longDown = between(r, longOutageMs, longOutageMs + 10_000);
    // The drag before it: mostly at a step that calls the target, so sagas wait there to meet it.
    const dragDraw = r();
    const dragOwnStep = r() < 0.7;
    const dragAny = pick(r, allSteps);
    const dragOwn = (ownSteps: string[]) => (ownSteps.length ? pick(r, ownSteps) : dragAny);
    const dragLatency = between(r, 300, 1400);
    const dragLead = between(r, 1000, 3000);
    if (target === undefined) continue;
    const long = isParticipant(target) && (round < firstRound.length ? target === firstLong : longDraw < 0.25);
    const downMs = long ? longDown : shortDown;
    busyUntil.set(target, t + downMs + restartAllowanceMs);
    out.push(
      running
        ? { at: t, kind: 'outage', participant: target as Participant, downMs, long }
        : { at: t, kind: 'kill', target, downMs, long },
    );
    if (dragDraw < 0.6) {
      const step = dragOwnStep ? dragOwn(stepsOf(target)) : dragAny;
      // Below the attempt's timeout (1.5 s under NEMESIS_BUDGETS): the call is late, not abandoned.
      const rule: FaultRuleSpec = {
        id: `drag-${round + 1}`,
        target: { step },
        phase: 'action',
        kind: 'latency',
        latency_ms: dragLatency,
        probability: 1,
        limit: { count: 200 },
      };
      out.push({ at: Math.max(0, t - dragLead), kind: 'drag', rule, holdMs: dragLead + Math.min(downMs, 3000) });
    }
  }
  return out;
}

function operatorEvents(seed: number, durationMs: number): NemesisEvent[] {
  const r = prng(deriveSeed(seed, STREAM.operator));
  const out: NemesisEvent[] = [];
  let sweep = 0;
  for (let t = between(r, 3000, 8000); t < durationMs; t += between(r, 4000, 12_000)) {
    sweep++;
    const actions = Array.from({ length: 5 }, () =>
      weighted<OperatorChoice>(r, [
        ['retry', 7],
        ['compensate', 3],
      ]),
    );
    const runningDraw = between(r, 0, 999);
    out.push({ at: t, kind: 'operator', sweep, actions, running: r() < 0.3 ? runningDraw : null });
  }
  return out;
}

/** The whole schedule of a run: a pure function of the options. */
export function nemesisSchedule(opts: NemesisScheduleOptions): NemesisSchedule {
  const { seed, durationMs } = opts;
  const events = [
    ...faultEvents(seed, durationMs, opts.killable.length > 0),
    ...killEvents(seed, durationMs, opts.killable, opts.longOutageMs),
    ...operatorEvents(seed, durationMs),
  ];
  // A stable sort: at equal times, generation order (a plan's clear before the next plan).
  events.sort((a, b) => a.at - b.at);
  return { seed, durationMs, events };
}

// ---------------------------------------------------------------------------------------------
// The order mix

/**
 * `duplicate`: the same key and body as an earlier order (a replay: the same order, never a
 * second saga); `conflict`: an earlier order's key with another body (422, never a second order).
 */
export type NemesisOrderKind = 'happy' | 'declined' | 'no_stock' | 'duplicate' | 'conflict';

export interface NemesisOrder {
  index: number;
  kind: NemesisOrderKind;
  /** The order whose idempotency key this one sends: itself, or the earlier order it repeats. */
  root: number;
  body: OrderBody;
}

/** Products of the catalog a started system gets: prod_3 is out of stock. */
const HAPPY_PRODUCTS = ['prod_1', 'prod_2'] as const;

/** Order `index` of the run with `seed`: computed alone (its own stream), so the load can be replayed. */
export function nemesisOrder(seed: number, index: number): NemesisOrder {
  const r = prng(deriveSeed(seed, STREAM.orders, index));
  const kind = weighted<NemesisOrderKind>(r, [
    ['happy', 55],
    ['declined', 12],
    ['no_stock', 8],
    ['duplicate', 18],
    ['conflict', 7],
  ]);
  const customer_id = `nemesis_${index}`;
  if ((kind === 'duplicate' || kind === 'conflict') && index > 0) {
    // A recent order (within the last 30), so repeats meet their original in flight and after.
    const earlier = index - 1 - Math.floor(r() * Math.min(index, 30));
    const original = nemesisOrder(seed, earlier);
    const root = nemesisOrder(seed, original.root);
    if (kind === 'duplicate') return { index, kind, root: root.index, body: root.body };
    const items = root.body.items.map((it, k) => (k === 0 ? { ...it, quantity: it.quantity + 1 } : it));
    return { index, kind, root: root.index, body: { ...root.body, items } };
  }
  if (kind === 'declined')
    return {
      index,
      kind,
      root: index,
      body: { customer_id, items: [{ product_id: 'prod_1', quantity: 1, price: 600 }] },
    };
  if (kind === 'no_stock')
    return {
      index,
      kind,
      root: index,
      body: { customer_id, items: [{ product_id: 'prod_3', quantity: 1, price: 5 }] },
    };
  const product = pick(r, HAPPY_PRODUCTS);
  return {
    index,
    kind: 'happy',
    root: index,
    body: {
      customer_id,
      items: [{ product_id: product, quantity: between(r, 1, 3), price: pick(r, [9.99, 19.99, 45.5]) }],
    },
  };
}
