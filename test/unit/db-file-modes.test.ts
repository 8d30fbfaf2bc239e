// Review N11: the databases are private to their user whatever the umask: a folder made for them
// 0700, the file and its -wal and -shm 0600 — also a database made before this rule.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openDatabase } from '../../src/platform/storage/db.js';
import { tempDir } from '../helpers/participants.js';

const mode = (f: string) => fs.statSync(f).mode & 0o777;
const MIGRATIONS = ['CREATE TABLE t (v TEXT)'];

describe('database file modes', () => {
  let umask: number;
  // The default umask of most systems, under which the review saw 0755 and 0644.
  before(() => (umask = process.umask(0o022)));
  after(() => process.umask(umask));

  it('a new database: its folder 0700, the file and its -wal and -shm 0600', () => {
    const dir = path.join(tempDir('db-modes'), 'data', 'nested');
    const file = path.join(dir, 'x.db');
    const db = openDatabase(file, { migrations: MIGRATIONS });
    try {
      db.prepare('INSERT INTO t (v) VALUES (?)').run('a');
      assert.equal(mode(dir), 0o700);
      assert.equal(mode(path.dirname(dir)), 0o700, 'every folder made for it');
      for (const f of [file, `${file}-wal`, `${file}-shm`]) assert.equal(mode(f), 0o600, path.basename(f));
    } finally {
      db.close();
    }
  });

  it('a database made before (0644, its -wal too) is made private when opened; a folder that was there is left as it is', () => {
    const dir = tempDir('db-modes-old');
    fs.chmodSync(dir, 0o755);
    const file = path.join(dir, 'old.db');
    const first = openDatabase(file, { migrations: MIGRATIONS });
    first.prepare('INSERT INTO t (v) VALUES (?)').run('a');
    for (const f of [file, `${file}-wal`, `${file}-shm`]) fs.chmodSync(f, 0o644);
    const db = openDatabase(file, { migrations: MIGRATIONS });
    try {
      for (const f of [file, `${file}-wal`, `${file}-shm`]) assert.equal(mode(f), 0o600, path.basename(f));
      assert.equal(mode(dir), 0o755, "not this module's folder to change");
      assert.equal(db.prepare<[], { n: number }>('SELECT count(*) AS n FROM t').get()?.n, 1, 'the data is still there');
    } finally {
      db.close();
      first.close();
    }
  });
});
