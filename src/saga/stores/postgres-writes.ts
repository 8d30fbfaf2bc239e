/**
 * The PostgreSQL saga log's writes, each one statement that checks and changes a saga's row and
 * inserts its events in one round trip: a create (refused by a taken idempotency key or id, which
 * then names its holder), an append (refused by a lost lease), a take-over (conditional on the
 * saga's status, it moves the lease). A write that ends a saga notifies FINISHED_CHANNEL in the
 * same statement. The statements go through the group commit (postgres-group-commit.ts).
 */
import type pg from 'pg';
import {
  LeaseLostError,
  isTerminal,
  type CreateResult,
  type NewEvent,
  type SagaPatch,
  type SagaRecord,
  type TakeOverExpectation,
} from '../model.js';
import { PATCH_TYPES, jsonText, text } from './postgres-batch.js';
import type { Done, GroupCommit, Settlement } from './postgres-group-commit.js';
import { EVENT_COLUMNS, FINISHED_CHANNEL, NOW_MS, SAGA_COLUMNS, record, type Row } from './postgres-sql.js';
import { PATCH_COLUMNS, PROGRESS_KEYS, patchValue } from './rows.js';

/** The events of one append (or create) as parallel arrays, for one INSERT … SELECT FROM unnest(…). */
function eventArrays(events: readonly NewEvent[]): unknown[] {
  return [
    events.map((e) => e.type),
    events.map((e) => text(e.step)),
    events.map((e) => e.attempt ?? null),
    events.map((e) => text(e.error)),
    events.map((e) => e.retryable ?? null),
    events.map((e) => jsonText(e.data)),
    events.map((e) => e.traceId ?? null),
    events.map((e) => e.spanId ?? null),
  ];
}

/**
 * The SET of progress_at for a patch of these columns, whose values are parameters from `$first`
 * on in `keys`' order: the write's time (the database's clock) when the patch changes the row's
 * status, step or compensation index (compared with the row as it was), else as it was. None when
 * the patch touches none of them.
 */
function progressSet(keys: Array<keyof SagaPatch>, first: number): string[] {
  const changed = keys.flatMap((k, i) =>
    PROGRESS_KEYS.includes(k) ? [`${PATCH_COLUMNS[k]} IS DISTINCT FROM $${first + i}::${PATCH_TYPES[k]}`] : [],
  );
  if (changed.length === 0) return [];
  return [`progress_at = CASE WHEN ${changed.join(' OR ')} THEN ${NOW_MS} ELSE COALESCE(progress_at, updated_at) END`];
}

export class PostgresWrites {
  /** The append and take-over statements built so far, by name (one per combination of patched columns). */
  private readonly appendStatements = new Map<string, string>();

  constructor(private readonly commits: GroupCommit) {}

  async create(saga: SagaRecord, events: readonly NewEvent[], leaseMs: number): Promise<CreateResult> {
    // CREATE_FIELDS' order (postgres-batch.ts); the events follow as arrays.
    const values = [
      saga.id,
      saga.definition,
      saga.version,
      saga.status,
      saga.stepIndex,
      saga.compIndex,
      saga.attempt,
      JSON.stringify(saga.input),
      JSON.stringify(saga.results),
      saga.failure ? JSON.stringify(saga.failure) : null,
      saga.traceparent,
      saga.idempotencyKey,
      saga.leaseOwner,
      leaseMs,
      saga.deadlineAt,
      saga.createdAt,
      saga.updatedAt,
      text(saga.subject),
      text(saga.currentStep),
      events.length,
    ];
    return this.commits.write<CreateResult>(
      saga.id,
      `0:${saga.idempotencyKey ?? ''}:${saga.id}`,
      async (c, done) => {
        // ON CONFLICT DO NOTHING: a taken key (or id) inserts nothing, and does not abort the batch.
        const { rows } = await c.query<Row>({
          name: 'create',
          text: `WITH s AS (
            INSERT INTO sagas (id, definition, version, status, step_index, comp_index, attempt, input, results, failure,
              traceparent, idempotency_key, lease_owner, lease_expires_at, deadline_at, next_event_seq, created_at, updated_at,
              subject, current_step, progress_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8::json, $9::json, $10::json, $11, $12, $13, ${NOW_MS} + $14::bigint, $15,
              1 + $20::integer, $16, $17, $18::text, $19::text, $17)
            ON CONFLICT DO NOTHING
            RETURNING ${SAGA_COLUMNS}
          ), e AS (
            INSERT INTO saga_events (${EVENT_COLUMNS})
            SELECT s.id, x.ord::integer, x.type, x.step, x.attempt, x.error, x.retryable, x.data::json, x.trace_id, x.span_id,
              s.created_at
            FROM s CROSS JOIN unnest($21::text[], $22::text[], $23::integer[], $24::text[], $25::boolean[], $26::text[], $27::text[],
              $28::text[]) WITH ORDINALITY AS x(type, step, attempt, error, retryable, data, trace_id, span_id, ord)
          )
          SELECT ${SAGA_COLUMNS} FROM s`,
          values: [...values, ...eventArrays(events)],
        });
        return this.created(c, saga, rows[0], done);
      },
      {
        rows: { kind: 'create', id: saga.id, values, events },
        settle: (c, result, done) => this.created(c, saga, result.created.get(saga.id), done),
      },
    );
  }

