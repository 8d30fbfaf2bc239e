/**
 * How long the saga log keeps a finished saga, per outcome, as pure rules: the policy, its
 * written form (SAGA_RETENTION), and the floor it may not go under. The stores delete what the
 * policy lets go (SagaLog.prune); the gateway's pruner calls them (src/gateway/retention.ts).
 *
 * A saga's age is counted from its end (its row's updatedAt, stamped by the log's clock). PARKED
 * is never pruned: an operator must look at it first; once resolved it is RESOLVED and ages from
 * then. RUNNING and COMPENSATING are not finished and are never pruned either.
 */
import { durationMs } from '../platform/config/config-schema.js';
import type { SagaStatus } from './model.js';

/** The outcomes a policy may let go. */
export type PrunableStatus = Extract<SagaStatus, 'COMPLETED' | 'COMPENSATED' | 'RESOLVED'>;

export const PRUNABLE_STATUSES: readonly PrunableStatus[] = ['COMPLETED', 'COMPENSATED', 'RESOLVED'];

/**
 * How long each outcome is kept after the saga ended, in ms; an outcome left out is kept for
 * ever. What SagaLog.prune takes: the store turns each age into a cutoff by its own clock.
 */
export type RetentionAges = Readonly<Partial<Record<PrunableStatus, number>>>;

/** The gateway's setting: ages per outcome, or off (nothing is ever pruned). */
export type RetentionPolicy = { readonly enabled: false } | { readonly enabled: true; readonly ages: RetentionAges };

const DAY_MS = 86_400_000;

/** COMPLETED a week, COMPENSATED a month (disputes come later), RESOLVED a quarter (an operator's repair is evidence). */
export const DEFAULT_RETENTION_AGES: Readonly<Record<PrunableStatus, number>> = {
  COMPLETED: 7 * DAY_MS,
  COMPENSATED: 30 * DAY_MS,
  RESOLVED: 90 * DAY_MS,
};

/** SAGA_RETENTION's default, in its written form. */
export const DEFAULT_RETENTION_TEXT = 'COMPLETED=7d,COMPENSATED=30d,RESOLVED=90d';

/** The written form in words, for configuration messages and `sagas config`. */
export const RETENTION_EXPECTED =
  'off, or OUTCOME=duration pairs separated by commas, OUTCOME one of COMPLETED, COMPENSATED, RESOLVED ' +
  '(each at most once; a duration like 7d or 36h, or off to keep that outcome for ever; an outcome left out keeps its default: ' +
  `${DEFAULT_RETENTION_TEXT}); PARKED is never pruned`;

export type RetentionParse = { ok: true; policy: RetentionPolicy } | { ok: false; error: string };

/**
 * Reads `off` or `COMPLETED=7d,COMPENSATED=30d,RESOLVED=off` (case-insensitive outcomes, spaces
 * around the separators allowed). Outcomes not named keep their default; an empty text is the
 * default policy. The error says what is wrong in words, without the variable's name.
 */
export function parseRetention(text: string): RetentionParse {
  const trimmed = text.trim();
  if (trimmed.toLowerCase() === 'off') return { ok: true, policy: { enabled: false } };
  const ages: Partial<Record<PrunableStatus, number>> = { ...DEFAULT_RETENTION_AGES };
  if (trimmed === '') return { ok: true, policy: { enabled: true, ages } };
  const seen = new Set<PrunableStatus>();
  for (const entry of trimmed.split(',')) {
    const m = /^\s*([A-Za-z_]+)\s*=\s*(\S+)\s*$/.exec(entry);
    if (!m) return { ok: false, error: `"${entry.trim()}" is not OUTCOME=duration` };
    const outcome = (m[1] as string).toUpperCase();
    const value = m[2] as string;
    if (outcome === 'PARKED')
      return { ok: false, error: 'PARKED is never pruned (resolve a parked saga; RESOLVED then applies)' };
    if (!(PRUNABLE_STATUSES as readonly string[]).includes(outcome))
      return {
        ok: false,
        error: `${outcome} is not an outcome a policy applies to (COMPLETED, COMPENSATED, RESOLVED)`,
      };
    const status = outcome as PrunableStatus;
    if (seen.has(status)) return { ok: false, error: `${status} is given twice` };
    seen.add(status);
    if (value.toLowerCase() === 'off') {
      delete ages[status];
      continue;
    }
    const ms = durationMs(value);
    if (ms === undefined)
      return { ok: false, error: `${status}=${value}: "${value}" is not a duration like 7d or 36h` };
    ages[status] = ms;
  }
  return { ok: true, policy: { enabled: true, ages } };
}

/**
 * Why `policy` may not run beside an idempotency TTL of `ttlMs`, or undefined when it may. A
 * pruned saga frees its idempotency key: were it pruned while a client may still retry with the
 * key, the retried POST /orders would place a second order. So every kept-for age must be at
 * least the TTL (an age counts from the saga's end, which is after the key's first use).
 */
export function retentionFloorError(policy: RetentionPolicy, ttlMs: number): string | undefined {
  if (!policy.enabled) return undefined;
  const short = PRUNABLE_STATUSES.filter((s) => {
    const age = policy.ages[s];
    return age !== undefined && age < ttlMs;
  });
  if (short.length === 0) return undefined;
  return (
    `${short.map((s) => `${s} (${formatAge(policy.ages[s] as number)})`).join(', ')} shorter than IDEMPOTENCY_TTL ` +
    `(${formatAge(ttlMs)}): a pruned saga frees its idempotency key, and a client retrying within the TTL would place a second order`
  );
}

/** An age in its largest whole unit (7d, 36h, 90m, 45s, 500ms), for messages and logs. */
export function formatAge(ms: number): string {
  for (const [unit, size] of [
    ['d', DAY_MS],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1_000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** The policy in its written form (what a log line shows): `COMPLETED=7d,COMPENSATED=30d,RESOLVED=off`, or `off`. */
export function describeRetention(policy: RetentionPolicy): string {
  if (!policy.enabled) return 'off';
  return PRUNABLE_STATUSES.map((s) => {
    const age = policy.ages[s];
    return `${s}=${age === undefined ? 'off' : formatAge(age)}`;
  }).join(',');
}

/**
 * Each outcome's cutoff at `now`: a saga of that outcome whose end (updatedAt) is at or before
 * it may go. Outcomes kept for ever have none.
 */
export function cutoffsAt(ages: RetentionAges, now: number): Partial<Record<PrunableStatus, number>> {
  const out: Partial<Record<PrunableStatus, number>> = {};
  for (const s of PRUNABLE_STATUSES) {
    const age = ages[s];
    if (age !== undefined) out[s] = now - age;
  }
  return out;
}

/** Whether anything would ever be pruned: a policy that keeps every outcome for ever needs no pruner. */
export function prunesAnything(policy: RetentionPolicy): policy is { enabled: true; ages: RetentionAges } {
  return policy.enabled && PRUNABLE_STATUSES.some((s) => policy.ages[s] !== undefined);
}

/**
 * The time before which a finished saga may have been pruned under `policy` (`now` minus its
 * shortest age); undefined when nothing is pruned. Reconciliation reads an order made before it
 * without its saga as pruned, not as an order no saga placed.
 */
export function retentionHorizon(policy: RetentionPolicy | undefined, now: number): number | undefined {
  if (!policy?.enabled) return undefined;
  const ages = Object.values(policy.ages).filter((a): a is number => typeof a === 'number');
  return ages.length === 0 ? undefined : now - Math.min(...ages);
}
