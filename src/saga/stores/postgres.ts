import {
  SagaLogUnavailableError,
  type CreateResult,
  type EventPage,
  type ListPage,
  type ListQuery,
  type LiveStats,
  type NewEvent,
  type SagaEvent,
  type SagaLog,
  type SagaPatch,
  type SagaRecord,
  type SagaStatus,
  type TakeOverExpectation,
} from '../model.js';
import { isConnectionError, reason } from '../../platform/storage/pg-errors.js';
import { GroupCommit } from './postgres-group-commit.js';
import { PostgresLeases } from './postgres-leases.js';
import { migrate } from './postgres-migrations.js';
import { FinishedNotifier } from './postgres-notify.js';
import { PostgresPool, SYNCHRONOUS_COMMIT, type PostgresSagaLogOptions } from './postgres-pool.js';
import { PostgresReads } from './postgres-reads.js';
import { PostgresWrites } from './postgres-writes.js';
import { PostgresRetention } from './postgres-retention.js';
import type { RetentionAges } from '../retention.js';
import type { PruneResult } from '../model.js';
import type { DefinitionRef, VersionCount } from '../versions.js';
import { PostgresBulkJobs } from './postgres-bulk.js';
import type { BulkJobStore } from '../bulk.js';

export type { PostgresSagaLogOptions, SynchronousCommit } from './postgres-pool.js';

/**
 * The saga log on PostgreSQL, for several gateways sharing one log: the SagaLog port put together
 * from its parts, one job each.
 *
 * - postgres-pool.ts: the connections, their session settings, and what a failure becomes;
 * - postgres-migrations.ts: the schema history, applied at open under an advisory lock;
 * - postgres-reads.ts: sagas, events, listings, counts (and the fold of the status deltas);
 * - postgres-leases.ts: claim, renew, release;
 * - postgres-writes.ts: create, append, take-over, each one statement;
 * - postgres-group-commit.ts: the writes of one event-loop turn committed as one batch;
 * - postgres-notify.ts: a saga's end announced to every process sharing the log (LISTEN/NOTIFY).
 *
 * Leases are stamped by the database's clock (clock_timestamp()), never by this process's.
 */
export class PostgresSagaLog implements SagaLog {
  private readonly db: PostgresPool;
  private readonly reads: PostgresReads;
  private readonly leases: PostgresLeases;
  private readonly notifier: FinishedNotifier;
  private readonly commits: GroupCommit;
  private readonly writes: PostgresWrites;
  private retention: PostgresRetention | undefined;

  private constructor(opts: PostgresSagaLogOptions) {
    this.db = new PostgresPool(opts);
    this.reads = new PostgresReads(this.db.query, opts.readonly ?? false);
    this.leases = new PostgresLeases(this.db.query);
    this.notifier = new FinishedNotifier(this.db);
    this.commits = new GroupCommit(this.db, opts.poolSize, (id) => this.notifier.emit(id));
    this.writes = new PostgresWrites(this.commits);
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
      if (opts.readonly) await log.reads.adaptToSchema(log.db.pool);
      else await migrate(log.db.pool, opts.logger);
      await log.notifier.listen();
      if (!opts.readonly) log.reads.startFolding();
    } catch (err) {
      await log.db.pool.end().catch(() => undefined);
      const message = `cannot open the saga log at ${log.db.where}: ${reason(err)}`;
      // Unreachable is unavailable (worth retrying); anything else (a refused password, a missing
      // database, a failed migration) is the deployment's to fix.
      throw isConnectionError(err)
        ? new SagaLogUnavailableError(message, { cause: err })
        : new Error(message, { cause: err });
    }
    return log;
  }

  // ---------------------------------------------------------------- reads

  identity(): Promise<string> {
    return this.reads.identity();
  }

  get(id: string): Promise<SagaRecord | undefined> {
    return this.reads.get(id);
  }

  getByIdempotencyKey(key: string): Promise<SagaRecord | undefined> {
    return this.reads.getByIdempotencyKey(key);
  }

  events(id: string, page?: EventPage): Promise<SagaEvent[]> {
    return this.reads.events(id, page);
  }

  list(q: ListQuery): Promise<ListPage> {
    return this.reads.list(q);
  }

  parked(limit: number): Promise<SagaRecord[]> {
    return this.reads.parked(limit);
  }

  countByStatus(): Promise<Record<SagaStatus, number>> {
    return this.reads.countByStatus();
  }

  clock(): Promise<number> {
    return this.reads.clock();
  }

  versionCounts(): Promise<VersionCount[]> {
    return this.reads.versionCounts();
  }

  liveStats(stuckAfterMs?: number): Promise<LiveStats> {
    return this.reads.liveStats(stuckAfterMs);
  }

  // ---------------------------------------------------------------- leases

  claimExpired(
    owner: string,
    leaseMs: number,
    limit: number,
    definitions?: readonly DefinitionRef[],
  ): Promise<SagaRecord[]> {
    return this.leases.claimExpired(owner, leaseMs, limit, definitions);
  }

  renewLeases(owner: string, ids: readonly string[], leaseMs: number): Promise<string[]> {
    return this.leases.renewLeases(owner, ids, leaseMs);
  }

  releaseLeases(owner: string, ids: readonly string[]): Promise<void> {
    return this.leases.releaseLeases(owner, ids);
  }

  // ---------------------------------------------------------------- writes

  create(saga: SagaRecord, events: readonly NewEvent[], leaseMs: number): Promise<CreateResult> {
    return this.writes.create(saga, events, leaseMs);
  }

  append(id: string, owner: string, patch: SagaPatch, events: NewEvent[]): Promise<void> {
    return this.writes.append(id, owner, patch, events);
  }

  takeOver(
    id: string,
    expect: TakeOverExpectation,
    owner: string,
    leaseMs: number,
    patch: SagaPatch,
    events: NewEvent[],
  ): Promise<SagaRecord | undefined> {
    return this.writes.takeOver(id, expect, owner, leaseMs, patch, events);
  }

  // ---------------------------------------------------------------- bulk jobs

  private bulk: PostgresBulkJobs | undefined;

  bulkJobs(): BulkJobStore {
    this.bulk ??= new PostgresBulkJobs(this.db.query);
    return this.bulk;
  }

  // ---------------------------------------------------------------- retention

  /** Batched deletes, one statement each: postgres-retention.ts. */
  prune(ages: RetentionAges, limit: number): Promise<PruneResult> {
    return (this.retention ??= new PostgresRetention(this.db.query)).prune(ages, limit);
  }

  // ---------------------------------------------------------------- notifications and close

  onFinished(listener: (sagaId: string) => void): () => void {
    return this.notifier.onFinished(listener);
  }

  async close(): Promise<void> {
    if (this.db.closed) return;
    // Pending writes still go out; new ones are refused.
    await this.commits.drain();
    this.db.closed = true;
    this.reads.stopFolding();
    await this.notifier.close();
    await this.db.pool.end();
  }
}