  /** A create's settlement: the saga as committed, or (nothing inserted) the saga holding its key or id. */
  private async created(
    c: pg.ClientBase,
    saga: SagaRecord,
    row: Row | undefined,
    done: Done<CreateResult>,
  ): Promise<Settlement> {
    if (row) return done({ created: true, saga: record(row) });
    // The conflicting row is committed (or ours, earlier in this batch): a fresh statement sees it.
    const existing = await c.query<{ id: string }>({
      name: 'create_conflict',
      text: `(SELECT id FROM sagas WHERE idempotency_key = $1) UNION ALL (SELECT id FROM sagas WHERE id = $2) LIMIT 1`,
      values: [saga.idempotencyKey, saga.id],
    });
    const id = existing.rows[0]?.id;
    if (id === undefined) throw new Error(`saga ${saga.id} conflicted with a row that cannot be found`);
    return done({ created: false, existingId: id });
  }

  async append(id: string, owner: string, patch: SagaPatch, events: NewEvent[]): Promise<void> {
    const keys = (Object.keys(patch) as Array<keyof SagaPatch>).filter((k) => patch[k] !== undefined).sort();
    const terminal = patch.status !== undefined && isTerminal(patch.status);
    const values = [id, owner, events.length, ...eventArrays(events), ...keys.map((k) => patchValue(k, patch[k]))];
    // The patch's values are the last parameters: progress_at compares with them.
    const name = this.appendStatement(keys, terminal, values.length - keys.length + 1);
    const sql = this.appendStatements.get(name) as string;
    const appended = (updated: boolean, done: Done<void>): Settlement =>
      updated
        ? done(undefined, terminal ? id : null)
        : { settle: () => done.reject(new LeaseLostError(id)), finished: null };
    return this.commits.write<void>(
      id,
      `1:${id}`,
      async (c, done) => {
        const { rows } = await c.query<{ updated: number }>({ name, text: sql, values });
        return appended((rows[0]?.updated ?? 0) > 0, done);
      },
      {
        rows: { kind: 'append', id, owner, patch, events, terminal },
        settle: async (_c, result, done) => appended(result.updated.has(id), done),
      },
    );
  }

  async takeOver(
    id: string,
    expect: TakeOverExpectation,
    owner: string,
    leaseMs: number,
    patch: SagaPatch,
    events: NewEvent[],
  ): Promise<SagaRecord | undefined> {
    const keys = (Object.keys(patch) as Array<keyof SagaPatch>)
      .filter((k) => k !== 'leaseOwner' && k !== 'leaseExpiresAt' && patch[k] !== undefined)
      .sort();
    const release = patch.leaseOwner === null;
    const terminal = patch.status !== undefined && isTerminal(patch.status);
    const values = [
      id,
      events.length,
      ...eventArrays(events),
      release ? null : owner,
      leaseMs,
      expect.status,
      expect.stepIndex ?? null,
      expect.compIndex ?? null,
      expect.version ?? null,
      ...keys.map((k) => patchValue(k, patch[k])),
    ];
    const name = this.takeOverStatement(keys, terminal, values.length - keys.length + 1);
    const sql = this.appendStatements.get(name) as string;
    return this.commits.write<SagaRecord | undefined>(id, `1:${id}`, async (c, done) => {
      const { rows } = await c.query<Row>({ name, text: sql, values });
      const row = rows[0];
      return row ? done(record(row), terminal ? id : null) : done(undefined);
    });
  }

