import pg from 'pg';
import { redactPassword } from '../../platform/config/config.js';
import type { Logger } from '../../platform/telemetry/logger.js';
import type { Json } from '../definition.js';
import { PATCH_COLUMNS, patchValue, toEvent, toRecord, type EventRow, type RowCodec, type SagaRow } from './rows.js';
import {
  PATCH_TYPES,
  batchResult,
  batchSql,
  batchValues,
  jsonText,
  text,
  type BatchResult,
  type BatchRow,
  type BatchRows,
} from './postgres-batch.js';
import {
  LeaseLostError,
  SAGA_STATUSES,
  SagaLogError,
  SagaLogUnavailableError,
  decodeCursor,
  decodeTimeCursor,
  encodeCursor,
  encodeTimeCursor,
  isTerminal,
  listsByTime,
  prefixUpperBound,
  type CreateResult,
  type ListPage,
  type ListQuery,
  type LiveStats,
  type NewEvent,
  type SagaEvent,
  type SagaLog,
  type EventPage,
  type SagaPatch,
  type SagaRecord,
  type SagaStatus,
  type TakeOverExpectation,
} from '../model.js';
import { MIGRATIONS, UNFINISHED } from './postgres-migrations.js';
import { isConnectionError, isRetryable, reason } from './postgres-errors.js';

export type SynchronousCommit = 'on' | 'off' | 'local' | 'remote_write' | 'remote_apply';

export interface PostgresSagaLogOptions {
  url: string;
  /** Connections in the pool; write batches use at most poolSize - 1 of them at once, so reads always find one. */
  poolSize: number;
  /** The session's synchronous_commit: `on` waits for the WAL flush (and the synchronous standbys, if any). */
  synchronousCommit: SynchronousCommit;
  /** For tools that only read (sagas inspect): no migrations, and the sessions refuse writes. */
  readonly?: boolean;
  logger?: Logger;
}

/** The database's clock, in epoch milliseconds: every lease and every `at` is stamped by it. */
const NOW_MS = `(extract(epoch from clock_timestamp()) * 1000)::bigint`;

/** The channel on which a commit that ends a saga announces its id to every process sharing the log. */
const FINISHED_CHANNEL = 'saga_finished';

/** pg_advisory_xact_lock key held while migrating, so that gateways starting together migrate one at a time. */
const MIGRATION_LOCK = 4_711_560_339_201;

/** pg_try_advisory_xact_lock key of the fold of status deltas: one process folds at a time, the others skip. */
const FOLD_LOCK = 4_711_560_339_202;

/** How often each process folds the status deltas into the counts, read or not: the deltas stay a few thousand rows. */
const FOLD_EVERY_MS = 10_000;

/** Named explicitly (not `*`): a prepared statement keeps working when a later migration adds a column. */
const SAGA_COLUMNS = `seq, id, definition, version, status, step_index, comp_index, attempt, input, results, failure,
  traceparent, idempotency_key, lease_owner, lease_expires_at, deadline_at, created_at, updated_at, subject, current_step`;
/** The same, for a read-only session on a log not yet migrated to the filter columns (a newer tool reading an older log). */
const SAGA_COLUMNS_V1 = SAGA_COLUMNS.replace(
  'subject, current_step',
  'NULL::text AS subject, NULL::text AS current_step',
);
const EVENT_COLUMNS = 'saga_id, seq, type, step, attempt, error, retryable, data, trace_id, span_id, at';

/** pg returns bigint columns as strings (numbers inside the batch statement's json) and json columns already parsed. */
type Row = SagaRow<Json, string | number>;
const CODEC: RowCodec<Json, string | number, boolean> = { json: (v) => v, num: (v) => Number(v), bool: (v) => v };
const record = (r: Row): SagaRecord => toRecord(r, CODEC);
const event = (r: EventRow<Json, string, boolean>): SagaEvent => toEvent(r, CODEC);

