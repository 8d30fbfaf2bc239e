/**
 * The PostgreSQL saga log's statement deadline (SAGA_LOG_TIMEOUT_MS), on a database of its
 * own on the machine's server. A statement that gets no answer within it fails with
 * SagaLogUnavailableError (its fate unknown, as when a connection breaks at COMMIT), and its
 * connection is thrown away rather than handed to the next caller still busy with it. Here the
 * answer is held back by a row lock another session keeps; a silent partition holds it back the
 * same way (test/hosts/gateway-cut-from-saga-log.test.ts shows that case end to end).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { SagaLogUnavailableError } from '../../src/saga/model.js';
import { PostgresSagaLog } from '../../src/saga/stores/postgres.js';
import { createTempDatabase } from '../helpers/postgres.js';
import { STARTED, newSaga, uniqueId } from '../helpers/saga-log-work.js';
import { eventually } from '../helpers/system.js';

const DEADLINE_MS = 300;

test('a write without an answer within the deadline fails as unavailable; its connection is not reused', async () => {
  const db = await createTempDatabase('saga_deadline_test');
  // Two connections: if a timed-out one went back to the pool still busy with its statement, the
  // writes that follow would queue behind it and time out too.
  const log = await PostgresSagaLog.open({
    url: db.url,
    poolSize: 2,
    synchronousCommit: 'on',
    timeoutMs: DEADLINE_MS,
  });
  const locker = new pg.Client({ connectionString: db.url });
  await locker.connect();
  try {
    const held = uniqueId();
    const free = uniqueId();
    for (const id of [held, free]) assert.ok((await log.create(newSaga(id), [STARTED], 60_000)).created);
    await locker.query('BEGIN');
    await locker.query('SELECT id FROM sagas WHERE id = $1 FOR UPDATE', [held]);

    // Three writes to the locked row, one after the other: each waits its deadline, then fails.
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      await assert.rejects(
        log.append(held, 'owner-a', { attempt: 2 + i }, [{ type: 'STEP_STARTED', step: 'a', attempt: 2 + i }]),
        (err: unknown) => {
          assert.ok(err instanceof SagaLogUnavailableError, String(err));
          assert.match(err.message, new RegExp(`unavailable: no answer within ${DEADLINE_MS} ms$`));
          return true;
        },
      );
      const took = performance.now() - t0;
      assert.ok(took >= DEADLINE_MS - 5 && took < DEADLINE_MS + 2_000, `failed after ${Math.round(took)} ms`);
    }

    // The lock is still held: the pool serves the rest on fresh connections. (pg's deadline counts
    // from the call, queueing included: a write queued behind a hung statement would fail too.)
    await log.append(free, 'owner-a', { attempt: 2 }, [{ type: 'STEP_STARTED', step: 'a', attempt: 2 }]);
    const other = uniqueId();
    assert.ok((await log.create(newSaga(other), [STARTED], 60_000)).created);
    assert.equal((await log.get(held))?.attempt, 0, 'nothing of the timed-out writes is visible yet');
    assert.equal((await log.get(free))?.attempt, 2);

    // Released, the statements the server still held run, though their callers gave up on them:
    // a write that failed at its deadline may have committed (the engine treats it as a connection
    // lost at COMMIT, and its lease fences whatever comes late).
    await locker.query('ROLLBACK');
    await eventually('the statements given up on to have run', async () => {
      const [r] = (
        await locker.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity
           WHERE datname = current_database() AND application_name = 'ecommerce-sagas' AND state = 'active'`,
        )
      ).rows;
      return r?.n === 0 ? true : undefined;
    });
    const after = await log.get(held);
    assert.ok(after !== undefined && [2, 3, 4].includes(after.attempt), `attempt ${after?.attempt}`);
    await log.append(held, 'owner-a', { attempt: 9 }, [{ type: 'STEP_STARTED', step: 'a', attempt: 9 }]);
    assert.equal((await log.get(held))?.attempt, 9);
  } finally {
    await locker.end().catch(() => undefined);
    await log.close();
    await db.drop();
  }
});
