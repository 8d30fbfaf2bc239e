/**
 * The versions of the saga definitions, for operators (issue 26, item 1):
 *
 * - `GET /api/versions` (any role): every version this gateway registers or the log has sagas in
 *   flight on, with their counts and what this gateway makes of each (drives it, leaves it to
 *   other gateways, or removed it while sagas still use it).
 * - `POST /api/migrations`: moves in-flight sagas of one version to another, saga by saga, where
 *   nothing they have done would be lost or repeated (src/saga/versions.ts, planMigration). A dry
 *   run (`dry_run: true`) writes nothing and is open to viewers; a real one is an operator's, and
 *   each moved saga gets an OPERATOR_ACTION `migrate` event under one `action_id`.
 *
 * The engine decides everything (which sagas move, why the others stay); this file checks the
 * request's shape, turns the engine's refusals into the error table's codes, and caps the answer.
 */
import { createRequire } from 'node:module';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Static } from '@sinclair/typebox';
import { ID_CHARS } from '../../contracts/ids.js';
import { uuidv7 } from '../../platform/ids.js';
import {
  EngineStoppingError,
  MAX_NOTE_LENGTH,
  MigrationError,
  SAGA_STATUSES,
  inFlightOf,
  parseStepMap,
  type MigrationItem,
  type MigrationRefusalCode,
  type MigrationReport,
  type SagaEngine,
  type SagaStatus,
  type VersionState,
  type VersionView,
} from '../../saga/index.js';
import { HttpError } from '../http/errors.js';
import { errorResponses, Nullable } from '../http/schemas.js';
import type { Caller } from './auth.js';

// TypeBox's CommonJS build, as in schemas.ts (start-up time under tsx).
const { Type } = createRequire(import.meta.url)('@sinclair/typebox') as typeof import('@sinclair/typebox');

const Count = Type.Integer({ minimum: 0 });

/** What each state means, in the words the console and `sagas versions` use. */
export const VERSION_STATES: Record<VersionState, string> = {
  driven: 'this gateway registers it and drives its sagas',
  left_to_others:
    'this gateway does not register it: other gateways drive its sagas (e.g. a newer version during a rolling upgrade)',
  removed:
    'an older version this gateway no longer registers while sagas still use it: unless another gateway still has it, nothing drives them (stranded)',
};

/** Why a saga stays on its version: the engine's codes (src/saga/versions.ts, planMigration). */
export const REFUSAL_CODES: Record<MigrationRefusalCode, string> = {
  not_in_flight: 'it has ended (or ended while the migration ran)',
  wrong_version: 'it does not run the version migrated from',
  finishing: 'it has nothing left to compensate and is finishing',
  step_missing: 'a step it has completed or is running has no counterpart in the new version',
  kind_changed:
    'a step it has completed or is running is of another kind (compensatable, pivot, retriable) in the new version',
  reopens_pivot: 'it is past its pivot but would resume before the pivot of the new version, where it could compensate',
  renamed_replay:
    'a renamed step would run again (or may be in flight) under its new name: a new idempotency key, so a second effect',
};

/** Lines of a migration's answer at most; the counts stay exact past it. */
export const MIGRATION_ITEMS_MAX = 1_000;
/** In-flight sagas one migration looks at, at most (the engine's default). */
export const MIGRATION_LIMIT_MAX = 10_000;

const State = Type.Unsafe<VersionState>({
  type: 'string',
  enum: Object.keys(VERSION_STATES),
  description: Object.entries(VERSION_STATES)
    .map(([k, v]) => `${k}: ${v}`)
    .join('; '),
});

export const VersionItem = Type.Object({
  definition: Type.String(),
  version: Type.Integer({ minimum: 1 }),
  state: State,
  starts_here: Type.Boolean({ description: 'whether this gateway starts new sagas of the definition on this version' }),
  running: Count,
  compensating: Count,
  parked: Count,
  in_flight: Type.Integer({ minimum: 0, description: 'running + compensating + parked' }),
});

export const VersionsView = Type.Object({
  versions: Type.Array(VersionItem, { description: 'by definition, then version' }),
});

const StepName = Type.String({ minLength: 1, maxLength: 100, description: 'a step name: letters, digits, _ . -' });

