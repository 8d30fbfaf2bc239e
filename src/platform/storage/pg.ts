/**
 * A participant's PostgreSQL database: its pool, a transaction on one connection (run again on a
 * deadlock or a serialization failure, when nothing of it was committed), a check for readiness,
 * and what a failure becomes (StoreUnavailableError of store-errors.ts when the server is out of
 * reach). Importing this file loads `pg`: the participants import it only when their *_DB_URL
 * says PostgreSQL.
 */
import pg from 'pg';
import { redactPassword } from '../config/config-schema.js';
import { AppError } from '../errors.js';
import type { Logger } from '../telemetry/logger.js';
import { isConnectionError, isRetryable, reason } from './pg-errors.js';
import { StoreUnavailableError } from './store-errors.js';

export interface PgDatabaseOptions {
  url: string;
  /** Connections in the pool: as many transactions run at once. */
  poolSize: number;
  /** What the connections are called in pg_stat_activity, e.g. `ecommerce-sagas-payment`. */
  applicationName: string;
  logger?: Logger;
}

/** A statement prepared once per connection under its name (the hot ones), or a plain one. */
export interface Sql {
  name?: string;
  text: string;
}

export type PgClient = pg.ClientBase;

/** One statement on a connection, its rows typed as the caller says. */
export async function run<R extends pg.QueryResultRow>(
  c: PgClient,
  sql: Sql | string,
  values: unknown[] = [],
): Promise<R[]> {
  const q = typeof sql === 'string' ? { text: sql, values } : { ...sql, values };
  return (await c.query<R>(q)).rows;
}

/** How many times a transaction that deadlocked (or failed to serialize) is run again before its error is the caller's. */
const RERUNS = 4;

// bigint columns (counts, cents, epoch ms) as numbers: every value this schema holds is a safe integer.
const INT8 = 20;
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary'): unknown =>
    oid === INT8
      ? (v: string) => Number(v)
      : (pg.types.getTypeParser(oid, format) as unknown)) as pg.CustomTypesConfig['getTypeParser'],
};

/**
 * How long a session may sit inside a transaction without a statement before PostgreSQL ends it
 * (`idle_in_transaction_session_timeout`). A process cut from its database mid-transaction never
 * ends it, and its row locks would stop every other replica (or gateway) that needs those rows for
 * as long as the cut lasts; with this, the server rolls it back after 5 s (nothing of it was
 * committed; its writer's retry under the same key finds the key free). Our transactions send their
 * statements back to back: none waits anywhere near this long between two.
 */
export const IDLE_IN_TRANSACTION_MS = 5_000;

/**
 * A statement without the connection's deadline (pg reads `query_timeout` per query too, and its
 * types do not declare it): a migration may rewrite a large table, or wait for another process's
 * migration to end.
 */
export function withoutDeadline(text: string, values: unknown[] = []): pg.QueryConfig {
  return { text, values, query_timeout: NO_DEADLINE_MS } as pg.QueryConfig;
}

/** pg treats 0 as "the connection's own", so "none" is a day. */
const NO_DEADLINE_MS = 86_400_000;

/**
 * A URL and session settings as pg's client config: the settings travel in the startup packet (no
 * round trip). pg lets a URL's own `options` override the config's, so the URL's are taken out and
 * put first, and ours after them win.
 */
export function withSessionSettings(
  url: string,
  settings: readonly string[],
): { connectionString: string; options: string } {
  const u = new URL(url);
  const options = [u.searchParams.get('options') ?? '', ...settings.map((s) => `-c ${s}`)];
  u.searchParams.delete('options');
  return { connectionString: u.toString(), options: options.filter((o) => o !== '').join(' ') };
}

export class PgDatabase {
  readonly pool: pg.Pool;
  /** The URL without its password, for messages and logs. */
  readonly where: string;
  private closed = false;

  constructor(opts: PgDatabaseOptions) {
    this.where = redactPassword(opts.url);
    this.pool = new pg.Pool({
      ...withSessionSettings(opts.url, [`idle_in_transaction_session_timeout=${IDLE_IN_TRANSACTION_MS}`]),
      max: Math.max(1, opts.poolSize),
      idleTimeoutMillis: 30_000,
      connectionTimeoutMillis: 10_000,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      application_name: opts.applicationName,
      types,
    });
    // An idle connection that breaks (server restarted) is dropped by the pool; without a
    // listener its error would crash the process.
    this.pool.on('error', (err) =>
      opts.logger?.warn({ err: reason(err), db: this.where }, 'an idle PostgreSQL connection broke'),
    );
    // A connection in use reports its breakage as an event too; its query fails with it, and that is what callers see.
    this.pool.on('connect', (client) => client.on('error', () => {}));
  }

  /** What a failure becomes for callers: unreachable is StoreUnavailableError, naming the URL without its password. */
  wrap(err: unknown): Error {
    if (err instanceof AppError) return err;
    if (isConnectionError(err))
      return new StoreUnavailableError(`database at ${this.where} unavailable: ${reason(err)}`, { cause: err });
    return err instanceof Error ? err : new Error(String(err));
  }

  private refuseIfClosed(): void {
    if (this.closed) throw new StoreUnavailableError(`database at ${this.where} is closed`);
  }

  /** One statement on any pooled connection. */
  async query<R extends pg.QueryResultRow>(sql: Sql | string, values: unknown[] = []): Promise<R[]> {
    this.refuseIfClosed();
    try {
      const q = typeof sql === 'string' ? { text: sql, values } : { ...sql, values };
      return (await this.pool.query<R>(q)).rows;
    } catch (err) {
      throw this.wrap(err);
    }
  }

  /**
   * `fn` between BEGIN and COMMIT (READ COMMITTED) on one connection; an exception rolls it back
   * and is rethrown. A deadlock or serialization failure reruns it whole: `fn` must be database
   * work on `c` only. A connection lost at COMMIT leaves the outcome unknown: StoreUnavailableError,
   * and a retry under the same idempotency key finds out.
   */
  async transaction<T>(fn: (c: PgClient) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      this.refuseIfClosed();
      let c: pg.PoolClient;
      try {
        c = await this.pool.connect();
      } catch (err) {
        throw this.wrap(err);
      }
      try {
        await c.query('BEGIN');
        const out = await fn(c);
        await c.query('COMMIT');
        c.release();
        return out;
      } catch (err) {
        const broken = isConnectionError(err);
        if (!broken) await c.query('ROLLBACK').catch(() => undefined);
        // A broken connection is thrown away, not given to the next caller.
        c.release(broken ? (err as Error) : undefined);
        if (isRetryable(err) && attempt <= RERUNS) continue;
        throw this.wrap(err);
      }
    }
  }

  /** Whether the server answers within `timeoutMs` (readiness). */
  async check(timeoutMs = 2_000): Promise<boolean> {
    if (this.closed) return false;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
      timer.unref();
    });
    const answer = this.pool.query('SELECT 1').then(
      () => true,
      () => false,
    );
    try {
      return await Promise.race([answer, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}
