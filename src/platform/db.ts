import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { SyncLevel } from './config.js';

export type Db = Database.Database;

export interface OpenOptions {
  synchronous?: SyncLevel;
  /** Ordered schema steps; step i runs once, when PRAGMA user_version is i. */
  migrations: readonly string[];
  /** Open an existing database for reading only (no migrations, no writes). */
  readonly?: boolean;
}

/** Opens (creating the folder) a SQLite database in WAL mode and brings its schema up to date. */
export function openDatabase(file: string, opts: OpenOptions): Db {
  if (opts.readonly) {
    const ro = new Database(file, { readonly: true, fileMustExist: true });
    ro.pragma('busy_timeout = 5000');
    return ro;
  }
  if (file !== ':memory:') fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${opts.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  // 64 MiB of page cache (2 MiB by default): the hot pages of a log of a few hundred thousand
  // sagas stay in memory instead of being read back from the OS for every commit.
  db.pragma('cache_size = -65536');
  // A checkpoint every 10,000 WAL pages (40 MiB) instead of 1,000: it runs inside a commit, on
  // the event loop, and copies each page once however often the WAL holds it.
  db.pragma('wal_autocheckpoint = 10000');
  migrate(db, opts.migrations);
  return db;
}

function migrate(db: Db, migrations: readonly string[]): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  for (let v = current; v < migrations.length; v++) {
    db.transaction(() => {
      db.exec(migrations[v] as string);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
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
