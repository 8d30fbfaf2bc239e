/**
 * A chaos scenario (scenarios/*.yaml): a fault plan in the switchboard's rule format, checked by
 * the switchboard's own validation (src/faults/: its schema, then the names the place-order saga
 * knows), plus what the chaos runner (src/chaos/run.ts, `sagas chaos`) needs to know: how long the
 * faults stay on, the load, the system it starts, what to expect and the operator's fix. Pure:
 * parsing and validation only.
 */
import { parse as parseYaml } from 'yaml';
import { FaultPlanError, validateFaultPlan, type FaultRule } from '../faults/plan.js';
import { vocabularyOf, type FaultVocabulary } from '../faults/vocabulary.js';
import { PLACE_ORDER_DEFINITION } from '../gateway/place-order.js';

/** When the runner removes the faults: once the load is sent, or once every saga has ended. */
export const UNTIL = ['load', 'settled'] as const;
export type Until = (typeof UNTIL)[number];

/** An operator's fix after the faults are gone: `retry-parked` = the console's retry on every PARKED saga. */
export const THEN = ['retry-parked'] as const;
export type Then = (typeof THEN)[number];

export interface ScenarioExpect {
  /** PARKED sagas once every saga has ended (before `then`): a number, or "some" (at least one). */
  parked?: number | 'some';
  /** Each rule must have fired at least this many times. */
  fired?: Record<string, number>;
  /** The runner must have restarted a dead gateway at least this many times. */
  gateway_restarts?: number;
}

export interface Scenario {
  name: string;
  description: string;
  /** The fault plan applied at the start (validated by the switchboard's validateFaultPlan). */
  rules: FaultRule[];
  /** Faults removed this long after they were applied (at the latest once the load is sent and `until` holds). */
  duration_s?: number;
  until: Until;
  orders: number;
  concurrency: number;
  /** Only for a system the runner starts. */
  system: { redis: 'up' | 'down'; env: Record<string, string> };
  expect: ScenarioExpect;
  then?: Then;
}

/** A scenario that cannot be used: the message names the file and the field. */
export class ScenarioError extends Error {
  readonly code = 'invalid_scenario';
  constructor(message: string) {
    super(message);
    this.name = 'ScenarioError';
  }
}

const FIELDS = [
  'name',
  'description',
  'rules',
  'duration_s',
  'until',
  'orders',
  'concurrency',
  'system',
  'expect',
  'then',
];
const EXPECT_FIELDS = ['parked', 'fired', 'gateway_restarts'];
const SYSTEM_FIELDS = ['redis', 'env'];

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function int(v: unknown, min: number, max: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
}

/**
 * A parsed document, checked; `where` (the file's name) starts every message. Its rules may name
 * what `vocabulary` has: by default the place-order saga's steps and calls, the system chaos runs.
 */
