/**
 * The PostgreSQL saga log's batch statement: the creates and appends of one group commit as the
 * rows of one statement (parameter arrays, unnest), so that a batch costs one round trip, and
 * one statement to run, however many writes it holds. Each write keeps its own outcome: a create
 * whose key (or id) is taken inserts nothing, an append whose lease is lost updates nothing, and
 * neither stops the others.
 */
import type { Json } from '../definition.js';
import type { NewEvent, SagaPatch } from '../model.js';
import { PATCH_COLUMNS, PROGRESS_KEYS, patchValue, type SagaRow } from './rows.js';

/** PostgreSQL's text refuses NUL; an error message carrying one must not make the saga unwritable. */
export function text(s: string | null | undefined): string | null {
  return s === undefined || s === null ? null : s.includes('\0') ? s.replaceAll('\0', '\uFFFD') : s;
}

export function jsonText(v: Json | undefined): string | null {
  return v === undefined ? null : JSON.stringify(v);
}

/** The SQL type of each patchable field. */
export const PATCH_TYPES: Record<keyof SagaPatch, string> = {
  status: 'text',
  stepIndex: 'integer',
  compIndex: 'integer',
  attempt: 'integer',
  results: 'json',
  failure: 'json',
  leaseOwner: 'text',
  leaseExpiresAt: 'bigint',
  currentStep: 'text',
  version: 'integer',
};

const PATCH_KEYS = Object.keys(PATCH_COLUMNS) as Array<keyof SagaPatch>;

/**
 * A create's parameters, in this order: the saga's columns (the lease as a duration, stamped by
 * the database's clock), the filter columns, then how many events the creation has (they are
 * numbered 1..n_events). The create statement takes them as scalars, the batch statement as one
 * array each; the events themselves go as arrays after them (as an append's do).
 */
export const CREATE_FIELDS = [
  ['id', 'text'],
  ['definition', 'text'],
  ['version', 'integer'],
  ['status', 'text'],
  ['step_index', 'integer'],
  ['comp_index', 'integer'],
  ['attempt', 'integer'],
  ['input', 'json'],
  ['results', 'json'],
  ['failure', 'json'],
  ['traceparent', 'text'],
  ['idempotency_key', 'text'],
  ['lease_owner', 'text'],
  ['lease_ms', 'bigint'],
  ['deadline_at', 'bigint'],
  ['created_at', 'bigint'],
  ['updated_at', 'bigint'],
  ['subject', 'text'],
  ['current_step', 'text'],
  ['n_events', 'integer'],
] as const;

/** One write of a batch, as the batch statement takes it. */
export type BatchRows =
  | { kind: 'create'; id: string; values: readonly unknown[]; events: readonly NewEvent[] }
  | { kind: 'append'; id: string; owner: string; patch: SagaPatch; events: readonly NewEvent[]; terminal: boolean };

/** What the batch statement did: the sagas it created (as committed, by id) and the ids of those it appended to. */
export interface BatchResult {
  created: ReadonlyMap<string, SagaRow<Json, number>>;
  updated: ReadonlySet<string>;
}

/** The statement's one row, as pg parses its json and text[] columns (bigints inside the json are numbers). */
export interface BatchRow {
  created: Array<SagaRow<Json, number>>;
  updated: string[];
}

export function batchResult(row: BatchRow | undefined): BatchResult {
  return { created: new Map((row?.created ?? []).map((r) => [r.id, r])), updated: new Set(row?.updated ?? []) };
}

/** JSON travels as text inside the arrays (an array of json would need every element quoted as JSON). */
const arrayType = (t: string) => `${t === 'json' ? 'text' : t}[]`;
const fromText = (expr: string, t: string) => (t === 'json' ? `${expr}::json` : expr);

const APPEND_FIELDS: ReadonlyArray<readonly [string, string]> = [
  ['id', 'text'],
  ['owner', 'text'],
  ['n', 'integer'],
  ['mask', 'integer'],
  ...PATCH_KEYS.map((k) => [PATCH_COLUMNS[k], PATCH_TYPES[k]] as const),
  ['terminal', 'boolean'],
];

const EVENT_FIELDS = [
  ['saga_id', 'text'],
  ['ord', 'integer'],
  ['type', 'text'],
  ['step', 'text'],
  ['attempt', 'integer'],
  ['error', 'text'],
  ['retryable', 'boolean'],
  ['data', 'json'],
  ['trace_id', 'text'],
  ['span_id', 'text'],
] as const;

/**
 * The statement, given the log's SQL fragments (its clock, its column lists, its notification
 * channel). Appends lock their rows in id order first (the order renewLeases and the other
 * batches lock in), so that concurrent batches of several gateways do not deadlock; creates
 * insert in idempotency-key order for the same reason. A terminal append notifies in the same
 * statement, so the announcement is delivered if, and only if, it commits.
 */
