import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import Database from 'better-sqlite3';
import { openDatabase } from '../../src/platform/db.js';
import { GroupCommit } from '../../src/platform/group-commit.js';
import { tempDir } from '../helpers/participants.js';

function setUp() {
  const file = path.join(tempDir('group-commit-'), 'g.db');
  const db = openDatabase(file, { migrations: ['CREATE TABLE t (v INTEGER PRIMARY KEY)'] });
  // Another connection sees one data_version step per commit made by the first.
  const reader = new Database(file, { readonly: true });
  const commits = () => reader.pragma('data_version', { simple: true }) as number;
  return { db, commits, insert: db.prepare('INSERT INTO t (v) VALUES (?)'), rows: () => db.prepare('SELECT v FROM t ORDER BY v').pluck().all() };
}

test('the writes queued in one turn commit in one transaction, each answered with what it returned', async () => {
  const { db, commits, insert, rows } = setUp();
  const g = new GroupCommit(db);
  const before = commits();
  const answers = await Promise.all([1, 2, 3, 4, 5].map((v) => g.run(() => insert.run(v).changes * v)));
  assert.deepEqual(answers, [1, 2, 3, 4, 5]);
  assert.equal(commits() - before, 1, 'one commit for the five');
  assert.deepEqual(rows(), [1, 2, 3, 4, 5]);
});

test('a write that throws fails alone: the others of its batch commit', async () => {
  const { db, insert, rows } = setUp();
  insert.run(2);
  const g = new GroupCommit(db);
  const outcomes = await Promise.allSettled([1, 2, 3].map((v) => g.run(() => insert.run(v))));
  assert.deepEqual(outcomes.map((o) => o.status), ['fulfilled', 'rejected', 'fulfilled']);
  assert.equal((outcomes[1] as PromiseRejectedResult).reason.code, 'SQLITE_CONSTRAINT_PRIMARYKEY');
  assert.deepEqual(rows(), [1, 2, 3]);
});

test('flush commits what is queued at once; the scheduled turn then finds nothing', async () => {
  const { db, insert, rows } = setUp();
  const g = new GroupCommit(db);
  const done = g.run(() => insert.run(7));
  assert.equal(g.pending, 1);
  g.flush();
  assert.equal(g.pending, 0);
  assert.deepEqual(rows(), [7]);
  db.close(); // the turn's flush must not touch a closed database
  await done;
  await new Promise((r) => setImmediate(r));
});