export function validateScenario(
  doc: unknown,
  where = 'scenario',
  vocabulary: FaultVocabulary = vocabularyOf([PLACE_ORDER_DEFINITION]),
): Scenario {
  const fail = (field: string, what: string) => new ScenarioError(`${where}: ${field} ${what}`);
  if (!isObject(doc))
    throw new ScenarioError(`${where}: a scenario is a mapping (name, description, rules, expect...)`);
  for (const k of Object.keys(doc))
    if (!FIELDS.includes(k)) throw fail(k, `is not a field of a scenario (${FIELDS.join(', ')})`);
  if (typeof doc.name !== 'string' || !/^[a-z0-9][a-z0-9-]{0,63}$/.test(doc.name))
    throw fail('name', 'must be 1-64 lowercase letters, digits or -');
  if (typeof doc.description !== 'string' || doc.description.trim() === '')
    throw fail('description', 'must say what the scenario rehearses');
  let rules: FaultRule[];
  try {
    rules = validateFaultPlan({ rules: doc.rules ?? [] }, vocabulary);
  } catch (err) {
    if (err instanceof FaultPlanError) throw new ScenarioError(`${where}: rules: ${err.message}`);
    throw err;
  }
  const s: Scenario = {
    name: doc.name,
    description: doc.description.trim(),
    rules,
    until: 'load',
    orders: 40,
    concurrency: 4,
    system: { redis: 'up', env: {} },
    expect: {},
  };
  if (doc.duration_s !== undefined) {
    if (!int(doc.duration_s, 1, 3600)) throw fail('duration_s', 'must be a whole number of seconds from 1 to 3600');
    s.duration_s = doc.duration_s;
  }
  if (doc.until !== undefined) {
    if (!(UNTIL as readonly unknown[]).includes(doc.until))
      throw fail(
        'until',
        `must be one of ${UNTIL.join(', ')} (load: removed once the orders are sent; settled: once every saga has ended)`,
      );
    s.until = doc.until as Until;
  }
  if (doc.orders !== undefined) {
    if (!int(doc.orders, 1, 100_000)) throw fail('orders', 'must be a whole number from 1 to 100000');
    s.orders = doc.orders;
  }
  if (doc.concurrency !== undefined) {
    if (!int(doc.concurrency, 1, 256)) throw fail('concurrency', 'must be a whole number from 1 to 256');
    s.concurrency = doc.concurrency;
  }
  if (doc.system !== undefined) {
    if (!isObject(doc.system)) throw fail('system', 'must be a mapping (redis, env)');
    for (const k of Object.keys(doc.system))
      if (!SYSTEM_FIELDS.includes(k))
        throw fail(`system.${k}`, `is not a field of system (${SYSTEM_FIELDS.join(', ')})`);
    if (doc.system.redis !== undefined) {
      if (doc.system.redis !== 'up' && doc.system.redis !== 'down') throw fail('system.redis', 'must be up or down');
      s.system.redis = doc.system.redis;
    }
    if (doc.system.env !== undefined) {
      if (!isObject(doc.system.env)) throw fail('system.env', 'must be a mapping of variable names to values');
      for (const [k, v] of Object.entries(doc.system.env)) {
        if (!/^[A-Z][A-Z0-9_]*$/.test(k)) throw fail(`system.env.${k}`, 'is not an environment variable name');
        if (typeof v !== 'string' && typeof v !== 'number')
          throw fail(`system.env.${k}`, 'must be a string or a number');
        s.system.env[k] = String(v);
      }
    }
  }
  if (doc.expect !== undefined) {
    if (!isObject(doc.expect)) throw fail('expect', `must be a mapping (${EXPECT_FIELDS.join(', ')})`);
    for (const k of Object.keys(doc.expect))
      if (!EXPECT_FIELDS.includes(k))
        throw fail(`expect.${k}`, `is not a field of expect (${EXPECT_FIELDS.join(', ')})`);
    const { parked, fired, gateway_restarts: restarts } = doc.expect;
    if (parked !== undefined) {
      if (parked !== 'some' && !int(parked, 0, 1_000_000))
        throw fail('expect.parked', 'must be a number of sagas or "some"');
      s.expect.parked = parked;
    }
    if (fired !== undefined) {
      if (!isObject(fired)) throw fail('expect.fired', 'must map rule ids to a least number of firings');
      s.expect.fired = {};
      for (const [id, n] of Object.entries(fired)) {
        if (!rules.some((r) => r.id === id))
          throw fail(
            `expect.fired.${id}`,
            `names no rule of this scenario (${rules.map((r) => r.id).join(', ') || 'none'})`,
          );
        if (!int(n, 0, 1_000_000)) throw fail(`expect.fired.${id}`, 'must be a whole number');
        s.expect.fired[id] = n;
      }
    }
    if (restarts !== undefined) {
      if (!int(restarts, 0, 1000)) throw fail('expect.gateway_restarts', 'must be a whole number');
      s.expect.gateway_restarts = restarts;
    }
  }
  if (doc.then !== undefined) {
    if (!(THEN as readonly unknown[]).includes(doc.then)) throw fail('then', `must be one of ${THEN.join(', ')}`);
    s.then = doc.then as Then;
  }
  if (s.then === 'retry-parked' && s.expect.parked === 0)
    throw fail('then', 'retry-parked needs parked sagas: expect.parked is 0');
  return s;
}

/** A scenario file's text (YAML or JSON). */
export function parseScenario(text: string, where = 'scenario', vocabulary?: FaultVocabulary): Scenario {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ScenarioError(`${where}: not YAML or JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  return validateScenario(doc, where, vocabulary);
}
