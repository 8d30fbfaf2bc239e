/**
 * Bulk jobs (../bulk.ts) in the SQLite saga log's database: the job's row and its frozen
 * selection, one row per saga. Each call is one statement (the creation one transaction) on the
 * log's own connection, outside the log's group commit: a job writes a few rows a second.
 */
import type { Db } from '../../platform/storage/db.js';
import {
  countsOf,
  type BulkFilter,
  type BulkItem,
  type BulkJob,
  type BulkJobState,
  type BulkJobStore,
  type BulkOutcome,
  type NewBulkJob,
} from '../bulk.js';

/**
 * A job's row as a driver returns it, the same columns in both stores: `N`, how a bigint (epoch
 * ms) comes back (SQLite: a number; pg: a string); `F`, the filter (SQLite: JSON text; pg: parsed).
 */
export interface BulkJobRow<N, F> {
  id: string;
  action: string;
  note: string | null;
  filter: F;
  rate: number;
  cap: number;
  actor: string;
  state: string;
  total: number;
  created_at: N;
  updated_at: N;
  finished_at: N | null;
  lease_owner: string | null;
  lease_expires_at: N;
}

type JobRow = BulkJobRow<number, string>;

const num = (v: string | number | null | undefined): number | null =>
  v === null || v === undefined ? null : Number(v);

/** The job from its row, its filter, its counts per result and its latest action's time. */
export function toJob<N extends string | number>(
  r: BulkJobRow<N, unknown>,
  filter: BulkFilter,
  counts: Array<{ result: string; n: number }>,
  lastAt: N | null | undefined,
): BulkJob {
  return {
    id: r.id,
    action: r.action as BulkJob['action'],
    note: r.note,
    filter,
    rate: r.rate,
    cap: r.cap,
    actor: r.actor,
    state: r.state as BulkJobState,
    total: r.total,
    counts: countsOf(counts),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    finishedAt: num(r.finished_at),
    lastActedAt: num(lastAt),
    leaseOwner: r.lease_owner,
    leaseExpiresAt: Number(r.lease_expires_at),
  };
}

interface ItemRow {
  position: number;
  saga_id: string;
  result: string;
  code: string | null;
  message: string | null;
  at: number | null;
}

export const toItem = (r: ItemRow): BulkItem => ({
  position: Number(r.position),
  sagaId: r.saga_id,
  result: r.result as BulkItem['result'],
  code: r.code,
  message: r.message,
  at: r.at === null ? null : Number(r.at),
});

export class SqliteBulkJobs implements BulkJobStore {
  private readonly stmt;

  constructor(
    private readonly db: Db,
    private readonly now: () => number = Date.now,
  ) {
    this.stmt = {
      insertJob: db.prepare(
        `INSERT INTO bulk_jobs (id, action, note, filter, rate, cap, actor, state, total, created_at, updated_at, lease_expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, 0)`,
      ),
      insertItem: db.prepare('INSERT INTO bulk_job_sagas (job_id, position, saga_id) VALUES (?, ?, ?)'),
      get: db.prepare<[string], JobRow>('SELECT * FROM bulk_jobs WHERE id = ?'),
      list: db.prepare<[string, number], JobRow>('SELECT * FROM bulk_jobs WHERE id < ? ORDER BY id DESC LIMIT ?'),
      counts: db.prepare<[string], { result: string; n: number }>(
        'SELECT result, COUNT(*) AS n FROM bulk_job_sagas WHERE job_id = ? GROUP BY result',
      ),
      lastAt: db.prepare<[string], { at: number | null }>('SELECT MAX(at) AS at FROM bulk_job_sagas WHERE job_id = ?'),
      items: db.prepare<[string, number, number], ItemRow>(
        'SELECT * FROM bulk_job_sagas WHERE job_id = ? AND position > ? ORDER BY position LIMIT ?',
      ),
      pending: db.prepare<[string, number], ItemRow>(
        `SELECT * FROM bulk_job_sagas WHERE job_id = ? AND result = 'pending' ORDER BY position LIMIT ?`,
      ),
      record: db.prepare(
        `UPDATE bulk_job_sagas SET result = ?, code = ?, message = ?, at = ?
         WHERE job_id = ? AND position = ? AND result = 'pending'`,
      ),
      // The states as a JSON array, so that one statement serves every transition.
      setState: db.prepare(
        `UPDATE bulk_jobs SET state = @to, updated_at = @now,
           finished_at = CASE WHEN @to IN ('done', 'cancelled') THEN @now ELSE finished_at END
         WHERE id = @id AND state IN (SELECT value FROM json_each(@from))`,
      ),
      claim: db.prepare<[string, number, number, string], JobRow>(
        `UPDATE bulk_jobs SET lease_owner = ?, lease_expires_at = ?
         WHERE state = 'running' AND (lease_expires_at <= ? OR lease_owner = ?) RETURNING *`,
      ),
      renew: db.prepare(`UPDATE bulk_jobs SET lease_expires_at = ? WHERE id = ? AND lease_owner = ?`),
      release: db.prepare(
        `UPDATE bulk_jobs SET lease_owner = NULL, lease_expires_at = 0 WHERE id = ? AND lease_owner = ?`,
      ),
    };
  }

