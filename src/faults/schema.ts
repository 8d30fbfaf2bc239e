/**
 * The fault plan's one schema, in TypeBox (JSON Schema): a rule as a plan writes it, a rule as
 * the switchboard holds it, a plan, and the vocabulary the admin API answers. It checks every
 * plan wherever it comes from (FAULTS_FILE, PUT /api/faults, a chaos scenario's `rules`: through
 * plan.ts's validateFaultPlan) and documents PUT /api/faults in the admin OpenAPI document; the
 * rule types are derived from it. What a JSON Schema does not say well (the names the registered
 * sagas know, latency_ms only on a latency rule, crash_point only on a gateway crash, a time that
 * exists, unique ids) is checked after it, by plan.ts.
 *
 * The schemas are built on first use: TypeBox takes ~100 ms to load, which the participants and
 * the CLI — they import this room (the x-fault directive, the constants) but never check a plan —
 * should not pay at start.
 */
import { createRequire } from 'node:module';
import type { Static } from '@sinclair/typebox';

export const FAULT_KINDS = ['latency', 'error', 'uncertain', 'after_effect', 'crash'] as const;
export const FAULT_PHASES = ['action', 'compensation'] as const;
/** The engine's checkpoints of an attempt, where a gateway-side `crash` may strike. */
export const CRASH_POINTS = ['before_intent', 'after_intent', 'before_outcome', 'after_outcome'] as const;
/** After the participant answered, before the outcome is written: the effect may have happened, the log does not know. */
export const DEFAULT_CRASH_POINT = 'before_outcome';

export const MAX_RULES = 200;
export const MAX_LATENCY_MS = 600_000;
/** A rule's id: also carried in the x-fault directive and in metrics, so short and plain. */
export const RULE_ID = /^[A-Za-z0-9_.-]{1,64}$/;

// TypeBox's CommonJS build, as in src/gateway/http/schemas.ts (start-up time under tsx).
const load = createRequire(import.meta.url);
/** The TypeBox kind of a string that is one of some words. */
const WORD_KIND = 'FaultPlanWord';

function build() {
  const { Type, TypeRegistry, Kind } = load('@sinclair/typebox') as typeof import('@sinclair/typebox');
  const { TypeCompiler, ValueErrorType } = load(
    '@sinclair/typebox/compiler',
  ) as typeof import('@sinclair/typebox/compiler');
  // One of some words, as JSON Schema says it plainly (`{type: string, enum}`: what the OpenAPI
  // document shows and clients generate a union from), checked by TypeBox through its registry.
  if (!TypeRegistry.Has(WORD_KIND))
    TypeRegistry.Set<{ enum: readonly string[] }>(
      WORD_KIND,
      (schema, value) => typeof value === 'string' && schema.enum.includes(value),
    );
  const oneOf = <T extends string>(words: readonly T[], description: string) =>
    Type.Unsafe<T>({ [Kind]: WORD_KIND, type: 'string', enum: [...words], description });
  const names = (description: string) => Type.Array(Type.String(), { description });
  // Each description says what the field must be: an error reads `<field> must be <description>`.
  const id = Type.String({ pattern: RULE_ID.source, description: '1-64 letters, digits, _ . or -' });
  const kind = oneOf(FAULT_KINDS, `one of ${FAULT_KINDS.join(', ')}`);
  const enabled = Type.Boolean({ default: true, description: 'true or false' });
  const target = Type.Object(
    {
      step: Type.Optional(Type.String({ minLength: 1, description: 'a step name (e.g. charge_payment)' })),
      participant: Type.Optional(
        Type.String({ pattern: '^[a-z][a-z0-9_-]{0,63}$', description: 'a participant name (e.g. payment)' }),
      ),
      method: Type.Optional(
        Type.String({ pattern: '^[A-Za-z][A-Za-z0-9]{0,63}$', description: 'a gRPC method name (e.g. Charge)' }),
      ),
    },
    { additionalProperties: false, description: 'an object with step, participant and/or method' },
  );
  const phase = oneOf(FAULT_PHASES, `one of ${FAULT_PHASES.join(', ')} (or unset: both)`);
  const ms = Type.Integer({
    minimum: 0,
    maximum: MAX_LATENCY_MS,
    description: `an integer from 0 to ${MAX_LATENCY_MS} (milliseconds)`,
  });
  const crashPoint = oneOf(CRASH_POINTS, `one of ${CRASH_POINTS.join(', ')}`);
  const probability = Type.Number({ minimum: 0, maximum: 1, default: 1, description: 'a number from 0 to 1' });
  const limit = Type.Object(
    {
      count: Type.Optional(Type.Integer({ minimum: 1, description: 'an integer >= 1' })),
      until: Type.Optional(
        Type.String({
          pattern: '^\\d{4}-\\d{2}-\\d{2}T',
          description: 'an ISO 8601 time (e.g. 2026-11-27T23:00:00Z)',
        }),
      ),
    },
    { additionalProperties: false, description: 'an object with count and/or until' },
  );
  const fired = Type.Integer({ minimum: 0, description: 'an integer >= 0 (how many times the rule fired)' });
  // In the order a rule is read (and an error found): who, what, where, how, how often.
  const fields = {
    id,
    kind,
    target,
    phase: Type.Optional(phase),
    latency_ms: Type.Optional(ms),
    jitter_ms: Type.Optional(ms),
    crash_point: Type.Optional(crashPoint),
    limit: Type.Optional(limit),
  };
  const ruleInput = Type.Object(
    {
      ...fields,
      enabled: Type.Optional(enabled),
      target: Type.Optional(target),
      probability: Type.Optional(probability),
      fired: Type.Optional(fired),
    },
    {
      additionalProperties: false,
      description:
        'a fault rule (docs/faults-and-chaos.md); enabled, target and probability have defaults, fired is ignored (counts start at 0)',
    },
  );
  const rule = Type.Object(
    { ...fields, enabled, probability, fired },
    { additionalProperties: false, description: 'a fault rule, with how many times it fired since it was loaded' },
  );
  const plan = Type.Object(
    {
      rules: Type.Array(ruleInput, {
        maxItems: MAX_RULES,
        description: `the rules, in the order they are matched (at most ${MAX_RULES})`,
      }),
    },
    { additionalProperties: false, description: '{rules: [...]}: a fault plan' },
  );
  const call = Type.Object({ participant: Type.String(), method: Type.String() });
  const vocabulary = Type.Object(
    {
      kinds: names('what a rule does (kind)'),
      participants: names('the participants the registered sagas call (target.participant)'),
      phases: names('phase (unset: both)'),
      crash_points: names('where a gateway crash strikes in the attempt (crash_point; default before_outcome)'),
      steps: names("the registered sagas' steps (target.step)"),
      calls: Type.Array(call, { description: 'the participant methods they call (target.participant and method)' }),
    },
    { description: 'what a rule may name: the constants of the format and what the registered sagas define' },
  );
  return { ruleInput, rule, plan, vocabulary, checkPlan: TypeCompiler.Compile(plan), ValueErrorType };
}

