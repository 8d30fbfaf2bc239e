/**
 * Retention on the PostgreSQL saga log: finished sagas pruned in bounded batches, one statement
 * (so one short transaction) per batch.
 *
 * Batched deletes rather than partitions: a saga's row is updated in place from its start to its
 * end, and its age counts from its end, so no partition key would let a whole partition go at
 * once without moving rows between partitions at every saga's end. The deleted rows are marked
 * dead and autovacuum makes their space reusable; the table stops growing at the policy's
 * window rather than shrinking (VACUUM FULL would, under an exclusive lock: not on a live log).
 */
import type { PruneResult } from '../model.js';
import { PRUNABLE_STATUSES, type RetentionAges } from '../retention.js';
import type { Query } from './postgres-sql.js';

/**
 * The database's clock at the statement's start (now(), stable within it): unlike
 * clock_timestamp() (NOW_MS, volatile), it can bound an index scan.
 */
const STATEMENT_NOW_MS = `(extract(epoch from now()) * 1000)::bigint`;

/**
 * A finished saga of `status` older than its age `$param` (ms; NULL: kept for ever), by the
 * database's clock. settled_at is a finished saga's updated_at (migration 9: the column an index
 * may hold without costing the appends their HOT update).
 */
const aged = (status: string, param: string) =>
  `(status = '${status}' AND settled_at <= ${STATEMENT_NOW_MS} - ${param}::bigint)`;

/**
 * One outcome's oldest ends through the partial index sagas_ended, locked as they are read, FOR
 * UPDATE SKIP LOCKED: a row another pruner (or a writer) holds is passed over, never waited for,
 * so writers are not blocked, and two pruners share the work instead of deleting a saga twice.
 * `room` is how many the batch still takes once the outcomes before it took theirs.
 */
const oldest = (status: string, param: string, room: string) =>
  `SELECT seq, id FROM sagas WHERE ${aged(status, param)} ORDER BY settled_at, seq LIMIT ${room} FOR UPDATE SKIP LOCKED`;

/**
 * A batch of at most `$4` sagas, COMPLETED first, then COMPENSATED, then RESOLVED (each outcome
 * oldest end first), and their events, in one statement. Each deleted row fires the status-delta
 * trigger, so countByStatus stays right.
 */
export const PRUNE_SQL = `
WITH completed AS (${oldest('COMPLETED', '$1', '$4')}),
compensated AS (${oldest('COMPENSATED', '$2', '$4 - (SELECT count(*) FROM completed)')}),
resolved AS (${oldest('RESOLVED', '$3', '$4 - (SELECT count(*) FROM completed) - (SELECT count(*) FROM compensated)')}),
doomed AS (SELECT seq, id FROM completed UNION ALL SELECT seq, id FROM compensated UNION ALL SELECT seq, id FROM resolved),
events AS (DELETE FROM saga_events e USING doomed d WHERE e.saga_id = d.id RETURNING 1),
gone AS (DELETE FROM sagas s USING doomed d WHERE s.seq = d.seq RETURNING 1)
SELECT (SELECT count(*) FROM gone)::integer AS sagas, (SELECT count(*) FROM events)::integer AS events`;

export class PostgresRetention {
  constructor(private readonly query: Query) {}

  async prune(ages: RetentionAges, limit: number): Promise<PruneResult> {
    if (limit <= 0 || !PRUNABLE_STATUSES.some((s) => ages[s] !== undefined)) return { sagas: 0, events: 0 };
    const [r] = await this.query<{ sagas: number; events: number }>('prune', PRUNE_SQL, [
      ages.COMPLETED ?? null,
      ages.COMPENSATED ?? null,
      ages.RESOLVED ?? null,
      limit,
    ]);
    return { sagas: r?.sagas ?? 0, events: r?.events ?? 0 };
  }
}
