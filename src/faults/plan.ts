/**
 * The fault switchboard's plan, pure: rules (what to break, where, how often, until when), their
 * parsing and validation, and the board that decides which rule fires at a given point. No I/O,
 * no clock or randomness of its own: the caller passes `now` and `random` in. Where the faults act
 * is elsewhere: the saga engine's interceptor on the gateway (src/saga/interceptors.ts, `faults`)
 * and a gRPC server wrapper on the participants (src/platform/grpc/grpc.ts, `x-fault` metadata).
 */
import { parse as parseYaml } from 'yaml';

export const FAULT_KINDS = ['latency', 'error', 'uncertain', 'after_effect', 'crash'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export const FAULT_PARTICIPANTS = ['order', 'inventory', 'payment'] as const;
export type FaultParticipant = (typeof FAULT_PARTICIPANTS)[number];

export const FAULT_PHASES = ['action', 'compensation'] as const;
export type FaultPhase = (typeof FAULT_PHASES)[number];

/** The engine's checkpoints of an attempt, where a gateway-side `crash` may strike. */
export const CRASH_POINTS = ['before_intent', 'after_intent', 'before_outcome', 'after_outcome'] as const;
/** After the participant answered, before the outcome is written: the effect may have happened, the log does not know. */
export const DEFAULT_CRASH_POINT = 'before_outcome';

export interface FaultTarget {
  /** A saga step (e.g. `charge_payment`). */
  step?: string;
  participant?: FaultParticipant;
  /** A participant's gRPC method (e.g. `Charge`). */
  method?: string;
}

export interface FaultRule {
  id: string;
  enabled: boolean;
  target: FaultTarget;
  /** Unset: both phases. */
  phase?: FaultPhase;
  kind: FaultKind;
  latency_ms?: number;
  jitter_ms?: number;
  /** A gateway-side crash: the attempt's checkpoint it strikes at (default before_outcome). */
  crash_point?: string;
  /** 0..1, default 1. */
  probability: number;
  limit?: { count?: number; until?: string };
  /** How many times the rule fired since it was loaded. */
  fired: number;
}

export type FaultSide = 'gateway' | 'participant';

/** Where a rule is matched and acts. */
export interface FaultPoint {
  side: FaultSide;
  step?: string;
  participant?: string;
  method?: string;
  phase?: FaultPhase;
  /** Set at the engine's checkpoints (gateway-side crash rules), unset around the call. */
  checkpoint?: string;
}

/** A plan that cannot be used: the message names the rule and the field. */
export class FaultPlanError extends Error {
  readonly code = 'invalid_fault_plan';
  constructor(message: string) {
    super(message);
    this.name = 'FaultPlanError';
  }
}

/** What a plan may name: the steps of the registered sagas and the participant methods they call. */
export interface FaultVocabulary {
  steps: readonly string[];
  calls: ReadonlyArray<{ participant: string; method: string }>;
}

/**
 * Where a rule acts: `after_effect` and any rule naming a participant or a method act at the
 * participant (the gateway sends it the fault as `x-fault` metadata); the others in the gateway's
 * engine, around the step's attempt.
 */
export function sideOf(rule: Pick<FaultRule, 'kind' | 'target'>): FaultSide {
  if (rule.kind === 'after_effect') return 'participant';
  return rule.target.participant !== undefined || rule.target.method !== undefined ? 'participant' : 'gateway';
}

const ID = /^[A-Za-z0-9_.-]{1,64}$/;
const MAX_RULES = 200;
const MAX_LATENCY_MS = 600_000;
const RULE_FIELDS = new Set([
  'id',
  'enabled',
  'target',
  'phase',
  'kind',
  'latency_ms',
  'jitter_ms',
  'crash_point',
  'probability',
  'limit',
  'fired',
]);
const TARGET_FIELDS = new Set(['step', 'participant', 'method']);
const LIMIT_FIELDS = new Set(['count', 'until']);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function oneOfText(words: readonly string[]): string {
  return words.join(', ');
}

/** One rule, checked; `fired` starts at 0 whatever was sent. */
function validateRule(raw: unknown, index: number, vocabulary: FaultVocabulary | undefined): FaultRule {
  const at = (field: string, what: string) =>
    new FaultPlanError(
      `rule ${index + 1}${isObject(raw) && typeof raw.id === 'string' ? ` (${raw.id})` : ''}: ${field} ${what}`,
    );
  if (!isObject(raw)) throw new FaultPlanError(`rule ${index + 1}: must be an object`);
  for (const k of Object.keys(raw))
    if (!RULE_FIELDS.has(k)) throw at(k, `is not a field of a rule (${[...RULE_FIELDS].join(', ')})`);
  const { id } = raw;
  if (typeof id !== 'string' || !ID.test(id)) throw at('id', 'must be 1-64 letters, digits, _ . or -');
  if (!(FAULT_KINDS as readonly unknown[]).includes(raw.kind))
    throw at('kind', `must be one of ${oneOfText(FAULT_KINDS)}`);
  const kind = raw.kind as FaultKind;
  const rule: FaultRule = { id, enabled: true, target: {}, kind, probability: 1, fired: 0 };
  if (raw.enabled !== undefined) {
    if (typeof raw.enabled !== 'boolean') throw at('enabled', 'must be true or false');
    rule.enabled = raw.enabled;
  }
  const target = raw.target ?? {};
  if (!isObject(target)) throw at('target', 'must be an object with step, participant and/or method');
  for (const k of Object.keys(target))
    if (!TARGET_FIELDS.has(k)) throw at(`target.${k}`, 'is not a field of a target (step, participant, method)');
  if (target.step !== undefined) {
    if (typeof target.step !== 'string' || target.step === '') throw at('target.step', 'must be a step name');
    if (vocabulary && !vocabulary.steps.includes(target.step))
      throw at('target.step', `"${target.step}" is not a step (${oneOfText(vocabulary.steps)})`);
    rule.target.step = target.step;
  }
  if (target.participant !== undefined) {
    if (!(FAULT_PARTICIPANTS as readonly unknown[]).includes(target.participant))
      throw at('target.participant', `must be one of ${oneOfText(FAULT_PARTICIPANTS)}`);
    rule.target.participant = target.participant as FaultParticipant;
  }
  if (target.method !== undefined) {
    if (typeof target.method !== 'string' || !/^[A-Za-z][A-Za-z0-9]{0,63}$/.test(target.method))
      throw at('target.method', 'must be a gRPC method name (e.g. Charge)');
    if (vocabulary) {
      const known = vocabulary.calls.filter(
        (c) => rule.target.participant === undefined || c.participant === rule.target.participant,
      );
      if (!known.some((c) => c.method === target.method)) {
        throw at(
          'target.method',
          `"${target.method}" is not a method the sagas call${rule.target.participant ? ` on ${rule.target.participant}` : ''} (${oneOfText([...new Set(known.map((c) => c.method))])})`,
        );
      }
    }
    rule.target.method = target.method;
  }
  if (raw.phase !== undefined) {
    if (!(FAULT_PHASES as readonly unknown[]).includes(raw.phase))
      throw at('phase', `must be one of ${oneOfText(FAULT_PHASES)} (or unset: both)`);
    rule.phase = raw.phase as FaultPhase;
  }
  const intIn = (field: 'latency_ms' | 'jitter_ms', v: unknown): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_LATENCY_MS)
      throw at(field, `must be an integer from 0 to ${MAX_LATENCY_MS}`);
    return v;
  };
  if (kind === 'latency') {
    if (raw.latency_ms === undefined) throw at('latency_ms', 'is required for a latency rule');
    rule.latency_ms = intIn('latency_ms', raw.latency_ms);
    if (raw.jitter_ms !== undefined) rule.jitter_ms = intIn('jitter_ms', raw.jitter_ms);
  } else {
    if (raw.latency_ms !== undefined) throw at('latency_ms', 'is only for a latency rule');
    if (raw.jitter_ms !== undefined) throw at('jitter_ms', 'is only for a latency rule');
  }
  if (raw.crash_point !== undefined) {
    if (kind !== 'crash') throw at('crash_point', 'is only for a crash rule');
    if (sideOf(rule) !== 'gateway')
      throw at('crash_point', 'is only for a crash of the gateway (a participant crashes before its handler runs)');
    if (!(CRASH_POINTS as readonly unknown[]).includes(raw.crash_point))
      throw at('crash_point', `must be one of ${oneOfText(CRASH_POINTS)}`);
    rule.crash_point = raw.crash_point as string;
  }
  if (raw.probability !== undefined) {
    if (typeof raw.probability !== 'number' || !(raw.probability >= 0 && raw.probability <= 1))
      throw at('probability', 'must be a number from 0 to 1');
    rule.probability = raw.probability;
  }
  if (raw.limit !== undefined) {
    if (!isObject(raw.limit)) throw at('limit', 'must be an object with count and/or until');
    for (const k of Object.keys(raw.limit))
      if (!LIMIT_FIELDS.has(k)) throw at(`limit.${k}`, 'is not a field of a limit (count, until)');
    const { count, until } = raw.limit;
    const limit: { count?: number; until?: string } = {};
    if (count !== undefined) {
      if (typeof count !== 'number' || !Number.isInteger(count) || count < 1)
        throw at('limit.count', 'must be an integer >= 1');
      limit.count = count;
    }
    if (until !== undefined) {
      // YAML reads an unquoted timestamp as a Date.
      const text = until instanceof Date ? until.toISOString() : until;
      if (typeof text !== 'string' || !/^\d{4}-\d{2}-\d{2}T/.test(text) || Number.isNaN(Date.parse(text)))
        throw at('limit.until', 'must be an ISO 8601 time (e.g. 2026-11-27T23:00:00Z)');
      limit.until = new Date(Date.parse(text)).toISOString();
    }
    rule.limit = limit;
  }
  return rule;
}