export const MigrationBody = Type.Object({
  definition: Type.String({
    minLength: 1,
    maxLength: 100,
    pattern: '^[A-Za-z0-9_.-]+$',
    description: 'a saga definition this gateway registers (letters, digits, _ . -)',
  }),
  from: Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'the version the sagas run on' }),
  to: Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'the version to move them to' }),
  map: Type.Optional(
    Type.Union([Type.String({ maxLength: 4_000 }), Type.Record(StepName, StepName)], {
      description:
        'renamed steps, old name → new name: `{"old": "new"}` or `"old=new,old2=new2"`; a step not named keeps its name',
    }),
  ),
  dry_run: Type.Boolean({ description: 'true: list what would move and what could not, and write nothing' }),
  note: Type.Optional(Type.String({ maxLength: MAX_NOTE_LENGTH, description: "kept in each moved saga's event" })),
  action_id: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 100,
      pattern: ID_CHARS,
      description:
        '1-100 printable ASCII characters without spaces (default `migrate_<uuid>`): the same id again moves no saga twice',
    }),
  ),
  limit: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: MIGRATION_LIMIT_MAX,
      default: MIGRATION_LIMIT_MAX,
      description:
        'in-flight sagas looked at, at most (RUNNING, then COMPENSATING, then PARKED; newest first in each); `truncated` says when more exist',
    }),
  ),
});
export type MigrationBody = Static<typeof MigrationBody>;

const Outcome = Type.Unsafe<MigrationItem['outcome']>({
  type: 'string',
  enum: ['moved', 'would_move', 'stay', 'changed'],
  description:
    'moved (would_move in a dry run); stay: it cannot move (`code`, `reason`); changed: it moved on while the migration ran, try again',
});

export const MigrationItemView = Type.Object({
  saga_id: Type.String(),
  status: Type.Unsafe<SagaStatus>({ type: 'string', enum: [...SAGA_STATUSES] }),
  outcome: Outcome,
  from_step: Nullable(Type.String({ description: 'the step it is at on the old version' })),
  to_step: Nullable(Type.String({ description: 'the step it is (would be) at on the new version' })),
  added: Type.Array(Type.String(), { description: 'steps of the new version it will run for the first time' }),
  replayed: Type.Array(Type.String(), {
    description:
      'steps it has run that it will run again in the new order, under their own idempotency keys: each participant answers as before and does nothing twice',
  }),
  unrun: Type.Array(Type.String(), {
    description:
      'compensating: steps of the new version it never ran whose compensation will be called (a compensation bears an action that never ran)',
  }),
  code: Type.Optional(
    Type.Unsafe<MigrationRefusalCode>({
      type: 'string',
      enum: Object.keys(REFUSAL_CODES),
      description: Object.entries(REFUSAL_CODES)
        .map(([k, v]) => `${k}: ${v}`)
        .join('; '),
    }),
  ),
  reason: Type.Optional(Type.String({ description: 'why it stays, in words' })),
});

export const MigrationView = Type.Object({
  definition: Type.String(),
  from: Type.Integer(),
  to: Type.Integer(),
  dry_run: Type.Boolean(),
  action_id: Type.String(),
  scanned: Type.Integer({ minimum: 0, description: 'in-flight sagas of `from` looked at' }),
  moved: Type.Integer({ minimum: 0, description: 'moved (in a dry run: would move)' }),
  stayed: Type.Integer({ minimum: 0, description: 'could not move (`changed` ones included)' }),
  changed: Type.Integer({ minimum: 0, description: 'moved on while the migration ran (not moved): try again' }),
  by_code: Type.Record(Type.String(), Count, { description: 'the sagas that stayed, counted by `code`' }),
  items: Type.Array(MigrationItemView, {
    description: `one line per saga looked at, those that stay (or changed) first, then those that move; at most ${MIGRATION_ITEMS_MAX}`,
  }),
  items_omitted: Type.Integer({
    minimum: 0,
    description: `lines left out past ${MIGRATION_ITEMS_MAX} (the counts include them)`,
  }),
  truncated: Type.Boolean({ description: 'more in-flight sagas of `from` exist past `limit`: run it again' }),
});

/** A version as the API shows it. */
export function versionView(v: VersionView): Static<typeof VersionItem> {
  return {
    definition: v.definition,
    version: v.version,
    state: v.state,
    starts_here: v.startsHere,
    running: v.running,
    compensating: v.compensating,
    parked: v.parked,
    in_flight: inFlightOf(v),
  };
}

/** `{old: new}` or `"old=new,…"` as the engine takes it; a bad one is 400 invalid_map. */
export function stepMapOf(map: MigrationBody['map']): Record<string, string> {
  const text =
    map === undefined
      ? ''
      : typeof map === 'string'
        ? map
        : Object.entries(map)
            .map(([from, to]) => `${from}=${to}`)
            .join(',');
  try {
    return parseStepMap(text);
  } catch (err) {
    if (err instanceof RangeError) throw new HttpError('invalid_map', `map: ${err.message}`);
    throw err;
  }
}

const STAYS_FIRST: Record<MigrationItem['outcome'], number> = { stay: 0, changed: 0, moved: 1, would_move: 1 };

