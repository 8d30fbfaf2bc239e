/**
 * Versions of a saga definition, as pure rules: which versions a process may start with against
 * the sagas already in the log, and whether (and how) an in-flight saga can be moved from one
 * version to another. The engine (engine.ts) reads the log and writes the moves; nothing here does
 * I/O.
 *
 * A saga runs to its end on the version it started on: a process drives only the versions it
 * registers, and leaves the others to processes that have them (a rolling upgrade). A version may
 * be removed from the code only once no saga in flight (RUNNING, COMPENSATING or PARKED) uses it:
 * a process whose definitions would strand such sagas refuses to start. Moving sagas from one
 * version to another is an operator's explicit, audited act (`migrate`), planned saga by saga.
 */
import { pivotIndex, type Json, type SagaDefinition } from './definition.js';
import type { SagaPatch, SagaRecord, SagaStatus } from './model.js';

/** One version of one definition. */
export interface DefinitionRef {
  definition: string;
  version: number;
}

/** `place_order@2`: how a version is named in messages, metrics and the console. */
export function refName(r: DefinitionRef): string {
  return `${r.definition}@${r.version}`;
}

/** Sagas in flight on one version, as the log counts them. */
export interface VersionCount extends DefinitionRef {
  running: number;
  compensating: number;
  parked: number;
}

export function inFlightOf(c: VersionCount): number {
  return c.running + c.compensating + c.parked;
}

/**
 * What a process makes of one version: `driven`, it registers it; `left_to_others`, a version it
 * does not have whose sagas other processes drive (a newer one during a rolling upgrade, or
 * another definition); `removed`, an older version of a definition it registers, dropped from its
 * code while sagas still use it: those sagas would be stranded (no process left to drive them).
 */
export type VersionState = 'driven' | 'left_to_others' | 'removed';

export interface VersionView extends VersionCount {
  state: VersionState;
  /** Whether new sagas of this definition start on this version here. */
  startsHere: boolean;
}

/**
 * Every version registered here or in flight in the log, with what this process makes of it.
 * `starting` holds, per definition name, the version this process starts new sagas on.
 */
export function versionViews(
  registered: readonly DefinitionRef[],
  starting: ReadonlyMap<string, number>,
  inLog: readonly VersionCount[],
): VersionView[] {
  const key = (r: DefinitionRef) => refName(r);
  const counts = new Map(inLog.map((c) => [key(c), c]));
  const refs = new Map<string, DefinitionRef>();
  for (const r of [...registered, ...inLog]) refs.set(key(r), { definition: r.definition, version: r.version });
  const here = new Set(registered.map(key));
  const newestHere = new Map<string, number>();
  for (const r of registered) newestHere.set(r.definition, Math.max(r.version, newestHere.get(r.definition) ?? 0));
  return [...refs.values()]
    .sort((a, b) => a.definition.localeCompare(b.definition) || a.version - b.version)
    .map((r) => {
      const c = counts.get(key(r)) ?? { ...r, running: 0, compensating: 0, parked: 0 };
      const newest = newestHere.get(r.definition);
      const state: VersionState = here.has(key(r))
        ? 'driven'
        : newest !== undefined && r.version < newest
          ? 'removed'
          : 'left_to_others';
      return { ...c, state, startsHere: starting.get(r.definition) === r.version };
    });
}

/**
 * Why this process must not start, or null: sagas in flight on a version it removed. The message
 * names the versions, their counts, and the two ways out.
 */
export function strandedVersions(views: readonly VersionView[]): string | null {
  const stranded = views.filter((v) => v.state === 'removed' && inFlightOf(v) > 0);
  if (stranded.length === 0) return null;
  const what = stranded
    .map(
      (v) =>
        `${inFlightOf(v)} saga(s) of ${refName(v)} in flight (RUNNING ${v.running}, COMPENSATING ${v.compensating}, PARKED ${v.parked})`,
    )
    .join('; ');
  const first = stranded[0] as VersionView;
  const newest = Math.max(
    ...views.filter((v) => v.definition === first.definition && v.state === 'driven').map((v) => v.version),
  );
  return (
    `the saga log holds ${what}, and this process no longer registers that version: no process would drive them. ` +
    `Keep the version registered until they end, or move them first: sagas migrate --definition ${first.definition} --from ${first.version} --to ${newest} --dry-run`
  );
}

/** Why a saga cannot be moved to the other version (a stable code, with a sentence). */
export type MigrationRefusalCode =
  | 'not_in_flight'
  | 'wrong_version'
  | 'finishing'
  | 'step_missing'
  | 'kind_changed'
  | 'reopens_pivot'
  | 'renamed_replay';