  /**
   * Like appendStatement, but conditional on the row's status (and step index) instead of its
   * lease, which it moves to the caller (or gives up, for a patch that releases it); returns the
   * row as committed, none when it did not match.
   */
  private takeOverStatement(keys: Array<keyof SagaPatch>, terminal: boolean, patchFrom: number): string {
    const all = Object.keys(PATCH_COLUMNS);
    const name = `take_over_${keys.map((k) => all.indexOf(k).toString(36)).join('')}${terminal ? '_end' : ''}`;
    if (this.appendStatements.has(name)) return name;
    const sets = [
      'next_event_seq = next_event_seq + $2::integer',
      `updated_at = ${NOW_MS}`,
      'lease_owner = $11::text',
      `lease_expires_at = CASE WHEN $11::text IS NULL THEN 0 ELSE ${NOW_MS} + $12::bigint END`,
      ...keys.map((k, i) => `${PATCH_COLUMNS[k]} = $${17 + i}::${PATCH_TYPES[k]}`),
      ...progressSet(keys, patchFrom),
    ];
    const notify = terminal ? `, n AS (SELECT pg_notify('${FINISHED_CHANNEL}', u.id) FROM u)` : '';
    const notified = terminal ? ', (SELECT count(*) FROM n) AS notified' : '';
    this.appendStatements.set(
      name,
      `WITH u AS (
         UPDATE sagas SET ${sets.join(', ')}
         WHERE id = $1 AND status = $13::text AND ($14::integer IS NULL OR step_index = $14::integer)
           AND ($15::integer IS NULL OR comp_index = $15::integer) AND ($16::integer IS NULL OR version = $16::integer)
         RETURNING ${SAGA_COLUMNS}, next_event_seq - $2::integer AS first_seq
       ), e AS (
         INSERT INTO saga_events (${EVENT_COLUMNS})
         SELECT u.id, u.first_seq + x.ord::integer - 1, x.type, x.step, x.attempt, x.error, x.retryable, x.data::json,
           x.trace_id, x.span_id, u.updated_at
         FROM u CROSS JOIN unnest($3::text[], $4::text[], $5::integer[], $6::text[], $7::boolean[], $8::text[], $9::text[], $10::text[])
           WITH ORDINALITY AS x(type, step, attempt, error, retryable, data, trace_id, span_id, ord)
       )${notify}
       SELECT ${SAGA_COLUMNS}${notified} FROM u`,
    );
    return name;
  }

  /**
   * One statement per combination of patched columns (a handful exist), prepared once per
   * connection: it checks the lease, reserves the events' sequence numbers, applies the patch,
   * inserts the events and, for a terminal patch, notifies, all in one round trip. A lost lease
   * updates no row, inserts nothing and returns updated = 0.
   */
  private appendStatement(keys: Array<keyof SagaPatch>, terminal: boolean, patchFrom: number): string {
    // PostgreSQL truncates statement names past 63 bytes (and two long ones would collide): the
    // combination of columns is named by its position in the patch-column list instead.
    const all = Object.keys(PATCH_COLUMNS);
    const name = `append_${keys.map((k) => all.indexOf(k).toString(36)).join('')}${terminal ? '_end' : ''}`;
    if (this.appendStatements.has(name)) return name;
    const sets = [
      'next_event_seq = next_event_seq + $3::integer',
      `updated_at = ${NOW_MS}`,
      ...keys.map((k, i) => `${PATCH_COLUMNS[k]} = $${12 + i}::${PATCH_TYPES[k]}`),
      ...progressSet(keys, patchFrom),
    ];
    const notify = terminal ? `, n AS (SELECT pg_notify('${FINISHED_CHANNEL}', u.id) FROM u)` : '';
    const notified = terminal ? ', (SELECT count(*) FROM n) AS notified' : '';
    this.appendStatements.set(
      name,
      `WITH u AS (
         UPDATE sagas SET ${sets.join(', ')} WHERE id = $1 AND lease_owner = $2
         RETURNING id, next_event_seq - $3::integer AS first_seq, updated_at AS at
       ), e AS (
         INSERT INTO saga_events (${EVENT_COLUMNS})
         SELECT u.id, u.first_seq + x.ord::integer - 1, x.type, x.step, x.attempt, x.error, x.retryable, x.data::json,
           x.trace_id, x.span_id, u.at
         FROM u CROSS JOIN unnest($4::text[], $5::text[], $6::integer[], $7::text[], $8::boolean[], $9::text[], $10::text[], $11::text[])
           WITH ORDINALITY AS x(type, step, attempt, error, retryable, data, trace_id, span_id, ord)
       )${notify}
       SELECT (SELECT count(*)::integer FROM u) AS updated${notified}`,
    );
    return name;
  }
}
