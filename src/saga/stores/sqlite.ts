import { databaseId, openDatabase, type Db, type Statement } from '../../platform/storage/db.js';
import { GroupCommit } from '../../platform/storage/group-commit.js';
import type { SyncLevel } from '../../platform/config/config.js';
import type { Json } from '../definition.js';
import {
  foldVersionCounts,
  PATCH_COLUMNS,
  PROGRESS_KEYS,
  patchValue,
  toEvent,
  toRecord,
  type EventRow,
  type RowCodec,
  type SagaRow,
} from './rows.js';
import { refName, type DefinitionRef, type VersionCount } from '../versions.js';
import {
  LeaseLostError,
  SAGA_STATUSES,
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
import { MIGRATIONS } from './sqlite-migrations.js';
import { SqliteRetention, enableIncrementalVacuum } from './sqlite-retention.js';
import type { RetentionAges } from '../retention.js';
import type { PruneResult } from '../model.js';
import { SqliteBulkJobs } from './sqlite-bulk.js';
import type { BulkJobStore } from '../bulk.js';

type Row = SagaRow<string, number>;

/** SQLite returns JSON columns as text and booleans as 0/1. */
const CODEC: RowCodec<string, number, number> = {
  json: (v) => JSON.parse(v) as Json,
  num: (v) => v,
  bool: (v) => v === 1,
};
const record = (r: Row): SagaRecord => toRecord(r, CODEC);
const event = (r: EventRow<string, number, number>): SagaEvent => toEvent(r, CODEC);

export interface SqliteStoreOptions {
  file: string;
  /** For tools that only read (sagas inspect) while a gateway writes. */
  readonly?: boolean;
  synchronous?: SyncLevel;
  now?: () => number;
}

/** The terminal status a patch moves a saga to, if any. */
function terminalOf(patch: SagaPatch): boolean {
  return patch.status !== undefined && isTerminal(patch.status);
}

/**
 * The saga log on SQLite (WAL). Writes are group-committed (GroupCommit): every write issued
 * during one turn of the event loop is committed in one transaction, so the fsync and the pages
 * are shared; each caller's promise settles when its own write is durable (or failed, alone).
 */
export class SqliteSagaLog implements SagaLog {
  private readonly db: Db;
  private readonly finished = new Set<(sagaId: string) => void>();
  private readonly now: () => number;
  private readonly commits: GroupCommit;
  private readonly stmt;

  constructor(opts: SqliteStoreOptions) {
    this.db = openDatabase(opts.file, {
      synchronous: opts.synchronous,
      migrations: MIGRATIONS,
      readonly: opts.readonly,
    });
    this.now = opts.now ?? Date.now;
    // Before any statement is prepared: it may VACUUM (sqlite-retention.ts).
    if (!opts.readonly) enableIncrementalVacuum(this.db);
    const db = this.db;
    this.commits = new GroupCommit(db);
    this.stmt = {
      insertEvent:
        db.prepare(`INSERT INTO saga_events (saga_id, seq, type, step, attempt, error, retryable, data, trace_id,
        span_id, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      get: db.prepare<[string], Row>('SELECT * FROM sagas WHERE id = ?'),
      getByKey: db.prepare<[string], Row>('SELECT * FROM sagas WHERE idempotency_key = ?'),
      conflicting: db.prepare<[string | null, string], { id: string }>(
        'SELECT id FROM sagas WHERE idempotency_key = ? UNION ALL SELECT id FROM sagas WHERE id = ? LIMIT 1',
      ),
      // LIMIT -1 is SQLite's "no limit".
      events: db.prepare<{ id: string; afterSeq: number; limit: number }, EventRow<string, number, number>>(
        'SELECT * FROM saga_events WHERE saga_id = @id AND seq > @afterSeq ORDER BY seq LIMIT @limit',
      ),
      // The definitions' versions as a JSON array of `name@version` (null: any), so one prepared
      // statement serves every list.
      expired: db.prepare<[{ now: number; only: string | null; limit: number }], Row>(
        `SELECT * FROM sagas WHERE status IN ('RUNNING', 'COMPENSATING') AND lease_expires_at <= @now
         AND (@only IS NULL OR definition || '@' || version IN (SELECT value FROM json_each(@only)))
         ORDER BY seq LIMIT @limit`,
      ),
      versionCounts: db.prepare<[], { definition: string; version: number; status: SagaStatus; n: number }>(
        `SELECT definition, version, status, count(*) AS n FROM sagas
         WHERE status IN ('RUNNING', 'COMPENSATING', 'PARKED') GROUP BY definition, version, status`,
      ),
      claim: db.prepare(
        `UPDATE sagas SET lease_owner = ?, lease_expires_at = ? WHERE id = ? AND lease_expires_at <= ?
         AND status IN ('RUNNING', 'COMPENSATING')`,
      ),
      renew: db.prepare('UPDATE sagas SET lease_expires_at = ? WHERE id = ? AND lease_owner = ?'),
      release: db.prepare('UPDATE sagas SET lease_expires_at = 0, lease_owner = NULL WHERE id = ? AND lease_owner = ?'),
      parkedCount: db.prepare<[], { n: number }>(`SELECT COUNT(*) AS n FROM sagas WHERE status = 'PARKED'`),
      // One pass over the (status, seq) index, never the rows.
      counts: db.prepare<[], { status: SagaStatus; n: number }>(
        'SELECT status, COUNT(*) AS n FROM sagas INDEXED BY sagas_status GROUP BY status',
      ),
      parked: db.prepare<[number], Row>(`SELECT * FROM sagas WHERE status = 'PARKED' ORDER BY updated_at, seq LIMIT ?`),
    };
  }

  private insertSagaStatement: Statement | undefined;
  private inflightStatement:
    Statement<[number], { n: number; oldest: number | null; stuck: number | null }> | undefined;

  /**
   * Through an index of the in-flight statuses, then their rows (few: the sagas in flight), in one
   * pass: how many, the oldest, and how many made no progress since the cutoff. Prepared at
   * the first read: a read-only tool may open a log not yet migrated to progress_at.
   */
  private get inflight(): Statement<[number], { n: number; oldest: number | null; stuck: number | null }> {
    this.inflightStatement ??= this.db.prepare(
      `SELECT COUNT(*) AS n, MIN(created_at) AS oldest, SUM(COALESCE(progress_at, updated_at) < ?) AS stuck
       FROM sagas WHERE status IN ('RUNNING', 'COMPENSATING')`,
    );
    return this.inflightStatement;
  }

  /** Prepared at the first create: a read-only tool may open a log not yet migrated to the filter columns. */
  private get insertSaga(): Statement {
    this.insertSagaStatement ??= this.db.prepare(
      `INSERT INTO sagas (id, definition, version, status, step_index, comp_index, attempt, input,
        results, failure, traceparent, idempotency_key, lease_owner, lease_expires_at, deadline_at, next_event_seq,
        created_at, updated_at, subject, current_step, progress_at) VALUES (@id, @definition, @version, @status, @stepIndex, @compIndex, @attempt, @input,
        @results, @failure, @traceparent, @idempotencyKey, @leaseOwner, @leaseExpiresAt, @deadlineAt, @nextEventSeq, @createdAt, @updatedAt,
        @subject, @currentStep, @updatedAt)
        ON CONFLICT DO NOTHING`,
    );
    return this.insertSagaStatement;
  }

  private readonly patchStatements = new Map<string, Statement<unknown[], { next: number }>>();

  /**
   * The SET of progress_at for a patch of these columns (its parameters follow the patch's own):
   * the write's time when the patch changes the row's status, step or compensation index (each
   * compared with the row as it was), else as it was. None when the patch touches none of them.
   */
  private static progressSet(keys: Array<keyof SagaPatch>): string[] {
    const moved = keys.filter((k) => PROGRESS_KEYS.includes(k));
    if (moved.length === 0) return [];
    const changed = moved.map((k) => `${PATCH_COLUMNS[k]} IS NOT ?`).join(' OR ');
    return [`progress_at = CASE WHEN ${changed} THEN ? ELSE COALESCE(progress_at, updated_at) END`];
  }

  private static progressValues(keys: Array<keyof SagaPatch>, patch: SagaPatch, at: number): unknown[] {
    const moved = keys.filter((k) => PROGRESS_KEYS.includes(k));
    return moved.length === 0 ? [] : [...moved.map((k) => patchValue(k, patch[k])), at];
  }

  /**
   * One UPDATE per combination of patched columns (a handful exist): it checks the lease,
   * reserves the events' sequence numbers and applies the patch in a single statement, returning
   * the sequence number after the reserved range.
   */
  private patchStatement(keys: Array<keyof SagaPatch>): Statement<unknown[], { next: number }> {
    const sig = keys.join(',');
    let st = this.patchStatements.get(sig);
    if (!st) {
      const sets = [
        'next_event_seq = next_event_seq + ?',
        'updated_at = ?',
        ...keys.map((k) => `${PATCH_COLUMNS[k]} = ?`),
        ...SqliteSagaLog.progressSet(keys),
      ];
      st = this.db.prepare<unknown[], { next: number }>(
        `UPDATE sagas SET ${sets.join(', ')} WHERE id = ? AND lease_owner = ? RETURNING next_event_seq AS next`,
      );
      this.patchStatements.set(sig, st);
    }
    return st;
  }

  private writeEvents(id: string, firstSeq: number, events: readonly NewEvent[], at: number): void {
    events.forEach((e, i) => {
      this.stmt.insertEvent.run(
        id,
        firstSeq + i,
        e.type,
        e.step ?? null,
        e.attempt ?? null,
        e.error ?? null,
        e.retryable === undefined || e.retryable === null ? null : e.retryable ? 1 : 0,
        e.data === undefined ? null : JSON.stringify(e.data),
        e.traceId ?? null,
        e.spanId ?? null,
        at,
      );
    });
  }

  async create(saga: SagaRecord, events: readonly NewEvent[], leaseMs: number): Promise<CreateResult> {
    // progress_at is the creation's updated_at (bound by name once in the statement).
    const { progressAt: _, ...row } = { ...saga, leaseExpiresAt: this.now() + leaseMs };
    const stored: SagaRecord = { ...row, progressAt: saga.updatedAt };
    let result: CreateResult = { created: true, saga: stored };
    await this.commits.run(() => {
      // A taken key (or id: a create retried after an unknown outcome) inserts nothing.
      const inserted = this.insertSaga.run({
        ...row,
        input: JSON.stringify(saga.input),
        results: JSON.stringify(saga.results),
        failure: saga.failure ? JSON.stringify(saga.failure) : null,
        subject: saga.subject ?? null,
        currentStep: saga.currentStep ?? null,
        nextEventSeq: events.length + 1,
      });
      if (inserted.changes === 0) {
        const existing = this.stmt.conflicting.get(saga.idempotencyKey, saga.id);
        if (!existing) throw new Error(`saga ${saga.id} conflicted with a row that cannot be found`);
        result = { created: false, existingId: existing.id };
        return;
      }
      result = { created: true, saga: stored };
      this.writeEvents(saga.id, 1, events, saga.createdAt);
    });
    return result;
  }

  async append(id: string, owner: string, patch: SagaPatch, events: NewEvent[]): Promise<void> {
    await this.commits.run(() => {
      const at = this.now();
      const keys = Object.keys(patch) as Array<keyof SagaPatch>;
      const bump = this.patchStatement(keys).get(
        events.length,
        at,
        ...keys.map((k) => patchValue(k, patch[k])),
        ...SqliteSagaLog.progressValues(keys, patch, at),
        id,
        owner,
      );
      if (!bump) throw new LeaseLostError(id);
      this.writeEvents(id, bump.next - events.length, events, at);
    });
    if (terminalOf(patch)) this.emitFinished(id);
  }

  private readonly takeOverStatements = new Map<string, Statement<unknown[], Row & { next_event_seq: number }>>();

  /** Like patchStatement, conditional on the row's status (and step index) instead of its lease, which it moves. */
  private takeOverStatement(keys: Array<keyof SagaPatch>): Statement<unknown[], Row & { next_event_seq: number }> {
    const sig = keys.join(',');
    let st = this.takeOverStatements.get(sig);
    if (!st) {
      const sets = [
        'next_event_seq = next_event_seq + ?',
        'updated_at = ?',
        'lease_owner = ?',
        'lease_expires_at = ?',
        ...keys.map((k) => `${PATCH_COLUMNS[k]} = ?`),
        ...SqliteSagaLog.progressSet(keys),
      ];
      st = this.db.prepare<unknown[], Row & { next_event_seq: number }>(
        `UPDATE sagas SET ${sets.join(', ')} WHERE id = ? AND status = ? AND (? IS NULL OR step_index = ?)
         AND (? IS NULL OR comp_index = ?) AND (? IS NULL OR version = ?) RETURNING *`,
      );
      this.takeOverStatements.set(sig, st);
    }
    return st;
  }

  async takeOver(
    id: string,
    expect: TakeOverExpectation,
    owner: string,
    leaseMs: number,
    patch: SagaPatch,
    events: NewEvent[],
  ): Promise<SagaRecord | undefined> {
    const keys = (Object.keys(patch) as Array<keyof SagaPatch>).filter(
      (k) => k !== 'leaseOwner' && k !== 'leaseExpiresAt' && patch[k] !== undefined,
    );
    const release = patch.leaseOwner === null;
    let taken: SagaRecord | undefined;
    await this.commits.run(() => {
      taken = undefined;
      const at = this.now();
      const step = expect.stepIndex ?? null;
      const comp = expect.compIndex ?? null;
      const version = expect.version ?? null;
      const row = this.takeOverStatement(keys).get(
        events.length,
        at,
        release ? null : owner,
        release ? 0 : at + leaseMs,
        ...keys.map((k) => patchValue(k, patch[k])),
        ...SqliteSagaLog.progressValues(keys, patch, at),
        id,
        expect.status,
        step,
        step,
        comp,
        comp,
        version,
        version,
      );
      if (!row) return;
      this.writeEvents(id, row.next_event_seq - events.length, events, at);
      taken = record(row);
    });
    if (taken && isTerminal(taken.status)) this.emitFinished(id);
    return taken;
  }

  /** A listener that throws must not turn a committed append into a failed one. */
  private emitFinished(id: string): void {
    for (const l of this.finished) {
      try {
        l(id);
      } catch {
        // the listener's own bug; the write stands
      }
    }
  }

  async identity(): Promise<string> {
    return databaseId(this.db);
  }

  async get(id: string): Promise<SagaRecord | undefined> {
    const r = this.stmt.get.get(id);
    return r ? record(r) : undefined;
  }

  async getByIdempotencyKey(key: string): Promise<SagaRecord | undefined> {
    const r = this.stmt.getByKey.get(key);
    return r ? record(r) : undefined;
  }

  async events(id: string, page: EventPage = {}): Promise<SagaEvent[]> {
    return this.stmt.events.all({ id, afterSeq: page.afterSeq ?? 0, limit: page.limit ?? -1 }).map(event);
  }

  /** In-process only: a SQLite log has one writing process (the gateway); see docs/scale-out.md. */
  onFinished(listener: (sagaId: string) => void): () => void {
    this.finished.add(listener);
    return () => this.finished.delete(listener);
  }

  private readonly listStatements = new Map<string, Statement<Record<string, unknown>, Row>>();

  /**
   * One statement per combination of filters, each condition served by an index: status (status,
   * seq), subject (subject, seq), step (current_step, seq), an id prefix the id's own index (a
   * range, then an exact check), a time range (created_at, seq), which the listing then follows
   * (newest first by creation time, the cursor a (createdAt, seq) position).
   */
  async list(q: ListQuery): Promise<ListPage> {
    const byTime = listsByTime(q);
    const params: Record<string, unknown> = { limit: q.limit + 1 };
    const where: string[] = [];
    if (q.status !== undefined) {
      where.push('status = @status');
      params.status = q.status;
    }
    if (q.subject !== undefined) {
      where.push('subject = @subject');
      params.subject = q.subject;
    }
    if (q.step !== undefined) {
      where.push('current_step = @step');
      params.step = q.step;
    }
    if (q.createdFrom !== undefined) {
      where.push('created_at >= @from');
      params.from = q.createdFrom;
    }
    if (q.createdTo !== undefined) {
      where.push('created_at <= @to');
      params.to = q.createdTo;
    }
    if (q.idPrefix !== undefined) {
      where.push('id >= @prefix AND id < @prefixEnd AND substr(id, 1, length(@prefix)) = @prefix');
      params.prefix = q.idPrefix;
      params.prefixEnd = prefixUpperBound(q.idPrefix);
    }
    if (q.stuckForMs !== undefined) {
      where.push(`status IN ('RUNNING', 'COMPENSATING') AND COALESCE(progress_at, updated_at) < @stuckBefore`);
      params.stuckBefore = this.now() - q.stuckForMs;
    }
    if (q.cursor !== undefined) {
      if (byTime) {
        const c = decodeTimeCursor(q.cursor);
        where.push('(created_at, seq) < (@cAt, @cSeq)');
        params.cAt = c.createdAt;
        params.cSeq = c.seq;
      } else {
        where.push('seq < @before');
        params.before = decodeCursor(q.cursor);
      }
    }
    // Stuck sagas are among the few in flight: found through their partial index, whatever the order.
    const from = q.stuckForMs === undefined ? 'sagas' : 'sagas INDEXED BY sagas_unfinished';
    const sql = `SELECT * FROM ${from} ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY ${byTime ? 'created_at DESC, seq DESC' : 'seq DESC'} LIMIT @limit`;
    let st = this.listStatements.get(sql);
    if (!st) {
      st = this.db.prepare<Record<string, unknown>, Row>(sql);
      this.listStatements.set(sql, st);
    }
    const rows = st.all(params);
    const page = rows.slice(0, q.limit);
    const last = page[page.length - 1];
    return {
      sagas: page.map(record),
      nextCursor:
        rows.length > q.limit && last
          ? byTime
            ? encodeTimeCursor(last.created_at, last.seq)
            : encodeCursor(last.seq)
          : null,
    };
  }

  async parked(limit: number): Promise<SagaRecord[]> {
    return this.stmt.parked.all(limit).map(record);
  }

  async claimExpired(
    owner: string,
    leaseMs: number,
    limit: number,
    definitions?: readonly DefinitionRef[],
  ): Promise<SagaRecord[]> {
    const now = this.now();
    const only = definitions ? JSON.stringify(definitions.map(refName)) : null;
    return this.db
      .transaction(() => {
        const claimed: SagaRecord[] = [];
        for (const row of this.stmt.expired.all({ now, only, limit })) {
          if (this.stmt.claim.run(owner, now + leaseMs, row.id, now).changes === 1) {
            claimed.push({ ...record(row), leaseOwner: owner, leaseExpiresAt: now + leaseMs });
          }
        }
        return claimed;
      })
      .immediate();
  }

  async renewLeases(owner: string, ids: readonly string[], leaseMs: number): Promise<string[]> {
    const until = this.now() + leaseMs;
    return this.db
      .transaction(() => ids.filter((id) => this.stmt.renew.run(until, id, owner).changes === 0))
      .immediate();
  }

  async releaseLeases(owner: string, ids: readonly string[]): Promise<void> {
    this.db.transaction(() => ids.forEach((id) => this.stmt.release.run(id, owner))).immediate();
  }

  async countByStatus(): Promise<Record<SagaStatus, number>> {
    const counts = Object.fromEntries(SAGA_STATUSES.map((s) => [s, 0])) as Record<SagaStatus, number>;
    for (const r of this.stmt.counts.all()) counts[r.status] = r.n;
    return counts;
  }

  async versionCounts(): Promise<VersionCount[]> {
    return foldVersionCounts(this.stmt.versionCounts.all());
  }

  async clock(): Promise<number> {
    return this.now();
  }

  async liveStats(stuckAfterMs?: number): Promise<LiveStats> {
    const now = this.now();
    // Without a threshold no saga is older than the cutoff: stuck is 0.
    const r = this.inflight.get(stuckAfterMs === undefined ? Number.MIN_SAFE_INTEGER : now - stuckAfterMs);
    return {
      inflight: r?.n ?? 0,
      parked: this.stmt.parkedCount.get()?.n ?? 0,
      oldestAgeSeconds: r?.oldest ? Math.max(0, (now - r.oldest) / 1000) : 0,
      stuck: r?.stuck ?? 0,
    };
  }

  private bulk: SqliteBulkJobs | undefined;

  /** Made at the first call: a read-only tool may open a log not yet migrated to the bulk tables. */
  bulkJobs(): BulkJobStore {
    this.bulk ??= new SqliteBulkJobs(this.db, this.now);
    return this.bulk;
  }

  private retention: SqliteRetention | undefined;

  /** Retention's batches and incremental vacuum: sqlite-retention.ts. */
  async prune(ages: RetentionAges, limit: number): Promise<PruneResult> {
    return (this.retention ??= new SqliteRetention(this.db, this.now)).prune(ages, limit);
  }

  async close(): Promise<void> {
    if (this.commits.pending > 0) this.commits.flush();
    this.finished.clear();
    this.db.close();
  }
}