  private job(r: JobRow): BulkJob {
    const filter = JSON.parse(r.filter) as BulkFilter;
    return toJob(r, filter, this.stmt.counts.all(r.id), this.stmt.lastAt.get(r.id)?.at);
  }

  async create(job: NewBulkJob, sagaIds: readonly string[]): Promise<BulkJob> {
    const at = this.now();
    this.db
      .transaction(() => {
        this.stmt.insertJob.run(
          job.id,
          job.action,
          job.note,
          JSON.stringify(job.filter),
          job.rate,
          job.cap,
          job.actor,
          sagaIds.length,
          at,
          at,
        );
        sagaIds.forEach((sagaId, i) => this.stmt.insertItem.run(job.id, i, sagaId));
      })
      .immediate();
    return this.job(this.stmt.get.get(job.id) as JobRow);
  }

  async get(id: string): Promise<BulkJob | undefined> {
    const r = this.stmt.get.get(id);
    return r ? this.job(r) : undefined;
  }

  async list(limit: number, before?: string): Promise<BulkJob[]> {
    // Every id sorts below U+10FFFF: no `before` lists from the newest.
    return this.stmt.list.all(before ?? '\u{10FFFF}', limit).map((r) => this.job(r));
  }

  async items(id: string, afterPosition: number, limit: number): Promise<BulkItem[]> {
    return this.stmt.items.all(id, afterPosition, limit).map(toItem);
  }

  async pending(id: string, limit: number): Promise<BulkItem[]> {
    return this.stmt.pending.all(id, limit).map(toItem);
  }

  async record(
    id: string,
    position: number,
    outcome: BulkOutcome,
    code: string | null,
    message: string | null,
  ): Promise<boolean> {
    return this.stmt.record.run(outcome, code, message, this.now(), id, position).changes === 1;
  }

  async setState(id: string, from: readonly BulkJobState[], to: BulkJobState): Promise<BulkJob | undefined> {
    const changed = this.stmt.setState.run({ id, to, now: this.now(), from: JSON.stringify(from) }).changes === 1;
    return changed ? this.get(id) : undefined;
  }

  async claim(owner: string, leaseMs: number): Promise<BulkJob[]> {
    const now = this.now();
    return this.stmt.claim.all(owner, now + leaseMs, now, owner).map((r) => this.job(r));
  }

  async renew(id: string, owner: string, leaseMs: number): Promise<boolean> {
    return this.stmt.renew.run(this.now() + leaseMs, id, owner).changes === 1;
  }

  async release(id: string, owner: string): Promise<void> {
    this.stmt.release.run(id, owner);
  }
}
