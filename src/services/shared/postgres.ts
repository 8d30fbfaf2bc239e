/**
 * What the participants' PostgreSQL stores share: opening one (pool, schema migrated under the
 * service's advisory lock), the tables every participant has (tombstones, inbox, identity), the
 * per-order lock every write takes first, and the SQL of a page of the books.
 */
import { PgDatabase, run, type PgClient, type Sql } from '../../platform/storage/pg.js';
import { migratePostgres, type PgSchema } from '../../platform/storage/pg-migrations.js';
import { isConnectionError, reason } from '../../platform/storage/pg-errors.js';
import { StoreOpenError, StoreUnavailableError } from '../../platform/storage/store-errors.js';
import type { Logger } from '../../platform/telemetry/logger.js';
import type { ParticipantName } from './config.js';

export { PG_INBOX_TABLE } from '../../platform/storage/pg-inbox.js';

/** Order ids compare byte by byte (COLLATE "C"), as SQLite's do: a page of the books ends at the same id on either store. */
export const PG_TOMBSTONES_TABLE = `
CREATE TABLE tombstones (
  order_id   text COLLATE "C" PRIMARY KEY,
  reason     text NOT NULL,
  created_at bigint NOT NULL
);
`;

export const PG_IDENTITY_TABLE = `
CREATE TABLE db_identity (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  id        uuid NOT NULL DEFAULT gen_random_uuid()
);
INSERT INTO db_identity DEFAULT VALUES;
`;

/**
 * Each participant's migrations table and advisory lock key, in one place so that they collide
 * neither with each other nor with the saga log's (4_711_560_339_201). The lock key is also the
 * class of the per-order locks (lockOrder).
 */
const SCHEMAS: Record<ParticipantName, { table: string; lockKey: bigint; orderLockClass: number }> = {
  order: { table: 'order_schema_migrations', lockKey: 4_711_560_339_301n, orderLockClass: 4_711_301 },
  payment: { table: 'payment_schema_migrations', lockKey: 4_711_560_339_302n, orderLockClass: 4_711_302 },
  inventory: { table: 'inventory_schema_migrations', lockKey: 4_711_560_339_303n, orderLockClass: 4_711_303 },
};

export function participantSchema(service: ParticipantName, migrations: readonly string[]): PgSchema {
  const others = Object.fromEntries(
    Object.entries(SCHEMAS)
      .filter(([name]) => name !== service)
      .map(([name, s]) => [name, s.table]),
  );
  return { service, table: SCHEMAS[service].table, lockKey: SCHEMAS[service].lockKey, migrations, others };
}

export interface PostgresStoreOptions {
  url: string;
  poolSize: number;
  logger?: Logger;
  now?: () => number;
}

/**
 * Connects and brings the schema up to date (replicas starting together take turns). An
 * unreachable server is StoreUnavailableError; anything else (a refused password, a missing
 * database, another service's tables) is the deployment's to fix; both name the URL without its
 * password.
 */
export async function openParticipantDatabase(
  service: ParticipantName,
  migrations: readonly string[],
  opts: PostgresStoreOptions,
): Promise<PgDatabase> {
  const db = new PgDatabase({
    url: opts.url,
    poolSize: opts.poolSize,
    applicationName: `ecommerce-sagas-${service}`,
    logger: opts.logger,
  });
  try {
    await migratePostgres(db, participantSchema(service, migrations), opts.logger);
  } catch (err) {
    await db.close().catch(() => undefined);
    if (err instanceof StoreOpenError) throw err;
    const cause = err instanceof Error && err.cause !== undefined ? err.cause : err;
    const message = `cannot open the ${service} database at ${db.where}: ${reason(err)}`;
    throw isConnectionError(cause) || err instanceof StoreUnavailableError
      ? new StoreUnavailableError(message, { cause: err })
      : new StoreOpenError(message, { cause: err });
  }
  return db;
}

/**
 * Runs `fn` on a connection holding the service's advisory lock (the migrations' own) for its
 * transaction: start-up work that replicas starting together must do one at a time (seeding).
 */
export async function underStartLock<T>(
  db: PgDatabase,
  service: ParticipantName,
  fn: (c: PgClient) => Promise<T>,
): Promise<T> {
  return db.transaction(async (c) => {
    await run(c, 'SELECT pg_advisory_xact_lock($1)', [SCHEMAS[service].lockKey.toString()]);
    return fn(c);
  });
}

/**
 * Every write of an order takes this lock first, for the rest of its transaction: two writes of
 * one order (a charge and its refund, on two replicas) then run one after the other, each reading
 * what the other committed — as they do on SQLite, whose writes are serial. A lock, not a row
 * lock, because the row may not exist yet; an id hashes to 32 bits, so two ids may share a lock,
 * which costs only a wait.
 */
export function orderLock(service: ParticipantName): Sql {
  return {
    name: 'lock_order',
    text: `SELECT pg_advisory_xact_lock(${SCHEMAS[service].orderLockClass}, hashtext($1))`,
  };
}

export async function lockOrder(c: PgClient, lock: Sql, orderId: string): Promise<void> {
  await run(c, lock, [orderId]);
}

/** The database's identity (PG_IDENTITY_TABLE). */
export async function pgDatabaseId(db: PgDatabase): Promise<string> {
  const [row] = await db.query<{ id: string }>('SELECT id::text AS id FROM db_identity');
  if (!row) throw new Error(`the database at ${db.where} has no identity row`);
  return row.id;
}

/**
 * The SQL of one page of order ids over a records table and the tombstones table (see
 * paging.ts's pageIdsSql, its SQLite twin). Parameters: $1 after, $2 limit (size + 1).
 */
export function pgPageIdsSql(table: string, idColumn: string): string {
  return `
    SELECT order_id FROM (
      (SELECT ${idColumn} AS order_id FROM ${table} WHERE ${idColumn} > $1 ORDER BY ${idColumn} LIMIT $2)
      UNION
      (SELECT order_id FROM tombstones WHERE order_id > $1 ORDER BY order_id LIMIT $2)
    ) ids ORDER BY order_id LIMIT $2`;
}