export type FaultSchemas = ReturnType<typeof build>;
let built: FaultSchemas | undefined;

/** The schemas (and the plan's compiled check), built on first use. */
export function faultSchemas(): FaultSchemas {
  return (built ??= build());
}

/** A rule as a plan writes it: defaults unset, `fired` ignored. */
export type FaultRuleInput = Static<FaultSchemas['ruleInput']>;
/** A rule as the switchboard holds it, defaults filled in, with how many times it fired since it was loaded. */
export type FaultRule = Static<FaultSchemas['rule']>;
export type FaultPlan = Static<FaultSchemas['plan']>;
export type FaultTarget = FaultRule['target'];
export type FaultKind = FaultRule['kind'];
export type FaultPhase = NonNullable<FaultRule['phase']>;
export type CrashPoint = NonNullable<FaultRule['crash_point']>;
/** A participant's name, as the registered sagas' calls name it (e.g. `payment`). */
export type FaultParticipant = string;
export type FaultVocabularyView = Static<FaultSchemas['vocabulary']>;

const PLAN_SHAPE = 'a fault plan is {rules: [...]}: rules must be a list';
const CONTAINERS: Readonly<Record<string, string>> = { target: 'a target', limit: 'a limit' };

/** `/rules/0/target/step` → ['rules', '0', 'target', 'step'] (JSON Pointer, unescaped). */
function segments(path: string): string[] {
  return path
    .split('/')
    .slice(1)
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
}

/**
 * The first thing wrong with a plan's shape, in words that name the rule (its position, and its
 * id when it has one) and the field; undefined when the schema holds.
 */
export function planShapeProblem(plan: unknown): string | undefined {
  const { checkPlan, ValueErrorType } = faultSchemas();
  if (checkPlan.Check(plan)) return undefined;
  const e = checkPlan.Errors(plan).First();
  if (!e) return PLAN_SHAPE;
  const [top, index, ...field] = segments(e.path);
  if (top === undefined) return PLAN_SHAPE;
  if (top !== 'rules') return `${top} is not a field of a fault plan (rules)`;
  if (index === undefined) {
    if (e.type === ValueErrorType.ArrayMaxItems && Array.isArray(e.value))
      return `a fault plan has at most ${MAX_RULES} rules, not ${e.value.length}`;
    return PLAN_SHAPE;
  }
  const raw: unknown = (plan as { rules: unknown[] }).rules[Number(index)];
  const rawId = typeof raw === 'object' && raw !== null ? (raw as { id?: unknown }).id : undefined;
  const rule = `rule ${Number(index) + 1}${typeof rawId === 'string' ? ` (${rawId})` : ''}`;
  if (field.length === 0) return `${rule}: must be an object`;
  const name = field.join('.');
  if (e.type === ValueErrorType.ObjectAdditionalProperties) {
    const parent = field.length > 1 ? field[field.length - 2] : undefined;
    const known = Object.keys((e.schema as { properties?: object }).properties ?? {}).join(', ');
    return `${rule}: ${name} is not a field of ${(parent && CONTAINERS[parent]) ?? 'a rule'} (${known})`;
  }
  return `${rule}: ${name} must be ${e.schema.description ?? 'valid'}`;
}
