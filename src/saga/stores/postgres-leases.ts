/**
 * The PostgreSQL saga log's leases: claiming the unfinished sagas whose lease expired, renewing
 * the leases a process holds, giving them back. Stamped by the database's clock
 * (clock_timestamp()), never by this process's; a take-over, which moves a lease with a write, is
 * in postgres-writes.ts.
 */
import type { SagaRecord } from '../model.js';
import { refName, type DefinitionRef } from '../versions.js';
import { UNFINISHED } from './postgres-migrations.js';
import { NOW_MS, SAGA_COLUMNS, record, type Query, type Row } from './postgres-sql.js';

export class PostgresLeases {
  constructor(private readonly query: Query) {}

  async claimExpired(
    owner: string,
    leaseMs: number,
    limit: number,
    definitions?: readonly DefinitionRef[],
  ): Promise<SagaRecord[]> {
    if (limit <= 0) return [];
    // SKIP LOCKED: a saga another claimer (or a write in flight) holds is left to it, never given twice.
    const rows = await this.query<Row>(
      'claim_expired',
      `UPDATE sagas SET lease_owner = $1, lease_expires_at = ${NOW_MS} + $2::bigint
       WHERE id IN (
         SELECT id FROM sagas WHERE status IN ${UNFINISHED} AND lease_expires_at <= ${NOW_MS}
         AND ($4::text[] IS NULL OR definition || '@' || version = ANY($4::text[]))
         ORDER BY seq LIMIT $3 FOR UPDATE SKIP LOCKED
       )
       RETURNING ${SAGA_COLUMNS}`,
      [owner, leaseMs, limit, definitions ? definitions.map(refName) : null],
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
}
