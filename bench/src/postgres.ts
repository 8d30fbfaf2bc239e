/**
 * `npm run bench -- --saga-log postgres`: a fresh database for one run on the server of SAGA_LOG_URL
 * (else the local default), dropped after it, and the CPU of the server backends that serve it.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import pg from 'pg';
import { redactPassword } from '../../src/platform/config/config.js';

/** Where the bench creates its database when SAGA_LOG_URL is not set. */
export const DEFAULT_BENCH_SERVER_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

/** A database name: `sagas_bench_20261127_164830_3fa9` (UTC time of the run, and a random tail for runs side by side). */
export function benchDatabaseName(now: Date, tail = randomBytes(2).toString('hex')): string {
  const stamp = now
    .toISOString()
    .replace(/\.\d+Z$/, '')
    .replace(/[-:]/g, '')
    .replace('T', '_');
  return `sagas_bench_${stamp}_${tail}`.toLowerCase();
}

/** `url` pointing at `database` instead (user, password, host, port and parameters kept). */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

/** The server's processes are on this machine (their /proc entries are ours to read). */
function isLocalHost(url: string): boolean {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  return ['', '127.0.0.1', 'localhost', '::1'].includes(host) || host.startsWith('/');
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export interface BenchDatabase {
  readonly name: string;
  /** Its URL, for SAGA_LOG_URL. */
  readonly url: string;
  /** The server URL it was created from, without password. */
  readonly server: string;
  /**
   * pids of the server backends connected to this database now, or a reason they cannot be
   * measured (a remote server, /proc not showing them). Never rejects.
   */
  backends(): Promise<number[] | { notMeasured: string }>;
  /** Drops it (`WITH (FORCE)`: the gateways' connections go too) and closes the admin connection. Idempotent. */
  drop(): Promise<void>;
}

/**
 * Creates a fresh database on the server of `serverUrl` (connecting to that URL's own database
 * to do it), named by the time of the run and `suffix`. The admin connection stays open for
 * `backends()` until `drop()`.
 */
export async function createBenchDatabase(
  serverUrl: string,
  now = new Date(),
  suffix?: string,
): Promise<BenchDatabase> {
  // `_order`, `_payment`…: a participant's database of the same run.
  const name = suffix ? `${benchDatabaseName(now)}_${suffix}` : benchDatabaseName(now);
  const admin = new pg.Client({ connectionString: serverUrl, application_name: 'sagas-bench' });
  admin.on('error', () => {}); // a dropped admin connection shows in the next query
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${quoteIdent(name)}`);
  } catch (err) {
    await admin.end().catch(() => undefined);
    throw err;
  }
  const local = isLocalHost(serverUrl);
  let dropped: Promise<void> | undefined;
  return {
    name,
    url: withDatabase(serverUrl, name),
    server: redactPassword(serverUrl),
    async backends() {
      if (!local) return { notMeasured: 'the server is not on this machine' };
      let pids: number[];
      try {
        const r = await admin.query<{ pid: number }>(
          'SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
          [name],
        );
        pids = r.rows.map((row) => Number(row.pid));
      } catch (err) {
        return { notMeasured: `pg_stat_activity: ${err instanceof Error ? err.message : String(err)}` };
      }
      // In another pid namespace (a container) the numbers would name other processes here.
      const ours = pids.filter((pid) => {
        try {
          return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres';
        } catch {
          return false;
        }
      });
      if (pids.length > 0 && ours.length === 0) return { notMeasured: 'its backends are not visible in /proc here' };
      return ours;
    },
    drop() {
      dropped ??= (async () => {
        try {
          await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
        } finally {
          await admin.end().catch(() => undefined);
        }
      })();
      return dropped;
    },
  };
}