export type MigrationPlan =
  | {
      kind: 'move';
      /** Written with an OPERATOR_ACTION event, conditional on the saga being as it was read. */
      patch: SagaPatch & { version: number };
      fromStep: string | null;
      toStep: string | null;
      /** Steps of the new version the saga will run for the first time. */
      added: string[];
      /**
       * Steps it has run that it will run again, in the new order, under their own idempotency
       * keys: each participant answers with what it answered before, and does nothing twice.
       */
      replayed: string[];
      /**
       * Compensating: steps of the new version it never ran whose compensation will be called,
       * which every compensation must bear when its action never ran (DESIGN §2).
       */
      unrun: string[];
    }
  | { kind: 'stay'; code: MigrationRefusalCode; reason: string; fromStep: string | null };

const IN_FLIGHT: readonly SagaStatus[] = ['RUNNING', 'COMPENSATING', 'PARKED'];

/**
 * How a saga of `from` would be moved to `to`, or why it cannot be. `map` renames steps (old name
 * → new name); a step not in it keeps its name.
 *
 * Going forward, the saga resumes at the first step of `to` it has not completed: every step
 * before it has had its effect, every step from it on runs, the new ones for the first time and
 * the ones it had completed again, under the same idempotency keys, so that their participants
 * replay their answers instead of acting twice. Compensating, it resumes at the last step of `to`
 * it may have touched, and compensates down from there. It moves only when nothing is lost or
 * done twice:
 * - every step it has completed or is running exists in `to` with the same kind, so each keeps
 *   its result and its compensation;
 * - a step run again keeps its name (its idempotency key is made from it); so does the step in
 *   progress once an attempt of it may be in flight;
 * - a saga past its pivot stays past it: it is never put where it could compensate again.
 */
export function planMigration(
  from: SagaDefinition<unknown>,
  to: SagaDefinition<unknown>,
  map: Readonly<Record<string, string>>,
  saga: SagaRecord,
): MigrationPlan {
  const forward = saga.compIndex < 0;
  const fromStep = from.steps[forward ? saga.stepIndex : saga.compIndex]?.name ?? null;
  const stay = (code: MigrationRefusalCode, reason: string): MigrationPlan => ({
    kind: 'stay',
    code,
    reason,
    fromStep,
  });
  if (saga.definition !== from.name || saga.version !== from.version)
    return stay('wrong_version', `it runs ${saga.definition}@${saga.version}, not ${from.name}@${from.version}`);
  if (!IN_FLIGHT.includes(saga.status)) return stay('not_in_flight', `it is ${saga.status}`);
  if (saga.status === 'COMPENSATING' && saga.compIndex < 0)
    return stay('finishing', 'it has nothing left to compensate and is finishing');
  const renamed = (name: string) => map[name] ?? name;
  const toIndex = new Map(to.steps.map((st, i) => [st.name, i]));
  // Each step of `from` it has completed or is at, with its place in `to`.
  const touched = Math.min(Math.max(saga.stepIndex, saga.compIndex), from.steps.length - 1);
  const image: number[] = [];
  for (let i = 0; i <= touched; i++) {
    const step = from.steps[i];
    if (!step) break;
    const j = toIndex.get(renamed(step.name));
    if (j === undefined)
      return stay('step_missing', `its step ${step.name} (${step.kind}) has no counterpart in version ${to.version}`);
    const target = to.steps[j];
    if (target && target.kind !== step.kind)
      return stay(
        'kind_changed',
        `${step.name} is ${step.kind} in version ${from.version} but ${target.kind} in ${to.version}`,
      );
    image.push(j);
  }
  const completed = new Set(image.slice(0, Math.min(saga.stepIndex, from.steps.length)));
  const keyMoves = (i: number) => {
    const name = from.steps[i]?.name;
    return name !== undefined && renamed(name) !== name;
  };
  const results: Record<string, Json> = {};
  for (const [name, value] of Object.entries(saga.results)) results[renamed(name)] = value;
  const current = forward ? saga.stepIndex : saga.compIndex;
  if (current < from.steps.length && keyMoves(current) && saga.attempt > 0)
    return stay(
      'renamed_replay',
      `its step ${fromStep} is renamed ${renamed(fromStep ?? '')} and attempt ${saga.attempt} of it may be in flight under the old name's idempotency key; move it once the step has settled`,
    );
  if (forward) {
    let resume = to.steps.findIndex((_, j) => !completed.has(j));
    if (resume < 0) resume = to.steps.length;
    const replayedAt = [...completed].filter((j) => j >= resume).sort((a, b) => a - b);
    const renamedReplay = replayedAt.map((j) => image.indexOf(j)).find((i) => keyMoves(i));
    if (renamedReplay !== undefined)
      return stay(
        'renamed_replay',
        `it would run ${from.steps[renamedReplay]?.name} again under its new name ${renamed(from.steps[renamedReplay]?.name ?? '')}, a new idempotency key: a second effect`,
      );
    const fromPivot = pivotIndex(from);
    const toPivot = pivotIndex(to);
    if (fromPivot >= 0 && saga.stepIndex > fromPivot && toPivot >= 0 && resume <= toPivot)
      return stay(
        'reopens_pivot',
        `it is past its pivot ${from.steps[fromPivot]?.name}, but would resume at ${to.steps[resume]?.name}, before it in version ${to.version}, where it could compensate a confirmed order`,
      );
    const known = new Set(from.steps.map((st) => renamed(st.name)));
    return {
      kind: 'move',
      patch: {
        version: to.version,
        stepIndex: resume,
        compIndex: -1,
        results,
        attempt: resume === image[saga.stepIndex] ? saga.attempt : 0,
      },
      fromStep,
      toStep: to.steps[resume]?.name ?? null,
      added: to.steps.filter((st, j) => j >= resume && !known.has(st.name)).map((st) => st.name),
      replayed: replayedAt.map((j) => to.steps[j]?.name ?? ''),
      unrun: [],
    };
  }
  // Compensating (or parked compensating): down from the last step of `to` it may have touched.
  const pending = image.slice(0, saga.compIndex + 1);
  const compIndex = Math.max(...pending);
  const undone = image.slice(saga.compIndex + 1).filter((j) => j <= compIndex);
  const redoneRenamed = undone.find((j) => keyMoves(image.indexOf(j)));
  if (redoneRenamed !== undefined)
    return stay(
      'renamed_replay',
      `it would compensate ${to.steps[redoneRenamed]?.name} again under a new name, a new idempotency key`,
    );
  const stepIndex = saga.stepIndex < from.steps.length ? (image[saga.stepIndex] ?? compIndex) : to.steps.length;
  const imaged = new Set(image);
  return {
    kind: 'move',
    patch: {
      version: to.version,
      stepIndex,
      compIndex,
      results,
      attempt: compIndex === image[saga.compIndex] ? saga.attempt : 0,
    },
    fromStep,
    toStep: to.steps[compIndex]?.name ?? null,
    added: [],
    replayed: undone.map((j) => to.steps[j]?.name ?? ''),
    unrun: to.steps.filter((_, j) => j <= compIndex && !imaged.has(j)).map((st) => st.name),
  };
}

