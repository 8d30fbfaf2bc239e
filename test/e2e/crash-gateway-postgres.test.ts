import { crashMatrix, GATEWAY_CRASH_CASES } from '../helpers/crash.js';
import { createTempDatabase } from '../helpers/postgres.js';

// The gateway crash matrix again, with the saga log on PostgreSQL (a database of its own on the
// machine's server): kill -9 before and after each step's intent and outcome, and mid-compensation.
// Every case, in one of two systems run side by side (each with its own database; each case's
// kill, restart and invariants on its own system); the processes run the compiled product when
// dist/ is current.
crashMatrix({
  title: 'the gateway crash matrix on a PostgreSQL saga log',
  cases: GATEWAY_CRASH_CASES,
  name: (c) =>
    `PostgreSQL saga log: gateway killed at ${c.point} (${c.order} order) ends ${c.expect} with every invariant`,
  resources: async () => {
    const db = await createTempDatabase('sagas_crash');
    return { env: { SAGA_LOG_URL: db.url, SAGA_LOG_POOL_SIZE: '4' }, drop: () => db.drop() };
  },
});
