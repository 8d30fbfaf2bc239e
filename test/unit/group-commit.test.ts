// Group commit, and the transaction semantics of Db (src/platform/storage/db.ts) it relies on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { openDatabase } from '../../src/platform/storage/db.js';
import { GroupCommit } from '../../src/platform/storage/group-commit.js';
import { tempDir } from '../helpers/participants.js';

function setUp() {
  const file = path.join(tempDir('group-commit-'), 'g.db');
  const db = openDatabase(file, { migrations: ['CREATE TABLE t (v INTEGER PRIMARY KEY)'] });
  // Another connection sees one data_version step per commit made by the first.
  const reader = openDatabase(file, { readonly: true, migrations: [] });
  const dataVersion = reader.prepare<[], { data_version: number }>('PRAGMA data_version');
  const commits = () => dataVersion.get()?.data_version ?? -1;
  return {
    db,
    commits,
    insert: db.prepare('INSERT INTO t (v) VALUES (?)'),
    rows: () =>
      db
        .prepare<[], { v: number }>('SELECT v FROM t ORDER BY v')
        .all()
        .map((r) => r.v),
  };
}

/** node:sqlite's "primary key taken": SQLite's extended code SQLITE_CONSTRAINT_PRIMARYKEY. */
function isPrimaryKeyViolation(err: { code?: unknown; errcode?: unknown }): boolean {
  return err.code === 'ERR_SQLITE_ERROR' && err.errcode === 1555;
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
  assert.deepEqual(
    outcomes.map((o) => o.status),
    ['fulfilled', 'rejected', 'fulfilled'],
  );
  assert.ok(
    isPrimaryKeyViolation((outcomes[1] as PromiseRejectedResult).reason),
    String((outcomes[1] as PromiseRejectedResult).reason),
  );
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

test('a transaction commits what its function did, rolls all of it back when it throws, and a nested one is a savepoint', () => {
  const { db, insert, rows } = setUp();
  const tx = db.transaction((v: number) => (insert.run(v), v * 10));
  assert.equal(tx.immediate(1), 10);
  assert.throws(
    () => db.transaction(() => (insert.run(2), insert.run(1)))(),
    (err: object) => isPrimaryKeyViolation(err),
  );
  assert.deepEqual(rows(), [1], 'the failed transaction left nothing');
  db.transaction(() => {
    insert.run(3);
    assert.throws(() => db.transaction(() => (insert.run(4), insert.run(3)))());
    insert.run(5);
  }).immediate();
  assert.deepEqual(rows(), [1, 3, 5], 'only the nested transaction was undone');
  assert.equal(db.open, true);
  db.close();
  assert.equal(db.open, false);
});