/** The events of one append as parallel arrays, for one INSERT … SELECT FROM unnest(…). */
function eventArrays(events: NewEvent[]): unknown[] {
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

/** What a write did once its transaction committed: settle its caller, and which saga it ended, if any. */
interface Settlement {
  settle(): void;
  finished: string | null;
}

interface PendingWrite {
  /** The saga written: a saga has writes in one batch in flight at most, so they commit in the order issued. */
  sagaId: string;
  /** Writes run in this order inside a batch, so that concurrent batches take row locks in one order. */
  order: string;
  /**
   * Runs the write's statements on the batch's connection. Expected refusals (a lost lease, a
   * taken key) are results, not errors; a thrown error aborts the transaction. Run again from
   * scratch when the batch is retried, so it keeps no state between runs.
   */
  run(c: pg.ClientBase): Promise<Settlement>;
  /**
   * The write as rows of the batch statement (creates and appends; a take-over has none), and how
   * it settles from what that statement returned.
   */
  batched?: { rows: BatchRows; settle(c: pg.ClientBase, result: BatchResult): Promise<Settlement> };
  fail(err: unknown): void;
}

type Outcome = { ok: true; settlement: Settlement } | { ok: false; error: unknown };

/** Builds a write's settlement once it has committed: its value, and the saga it ended, if any. */
type Done<T> = ((value: T, finished?: string | null) => Settlement) & { reject: (err: unknown) => void };

/**
 * The saga log on PostgreSQL, for several gateways sharing one log.
 *
 * Group commit: the writes (create, append, take-over) issued during one turn of the event loop
 * form a batch, committed at once on one pooled connection; each caller's promise settles when it
 * has committed. The creates and appends of a batch of several are the rows of one statement
 * (postgres-batch.ts): one round trip, and atomic without BEGIN/COMMIT. A lost lease or a taken
 * idempotency key is a row not returned, never an error, so one write's refusal never aborts the
 * others (a create that met a taken key then reads the holder). A batch with a take-over runs its
 * writes one statement each in one transaction (a lone write needs no BEGIN/COMMIT). A statement
 * the database refuses (a value out of range) aborts the batch; then it runs again with a
 * savepoint per write, and only that write fails. A deadlock (or serialization failure) reruns
 * the whole batch. Up to poolSize - 1 batches are in flight at once, on as many connections;
 * writes issued meanwhile wait for the next free slot and go together. A batch holds one write of
 * a saga at most: the saga's next writes wait for a later batch, so they commit in the order they
 * were issued. Rows are locked in saga id order (creates insert by idempotency key), the order
 * renewLeases locks rows in too, so concurrent transactions do not deadlock on each other.
 *
 * Notifications: a commit that moves a saga to a terminal status runs pg_notify('saga_finished', id)
 * in the same transaction (PostgreSQL delivers it only if, and once, it commits). A dedicated connection (not from the pool) LISTENs and calls the
 * `onFinished` listeners; the process's own commits call them directly after the commit (so it hears
 * its own sagas even while LISTEN is down), and their echo through LISTEN is skipped. When the LISTEN
 * connection drops it reconnects with backoff; what was announced meanwhile is lost, which a waiter
 * survives because its own timeout reads the saga again (see the engine's waitFor).
 *
 * Leases are stamped by the database's clock (clock_timestamp()), never by this process's.
 */
export class PostgresSagaLog implements SagaLog {
  private readonly pool: pg.Pool;
  private readonly where: string;
  private readonly logger: Logger | undefined;
  private readonly finished = new Set<(sagaId: string) => void>();
  /** Backend pids of this pool's connections: a notification from one of them is an echo of our own commit. */
  private readonly ownBackends = new Set<number>();
  private readonly maxBatches: number;
  private queue: PendingWrite[] = [];
  private scheduled = false;
  private readonly batches = new Set<Promise<void>>();
  /** Sagas written by a batch in flight: their next writes wait for the next batch. */
  private readonly busy = new Set<string>();
  private closed = false;
  private listener: pg.Client | undefined;
  private listenTimer: NodeJS.Timeout | undefined;
  private foldTimer: NodeJS.Timeout | undefined;
  /** The columns reads select: SAGA_COLUMNS, unless a read-only session finds an older schema. */
  private readColumns = SAGA_COLUMNS;
  private listenBackoffMs = LISTEN_BACKOFF_MIN_MS;
  private identity_: string | undefined;
  private readonly appendStatements = new Map<string, string>();

  private constructor(private readonly opts: PostgresSagaLogOptions) {
    this.where = redactPassword(opts.url);
    this.logger = opts.logger;
    this.maxBatches = Math.max(1, opts.poolSize - 1);
    this.pool = new pg.Pool({ ...this.clientConfig(), max: Math.max(1, opts.poolSize), idleTimeoutMillis: 30_000 });
    // An idle connection that breaks (server restarted) is dropped by the pool; without a
    // listener its error would crash the process.
    this.pool.on('error', (err) =>
      this.logger?.warn({ err: reason(err) }, 'saga log: an idle PostgreSQL connection broke'),
    );
    this.pool.on('connect', (client) => {
      // A connection in use by a batch also reports its breakage as an event; the batch's own
      // query fails with it too, and that is what callers see.
      client.on('error', () => {});
      const pid = backendPid(client);
      if (pid !== null) this.ownBackends.add(pid);
    });
    this.pool.on('remove', (client) => {
      const pid = backendPid(client);
      if (pid !== null) this.ownBackends.delete(pid);
    });
  }

  /**
   * Connects, brings the schema up to date (unless read-only) and starts listening for sagas
   * finished elsewhere. An unreachable server is SagaLogUnavailableError naming the URL without
   * its password.
   */
  static async open(opts: PostgresSagaLogOptions): Promise<PostgresSagaLog> {
    if (!SYNCHRONOUS_COMMIT.includes(opts.synchronousCommit))
      throw new Error(`synchronousCommit: unexpected ${String(opts.synchronousCommit)}`);
    const log = new PostgresSagaLog(opts);
    try {
      if (opts.readonly) {
        const { rows } = await log.pool.query(
          `SELECT 1 FROM information_schema.columns WHERE table_name = 'sagas' AND column_name = 'current_step'`,
        );
        if (rows.length === 0) log.readColumns = SAGA_COLUMNS_V1;
      } else await log.migrate();
      await log.listen();
      if (!opts.readonly) {
        log.foldTimer = setInterval(() => void log.foldStatusDeltas().catch(() => undefined), FOLD_EVERY_MS);
        log.foldTimer.unref();
      }
    } catch (err) {
      await log.pool.end().catch(() => undefined);
      const message = `cannot open the saga log at ${log.where}: ${reason(err)}`;
      // Unreachable is unavailable (worth retrying); anything else (a refused password, a missing
      // database, a failed migration) is the deployment's to fix.
      throw isConnectionError(err)
        ? new SagaLogUnavailableError(message, { cause: err })
        : new Error(message, { cause: err });
    }
    return log;
  }

  /**
   * Session settings go in the startup packet (no extra round trip). pg lets a URL's own
   * `options` parameter override the config's, so it is taken out of the URL and put first:
   * ours come after it and win.
   */
  private clientConfig(): pg.ClientConfig {
    const url = new URL(this.opts.url);
    const options = [url.searchParams.get('options') ?? '', `-c synchronous_commit=${this.opts.synchronousCommit}`];
    url.searchParams.delete('options');
    if (this.opts.readonly) options.push('-c default_transaction_read_only=on');
    return {
      connectionString: url.toString(),
      options: options.filter((o) => o !== '').join(' '),
      application_name: 'ecommerce-sagas',
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      connectionTimeoutMillis: 10_000,
    };
  }

  /** Applies the missing migrations in one transaction, under an advisory lock: concurrent openers take turns. */
  private async migrate(): Promise<void> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      await c.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`);
      await c.query(`CREATE TABLE IF NOT EXISTS saga_log_migrations (
        version    integer PRIMARY KEY,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
      const { rows } = await c.query<{ v: number | null }>('SELECT max(version) AS v FROM saga_log_migrations');
      const current = rows[0]?.v ?? 0;
      if (current > MIGRATIONS.length) {
        this.logger?.warn(
          { schema_version: current, known: MIGRATIONS.length },
          'saga log schema is newer than this build knows',
        );
      }
      for (let v = current; v < MIGRATIONS.length; v++) {
        await c.query(MIGRATIONS[v] as string);
        await c.query('INSERT INTO saga_log_migrations (version) VALUES ($1)', [v + 1]);
        this.logger?.info({ version: v + 1 }, 'saga log schema migrated');
      }
      await c.query('COMMIT');
      c.release();
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      c.release(err instanceof Error ? err : true);
      throw err;
    }
  }

  // ---------------------------------------------------------------- errors and reads

  private unavailable(err: unknown): SagaLogUnavailableError {
    return new SagaLogUnavailableError(`saga log at ${this.where} unavailable: ${reason(err)}`, { cause: err });
  }

  private wrap(err: unknown): Error {
    if (err instanceof SagaLogError) return err;
    if (isConnectionError(err)) return this.unavailable(err);
    return err instanceof Error ? err : new Error(String(err));
  }

  private closedError(): SagaLogUnavailableError {
    return new SagaLogUnavailableError(`saga log at ${this.where} is closed`);
  }

  /** One statement on any pooled connection; prepared once per connection under `name`. */
  private async query<R extends pg.QueryResultRow>(name: string, sql: string, values: unknown[] = []): Promise<R[]> {
    if (this.closed) throw this.closedError();
    try {
      return (await this.pool.query<R>({ name, text: sql, values })).rows;
    } catch (err) {
      throw this.wrap(err);
    }
  }

  async identity(): Promise<string> {
    this.identity_ ??= (await this.query<{ id: string }>('identity', 'SELECT id FROM saga_log_identity'))[0]?.id;
    if (this.identity_ === undefined) throw new Error('saga log has no identity row: was it migrated?');
    return this.identity_;
  }

  async get(id: string): Promise<SagaRecord | undefined> {
    const [r] = await this.query<Row>('get', `SELECT ${this.readColumns} FROM sagas WHERE id = $1`, [id]);
    return r ? record(r) : undefined;
  }

  async getByIdempotencyKey(key: string): Promise<SagaRecord | undefined> {
    const [r] = await this.query<Row>(
      'get_by_key',
      `SELECT ${this.readColumns} FROM sagas WHERE idempotency_key = $1`,
      [key],
    );
    return r ? record(r) : undefined;
  }

  async events(id: string, page: EventPage = {}): Promise<SagaEvent[]> {
    // LIMIT NULL is PostgreSQL's "no limit".
    const rows = await this.query<EventRow<Json, string, boolean>>(
      'events',
      `SELECT ${EVENT_COLUMNS} FROM saga_events WHERE saga_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
      [id, page.afterSeq ?? 0, page.limit ?? null],
    );
    return rows.map(event);
  }

  /**
   * One statement per combination of filters (named by it), each condition served by an index:
   * status (status, seq), subject (subject, seq), step (current_step, seq), an id prefix the
   * binary-order id index (a range, then an exact check), a time range (created_at, seq), which
   * the listing then follows (newest first by creation time, the cursor a (createdAt, seq) position).
   */
  async list(q: ListQuery): Promise<ListPage> {
    // The cursor is checked before anything is asked of the database.
    const byTime = listsByTime(q);
    const cursor =
      q.cursor === undefined
        ? undefined
        : byTime
          ? decodeTimeCursor(q.cursor)
          : { seq: decodeCursor(q.cursor), createdAt: 0 };
    const values: unknown[] = [];
    const where: string[] = [];
    let name = byTime ? 'list_t_' : 'list_';
    const param = (v: unknown, type: string) => (values.push(v), `$${values.length}::${type}`);
    if (q.status !== undefined) {
      where.push(`status = ${param(q.status, 'text')}`);
      name += 'a';
    }
    if (q.subject !== undefined) {
      where.push(`subject = ${param(text(q.subject), 'text')}`);
      name += 'u';
    }
    if (q.step !== undefined) {
      where.push(`current_step = ${param(text(q.step), 'text')}`);
      name += 's';
    }
    if (q.createdFrom !== undefined) {
      where.push(`created_at >= ${param(q.createdFrom, 'bigint')}`);
      name += 'f';
    }
    if (q.createdTo !== undefined) {
      where.push(`created_at <= ${param(q.createdTo, 'bigint')}`);
      name += 'o';
    }
    if (q.idPrefix !== undefined) {
      const prefix = text(q.idPrefix) as string;
      const p = param(prefix, 'text');
      where.push(
        `id COLLATE "C" >= ${p} AND id COLLATE "C" < ${param(prefixUpperBound(prefix), 'text')} AND starts_with(id, ${p})`,
      );
      name += 'p';
    }
    if (cursor !== undefined) {
      where.push(
        byTime
          ? `(created_at, seq) < (${param(cursor.createdAt, 'bigint')}, ${param(cursor.seq, 'bigint')})`
          : `seq < ${param(cursor.seq, 'bigint')}`,
      );
      name += 'c';
    }
    const sql = `SELECT ${this.readColumns} FROM sagas ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY ${byTime ? 'created_at DESC, seq DESC' : 'seq DESC'} LIMIT ${param(q.limit + 1, 'integer')}`;
    const rows = await this.query<Row>(name, sql, values);
    const page = rows.slice(0, q.limit);
    const last = page[page.length - 1];
    return {
      sagas: page.map(record),
      nextCursor:
        rows.length > q.limit && last
          ? byTime
            ? encodeTimeCursor(Number(last.created_at), Number(last.seq))
            : encodeCursor(Number(last.seq))
          : null,
    };
  }

  async parked(limit: number): Promise<SagaRecord[]> {
    const rows = await this.query<Row>(
      'parked',
      `SELECT ${this.readColumns} FROM sagas WHERE status = 'PARKED' ORDER BY updated_at, seq LIMIT $1`,
      [limit],
    );
    return rows.map(record);
  }

  /**
   * Folds the committed status deltas into the kept counts, in one statement: the deltas are
   * deleted and added to their status's count atomically. Under a try-lock: while one process
   * folds, another skips (it would only wait for rows that are then gone).
   */
  private async foldStatusDeltas(): Promise<void> {
    await this.query(
      'fold_status_deltas',
      `WITH lock AS (SELECT pg_try_advisory_xact_lock(${FOLD_LOCK}) AS got),
            moved AS (DELETE FROM saga_status_deltas WHERE (SELECT got FROM lock) RETURNING status, n),
            sums AS (SELECT status, sum(n) AS n FROM moved GROUP BY status)
       INSERT INTO saga_status_counts AS c (status, n) SELECT status, n FROM sums
       ON CONFLICT (status) DO UPDATE SET n = c.n + EXCLUDED.n`,
    );
  }

  /**
   * The kept counts plus the deltas not folded in yet (folded first, unless read-only), so the
   * read is a handful of rows whatever the size of the log. A log whose schema predates the
   * counts (a read-only tool on an older log) is counted row by row instead.
   */
  async countByStatus(): Promise<Record<SagaStatus, number>> {
    const counts = Object.fromEntries(SAGA_STATUSES.map((s) => [s, 0])) as Record<SagaStatus, number>;
    if (!this.opts.readonly) await this.foldStatusDeltas();
    let rows: Array<{ status: SagaStatus; n: number }>;
    try {
      rows = await this.query<{ status: SagaStatus; n: number }>(
        'counts',
        `SELECT status, sum(n)::integer AS n FROM (
           SELECT status, n FROM saga_status_counts UNION ALL SELECT status, n::bigint FROM saga_status_deltas
         ) c GROUP BY status`,
      );
    } catch (err) {
      if ((err as { code?: unknown }).code !== '42P01') throw err;
      rows = await this.query<{ status: SagaStatus; n: number }>(
        'counts_by_rows',
        'SELECT status, count(*)::integer AS n FROM sagas GROUP BY status',
      );
    }
    for (const r of rows) if (r.status in counts) counts[r.status] = r.n;
    return counts;
  }

  async liveStats(): Promise<LiveStats> {
    // Both read indexes (the partial one of unfinished sagas, and status): cheap on a large log.
    const [r] = await this.query<{ inflight: number; oldest: string | null; parked: number; now: string }>(
      'live_stats',
      `SELECT f.inflight, f.oldest, (SELECT count(*)::integer FROM sagas WHERE status = 'PARKED') AS parked, ${NOW_MS} AS now
       FROM (SELECT count(*)::integer AS inflight, min(created_at) AS oldest FROM sagas WHERE status IN ${UNFINISHED}) f`,
    );
    if (!r) return { inflight: 0, parked: 0, oldestAgeSeconds: 0 };
    return {
      inflight: r.inflight,
      parked: r.parked,
      oldestAgeSeconds: r.oldest === null ? 0 : Math.max(0, (Number(r.now) - Number(r.oldest)) / 1000),
    };
  }

  // ---------------------------------------------------------------- leases

  async claimExpired(
    owner: string,
    leaseMs: number,
    limit: number,
    definitions?: readonly string[],
  ): Promise<SagaRecord[]> {
    if (limit <= 0) return [];
    // SKIP LOCKED: a saga another claimer (or a write in flight) holds is left to it, never given twice.
    const rows = await this.query<Row>(
      'claim_expired',
      `UPDATE sagas SET lease_owner = $1, lease_expires_at = ${NOW_MS} + $2::bigint
       WHERE id IN (
         SELECT id FROM sagas WHERE status IN ${UNFINISHED} AND lease_expires_at <= ${NOW_MS}
         AND ($4::text[] IS NULL OR definition = ANY($4::text[]))
         ORDER BY seq LIMIT $3 FOR UPDATE SKIP LOCKED
       )
       RETURNING ${SAGA_COLUMNS}`,
      [owner, leaseMs, limit, definitions ? [...definitions] : null],
    );
    return rows.sort((a, b) => Number(a.seq) - Number(b.seq)).map(record);
  }

  async renewLeases(owner: string, ids: readonly string[], leaseMs: number): Promise<string[]> {
    if (ids.length === 0) return [];
    // Rows are locked in id order, the order a write batch takes them in: no deadlock between the two.
    const rows = await this.query<{ id: string }>(
      'renew_leases',
      `WITH held AS (SELECT id FROM sagas WHERE id = ANY($2::text[]) AND lease_owner = $1 ORDER BY id FOR UPDATE)
       UPDATE sagas s SET lease_expires_at = ${NOW_MS} + $3::bigint FROM held
       WHERE s.id = held.id AND s.lease_owner = $1 RETURNING s.id`,
      [owner, ids, leaseMs],
    );
    const renewed = new Set(rows.map((r) => r.id));
    return ids.filter((id) => !renewed.has(id));
  }

  async releaseLeases(owner: string, ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.query(
      'release_leases',
      `WITH held AS (SELECT id FROM sagas WHERE id = ANY($2::text[]) AND lease_owner = $1 ORDER BY id FOR UPDATE)
       UPDATE sagas s SET lease_owner = NULL, lease_expires_at = 0 FROM held
       WHERE s.id = held.id AND s.lease_owner = $1`,
      [owner, ids],
    );
  }

  // ---------------------------------------------------------------- writes (group commit)

  async create(saga: SagaRecord, started: NewEvent, leaseMs: number): Promise<CreateResult> {
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
      started.type,
      text(started.step),
      started.attempt ?? null,
      text(started.error),
      started.retryable ?? null,
      jsonText(started.data),
      started.traceId ?? null,
      started.spanId ?? null,
      text(saga.subject),
      text(saga.currentStep),
    ];
    return this.write<CreateResult>(
      saga.id,
      `0:${saga.idempotencyKey ?? ''}:${saga.id}`,
      async (c, done) => {
        // ON CONFLICT DO NOTHING: a taken key (or id) inserts nothing, and does not abort the batch.
        const { rows } = await c.query<Row>({
          name: 'create',
          text: `WITH s AS (
            INSERT INTO sagas (id, definition, version, status, step_index, comp_index, attempt, input, results, failure,
              traceparent, idempotency_key, lease_owner, lease_expires_at, deadline_at, next_event_seq, created_at, updated_at,
              subject, current_step)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8::json, $9::json, $10::json, $11, $12, $13, ${NOW_MS} + $14::bigint, $15, 2, $16, $17,
              $26::text, $27::text)
            ON CONFLICT DO NOTHING
            RETURNING ${SAGA_COLUMNS}
          ), e AS (
            INSERT INTO saga_events (${EVENT_COLUMNS})
            SELECT s.id, 1, $18::text, $19::text, $20::integer, $21::text, $22::boolean, $23::json, $24::text, $25::text, s.created_at FROM s
          )
          SELECT ${SAGA_COLUMNS} FROM s`,
          values,
        });
        return this.created(c, saga, rows[0], done);
      },
      {
        rows: { kind: 'create', values },
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
    const name = this.appendStatement(keys, terminal);
    const sql = this.appendStatements.get(name) as string;
    const appended = (updated: boolean, done: Done<void>): Settlement =>
      updated
        ? done(undefined, terminal ? id : null)
        : { settle: () => done.reject(new LeaseLostError(id)), finished: null };
    return this.write<void>(
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
      ...keys.map((k) => patchValue(k, patch[k])),
    ];
    const name = this.takeOverStatement(keys, terminal);
    const sql = this.appendStatements.get(name) as string;
    return this.write<SagaRecord | undefined>(id, `1:${id}`, async (c, done) => {
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
  private takeOverStatement(keys: Array<keyof SagaPatch>, terminal: boolean): string {
    const all = Object.keys(PATCH_COLUMNS);
    const name = `take_over_${keys.map((k) => all.indexOf(k).toString(36)).join('')}${terminal ? '_end' : ''}`;
    if (this.appendStatements.has(name)) return name;
    const sets = [
      'next_event_seq = next_event_seq + $2::integer',
      `updated_at = ${NOW_MS}`,
      'lease_owner = $11::text',
      `lease_expires_at = CASE WHEN $11::text IS NULL THEN 0 ELSE ${NOW_MS} + $12::bigint END`,
      ...keys.map((k, i) => `${PATCH_COLUMNS[k]} = $${15 + i}::${PATCH_TYPES[k]}`),
    ];
    const notify = terminal ? `, n AS (SELECT pg_notify('${FINISHED_CHANNEL}', u.id) FROM u)` : '';
    const notified = terminal ? ', (SELECT count(*) FROM n) AS notified' : '';
    this.appendStatements.set(
      name,
      `WITH u AS (
         UPDATE sagas SET ${sets.join(', ')}
         WHERE id = $1 AND status = $13::text AND ($14::integer IS NULL OR step_index = $14::integer)
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
  private appendStatement(keys: Array<keyof SagaPatch>, terminal: boolean): string {
    // PostgreSQL truncates statement names past 63 bytes (and two long ones would collide): the
    // combination of columns is named by its position in the patch-column list instead.
    const all = Object.keys(PATCH_COLUMNS);
    const name = `append_${keys.map((k) => all.indexOf(k).toString(36)).join('')}${terminal ? '_end' : ''}`;
    if (this.appendStatements.has(name)) return name;
    const sets = [
      'next_event_seq = next_event_seq + $3::integer',
      `updated_at = ${NOW_MS}`,
      ...keys.map((k, i) => `${PATCH_COLUMNS[k]} = $${12 + i}::${PATCH_TYPES[k]}`),
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

  /**
   * Queues a write for this turn's batch. `run` gets a `done(value, finishedId?)` that builds the
   * write's settlement; the promise settles after the batch's COMMIT.
   */
  private write<T>(
    sagaId: string,
    order: string,
    run: (c: pg.ClientBase, done: Done<T>) => Promise<Settlement>,
    batched?: { rows: BatchRows; settle(c: pg.ClientBase, result: BatchResult, done: Done<T>): Promise<Settlement> },
  ): Promise<T> {
    if (this.closed) return Promise.reject(this.closedError());
    return new Promise<T>((resolve, reject) => {
      const done = Object.assign(
        (value: T, finished: string | null = null): Settlement => ({ settle: () => resolve(value), finished }),
        {
          reject,
        },
      );
      this.queue.push({
        sagaId,
        order,
        run: (c) => run(c, done),
        ...(batched && { batched: { rows: batched.rows, settle: (c, result) => batched.settle(c, result, done) } }),
        fail: (err) => reject(this.wrap(err)),
      });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.queue.length === 0 || this.batches.size >= this.maxBatches) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.startBatch();
    });
  }

  private startBatch(): void {
    if (this.queue.length === 0 || this.batches.size >= this.maxBatches) return;
    const batch: PendingWrite[] = [];
    const later: PendingWrite[] = [];
    // One write per saga in a batch: its next one waits for the next batch (the batch statement
    // sees one snapshot, so a second write of a saga could not see the first).
    for (const w of this.queue) {
      if (this.busy.has(w.sagaId)) later.push(w);
      else {
        batch.push(w);
        this.busy.add(w.sagaId);
      }
    }
    this.queue = later;
    if (batch.length === 0) return; // the batch in flight reschedules when it ends
    const p: Promise<void> = this.runBatch(batch)
      .catch((err: unknown) => batch.forEach((w) => w.fail(err)))
      .finally(() => {
        for (const w of batch) this.busy.delete(w.sagaId);
        this.batches.delete(p);
        this.schedule();
      });
    this.batches.add(p);
  }

  private async runBatch(batch: PendingWrite[]): Promise<void> {
    // Stable sort: two writes to one saga keep their order.
    batch.sort((a, b) => (a.order < b.order ? -1 : a.order > b.order ? 1 : 0));
    let c: pg.PoolClient;
    try {
      c = await this.pool.connect();
    } catch (err) {
      batch.forEach((w) => w.fail(err));
      return;
    }
    let outcomes: Outcome[];
    try {
      outcomes = await this.commit(c, batch);
      c.release();
    } catch (err) {
      // The connection broke (or could not even roll back): the batch's fate is unknown to us.
      c.release(err instanceof Error ? err : true);
      batch.forEach((w) => w.fail(err));
      return;
    }
    const ended: string[] = [];
    outcomes.forEach((o, i) => {
      if (!o.ok) return batch[i]?.fail(o.error);
      o.settlement.settle();
      if (o.settlement.finished !== null) ended.push(o.settlement.finished);
    });
    for (const id of ended) this.emitFinished(id);
  }

  /**
   * Runs a batch to its commit; throws only when the connection is unusable with the batch's fate
   * unknown. Creates and appends go as one batch statement; a batch holding a take-over, or one
   * whose statement the database refused, runs write by write.
   */
  private async commit(c: pg.ClientBase, batch: PendingWrite[]): Promise<Outcome[]> {
    const batched = batch.map((w) => w.batched).filter((b) => b !== undefined);
    let lastError: unknown;
    // A lone write runs its own statement: one round trip too, and ~0.6 ms cheaper than the
    // batch statement with one row (bench/README.md, "PostgreSQL saga log, one statement per batch").
    if (batched.length === batch.length && batch.length > 1) {
      let result: BatchResult | undefined;
      for (let attempt = 0; attempt < 3 && result === undefined; attempt++) {
        try {
          const { rows } = await c.query<BatchRow>({
            name: 'batch',
            text: BATCH_SQL,
            values: batchValues(batched.map((b) => b.rows)),
          });
          result = batchResult(rows[0]);
        } catch (err) {
          if (isConnectionError(err)) throw err;
          lastError = err;
          if (!isRetryable(err)) break;
        }
      }
      // Committed: each write settles on its own (a create that met a taken key reads its
      // holder, and only that create fails if the read does).
      if (result !== undefined) return this.settleBatch(c, batched, result);
      // A value the database refused (or a deadlock that kept coming back) aborted the whole
      // statement: each write again on its own, so that only the culprit fails.
      this.logger?.debug(
        { err: reason(lastError), writes: batch.length },
        'saga log: batch statement failed; writing one by one',
      );
      return this.oneByOne(c, batch);
    }
    // A single write is one statement (or two, the second only reading): no BEGIN/COMMIT round trips.
    const single = batch.length === 1;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        if (!single) await c.query('BEGIN');
        const outcomes: Outcome[] = [];
        for (const w of batch) outcomes.push({ ok: true, settlement: await w.run(c) });
        if (!single) await c.query('COMMIT');
        return outcomes;
      } catch (err) {
        if (isConnectionError(err)) throw err;
        if (!single) await c.query('ROLLBACK');
        lastError = err;
        if (!isRetryable(err)) break;
      }
    }
    if (single) return [{ ok: false, error: lastError }];
    return this.oneByOne(c, batch);
  }

  private async settleBatch(
    c: pg.ClientBase,
    batched: ReadonlyArray<NonNullable<PendingWrite['batched']>>,
    result: BatchResult,
  ): Promise<Outcome[]> {
    const outcomes: Outcome[] = [];
    for (const b of batched) {
      try {
        outcomes.push({ ok: true, settlement: await b.settle(c, result) });
      } catch (err) {
        outcomes.push({ ok: false, error: err });
      }
    }
    return outcomes;
  }

  /** The slow path: each write in its own savepoint, so that only the refused one fails. */
  private async oneByOne(c: pg.ClientBase, batch: PendingWrite[]): Promise<Outcome[]> {
    await c.query('BEGIN');
    const outcomes: Outcome[] = [];
    for (const w of batch) {
      await c.query('SAVEPOINT w');
      try {
        outcomes.push({ ok: true, settlement: await w.run(c) });
        await c.query('RELEASE SAVEPOINT w');
      } catch (err) {
        if (isConnectionError(err)) throw err;
        await c.query('ROLLBACK TO SAVEPOINT w');
        outcomes.push({ ok: false, error: err });
      }
    }
    await c.query('COMMIT');
    return outcomes;
  }

  // ---------------------------------------------------------------- notifications

  onFinished(listener: (sagaId: string) => void): () => void {
    this.finished.add(listener);
    return () => this.finished.delete(listener);
  }

  private emitFinished(id: string): void {
    for (const l of this.finished) {
      try {
        l(id);
      } catch (err) {
        this.logger?.error({ err, saga_id: id }, 'saga log: an onFinished listener threw');
      }
    }
  }

  private async listen(): Promise<void> {
    const client = new pg.Client(this.clientConfig());
    const lost = (err?: unknown) => this.listenLost(client, err);
    client.on('error', lost);
    client.on('end', () => lost());
    client.on('notification', (n) => {
      if (n.channel !== FINISHED_CHANNEL || !n.payload) return;
      // Our own commits already called the listeners, right after their COMMIT.
      if (this.ownBackends.has(n.processId)) return;
      this.emitFinished(n.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${FINISHED_CHANNEL}`);
    } catch (err) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
      throw err;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.listener = client;
  }

  private listenLost(client: pg.Client, err?: unknown): void {
    if (this.listener !== client) return;
    this.listener = undefined;
    client.end().catch(() => undefined);
    if (this.closed) return;
    this.logger?.warn(
      { err: err === undefined ? undefined : reason(err) },
      'saga log: LISTEN connection lost; reconnecting',
    );
    this.listenBackoffMs = LISTEN_BACKOFF_MIN_MS;
    this.relisten();
  }

  /** Reconnects the LISTEN connection with capped, jittered exponential backoff. */
  private relisten(): void {
    const delay = this.listenBackoffMs * (0.5 + Math.random() / 2);
    this.listenBackoffMs = Math.min(LISTEN_BACKOFF_MAX_MS, this.listenBackoffMs * 2);
    this.listenTimer = setTimeout(() => {
      this.listenTimer = undefined;
      if (this.closed) return;
      this.listen().then(
        () => this.logger?.info('saga log: listening for finished sagas again'),
        () => this.relisten(),
      );
    }, delay);
    this.listenTimer.unref();
  }

  // ---------------------------------------------------------------- close

  async close(): Promise<void> {
    if (this.closed) return;
    // Pending writes still go out; new ones are refused.
    while (this.queue.length > 0 || this.batches.size > 0) {
      this.startBatch();
      await Promise.race(this.batches);
    }
    this.closed = true;
    clearTimeout(this.listenTimer);
    clearInterval(this.foldTimer);
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => undefined);
    this.finished.clear();
    await this.pool.end();
  }
}

const BATCH_SQL = batchSql({
  now: NOW_MS,
  sagaColumns: SAGA_COLUMNS,
  eventColumns: EVENT_COLUMNS,
  finishedChannel: FINISHED_CHANNEL,
});

const LISTEN_BACKOFF_MIN_MS = 100;
const LISTEN_BACKOFF_MAX_MS = 5_000;
const SYNCHRONOUS_COMMIT: readonly SynchronousCommit[] = ['on', 'off', 'local', 'remote_write', 'remote_apply'];

/** The server process id of a connection (pg sets it at connect; its types do not declare it). */
function backendPid(client: pg.ClientBase): number | null {
  const pid = (client as unknown as { processID?: number | null }).processID;
  return typeof pid === 'number' ? pid : null;
}
