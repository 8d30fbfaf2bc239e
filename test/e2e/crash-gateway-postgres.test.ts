import { describe, test, before, after } from 'node:test';
import { crashSystem, inLanes, runCrashCase, GATEWAY_CRASH_CASES, type CrashSystem } from '../helpers/crash.js';
import { createTempDatabase, type TempDatabase } from '../helpers/postgres.js';

// The gateway crash matrix again, with the saga log on PostgreSQL (a database of its own on the
// machine's server): kill -9 before and after each step's intent and outcome, and mid-compensation.
// Every case, in one of two systems run side by side (each with its own database; each case's
// kill, restart and invariants on its own system); the processes run the compiled product when
// dist/ is current.
const LANES = 2;

describe('the gateway crash matrix on a PostgreSQL saga log', { concurrency: LANES }, () => {
  for (const [i, cases] of inLanes(GATEWAY_CRASH_CASES, LANES).entries())
    describe(`system ${i + 1} of ${LANES}`, { concurrency: 1 }, () => {
      let db: TempDatabase;
      let sys: CrashSystem;
      before(async () => {
        db = await createTempDatabase('sagas_crash');
        sys = await crashSystem({ SAGA_LOG_URL: db.url, SAGA_LOG_POOL_SIZE: '4' }, { compiled: true });
      });
      after(async () => {
        await sys?.stop();
        await db?.drop();
      });
      for (const c of cases)
        test(`PostgreSQL saga log: gateway killed at ${c.point} (${c.order} order) ends ${c.expect} with every invariant`, () =>
          runCrashCase(sys, c));
    });
});
