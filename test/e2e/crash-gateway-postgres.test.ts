import { test, before, after } from 'node:test';
import { crashSystem, runCrashCase, GATEWAY_CRASH_CASES } from '../helpers/crash.js';
import { createTempDatabase, type TempDatabase } from '../helpers/postgres.js';

// The gateway crash matrix again, with the saga log on PostgreSQL (a database of its own on the
// machine's server): kill -9 before and after each step's intent and outcome, and mid-compensation.
let db: TempDatabase;
let sys: Awaited<ReturnType<typeof crashSystem>>;
before(async () => {
  db = await createTempDatabase('sagas_crash');
  sys = await crashSystem({ SAGA_LOG_URL: db.url, SAGA_LOG_POOL_SIZE: '4' });
});
after(async () => {
  await sys?.stop();
  await db?.drop();
});

for (const c of GATEWAY_CRASH_CASES) {
  test(`PostgreSQL saga log: gateway killed at ${c.point} (${c.order} order) ends ${c.expect} with every invariant`, () =>
    runCrashCase(sys, c));
}
