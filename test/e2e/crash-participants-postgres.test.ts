// The whole system with every participant on PostgreSQL (ORDER_DB_URL, PAYMENT_DB_URL,
// INVENTORY_DB_URL, one fresh database each): orders placed through the gateway, then kill -9 of
// each participant just before and just after it commits an effect — the cases of
// crash-participants.test.ts — every invariant checked against the participants' own books.
// The cases in two systems run side by side (three databases each; each case's kill, restart and
// invariants on its own system); the processes run the compiled product when dist/ is current.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  CATALOG,
  ORDERS,
  crashSystem,
  inLanes,
  runCrashCase,
  PARTICIPANT_CRASH_CASES,
  type CrashSystem,
} from '../helpers/crash.js';
import { createTempDatabase, type TempDatabase } from '../helpers/postgres.js';
import { checkInvariants } from '../helpers/invariants.js';
import { eventually } from '../helpers/system.js';

const LANES = 2;

describe('participants on PostgreSQL', { concurrency: LANES }, () => {
  for (const [i, cases] of inLanes(PARTICIPANT_CRASH_CASES, LANES).entries())
    describe(`system ${i + 1} of ${LANES}`, { concurrency: 1 }, () => {
      let dbs: TempDatabase[] = [];
      let sys: CrashSystem;
      before(async () => {
        dbs = await Promise.all([0, 1, 2].map(() => createTempDatabase('participants_e2e')));
        const [order, inventory, payment] = dbs as [TempDatabase, TempDatabase, TempDatabase];
        sys = await crashSystem(
          { ORDER_DB_URL: order.url, INVENTORY_DB_URL: inventory.url, PAYMENT_DB_URL: payment.url },
          { compiled: true },
        );
      });
      after(async () => {
        await sys?.stop();
        await Promise.all(dbs.map((d) => d.drop()));
      });

      if (i === 0)
        test('orders through the gateway with every participant on PostgreSQL: happy COMPLETED, declined COMPENSATED, every invariant', async () => {
          const ends: Record<string, string> = {};
          for (const kind of ['happy', 'declined'] as const) {
            const r = await sys.api('POST', '/orders', ORDERS[kind], { 'X-Idempotency-Key': `pg-e2e-${kind}` });
            assert.equal(r.status, 201, JSON.stringify(r.body));
            ends[kind] = await eventually(`the ${kind} order's saga to end`, async () => {
              const s = await sys.api('GET', `/orders/${r.body.id}/saga`);
              return s.status === 200 && ['COMPLETED', 'COMPENSATED', 'PARKED'].includes(s.body.status)
                ? s.body.status
                : undefined;
            });
          }
          assert.deepEqual(ends, { happy: 'COMPLETED', declined: 'COMPENSATED' });
          await checkInvariants(sys, CATALOG);
        });

      for (const c of cases)
        test(`${c.process} on PostgreSQL killed at ${c.point} (${c.order} order) ends ${c.expect} with every invariant`, () =>
          runCrashCase(sys, c));
    });
});
