/**
 * The PostgreSQL saga log's reads: one saga (by id, by idempotency key), its events, the listings
 * an operator filters, the PARKED queue, the counts per status and the live figures. Each is one
 * prepared statement served by an index; none takes a lock.
 */
import type pg from 'pg';
import {
  SAGA_STATUSES,
  decodeCursor,
  decodeTimeCursor,
  encodeCursor,
  encodeTimeCursor,
  listsByTime,
  prefixUpperBound,
  type EventPage,
  type ListPage,
  type ListQuery,
  type LiveStats,
  type SagaEvent,
  type SagaRecord,
  type SagaStatus,
} from '../model.js';
import { text } from './postgres-batch.js';
import { foldVersionCounts } from './rows.js';
import type { VersionCount } from '../versions.js';
import { UNFINISHED } from './postgres-migrations.js';
import {
  EVENT_COLUMNS,
  NOW_MS,
  SAGA_COLUMNS,
  event,
  record,
  type EventRowPg,
  type Query,
  type Row,
} from './postgres-sql.js';

/** The same, for a read-only session on a log not yet migrated to the filter columns (a newer tool reading an older log). */
const SAGA_COLUMNS_V1 = SAGA_COLUMNS.replace(
  'subject, current_step',
  'NULL::text AS subject, NULL::text AS current_step',
).replace('progress_at', 'NULL::bigint AS progress_at');

/** The same, for a log migrated to the filter columns but not yet to progress_at (read as updated_at). */
const SAGA_COLUMNS_V2 = SAGA_COLUMNS.replace('progress_at', 'NULL::bigint AS progress_at');

/** pg_try_advisory_xact_lock key of the fold of status deltas: one process folds at a time, the others skip. */
const FOLD_LOCK = 4_711_560_339_202;

/** How often each process folds the status deltas into the counts, read or not: the deltas stay a few thousand rows. */
const FOLD_EVERY_MS = 10_000;

