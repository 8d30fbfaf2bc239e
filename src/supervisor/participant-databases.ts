/**
 * The participants' PostgreSQL databases for `sagas start --replicas N` (and `--participants-db`):
 * replicas of a participant share its database, so each participant needs one on a server they
 * all reach. A participant whose *_DB_URL is set keeps it; the others get `sagas_<name>` on the
 * server given (the machine's own by default), made on first use.
 */
import pg from 'pg';
import { isPostgresUrl, redactPassword } from '../platform/config/config.js';
import { AppError } from '../platform/errors.js';
import { DB_URL_VARS, PARTICIPANT_NAMES, type ParticipantServiceName } from './supervisor.js';

/** The server used when neither --participants-db nor the *_DB_URL variables say: the machine's own, as its `postgres` user. */
export const DEFAULT_PARTICIPANTS_SERVER = 'postgres://postgres@127.0.0.1:5432/postgres';

/** The database each participant gets on that server. */
export const PARTICIPANT_DATABASES: Readonly<Record<ParticipantServiceName, string>> = {
  order: 'sagas_order',
  inventory: 'sagas_inventory',
  payment: 'sagas_payment',
};

/** The server could not be reached, or would not make a database. */
export class ParticipantDatabaseError extends AppError {
  constructor(
    code: 'participants_db_unreachable' | 'participants_db_refused',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message);
    if (options?.cause !== undefined) Object.defineProperty(this, 'cause', { value: options.cause });
    this.name = 'ParticipantDatabaseError';
  }
}

/** `url` pointing at `database` instead (user, password, host, port and parameters kept). */
function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

/** A server URL as typed (`postgres://user@host:5432`, with or without a database): the one to connect to for CREATE DATABASE. */
function adminUrl(server: string): string {
  const u = new URL(server);
  if (u.pathname === '' || u.pathname === '/') u.pathname = '/postgres';
  return u.toString();
}

export interface ParticipantDatabases {
  /** ORDER_DB_URL, INVENTORY_DB_URL, PAYMENT_DB_URL: each participant's database. */
  env: Record<string, string>;
  /** The databases made now (already there: not listed). */
  created: string[];
  /** The participants whose database came from the environment, not the server. */
  fromEnv: ParticipantServiceName[];
}

/**
 * Each participant's database URL: its *_DB_URL when `env` sets one (a postgres:// URL, else a
 * ParticipantDatabaseError naming it), else `sagas_<name>` on `server`, created if missing.
 * `server` is contacted only when some participant needs it. Throws ParticipantDatabaseError
 * (code participants_db_unreachable, participants_db_refused) with a message that says what to do.
 */
export async function prepareParticipantDatabases(
  server: string,
  env: NodeJS.ProcessEnv,
  opts: { connectTimeoutMs?: number } = {},
): Promise<ParticipantDatabases> {
  const out: ParticipantDatabases = { env: {}, created: [], fromEnv: [] };
  const needed: ParticipantServiceName[] = [];
  for (const name of PARTICIPANT_NAMES) {
    const set = env[DB_URL_VARS[name]]?.trim();
    if (!set) {
      needed.push(name);
      continue;
    }
    if (!isPostgresUrl(set))
      throw new ParticipantDatabaseError(
        'participants_db_refused',
        `${DB_URL_VARS[name]} must be a postgres:// URL for replicas to share (got "${redactPassword(set)}")`,
      );
    out.env[DB_URL_VARS[name]] = set;
    out.fromEnv.push(name);
  }
  if (needed.length === 0) return out;
  if (!isPostgresUrl(server))
    throw new ParticipantDatabaseError(
      'participants_db_refused',
      `--participants-db must be a postgres://user[:password]@host[:port][/database] URL, got "${redactPassword(server)}"`,
    );
  const shown = redactPassword(server);
  const client = new pg.Client({
    connectionString: adminUrl(server),
    application_name: 'sagas-start',
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 5_000,
  });
  client.on('error', () => undefined); // a connection lost later shows in the next query
  try {
    await client.connect();
  } catch (err) {
    throw new ParticipantDatabaseError(
      'participants_db_unreachable',
      `the participants' replicas share one PostgreSQL database each, and the server at ${shown} cannot be reached ` +
        `(${(err as Error).message}). Start PostgreSQL there, give another server with --participants-db ` +
        'postgres://user:password@host:5432, or set ORDER_DB_URL, INVENTORY_DB_URL and PAYMENT_DB_URL',
      { cause: err },
    );
  }
  try {
    for (const name of needed) {
      const database = PARTICIPANT_DATABASES[name];
      const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
      if (exists.rowCount === 0) {
        try {
          await client.query(`CREATE DATABASE "${database}"`);
          out.created.push(database);
        } catch (err) {
          // Made meanwhile by another start: as good as made here.
          if ((err as { code?: string }).code !== '42P04') throw err;
        }
      }
      out.env[DB_URL_VARS[name]] = withDatabase(adminUrl(server), database);
    }
  } catch (err) {
    if (err instanceof ParticipantDatabaseError) throw err;
    throw new ParticipantDatabaseError(
      'participants_db_refused',
      `cannot make the participants' databases (${needed.map((n) => PARTICIPANT_DATABASES[n]).join(', ')}) on ${shown}: ` +
        `${(err as Error).message} (the user needs CREATEDB, or make them first and set ORDER_DB_URL, INVENTORY_DB_URL, PAYMENT_DB_URL)`,
      { cause: err },
    );
  } finally {
    await client.end().catch(() => undefined);
  }
  return out;
}
