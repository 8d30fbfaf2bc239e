import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { SyncLevel } from './config.js';
import { ConfigError } from './errors.js';

/** What a prepared statement's run() reports. */
export interface RunResult {
  changes: number; // never a bigint: neither driver is asked for safe integers
  lastInsertRowid: number | bigint;
}

/** Positional parameters as a tuple, or one object of named ones (`@name`). */
type Bind<P> = P extends unknown[] ? P : [P];

export interface Statement<P extends unknown[] | object = unknown[], R = unknown> {
  run(...params: Bind<P>): RunResult;
  get(...params: Bind<P>): R | undefined;
  all(...params: Bind<P>): R[];
}

// `any`: a transaction wraps functions of any signature, as better-sqlite3's own type does.
type AnyFn = (...args: any[]) => unknown;

/** A function run in a transaction: BEGIN (DEFERRED) by default, or BEGIN IMMEDIATE; nested, a savepoint. */
export interface Transaction<F extends AnyFn> {
  (...args: Parameters<F>): ReturnType<F>;
  immediate(...args: Parameters<F>): ReturnType<F>;
}

/**
 * The SQLite connection every store uses: the few calls they make, so that the driver behind it
 * is one choice made here (better-sqlite3, or node:sqlite through an adapter; SQLITE_DRIVER).
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
  /** Default: SQLITE_DRIVER's (sqliteDriver()). */
  driver?: SqliteDriver;
}

export type SqliteDriver = 'better-sqlite3' | 'node:sqlite';

/** The driver (SQLITE_DRIVER; better-sqlite3 unless told): both were measured side by side, bench/README.md. */
export function sqliteDriver(env: NodeJS.ProcessEnv = process.env): SqliteDriver {
  const v = env.SQLITE_DRIVER;
  if (v === undefined || v === '' || v === 'better-sqlite3') return 'better-sqlite3';
  if (v === 'node:sqlite') return v;
  throw new ConfigError([{ variable: 'SQLITE_DRIVER', expected: 'better-sqlite3 or node:sqlite', got: v }]);
}

function connect(file: string, readonly: boolean, driver: SqliteDriver = sqliteDriver()): Db {
  if (driver === 'node:sqlite') return openNodeSqlite(file, readonly);
  // better-sqlite3's Database is a superset of Db; its prepare() types a named-parameter
  // statement as taking a one-element tuple, which is what Bind<P> spells out.
  return (readonly ? new Database(file, { readonly: true, fileMustExist: true }) : new Database(file)) as unknown as Db;
}

/** Opens (creating the folder) a SQLite database in WAL mode and brings its schema up to date. */
export function openDatabase(file: string, opts: OpenOptions): Db {
  if (opts.readonly) {
    const ro = connect(file, true, opts.driver);
    ro.exec('PRAGMA busy_timeout = 5000');
    return ro;
  }
  if (file !== ':memory:') fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = connect(file, false, opts.driver);
  db.exec('PRAGMA journal_mode = WAL');
  db.exec(`PRAGMA synchronous = ${opts.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
  db.exec('PRAGMA busy_timeout = 5000');
  db.exec('PRAGMA foreign_keys = ON');
  // 64 MiB of page cache (2 MiB by default): the hot pages of a log of a few hundred thousand
  // sagas stay in memory instead of being read back from the OS for every commit.
  db.exec('PRAGMA cache_size = -65536');
  // A checkpoint every 10,000 WAL pages (40 MiB) instead of 1,000: it runs inside a commit, on
  // the event loop, and copies each page once however often the WAL holds it.
  db.exec('PRAGMA wal_autocheckpoint = 10000');
  migrate(db, opts.migrations);
  return db;
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
 * node:sqlite (Node >= 22.13) behind Db: transactions as better-sqlite3 runs them (BEGIN, or
 * BEGIN IMMEDIATE; a nested one is a savepoint; an exception rolls back and is rethrown).
 */
function openNodeSqlite(file: string, readonly: boolean): Db {
  const { DatabaseSync } = process.getBuiltinModule('node:sqlite');
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
        if (nested) (rollbackTo(), release());
        else if (raw.isTransaction) rollback();
        throw err;
      } finally {
        depth--;
      }
    };
  return {
    prepare: <P extends unknown[] | object, R>(s: string) => raw.prepare(s) as unknown as Statement<P, R>,
    exec: (s: string) => raw.exec(s),
    transaction: <F extends AnyFn>(fn: F): Transaction<F> => Object.assign(wrap(fn, false), { immediate: wrap(fn, true) }),
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