/** A map written `old=new,old2=new2`; a name may not be mapped twice, nor two names to one. */
export function parseStepMap(text: string): Record<string, string> {
  const map: Record<string, string> = {};
  const targets = new Set<string>();
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '')) {
    const m = /^([A-Za-z0-9_.-]{1,100})=([A-Za-z0-9_.-]{1,100})$/.exec(part);
    if (!m) throw new RangeError(`"${part}" is not old_step=new_step`);
    const [, from, to] = m as unknown as [string, string, string];
    if (from in map) throw new RangeError(`step ${from} is mapped twice`);
    if (targets.has(to)) throw new RangeError(`two steps are mapped to ${to}`);
    map[from] = to;
    targets.add(to);
  }
  return map;
}

/** An operator's move of in-flight sagas from one version to another (dry run or for real). */
export interface MigrationRequest {
  definition: string;
  from: number;
  to: number;
  /** Renamed steps, old name → new name (parseStepMap). */
  map: Readonly<Record<string, string>>;
  /** Plan only: list what would move and what could not; write nothing. */
  dryRun: boolean;
  /** Who acts (the admin token's name). */
  actor: string;
  /** The id every moved saga's OPERATOR_ACTION carries (`migrate_<uuid>`); the same again moves nothing twice. */
  actionId: string;
  note?: string;
  /** At most this many sagas are looked at (default 10,000). */
  limit?: number;
}

/** One saga's line in a migration's report. */
export interface MigrationItem {
  sagaId: string;
  status: SagaStatus;
  /** moved (or would_move, in a dry run); stay: could not, with the code and why; changed: it moved under us, try again. */
  outcome: 'moved' | 'would_move' | 'stay' | 'changed';
  fromStep: string | null;
  toStep: string | null;
  /** See MigrationPlan: steps it will run for the first time, run again (replayed), compensate unrun. */
  added: string[];
  replayed: string[];
  unrun: string[];
  code?: MigrationRefusalCode;
  reason?: string;
}

export interface MigrationReport {
  definition: string;
  from: number;
  to: number;
  dryRun: boolean;
  actionId: string;
  /** In-flight sagas of `from` looked at. */
  scanned: number;
  moved: number;
  stayed: number;
  /** Changed under the migration (it moved on, or kept changing): neither moved nor refused; run it again. */
  changed: number;
  /** Stayed, counted by code. */
  byCode: Partial<Record<MigrationRefusalCode, number>>;
  /** The sagas looked at, in the order read (newest first). */
  items: MigrationItem[];
  /** More in-flight sagas of `from` exist past `limit`. */
  truncated: boolean;
}

export type MigrationErrorCode = 'unknown_version' | 'same_version' | 'invalid_map';

/** A migration refused as a whole (nothing written): the admin API answers 400 or 409. */
export class MigrationError extends Error {
  constructor(
    readonly code: MigrationErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'MigrationError';
  }
}

/** The process's definitions would strand sagas in flight (see strandedVersions): it must not start. */
export class VersionsStrandedError extends Error {
  readonly code = 'versions_stranded';
  constructor(message: string) {
    super(message);
    this.name = 'VersionsStrandedError';
  }
}