/**
 * Rules from a plan as parsed: `{rules: [...]}` (or the bare list). Every rule is checked; the
 * first mistake is a FaultPlanError naming the rule and its field.
 */
export function validateFaultPlan(plan: unknown, vocabulary?: FaultVocabulary): FaultRule[] {
  const list = Array.isArray(plan) ? plan : isObject(plan) ? plan.rules : undefined;
  if (isObject(plan))
    for (const k of Object.keys(plan))
      if (k !== 'rules') throw new FaultPlanError(`${k} is not a field of a fault plan (rules)`);
  if (!Array.isArray(list)) throw new FaultPlanError('a fault plan is {rules: [...]}: rules must be a list');
  if (list.length > MAX_RULES)
    throw new FaultPlanError(`a fault plan has at most ${MAX_RULES} rules, not ${list.length}`);
  const rules = list.map((r, i) => validateRule(r, i, vocabulary));
  const seen = new Set<string>();
  rules.forEach((r, i) => {
    if (seen.has(r.id)) throw new FaultPlanError(`rule ${i + 1} (${r.id}): id is used by an earlier rule`);
    seen.add(r.id);
  });
  return rules;
}

/** A plan file's text, YAML or JSON (JSON is YAML). */
export function parseFaultPlan(text: string, vocabulary?: FaultVocabulary): FaultRule[] {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new FaultPlanError(`not YAML or JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  return validateFaultPlan(doc ?? { rules: [] }, vocabulary);
}

function copy(r: FaultRule): FaultRule {
  return { ...r, target: { ...r.target }, ...(r.limit ? { limit: { ...r.limit } } : {}) };
}

/** The latency a latency rule adds this time: latency_ms plus up to jitter_ms. */
export function latencyOf(rule: Pick<FaultRule, 'latency_ms' | 'jitter_ms'>, random: () => number): number {
  return (rule.latency_ms ?? 0) + Math.round(random() * (rule.jitter_ms ?? 0));
}

/**
 * The rules in force. `match` tells which rule, if any, fires at a point: the first rule, in plan
 * order, that is enabled, of the point's side, targets it, is within its limits and passes its
 * probability draw; it counts that rule's firing.
 */
export class FaultBoard {
  private rules: FaultRule[];
  private readonly now: () => number;
  readonly vocabulary: FaultVocabulary | undefined;

  constructor(rules: readonly FaultRule[] = [], opts: { now?: () => number; vocabulary?: FaultVocabulary } = {}) {
    this.rules = rules.map(copy);
    this.now = opts.now ?? Date.now;
    this.vocabulary = opts.vocabulary;
  }

  get size(): number {
    return this.rules.length;
  }

  list(): FaultRule[] {
    return this.rules.map(copy);
  }

  /** Replaces the plan with `plan` (validated; throws FaultPlanError, the old plan stays). Counts restart at 0. */
  replace(plan: unknown): FaultRule[] {
    this.rules = validateFaultPlan(plan, this.vocabulary);
    return this.list();
  }

  /** Switches one rule on or off; undefined when no rule has this id. */
  setEnabled(id: string, enabled: boolean): FaultRule | undefined {
    const r = this.rules.find((x) => x.id === id);
    if (!r) return undefined;
    r.enabled = enabled;
    return copy(r);
  }

  match(point: FaultPoint, random: () => number): FaultRule | undefined {
    const now = this.now();
    for (const r of this.rules) {
      if (!r.enabled || sideOf(r) !== point.side) continue;
      const t = r.target;
      if (t.step !== undefined && t.step !== point.step) continue;
      if (t.participant !== undefined && t.participant !== point.participant) continue;
      if (t.method !== undefined && t.method !== point.method) continue;
      if (r.phase !== undefined && r.phase !== point.phase) continue;
      // A gateway-side crash strikes at its checkpoint only; every other rule around the call only.
      const at = r.kind === 'crash' && point.side === 'gateway' ? (r.crash_point ?? DEFAULT_CRASH_POINT) : undefined;
      if (at !== point.checkpoint) continue;
      if (r.limit?.count !== undefined && r.fired >= r.limit.count) continue;
      if (r.limit?.until !== undefined && now >= Date.parse(r.limit.until)) continue;
      if (!(random() < r.probability)) continue;
      r.fired += 1;
      return copy(r);
    }
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// The directive a gateway sends a participant: gRPC metadata `x-fault: <kind>[;latency_ms=N][;rule=<id>]`

export { FAULT_MD as FAULT_METADATA } from '../platform/grpc/grpc.js';

export interface FaultDirective {
  kind: FaultKind;
  latency_ms?: number;
  rule?: string;
}

export function encodeDirective(d: FaultDirective): string {
  return [
    d.kind,
    ...(d.latency_ms !== undefined ? [`latency_ms=${d.latency_ms}`] : []),
    ...(d.rule !== undefined ? [`rule=${d.rule}`] : []),
  ].join(';');
}

/** The directive in an `x-fault` value, or undefined when it is not one. */
export function parseDirective(text: string): FaultDirective | undefined {
  const [kind, ...params] = text.split(';');
  if (!(FAULT_KINDS as readonly unknown[]).includes(kind)) return undefined;
  const d: FaultDirective = { kind: kind as FaultKind };
  for (const p of params) {
    const [k, v = ''] = p.split('=');
    if (k === 'latency_ms' && /^\d{1,6}$/.test(v) && Number(v) <= MAX_LATENCY_MS) d.latency_ms = Number(v);
    else if (k === 'rule' && ID.test(v)) d.rule = v;
    else return undefined;
  }
  if (d.kind === 'latency' && d.latency_ms === undefined) return undefined;
  return d;
}
