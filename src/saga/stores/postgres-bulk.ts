/**
 * Bulk jobs (../bulk.ts) in the PostgreSQL saga log's database, as in the SQLite log: the job's
 * row and its frozen selection. Every call is one statement on the log's pool; leases and `at`
 * are stamped by the database's clock, so the gateways sharing the log agree on who paces a job.
 */
import {
  type BulkFilter,
  type BulkItem,
  type BulkJob,
  type BulkJobState,
  type BulkJobStore,
  type BulkOutcome,
  type NewBulkJob,
} from '../bulk.js';
import { NOW_MS, type Query } from './postgres-sql.js';
import { toItem, toJob, type BulkJobRow } from './sqlite-bulk.js';

/** The job's row, with its counts per result and its latest `at` (JOB below). */
type JobRow = BulkJobRow<string, BulkFilter> & { counts: Record<string, number> | null; last_at: string | null };

/** A job's row with its counts per result and its latest `at`, read in the same statement. */
const JOB = `j.*,
  (SELECT json_object_agg(result, n) FROM (SELECT result, count(*) AS n FROM bulk_job_sagas WHERE job_id = j.id GROUP BY result) c) AS counts,
  (SELECT max(at) FROM bulk_job_sagas WHERE job_id = j.id) AS last_at`;

function job(r: JobRow): BulkJob {
  const counts = Object.entries(r.counts ?? {}).map(([result, n]) => ({ result, n }));
  return toJob(r, r.filter, counts, r.last_at);
}

export class PostgresBulkJobs implements BulkJobStore {
  constructor(private readonly query: Query) {}

  async create(j: NewBulkJob, sagaIds: readonly string[]): Promise<BulkJob> {
    // One statement: the job and its selection commit together or not at all.
    await this.query(
      'bulk_create',
      `WITH job AS (
         INSERT INTO bulk_jobs (id, action, note, filter, rate, cap, actor, state, total, created_at, updated_at, lease_expires_at)
         VALUES ($1, $2, $3, $4::json, $5, $6, $7, 'running', cardinality($8::text[]), ${NOW_MS}, ${NOW_MS}, 0)
       )
       INSERT INTO bulk_job_sagas (job_id, position, saga_id)
       SELECT $1, (t.ord - 1)::integer, t.id FROM unnest($8::text[]) WITH ORDINALITY AS t(id, ord)`,
      [j.id, j.action, j.note, JSON.stringify(j.filter), j.rate, j.cap, j.actor, [...sagaIds]],
    );
    const created = await this.get(j.id);
    if (!created) throw new Error(`bulk job ${j.id} vanished after its creation`);
    return created;
  }

  async get(id: string): Promise<BulkJob | undefined> {
    const rows = await this.query<JobRow>('bulk_get', `SELECT ${JOB} FROM bulk_jobs j WHERE j.id = $1`, [id]);
    return rows[0] ? job(rows[0]) : undefined;
  }

  async list(limit: number, before?: string): Promise<BulkJob[]> {
    // Ids are bulk_<UUIDv7>: in binary order, newest last.
    const rows = await this.query<JobRow>(
      'bulk_list',
      `SELECT ${JOB} FROM bulk_jobs j WHERE ($1::text IS NULL OR j.id COLLATE "C" < $1) ORDER BY j.id COLLATE "C" DESC LIMIT $2`,
      [before ?? null, limit],
    );
    return rows.map(job);
  }

  async items(id: string, afterPosition: number, limit: number): Promise<BulkItem[]> {
    const rows = await this.query<Parameters<typeof toItem>[0]>(
      'bulk_items',
      'SELECT * FROM bulk_job_sagas WHERE job_id = $1 AND position > $2 ORDER BY position LIMIT $3',
      [id, afterPosition, limit],
    );
    return rows.map(toItem);
  }

  async pending(id: string, limit: number): Promise<BulkItem[]> {
    const rows = await this.query<Parameters<typeof toItem>[0]>(
      'bulk_pending',
      `SELECT * FROM bulk_job_sagas WHERE job_id = $1 AND result = 'pending' ORDER BY position LIMIT $2`,
      [id, limit],
    );
    return rows.map(toItem);
  }

  async record(
    id: string,
    position: number,
    outcome: BulkOutcome,
    code: string | null,
    message: string | null,
  ): Promise<boolean> {
    const rows = await this.query<{ position: number }>(
      'bulk_record',
      `UPDATE bulk_job_sagas SET result = $3, code = $4, message = $5, at = ${NOW_MS}
       WHERE job_id = $1 AND position = $2 AND result = 'pending' RETURNING position`,
      [id, position, outcome, code, message],
    );
    return rows.length === 1;
  }

  async setState(id: string, from: readonly BulkJobState[], to: BulkJobState): Promise<BulkJob | undefined> {
    const rows = await this.query<{ id: string }>(
      'bulk_set_state',
      `UPDATE bulk_jobs SET state = $2, updated_at = ${NOW_MS},
         finished_at = CASE WHEN $2 IN ('done', 'cancelled') THEN ${NOW_MS} ELSE finished_at END
       WHERE id = $1 AND state = ANY($3::text[]) RETURNING id`,
      [id, to, [...from]],
    );
    return rows.length === 1 ? this.get(id) : undefined;
  }

  async claim(owner: string, leaseMs: number): Promise<BulkJob[]> {
    // SKIP LOCKED: a job another gateway is claiming at this instant is left to it.
    const rows = await this.query<{ id: string }>(
      'bulk_claim',
      `UPDATE bulk_jobs SET lease_owner = $1, lease_expires_at = ${NOW_MS} + $2::bigint
       WHERE id IN (
         SELECT id FROM bulk_jobs WHERE state = 'running' AND (lease_expires_at <= ${NOW_MS} OR lease_owner = $1)
         FOR UPDATE SKIP LOCKED
       ) RETURNING id`,
      [owner, leaseMs],
    );
    const jobs = await Promise.all(rows.map((r) => this.get(r.id)));
    return jobs.filter((j): j is BulkJob => j !== undefined);
  }

  async renew(id: string, owner: string, leaseMs: number): Promise<boolean> {
    const rows = await this.query<{ id: string }>(
      'bulk_renew',
      `UPDATE bulk_jobs SET lease_expires_at = ${NOW_MS} + $3::bigint WHERE id = $1 AND lease_owner = $2 RETURNING id`,
      [id, owner, leaseMs],
    );
    return rows.length === 1;
  }

  async release(id: string, owner: string): Promise<void> {
    await this.query(
      'bulk_release',
      'UPDATE bulk_jobs SET lease_owner = NULL, lease_expires_at = 0 WHERE id = $1 AND lease_owner = $2',
      [id, owner],
    );
  }
}