export function batchSql(sql: {
  now: string;
  sagaColumns: string;
  eventColumns: string;
  finishedChannel: string;
}): string {
  let p = 0;
  const params = (fields: ReadonlyArray<readonly [string, string]>) =>
    fields.map(([, t]) => `$${++p}::${arrayType(t)}`).join(', ');
  const names = (fields: ReadonlyArray<readonly [string, string]>) => fields.map(([n]) => n).join(', ');
  const createParams = params(CREATE_FIELDS);
  const appendParams = params(APPEND_FIELDS);
  const eventParams = params(EVENT_FIELDS);
  const sets = PATCH_KEYS.map((k, bit) => {
    const col = PATCH_COLUMNS[k];
    return `${col} = CASE WHEN (a.mask & ${1 << bit}) <> 0 THEN ${fromText(`a.${col}`, PATCH_TYPES[k])} ELSE s.${col} END`;
  });
  // Progress (SagaRecord.progressAt): a patched status, step or compensation index that differs from the row's.
  const moved = PATCH_KEYS.flatMap((k, bit) =>
    PROGRESS_KEYS.includes(k)
      ? [`((a.mask & ${1 << bit}) <> 0 AND a.${PATCH_COLUMNS[k]} IS DISTINCT FROM s.${PATCH_COLUMNS[k]})`]
      : [],
  );
  sets.push(
    `progress_at = CASE WHEN ${moved.join(' OR ')} THEN ${sql.now} ELSE COALESCE(s.progress_at, s.updated_at) END`,
  );
  return `WITH c_in AS (
    SELECT * FROM unnest(${createParams}) AS x(${names(CREATE_FIELDS)})
  ), c AS (
    INSERT INTO sagas (id, definition, version, status, step_index, comp_index, attempt, input, results, failure,
      traceparent, idempotency_key, lease_owner, lease_expires_at, deadline_at, next_event_seq, created_at, updated_at,
      subject, current_step, progress_at)
    SELECT id, definition, version, status, step_index, comp_index, attempt, input::json, results::json, failure::json,
      traceparent, idempotency_key, lease_owner, ${sql.now} + lease_ms, deadline_at, 1 + n_events, created_at, updated_at,
      subject, current_step, updated_at
    FROM c_in ORDER BY idempotency_key, id
    ON CONFLICT DO NOTHING
    RETURNING ${sql.sagaColumns}
  ), ce AS (
    INSERT INTO saga_events (${sql.eventColumns})
    SELECT c.id, e.ord, e.type, e.step, e.attempt, e.error, e.retryable, e.data::json, e.trace_id, e.span_id, c.created_at
    FROM c JOIN unnest(${eventParams}) AS e(${names(EVENT_FIELDS)}) ON e.saga_id = c.id
  ), a_in AS (
    SELECT * FROM unnest(${appendParams}) AS a(${names(APPEND_FIELDS)})
  ), locked AS MATERIALIZED (
    SELECT s.id FROM sagas s WHERE s.id IN (SELECT id FROM a_in) ORDER BY s.id FOR UPDATE OF s
  ), u AS (
    UPDATE sagas s SET next_event_seq = s.next_event_seq + a.n, updated_at = ${sql.now}, ${sets.join(', ')}
    FROM a_in a
    WHERE s.id = a.id AND s.lease_owner = a.owner AND s.id IN (SELECT id FROM locked)
    RETURNING s.id, s.next_event_seq - a.n AS first_seq, s.updated_at AS at, a.terminal
  ), ue AS (
    INSERT INTO saga_events (${sql.eventColumns})
    SELECT u.id, u.first_seq + e.ord - 1, e.type, e.step, e.attempt, e.error, e.retryable, e.data::json, e.trace_id, e.span_id, u.at
    FROM u JOIN unnest(${eventParams}) AS e(${names(EVENT_FIELDS)}) ON e.saga_id = u.id
  ), n AS (
    SELECT pg_notify('${sql.finishedChannel}', u.id) FROM u WHERE u.terminal
  )
  SELECT (SELECT coalesce(json_agg(c), '[]'::json) FROM c) AS created,
    (SELECT coalesce(array_agg(u.id), '{}'::text[]) FROM u) AS updated,
    (SELECT count(*)::integer FROM n) AS notified`;
}

/**
 * The statement's parameters for these writes: one array per field. A saga appears once at most
 * (the log holds a saga's second write of a turn for the next batch).
 */
export function batchValues(writes: readonly BatchRows[]): unknown[] {
  const creates = CREATE_FIELDS.map((): unknown[] => []);
  const appends = APPEND_FIELDS.map((): unknown[] => []);
  const events = EVENT_FIELDS.map((): unknown[] => []);
  for (const w of writes) {
    if (w.kind === 'create') {
      w.values.forEach((v, i) => creates[i]?.push(v));
    } else {
      let mask = 0;
      const patched = PATCH_KEYS.map((k, bit) => {
        if (w.patch[k] === undefined) return null;
        mask |= 1 << bit;
        return patchValue(k, w.patch[k]);
      });
      [w.id, w.owner, w.events.length, mask, ...patched, w.terminal].forEach((v, i) => appends[i]?.push(v));
    }
    // A create's events and an append's share the arrays: a saga has one write in a batch at most.
    w.events.forEach((e, i) => {
      const row = [
        w.id,
        i + 1,
        e.type,
        text(e.step),
        e.attempt ?? null,
        text(e.error),
        e.retryable ?? null,
        jsonText(e.data),
        e.traceId ?? null,
        e.spanId ?? null,
      ];
      row.forEach((v, j) => events[j]?.push(v));
    });
  }
  return [...creates, ...appends, ...events];
}
