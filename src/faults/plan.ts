/**
 * The fault switchboard's plan, pure: rules (what to break, where, how often, until when), their
 * validation, and the board that decides which rule fires at a given point. No I/O, no clock or
 * randomness of its own: the caller passes `now` and `random` in. A plan is checked against its
 * schema (schema.ts: the shape of a rule, one for the file, the admin API and the scenarios), then
 * against what a schema does not say: the names the sagas know (vocabulary.ts) and how the fields
 * go together. Where the faults act is elsewhere in this room: the saga engine's interceptor on the
 * gateway (gateway.ts) and a wrapper of a participant's gRPC methods (participant.ts, honouring the
 * `x-fault` metadata whose directive is encoded here).
 */
import { parse as parseYaml } from 'yaml';
import {
  DEFAULT_CRASH_POINT,
  FAULT_KINDS,
  MAX_LATENCY_MS,
  RULE_ID,
  planShapeProblem,
  type FaultKind,
  type FaultPhase,
  type FaultPlan,
  type FaultRule,
  type FaultRuleInput,
} from './schema.js';
import type { FaultVocabulary } from './vocabulary.js';

export {
  CRASH_POINTS,
  DEFAULT_CRASH_POINT,
  FAULT_KINDS,
  FAULT_PHASES,
  type FaultKind,
  type FaultParticipant,
  type FaultPhase,
  type FaultRule,
  type FaultTarget,
} from './schema.js';

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

/**
 * Where a rule acts: `after_effect` and any rule naming a participant or a method act at the
 * participant (the gateway sends it the fault as `x-fault` metadata); the others in the gateway's
 * engine, around the step's attempt.
 */
export function sideOf(rule: Pick<FaultRule, 'kind' | 'target'>): FaultSide {
  if (rule.kind === 'after_effect') return 'participant';
  return rule.target.participant !== undefined || rule.target.method !== undefined ? 'participant' : 'gateway';
}

/**
 * What the schema cannot say about one rule (already of the schema's shape), or undefined: the
 * names it targets against the vocabulary, the fields only some kinds take, a time that exists.
 */
function meaningProblem(raw: FaultRuleInput, vocabulary: FaultVocabulary | undefined): string | undefined {
  const target = raw.target ?? {};
  if (vocabulary) {
    const { step, participant, method } = target;
    if (step !== undefined && !vocabulary.steps.includes(step))
      return `target.step "${step}" is not a step (${vocabulary.steps.join(', ')})`;
    if (participant !== undefined && !vocabulary.participants.includes(participant))
      return `target.participant "${participant}" is not a participant the sagas call (${vocabulary.participants.join(', ')})`;
    if (method !== undefined) {
      const known = vocabulary.calls.filter((c) => participant === undefined || c.participant === participant);
      if (!known.some((c) => c.method === method))
        return `target.method "${method}" is not a method the sagas call${participant ? ` on ${participant}` : ''} (${[...new Set(known.map((c) => c.method))].join(', ')})`;
    }
  }
  if (raw.kind === 'latency') {
    if (raw.latency_ms === undefined) return 'latency_ms is required for a latency rule';
  } else {
    if (raw.latency_ms !== undefined) return 'latency_ms is only for a latency rule';
    if (raw.jitter_ms !== undefined) return 'jitter_ms is only for a latency rule';
  }
  if (raw.crash_point !== undefined) {
    if (raw.kind !== 'crash') return 'crash_point is only for a crash rule';
    if (sideOf({ kind: raw.kind, target }) !== 'gateway')
      return 'crash_point is only for a crash of the gateway (a participant crashes before its handler runs)';
  }
  const until = raw.limit?.until;
  if (until !== undefined && Number.isNaN(Date.parse(until)))
    return 'limit.until must be an ISO 8601 time (e.g. 2026-11-27T23:00:00Z)';
  return undefined;
}

/** A checked rule as the board holds it: defaults filled in, `fired` at 0 whatever was sent. */
function held(raw: FaultRuleInput): FaultRule {
  const limit = raw.limit && {
    ...(raw.limit.count !== undefined ? { count: raw.limit.count } : {}),
    ...(raw.limit.until !== undefined ? { until: new Date(Date.parse(raw.limit.until)).toISOString() } : {}),
  };
  return {
    id: raw.id,
    enabled: raw.enabled ?? true,
    target: { ...raw.target },
    ...(raw.phase !== undefined ? { phase: raw.phase } : {}),
    kind: raw.kind,
    ...(raw.latency_ms !== undefined ? { latency_ms: raw.latency_ms } : {}),
    ...(raw.jitter_ms !== undefined ? { jitter_ms: raw.jitter_ms } : {}),
    ...(raw.crash_point !== undefined ? { crash_point: raw.crash_point } : {}),
    probability: raw.probability ?? 1,
    ...(limit ? { limit } : {}),
    fired: 0,
  };
}

/**
 * Rules from a plan as parsed: `{rules: [...]}` (or the bare list). The plan's schema first, then
 * each rule's meaning (with a vocabulary, the names it targets), then unique ids; the first
 * mistake is a FaultPlanError naming the rule and its field.
 */
export function validateFaultPlan(plan: unknown, vocabulary?: FaultVocabulary): FaultRule[] {
  const doc = Array.isArray(plan) ? { rules: plan } : plan;
  const shape = planShapeProblem(doc);
  if (shape !== undefined) throw new FaultPlanError(shape);
  const { rules } = doc as FaultPlan;
  const seen = new Set<string>();
  rules.forEach((r, i) => {
    const problem = meaningProblem(r, vocabulary);
    if (problem !== undefined) throw new FaultPlanError(`rule ${i + 1} (${r.id}): ${problem}`);
  });
  rules.forEach((r, i) => {
    if (seen.has(r.id)) throw new FaultPlanError(`rule ${i + 1} (${r.id}): id is used by an earlier rule`);
    seen.add(r.id);
  });
  return rules.map(held);
}

/** A plan file's text, YAML or JSON (JSON is YAML), as a document; an empty file is an empty plan. */
export function readFaultPlan(text: string): unknown {
  try {
    return parseYaml(text) ?? { rules: [] };
  } catch (err) {
    throw new FaultPlanError(`not YAML or JSON: ${(err as Error).message.split('\n')[0]}`);
  }
}

/** A plan file's text, checked. */
export function parseFaultPlan(text: string, vocabulary?: FaultVocabulary): FaultRule[] {
  return validateFaultPlan(readFaultPlan(text), vocabulary);
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

  constructor(rules: readonly FaultRule[] = [], opts: { now?: () => number } = {}) {
    this.rules = rules.map(copy);
    this.now = opts.now ?? Date.now;
  }

  get size(): number {
    return this.rules.length;
  }

  list(): FaultRule[] {
    return this.rules.map(copy);
  }

  /**
   * Replaces the plan with `plan`, validated (with `vocabulary`, its names too: the registered
   * sagas'); throws FaultPlanError, the old plan staying. Counts restart at 0.
   */
  replace(plan: unknown, vocabulary?: FaultVocabulary): FaultRule[] {
    this.rules = validateFaultPlan(plan, vocabulary);
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
    else if (k === 'rule' && RULE_ID.test(v)) d.rule = v;
    else return undefined;
  }
  if (d.kind === 'latency' && d.latency_ms === undefined) return undefined;
  return d;
}