export class PostgresReads {
  /** The columns reads select: SAGA_COLUMNS, unless a read-only session finds an older schema. */
  private columns = SAGA_COLUMNS;
  /**
   * Whether the log has settled_at and settled_step (migration 9), which the PARKED queue and the
   * step filter read through their indexes; a read-only session on an older log reads updated_at
   * and current_step, as that log's indexes do.
   */
  private settled = true;
  private identity_: string | undefined;
  private foldTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly query: Query,
    /** A read-only session folds nothing: it reads the counts and the deltas as they are. */
    private readonly readonly: boolean,
  ) {}

  /** For a read-only session (which migrates nothing): reads an older log's missing columns as NULL. */
  async adaptToSchema(pool: pg.Pool): Promise<void> {
    const { rows } = await pool.query<{ column_name: string }>(
      `SELECT column_name FROM information_schema.columns
       WHERE table_name = 'sagas' AND column_name IN ('current_step', 'progress_at', 'settled_at')`,
    );
    const has = new Set(rows.map((r) => r.column_name));
    this.columns = !has.has('current_step')
      ? SAGA_COLUMNS_V1
      : !has.has('progress_at')
        ? SAGA_COLUMNS_V2
        : SAGA_COLUMNS;
    this.settled = has.has('settled_at');
  }

  /** Folds the status deltas every FOLD_EVERY_MS until stopFolding. */
  startFolding(): void {
    this.foldTimer = setInterval(() => void this.foldStatusDeltas().catch(() => undefined), FOLD_EVERY_MS);
    this.foldTimer.unref();
  }

  stopFolding(): void {
    clearInterval(this.foldTimer);
  }

  async identity(): Promise<string> {
    this.identity_ ??= (await this.query<{ id: string }>('identity', 'SELECT id FROM saga_log_identity'))[0]?.id;
    if (this.identity_ === undefined) throw new Error('saga log has no identity row: was it migrated?');
    return this.identity_;
  }

  async get(id: string): Promise<SagaRecord | undefined> {
    const [r] = await this.query<Row>('get', `SELECT ${this.columns} FROM sagas WHERE id = $1`, [id]);
    return r ? record(r) : undefined;
  }

  async getByIdempotencyKey(key: string): Promise<SagaRecord | undefined> {
    const [r] = await this.query<Row>('get_by_key', `SELECT ${this.columns} FROM sagas WHERE idempotency_key = $1`, [
      key,
    ]);
    return r ? record(r) : undefined;
  }

  async events(id: string, page: EventPage = {}): Promise<SagaEvent[]> {
    // LIMIT NULL is PostgreSQL's "no limit".
    const rows = await this.query<EventRowPg>(
      'events',
      `SELECT ${EVENT_COLUMNS} FROM saga_events WHERE saga_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
      [id, page.afterSeq ?? 0, page.limit ?? null],
    );
    return rows.map(event);
  }

  /**
   * One statement per combination of filters (named by it), each condition served by an index:
   * status (status, seq), subject (subject, seq), an id prefix the binary-order id index (a range,
   * then an exact check), a time range (created_at, seq), which the listing then follows (newest
   * first by creation time, the cursor a (createdAt, seq) position). A step is two halves merged
   * in the listing's order: the sagas in flight, whose step changes with every step and so is in
   * no index (sagas_unfinished, in seq order, the step checked in the row), and the sagas at rest
   * (PARKED ones: sagas_step on settled_step).
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
    let step: string | undefined;
    if (q.step !== undefined) {
      step = param(text(q.step), 'text');
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
    if (q.stuckForMs !== undefined) {
      // The condition of the partial index of unfinished sagas, word for word, so that it serves.
      where.push(
        `status IN ${UNFINISHED} AND COALESCE(progress_at, updated_at) < ${NOW_MS} - ${param(q.stuckForMs, 'bigint')}`,
      );
      name += 'k';
    }
    if (cursor !== undefined) {
      where.push(
        byTime
          ? `(created_at, seq) < (${param(cursor.createdAt, 'bigint')}, ${param(cursor.seq, 'bigint')})`
          : `seq < ${param(cursor.seq, 'bigint')}`,
      );
      name += 'c';
    }
    const order = `ORDER BY ${byTime ? 'created_at DESC, seq DESC' : 'seq DESC'} LIMIT ${param(q.limit + 1, 'integer')}`;
    const select = (conditions: string[]) =>
      `SELECT ${this.columns} FROM sagas ${conditions.length ? `WHERE ${conditions.join(' AND ')}` : ''} ${order}`;
    // The same condition either way: current_step is settled_step at rest. Each half takes its
    // own first page (the in-flight half stops at it instead of reading every saga in flight).
    const sql =
      step === undefined
        ? select(where)
        : this.settled
          ? `SELECT * FROM ((${select([...where, `status IN ${UNFINISHED}`, `current_step = ${step}`])})
             UNION ALL (${select([...where, `settled_step = ${step}`])})) s ${order}`
          : select([...where, `current_step = ${step}`]);
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

  /** Through sagas_parked: a PARKED saga's settled_at is its updated_at. */
  async parked(limit: number): Promise<SagaRecord[]> {
    const rows = await this.query<Row>(
      'parked',
      `SELECT ${this.columns} FROM sagas WHERE status = 'PARKED'
       ORDER BY ${this.settled ? 'settled_at' : 'updated_at'}, seq LIMIT $1`,
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
  async versionCounts(): Promise<VersionCount[]> {
    const rows = await this.query<{ definition: string; version: number; status: string; n: number }>(
      'version_counts',
      `SELECT definition, version, status, count(*)::integer AS n FROM sagas
       WHERE status IN ('RUNNING', 'COMPENSATING', 'PARKED') GROUP BY definition, version, status`,
    );
    return foldVersionCounts(rows);
  }

  async countByStatus(): Promise<Record<SagaStatus, number>> {
    const counts = Object.fromEntries(SAGA_STATUSES.map((s) => [s, 0])) as Record<SagaStatus, number>;
    if (!this.readonly) await this.foldStatusDeltas();
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

  async clock(): Promise<number> {
    const [r] = await this.query<{ now: string }>('clock', `SELECT ${NOW_MS} AS now`);
    return Number(r?.now);
  }

  async liveStats(stuckAfterMs?: number): Promise<LiveStats> {
    // Both read indexes (the partial one of unfinished sagas, and status): cheap on a large log.
    // The stuck count reads the same in-flight rows as the oldest age, in the same pass.
    const [r] = await this.query<{
      inflight: number;
      oldest: string | null;
      stuck: number;
      parked: number;
      now: string;
    }>(
      'live_stats_stuck',
      `SELECT f.inflight, f.oldest, f.stuck, (SELECT count(*)::integer FROM sagas WHERE status = 'PARKED') AS parked,
         t.now AS now
       FROM (SELECT ${NOW_MS} AS now) t,
       LATERAL (SELECT count(*)::integer AS inflight, min(created_at) AS oldest,
           (count(*) FILTER (WHERE $1::bigint IS NOT NULL AND COALESCE(progress_at, updated_at) < t.now - $1::bigint))::integer AS stuck
         FROM sagas WHERE status IN ${UNFINISHED}) f`,
      [stuckAfterMs ?? null],
    );
    if (!r) return { inflight: 0, parked: 0, oldestAgeSeconds: 0, stuck: 0 };
    return {
      inflight: r.inflight,
      parked: r.parked,
      oldestAgeSeconds: r.oldest === null ? 0 : Math.max(0, (Number(r.now) - Number(r.oldest)) / 1000),
      stuck: r.stuck,
    };
  }
}
