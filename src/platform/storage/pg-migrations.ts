/**
 * A participant's PostgreSQL schema history, applied at start: versioned steps in a migrations
 * table of the service's own, all in one transaction under an advisory lock, so that replicas
 * starting together migrate one at a time and the later ones find the work done.
 */
import type { Logger } from '../telemetry/logger.js';
import { run, type PgDatabase } from './pg.js';

export interface PgSchema {
  /** The service, for messages and logs: `order`. */
  service: string;
  /** Its migrations table (version, applied_at): `order_schema_migrations`. */
  table: string;
  /** The pg_advisory_xact_lock key held while migrating; one per service. */
  lockKey: bigint;
  /** Ordered schema steps; step i is version i + 1. */
  migrations: readonly string[];
  /**
   * Migrations tables of the other services: found in this database, they say that two services
   * were given one database (their tables would collide), which is refused with a clear message.
   */
  others: Readonly<Record<string, string>>;
}

/** The database holds another service's tables: each needs its own database (or schema). */
export class SharedDatabaseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SharedDatabaseError';
  }
}

/** Brings the schema up to date; returns the version it is at. */
export async function migratePostgres(db: PgDatabase, schema: PgSchema, logger?: Logger): Promise<number> {
  return db.transaction(async (c) => {
    await run(c, 'SELECT pg_advisory_xact_lock($1)', [schema.lockKey.toString()]);
    for (const [other, table] of Object.entries(schema.others)) {
      const [found] = await run<{ t: string | null }>(c, 'SELECT to_regclass($1)::text AS t', [table]);
      if (found?.t)
        throw new SharedDatabaseError(
          `it already holds the ${other} service's tables (${table}): each participant needs a database of its own (or a schema of its own: ?options=-c%20search_path%3D${schema.service})`,
        );
    }
    await run(
      c,
      `CREATE TABLE IF NOT EXISTS ${schema.table} (
         version    integer PRIMARY KEY,
         applied_at timestamptz NOT NULL DEFAULT now()
       )`,
    );
    const [row] = await run<{ v: number | null }>(c, `SELECT max(version) AS v FROM ${schema.table}`);
    const current = row?.v ?? 0;
    if (current > schema.migrations.length) {
      logger?.warn(
        { schema_version: current, known: schema.migrations.length },
        `${schema.service} database schema is newer than this build knows`,
      );
    }
    for (let v = current; v < schema.migrations.length; v++) {
      await run(c, schema.migrations[v] as string);
      await run(c, `INSERT INTO ${schema.table} (version) VALUES ($1)`, [v + 1]);
      logger?.info({ version: v + 1 }, `${schema.service} database schema migrated`);
    }
    return Math.max(current, schema.migrations.length);
  });
}
