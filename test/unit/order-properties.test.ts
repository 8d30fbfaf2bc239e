import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  CancelOutcome,
  ConfirmOutcome,
  CreateOutcome,
  OrderStatus,
  type Order,
  type OrderItem,
} from '../../src/gen/order/v1/order.js';
import { createOrderService } from '../../src/services/order/server.js';
import { openOrderDatabase } from '../../src/services/order/store.js';
import { errorCode, invoke, silentLogger } from '../helpers/participants.js';
import { KeyedCalls, nextRun, tempDb } from '../helpers/keyed-calls.js';

/**
 * Random interleavings of CreateOrder (a few contents), ConfirmOrder and CancelOrder for ONE
 * order, with keys drawn from a small pool, against the real service, inbox and store on a SQLite
 * file. The order is the content of the first accepted create, moves only PENDING → CONFIRMED |
 * CANCELLED, and no answer claims a success the database does not hold.
 */

const NOW = 1_700_000_000_000;

interface Content {
  customerId: string;
  items: OrderItem[];
}
const BASE: Content = { customerId: 'cust-1', items: [{ productId: 'p1', quantity: 2, unitPriceCents: 150 }] };
const CONTENTS: Content[] = [
  BASE,
  { ...BASE, customerId: 'cust-2' },
  { ...BASE, items: [{ productId: 'p1', quantity: 2, unitPriceCents: 1 }] },
  { ...BASE, items: [...BASE.items, { productId: 'p2', quantity: 1, unitPriceCents: 99 }] },
];

type Cmd =
  | { kind: 'create'; key: string; content: number; createdAtMs: number }
  | { kind: 'confirm'; key: string }
  | { kind: 'cancel'; key: string; reason: string };

const key = fc.constantFrom('k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7');
const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('create' as const),
      key,
      // The first content most often, so that a repeat of the same order under a new key is common.
      content: fc.constantFrom(0, 0, 0, 1, 2, 3),
      // created_at is not part of an order's identity (0 means "now" on every try).
      createdAtMs: fc.constantFrom(0, NOW),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('confirm' as const), key }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('cancel' as const),
      key,
      reason: fc.constantFrom('payment_declined', 'saga_timeout'),
    }),
  },
);

const contentOf = (o: Order): Content => ({ customerId: o.customerId, items: o.items });

test('order: the first accepted content stays; PENDING moves once; contradictions never succeed; replays answer as stored', async () => {
  const svc = createOrderService({ db: tempDb(openOrderDatabase, 'order'), logger: silentLogger, now: () => NOW });

  await fc.assert(
    fc.asyncProperty(fc.array(cmd, { minLength: 1, maxLength: 20 }), async (cmds) => {
      const orderId = nextRun();
      const calls = new KeyedCalls(orderId);
      /** The content of the first create answered CREATED (or born CANCELLED after a tombstone). */
      let content: Content | undefined;
      let status: 'PENDING' | 'CONFIRMED' | 'CANCELLED' | undefined;
      let tombstoned = false;

      for (const c of cmds) {
        if (c.kind === 'create') {
          const asked = CONTENTS[c.content] ?? BASE;
          const res = await calls.send(
            'CreateOrder',
            svc.createOrder,
            { orderId, ...asked, createdAtMs: c.createdAtMs },
            c.key,
          );
          if (res === undefined) continue;
          const same = content === undefined || JSON.stringify(asked) === JSON.stringify(content);
          switch (res.outcome) {
            case CreateOutcome.CREATE_OUTCOME_CREATED:
              assert.ok(same, 'CREATED for other content');
              assert.ok(content !== undefined ? status !== 'CANCELLED' : !tombstoned, 'CREATED a cancelled order');
              break;
            case CreateOutcome.CREATE_OUTCOME_CANCELLED:
              assert.ok(same, 'CANCELLED answered for other content');
              assert.ok(content !== undefined ? status === 'CANCELLED' : tombstoned, 'CANCELLED an order that is not');
              break;
            case CreateOutcome.CREATE_OUTCOME_CONFLICT:
              assert.ok(!same, 'CONFLICT for the same content');
              assert.equal(res.order, undefined, 'a conflict shows no order');
              break;
            default:
              assert.fail(`unexpected create outcome ${res.outcome}`);
          }
          if (res.outcome !== CreateOutcome.CREATE_OUTCOME_CONFLICT && content === undefined) {
            content = asked;
            status = tombstoned ? 'CANCELLED' : 'PENDING';
          }
          if (res.order) assert.deepEqual(contentOf(res.order), content);
        } else if (c.kind === 'confirm') {
          const res = await calls.send('ConfirmOrder', svc.confirmOrder, { orderId }, c.key);
          if (res === undefined) continue;
          switch (res.outcome) {
            case ConfirmOutcome.CONFIRM_OUTCOME_CONFIRMED:
              assert.ok(status === 'PENDING' || status === 'CONFIRMED', `CONFIRMED from ${status}`);
              status = 'CONFIRMED';
              break;
            case ConfirmOutcome.CONFIRM_OUTCOME_NOT_PENDING:
              assert.equal(status, 'CANCELLED');
              break;
            case ConfirmOutcome.CONFIRM_OUTCOME_NOT_FOUND:
              assert.equal(content, undefined);
              break;
            default:
              assert.fail(`unexpected confirm outcome ${res.outcome}`);
          }
        } else {
          const res = await calls.send('CancelOrder', svc.cancelOrder, { orderId, reason: c.reason }, c.key);
          if (res === undefined) continue;
          switch (res.outcome) {
            case CancelOutcome.CANCEL_OUTCOME_CANCELLED:
              assert.ok(status === 'PENDING' || status === 'CANCELLED', `CANCELLED from ${status}`);
              status = 'CANCELLED';
              break;
            case CancelOutcome.CANCEL_OUTCOME_NOT_PENDING:
              assert.equal(status, 'CONFIRMED');
              break;
            case CancelOutcome.CANCEL_OUTCOME_TOMBSTONED:
              assert.equal(content, undefined);
              tombstoned = true;
              break;
            default:
              assert.fail(`unexpected cancel outcome ${res.outcome}`);
          }
        }

        // The database holds what the answers said: the first content, in the state last answered.
        if (content === undefined) {
          assert.equal(await errorCode(invoke(svc.getOrder, { orderId })), 'not_found');
        } else {
          const { order } = await invoke(svc.getOrder, { orderId });
          assert.ok(order);
          assert.deepEqual(contentOf(order), content);
          assert.equal(order.status, OrderStatus[`ORDER_STATUS_${status ?? 'PENDING'}`]);
          assert.equal(
            order.totalCents,
            content.items.reduce((s, i) => s + i.quantity * i.unitPriceCents, 0),
          );
        }
      }
    }),
    { numRuns: 100 },
  );
});
