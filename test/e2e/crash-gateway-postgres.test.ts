import { test, before, after } from 'node:test';
import { crashSystem, runCrashCase, type CrashCase } from '../helpers/crash.js';
import { createTempDatabase, type TempDatabase } from '../helpers/postgres.js';

// The gateway crash matrix again, with the saga log on PostgreSQL (a database of its own on the
// machine's server): kill -9 before and after each step's intent and outcome, and mid-compensation.
const STEPS = ['create_order', 'reserve_stock', 'charge_payment', 'confirm_order', 'commit_stock'];
const PHASES = ['before_intent', 'after_intent', 'before_outcome', 'after_outcome'];
const cases: CrashCase[] = [
  ...STEPS.flatMap((s) => PHASES.map((p): CrashCase => ({ process: 'gateway', point: `saga.${s}.${p}`, order: 'happy', expect: 'COMPLETED' }))),
  ...['reserve_stock', 'create_order'].flatMap((s) =>
    PHASES.map((p): CrashCase => ({ process: 'gateway', point: `saga.${s}.undo.${p}`, order: 'declined', expect: 'COMPENSATED' })),
  ),
];

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

for (const c of cases) {
  test(`PostgreSQL saga log: gateway killed at ${c.point} (${c.order} order) ends ${c.expect} with every invariant`, () => runCrashCase(sys, c));
}
