// The whole system with every participant on PostgreSQL (ORDER_DB_URL, PAYMENT_DB_URL,
// INVENTORY_DB_URL, one fresh database each): orders placed through the gateway, then kill -9 of
// each participant just before and just after it commits an effect — the cases of
// crash-participants.test.ts — every invariant checked against the participants' own books.
// The cases in two systems run side by side (three databases each; each case's kill, restart and
// invariants on its own system); the processes run the compiled product when dist/ is current.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CATALOG, ORDERS, crashMatrix, PARTICIPANT_CRASH_CASES } from '../helpers/crash.js';
import { createTempDatabase, type TempDatabase } from '../helpers/postgres.js';
import { checkInvariants } from '../helpers/invariants.js';
import { eventually } from '../helpers/system.js';

crashMatrix({
  title: 'participants on PostgreSQL',
  cases: PARTICIPANT_CRASH_CASES,
  name: (c) =>
    `${c.process} on PostgreSQL killed at ${c.point} (${c.order} order) ends ${c.expect} with every invariant`,
  resources: async () => {
    const dbs = await Promise.all([0, 1, 2].map(() => createTempDatabase('participants_e2e')));
    const [order, inventory, payment] = dbs as [TempDatabase, TempDatabase, TempDatabase];
    return {
      env: { ORDER_DB_URL: order.url, INVENTORY_DB_URL: inventory.url, PAYMENT_DB_URL: payment.url },
      drop: async () => void (await Promise.all(dbs.map((d) => d.drop()))),
    };
  },
  first: (running) => {
    test('orders through the gateway with every participant on PostgreSQL: happy COMPLETED, declined COMPENSATED, every invariant', async () => {
      const sys = running();
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
  },
});