/** The engine's report as the API answers it: snake_case, the stays first, at most `max` lines. */
export function migrationView(r: MigrationReport, max = MIGRATION_ITEMS_MAX): Static<typeof MigrationView> {
  const ordered = [...r.items].sort((a, b) => STAYS_FIRST[a.outcome] - STAYS_FIRST[b.outcome]);
  const shown = ordered.slice(0, max);
  const byCode: Record<string, number> = {};
  for (const [code, n] of Object.entries(r.byCode)) if (n !== undefined) byCode[code] = n;
  return {
    definition: r.definition,
    from: r.from,
    to: r.to,
    dry_run: r.dryRun,
    action_id: r.actionId,
    scanned: r.scanned,
    moved: r.moved,
    stayed: r.stayed,
    changed: r.changed,
    by_code: byCode,
    items: shown.map((i) => ({
      saga_id: i.sagaId,
      status: i.status,
      outcome: i.outcome,
      from_step: i.fromStep,
      to_step: i.toStep,
      added: i.added,
      replayed: i.replayed,
      unrun: i.unrun,
      ...(i.code === undefined ? {} : { code: i.code }),
      ...(i.reason === undefined ? {} : { reason: i.reason }),
    })),
    items_omitted: ordered.length - shown.length,
    truncated: r.truncated,
  };
}

export interface AdminVersionsDeps {
  engine: Pick<SagaEngine, 'versions' | 'migrate' | 'registered'>;
}

export const adminVersions: FastifyPluginAsyncTypebox<AdminVersionsDeps> = async (app, { engine }) => {
  // The caller was found by the admin API's onRequest hook (api.ts), which this plugin runs under.
  const caller = (req: { caller?: Caller }): Caller => {
    if (!req.caller) throw new HttpError('unauthenticated', 'not signed in');
    return req.caller;
  };

  app.get(
    '/api/versions',
    {
      schema: {
        operationId: 'listVersions',
        summary:
          'Every version of each saga definition here or in flight, with its counts and what this gateway makes of it',
        tags: ['sagas'],
        response: { 200: VersionsView, ...errorResponses },
      },
    },
    async (req) => {
      caller(req);
      return { versions: (await engine.versions()).map(versionView) };
    },
  );

  app.post(
    '/api/migrations',
    {
      schema: {
        operationId: 'migrateSagas',
        summary:
          'Move in-flight sagas from one version to another (dry run: any role; for real: operator role), saga by saga',
        description:
          'A saga moves only when nothing it has done would be lost or done twice: every step it has completed or is running exists in the new version with the same kind, ' +
          'a step run again keeps its name (its idempotency key), and a saga past its pivot stays past it; the others stay, each with a code and a reason. ' +
          'Each moved saga gets an OPERATOR_ACTION event `{action: "migrate", action_id, actor, note, from_version, to_version, ...}`. ' +
          'Refused as a whole (nothing written): 400 `invalid_map`, `same_version`, `unknown_definition`; ' +
          '409 `unknown_version` (a version this gateway does not register); 403 `forbidden` for a viewer without `dry_run`.',
        tags: ['sagas'],
        body: MigrationBody,
        response: { 200: MigrationView, ...errorResponses },
      },
    },
    async (req) => {
      const who = caller(req);
      const b = req.body;
      if (!b.dry_run && who.role !== 'operator')
        throw new HttpError(
          'forbidden',
          `${who.name} is a viewer: only an operator may migrate sagas (a dry run, dry_run: true, is open to viewers)`,
        );
      // Checked here, before the engine reads anything: a clear 400 for what no gateway could do.
      if (!engine.registered().some((d) => d.name === b.definition))
        throw new HttpError('unknown_definition', `this gateway registers no saga definition ${b.definition}`);
      const map = stepMapOf(b.map);
      const actionId = b.action_id ?? `migrate_${uuidv7()}`;
      let report: MigrationReport;
      try {
        report = await engine.migrate({
          definition: b.definition,
          from: b.from,
          to: b.to,
          map,
          dryRun: b.dry_run,
          actor: who.name,
          actionId,
          ...(b.note === undefined ? {} : { note: b.note }),
          limit: b.limit ?? MIGRATION_LIMIT_MAX,
        });
      } catch (err) {
        if (err instanceof MigrationError) throw new HttpError(err.code, err.message);
        if (err instanceof EngineStoppingError)
          throw new HttpError('shutting_down', 'this gateway is stopping; ask another one');
        throw err;
      }
      const fields = {
        definition: b.definition,
        from: b.from,
        to: b.to,
        dry_run: b.dry_run,
        action_id: actionId,
        actor: who.name,
        via: who.via,
        scanned: report.scanned,
        moved: report.moved,
        stayed: report.stayed,
        by_code: report.byCode,
        truncated: report.truncated,
      };
      if (b.dry_run) req.log.info(fields, 'migration planned (dry run)');
      else req.log.warn(fields, `migration: ${report.moved} saga(s) moved`);
      return migrationView(report);
    },
  );
};
