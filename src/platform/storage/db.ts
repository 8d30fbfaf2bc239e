import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { SyncLevel } from '../config/config.js';

/** What a prepared statement's run() reports. */
export interface RunResult {
  changes: number; // never a bigint: readBigInts stays off
  lastInsertRowid: number | bigint;
}

/** Positional parameters as a tuple, or one object of named ones (`@name`). */
type Bind<P> = P extends unknown[] ? P : [P];

export interface Statement<P extends unknown[] | object = unknown[], R = unknown> {
  run(...params: Bind<P>): RunResult;
  get(...params: Bind<P>): R | undefined;
  all(...params: Bind<P>): R[];
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a transaction wraps functions of any signature (`unknown[]` parameters would refuse them).
type AnyFn = (...args: any[]) => unknown;

/** A function run in a transaction: BEGIN (DEFERRED) by default, or BEGIN IMMEDIATE; nested, a savepoint. */
export interface Transaction<F extends AnyFn> {
  (...args: Parameters<F>): ReturnType<F>;
  immediate(...args: Parameters<F>): ReturnType<F>;
}

/**
 * The SQLite connection every store uses: the few calls they make, on Node's own SQLite
 * (node:sqlite: no native addon to install; bench/README.md has it measured against better-sqlite3).
 */
export interface Db {
  prepare<P extends unknown[] | object = unknown[], R = unknown>(sql: string): Statement<P, R>;
  exec(sql: string): void;
  transaction<F extends AnyFn>(fn: F): Transaction<F>;
  readonly open: boolean;
  close(): void;
}

export interface OpenOptions {
  synchronous?: SyncLevel;
  /** Ordered schema steps; step i runs once, when PRAGMA user_version is i. */
  migrations: readonly string[];
  /** Open an existing database for reading only (no migrations, no writes). */
  readonly?: boolean;
}

type NodeSqlite = typeof import('node:sqlite');
let nodeSqlite: NodeSqlite | undefined;

/**
 * node:sqlite, loaded once. Node 22 still calls it experimental and prints an ExperimentalWarning
 * the first time a process loads it, a line in every service's output at every start; that one
 * warning is dropped here (Node 24 prints none), every other passes through.
 */
function loadNodeSqlite(): NodeSqlite {
  if (nodeSqlite) return nodeSqlite;
  // eslint-disable-next-line @typescript-eslint/unbound-method -- kept to be put back as it was
  const emit = process.emitWarning;
  const passOn = emit.bind(process) as (warning: string | Error, ...rest: unknown[]) => void;
  process.emitWarning = function (warning: string | Error, ...rest: unknown[]) {
    const type = typeof rest[0] === 'string' ? rest[0] : (rest[0] as { type?: unknown } | undefined)?.type;
    const text = typeof warning === 'string' ? warning : warning.message;
    if (type === 'ExperimentalWarning' && text.startsWith('SQLite is an experimental feature')) return;
    passOn(warning, ...rest);
  };
  try {
    nodeSqlite = process.getBuiltinModule('node:sqlite');
  } finally {
    process.emitWarning = emit;
  }
  return nodeSqlite;
}

/** Opens (creating the folder) a SQLite database in WAL mode and brings its schema up to date. */
export function openDatabase(file: string, opts: OpenOptions): Db {
  if (opts.readonly) {
    const ro = connect(file, true);
    ro.exec('PRAGMA busy_timeout = 5000');
    return ro;
  }
  if (file !== ':memory:') makePrivate(file);
  const db = connect(file, false);
  db.exec('PRAGMA journal_mode = WAL');
  db.exec(`PRAGMA synchronous = ${opts.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
  db.exec('PRAGMA busy_timeout = 5000');
  db.exec('PRAGMA foreign_keys = ON');
  // 8 MiB of page cache (2 MiB by default). With time-ordered keys a commit touches the right
  // edges of its B-trees, which 8 MiB holds: over 30,000 sagas the gateway read 4.66 KiB per
  // saga from the OS (sockets included) against 4.53 with 64 MiB, which kept 43-71 MiB more
  // resident in each process; the console's reads at 100,000 sagas kept their times
  // (bench/README.md, "Memory").
  db.exec('PRAGMA cache_size = -8192');
  // A checkpoint every 10,000 WAL pages (40 MiB) instead of 1,000: it runs inside a commit, on
  // the event loop, and copies each page once however often the WAL holds it.
  db.exec('PRAGMA wal_autocheckpoint = 10000');
  migrate(db, opts.migrations);
  return db;
}

/**
 * The database's folder 0700 when made here, and the file 0600 — also one made before under a
 * looser umask. SQLite creates a new file 0644 less the umask, and gives its -wal and -shm files
 * the database file's own permissions, so making the file first, 0600, covers all three.
 */
function makePrivate(file: string): void {
  const dir = path.dirname(file);
  if (!fs.existsSync(dir)) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.chmodSync(dir, 0o700);
  }
  fs.closeSync(fs.openSync(file, 'a', 0o600));
  fs.chmodSync(file, 0o600);
  // Left by a run before this rule, with the looser mode they were made with.
  for (const extra of ['-wal', '-shm', '-journal']) {
    try {
      fs.chmodSync(file + extra, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}

function migrate(db: Db, migrations: readonly string[]): void {
  const current = db.prepare<[], { user_version: number }>('PRAGMA user_version').get()?.user_version ?? 0;
  for (let v = current; v < migrations.length; v++) {
    db.transaction(() => {
      db.exec(migrations[v] as string);
      db.exec(`PRAGMA user_version = ${v + 1}`);
    })();
  }
}

/**
 * node:sqlite behind Db. A transaction is a function run between BEGIN (or BEGIN IMMEDIATE) and
 * COMMIT; an exception rolls it back and is rethrown; one begun inside another is a savepoint,
 * so a failed inner one undoes only itself (group-commit.ts relies on it).
 */
function connect(file: string, readonly: boolean): Db {
  const { DatabaseSync } = loadNodeSqlite();
  const raw = new DatabaseSync(file, { readOnly: readonly });
  const sql = (s: string) => {
    const st = raw.prepare(s);
    return () => void st.run();
  };
  const begin = sql('BEGIN');
  const beginImmediate = sql('BEGIN IMMEDIATE');
  const commit = sql('COMMIT');
  const rollback = sql('ROLLBACK');
  const savepoint = sql('SAVEPOINT nested');
  const release = sql('RELEASE nested');
  const rollbackTo = sql('ROLLBACK TO nested');
  let depth = 0;
  const wrap =
    <F extends AnyFn>(fn: F, immediate: boolean) =>
    (...args: Parameters<F>): ReturnType<F> => {
      const nested = depth > 0;
      if (nested) savepoint();
      else if (immediate) beginImmediate();
      else begin();
      depth++;
      try {
        const out = fn(...args) as ReturnType<F>;
        if (nested) release();
        else commit();
        return out;
      } catch (err) {
        if (nested) {
          rollbackTo();
          release();
        } else if (raw.isTransaction) rollback();
        throw err;
      } finally {
        depth--;
      }
    };
  return {
    prepare: <P extends unknown[] | object, R>(s: string) => raw.prepare(s) as unknown as Statement<P, R>,
    exec: (s: string) => raw.exec(s),
    transaction: <F extends AnyFn>(fn: F): Transaction<F> =>
      Object.assign(wrap(fn, false), { immediate: wrap(fn, true) }),
    get open() {
      return raw.isOpen;
    },
    close: () => raw.close(),
  };
}

/**
 * A random id given to a database when it is created. Records kept elsewhere on its behalf (the
 * Redis fast path) are namespaced by it, so a database recreated empty never sees the records
 * of its predecessor.
 */
export function databaseId(db: Db): string {
  db.exec('CREATE TABLE IF NOT EXISTS db_identity (id TEXT NOT NULL)');
  const row = db.prepare<[], { id: string }>('SELECT id FROM db_identity LIMIT 1').get();
  if (row) return row.id;
  const id = randomUUID();
  db.prepare('INSERT INTO db_identity (id) VALUES (?)').run(id);
  return id;
}
