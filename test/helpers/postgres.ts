import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './system.js';
import { pgAdmin } from '../../src/chaos/nemesis-system.js';

const run = promisify(execFile);

/** The machine's PostgreSQL, where tests create (and drop) their own databases. */
export const MACHINE_POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** The server binaries: PG_BIN, else the newest Debian install under /usr/lib/postgresql. */
function binDir(): string {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root)
    ? fs
        .readdirSync(root)
        .filter((v) => /^\d+$/.test(v))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  for (const v of versions) if (fs.existsSync(path.join(root, v, 'bin', 'initdb'))) return path.join(root, v, 'bin');
  throw new Error('PostgreSQL server binaries not found (install the Debian postgresql package, or set PG_BIN)');
}

/** PostgreSQL refuses to run as root: as root, its tools run as the `postgres` user. */
const asRoot = process.getuid?.() === 0;

async function pgTool(tool: string, args: string[]): Promise<string> {
  const bin = path.join(binDir(), tool);
  const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
  try {
    const { stdout } = await run(cmd, argv, { timeout: 60_000 });
    return stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string; stdout?: string };
    throw new Error(`${tool} ${args.join(' ')} failed: ${e.stderr || e.stdout || e.message}`, { cause: err });
  }
}

/**
 * A private PostgreSQL cluster in a temporary folder on a free port, stoppable, killable and
 * restartable on the same port and data; `destroy()` removes it all. Unix sockets are off: it
 * listens on 127.0.0.1 only. fsync is off (tests survive process crashes, not power cuts).
 */
export class TestPostgres {
  private constructor(
    readonly port: number,
    private readonly dir: string,
  ) {}

  static async start(): Promise<TestPostgres> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sagas-pg-'));
    try {
      if (asRoot) {
        const { stdout } = await run('id', ['-u', 'postgres']);
        const { stdout: gid } = await run('id', ['-g', 'postgres']);
        fs.chownSync(dir, Number(stdout.trim()), Number(gid.trim()));
      }
      await pgTool('initdb', [
        '-D',
        path.join(dir, 'data'),
        '-U',
        'postgres',
        '-A',
        'trust',
        '-E',
        'UTF8',
        '--locale=C',
        '--no-sync',
        '--no-instructions',
      ]);
      const p = new TestPostgres(await freePort(), dir);
      await p.restart();
      return p;
    } catch (err) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** The `postgres` database of this cluster. */
  get url(): string {
    return this.urlOf('postgres');
  }

  urlOf(database: string): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  /** Starts the server (again) on the same port and data; resolves once it accepts connections. */
  async restart(): Promise<void> {
    const opts = `-p ${this.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off -c max_connections=50`;
    try {
      await pgTool('pg_ctl', [
        '-D',
        path.join(this.dir, 'data'),
        '-l',
        path.join(this.dir, 'server.log'),
        '-o',
        opts,
        '-w',
        '-t',
        '30',
        'start',
      ]);
    } catch (err) {
      const log = fs.existsSync(path.join(this.dir, 'server.log'))
        ? fs.readFileSync(path.join(this.dir, 'server.log'), 'utf8').slice(-2000)
        : '';
      throw new Error(`${(err as Error).message}\n${log}`, { cause: err });
    }
  }

  /** A fast shutdown: sessions are terminated (57P01), then the server stops cleanly. */
  async stop(): Promise<void> {
    await this.ctlStop('fast');
  }

  /** As a crash would: every server process quits at once, no checkpoint; the restart replays the WAL. */
  async kill(): Promise<void> {
    await this.ctlStop('immediate');
  }

  private async ctlStop(mode: 'fast' | 'immediate'): Promise<void> {
    if (!fs.existsSync(path.join(this.dir, 'data', 'postmaster.pid'))) return;
    await pgTool('pg_ctl', ['-D', path.join(this.dir, 'data'), '-m', mode, '-w', '-t', '30', 'stop']);
  }

  /** Stops the server (if running) and removes its folder. */
  async destroy(): Promise<void> {
    await this.kill().catch(() => undefined);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface TempDatabase {
  name: string;
  url: string;
  /** Drops it, disconnecting whoever is still connected. */
  drop(): Promise<void>;
}

/**
 * Creates a database with a random name on a server (the machine's by default) for one test:
 * `const db = await createTempDatabase(); … await db.drop()`.
 */
export async function createTempDatabase(
  prefix = 'saga_log_test',
  serverUrl = MACHINE_POSTGRES_URL,
): Promise<TempDatabase> {
  if (!/^[a-z_][a-z0-9_]{0,40}$/.test(prefix)) throw new Error(`bad database name prefix ${prefix}`);
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  await pgAdmin(serverUrl, `CREATE DATABASE ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return { name, url: url.toString(), drop: () => pgAdmin(serverUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

/** Runs `fn` with the URL of a fresh database, dropped afterwards whatever happens. */
export async function withTempDatabase<T>(
  fn: (url: string) => Promise<T>,
  prefix?: string,
  serverUrl?: string,
): Promise<T> {
  const db = await createTempDatabase(prefix, serverUrl);
  try {
    return await fn(db.url);
  } finally {
    await db.drop();
  }
}
