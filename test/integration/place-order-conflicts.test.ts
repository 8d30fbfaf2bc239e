import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { callRpc } from '../../src/platform/grpc/grpc.js';
import { SagaEngine } from '../../src/saga/engine.js';
import { SqliteSagaLog } from '../../src/saga/stores/sqlite.js';
import { placeOrderSaga, PLACE_ORDER, type PlaceOrderInput } from '../../src/gateway/place-order.js';
import type { Participants } from '../../src/gateway/participants.js';
import { OrderStatus } from '../../src/gen/order/v1/order.js';
import { PaymentStatus } from '../../src/gen/payment/v1/payment.js';
import { createOrderService } from '../../src/services/order/server.js';
import { openOrderDatabase } from '../../src/services/order/store.js';
import { createInventoryService } from '../../src/services/inventory/server.js';
import { openInventoryDatabase } from '../../src/services/inventory/store.js';
import { createPaymentService } from '../../src/services/payment/server.js';
import { openPaymentDatabase } from '../../src/services/payment/store.js';
import { silentLogger, tempDir } from '../helpers/participants.js';
import { serveParticipants, type ServedParticipants } from '../helpers/grpc-participants.js';

/**
 * The place-order saga against the real participants (in-process gRPC, plaintext: this is about
 * outcomes, not transport), when a request under another key got to the order first: a
 * contradicting one makes the step fail definitely with a *_conflict code and the saga
 * compensate; the same content is answered as the first time and the order completes.
 */

const dir = tempDir('place-order-conflicts');
const dbs = [
  openOrderDatabase(path.join(dir, 'order.db')),
  openInventoryDatabase(path.join(dir, 'inventory.db')),
  openPaymentDatabase(path.join(dir, 'payment.db')),
] as const;
let served: ServedParticipants;
let p: Participants;
let engine: SagaEngine;
let log: SqliteSagaLog;

before(async () => {
  served = await serveParticipants({
    order: createOrderService({ db: dbs[0], logger: silentLogger }),
    inventory: createInventoryService({ db: dbs[1], logger: silentLogger, catalog: { prod_1: 100, prod_2: 100 } }),
    payment: createPaymentService({ db: dbs[2], logger: silentLogger, chargeLimitCents: 50_000 }),
  });
  p = served.participants;
  log = new SqliteSagaLog({ file: path.join(dir, 'saga.db') });
  engine = new SagaEngine({
    log,
    logger: silentLogger,
    policies: { action: { maxAttempts: 3, initialBackoffMs: 1, maxBackoffMs: 2, multiplier: 2 } },
  });
  engine.register(placeOrderSaga(p));
});

after(async () => {
  await engine?.shutdown(1_000);
  await log?.close();
  await served?.close();
  for (const db of dbs) db.close();
});

function input(orderId: string): PlaceOrderInput {
  return {
    order_id: orderId,
    customer_id: 'cust_1',
    items: [{ product_id: 'prod_1', quantity: 2, unit_price_cents: 1_000 }],
    total_cents: 2_000,
    created_at_ms: 1_700_000_000_000,
    fingerprint: 'f'.repeat(64),
    request_id: null,
  };
}

const opts = (key: string) => ({ idempotencyKey: key, timeoutMs: 5_000 });

async function run(orderId: string) {
  await engine.start(PLACE_ORDER, { id: orderId, input: input(orderId) });
  const final = await engine.waitFor(orderId, 10_000);
  const order = (await callRpc(p.order, 'getOrder', { orderId }, { timeoutMs: 5_000 })).order;
  const payment = await callRpc(p.payment, 'getPayment', { orderId }, { timeoutMs: 5_000 });
  const stock = (await callRpc(p.inventory, 'listProducts', { productIds: [] }, { timeoutMs: 5_000 })).products;
  return { final, order, payment, stock };
}

test('a charge of another amount already on the order: payment_conflict, the saga compensates, the order is cancelled, not confirmed', async () => {
  await callRpc(p.payment, 'charge', { orderId: 'ord_pay', amountCents: 1 }, opts('intruder-pay'));
  const { final, order, payment, stock } = await run('ord_pay');
  assert.equal(final?.status, 'COMPENSATED');
  assert.deepEqual([final?.failure?.step, final?.failure?.code], ['charge_payment', 'payment_conflict']);
  assert.equal(order?.status, OrderStatus.ORDER_STATUS_CANCELLED);
  assert.equal(order?.reason, 'payment_conflict');
  // The saga's own reservation was given back; the foreign charge is left for an operator to see.
  assert.deepEqual(
    stock.find((s) => s.productId === 'prod_1'),
    { productId: 'prod_1', available: 100, reserved: 0, sold: 0, total: 100, priceCents: undefined },
  );
  assert.deepEqual(payment, { status: PaymentStatus.PAYMENT_STATUS_CHARGED, amountCents: 1 });
});

test('a reservation of other items already on the order: stock_conflict, the saga compensates', async () => {
  await callRpc(
    p.inventory,
    'reserve',
    { orderId: 'ord_inv', items: [{ productId: 'prod_2', quantity: 1 }] },
    opts('intruder-inv'),
  );
  const { final, order, payment } = await run('ord_inv');
  assert.equal(final?.status, 'COMPENSATED');
  assert.deepEqual([final?.failure?.step, final?.failure?.code], ['reserve_stock', 'stock_conflict']);
  assert.equal(order?.status, OrderStatus.ORDER_STATUS_CANCELLED);
  assert.equal(payment.status, PaymentStatus.PAYMENT_STATUS_NONE, 'nothing was charged');
});

test('an order of another customer already under the id: order_conflict, nothing else is done', async () => {
  const foreign = {
    orderId: 'ord_ord',
    customerId: 'someone_else',
    items: [{ productId: 'prod_1', quantity: 2, unitPriceCents: 1_000 }],
    createdAtMs: 1,
  };
  await callRpc(p.order, 'createOrder', foreign, opts('intruder-ord'));
  const { final, order, payment } = await run('ord_ord');
  assert.equal(final?.status, 'COMPENSATED');
  assert.deepEqual([final?.failure?.step, final?.failure?.code], ['create_order', 'order_conflict']);
  // Not the saga's order: it is neither confirmed nor cancelled by it.
  assert.equal(order?.status, OrderStatus.ORDER_STATUS_PENDING);
  assert.equal(order?.customerId, 'someone_else');
  assert.equal(payment.status, PaymentStatus.PAYMENT_STATUS_NONE);
});

test('the same content already there under other keys is no contradiction: the order completes, charged once', async () => {
  const i = input('ord_same');
  const items = i.items.map((l) => ({
    productId: l.product_id,
    quantity: l.quantity,
    unitPriceCents: l.unit_price_cents,
  }));
  await callRpc(
    p.order,
    'createOrder',
    { orderId: 'ord_same', customerId: i.customer_id, items, createdAtMs: i.created_at_ms },
    opts('early-ord'),
  );
  await callRpc(
    p.inventory,
    'reserve',
    {
      orderId: 'ord_same',
      items: [
        { productId: 'prod_1', quantity: 1 },
        { productId: 'prod_1', quantity: 1 },
      ],
    },
    opts('early-inv'),
  );
  await callRpc(p.payment, 'charge', { orderId: 'ord_same', amountCents: i.total_cents }, opts('early-pay'));
  const { final, order, payment, stock } = await run('ord_same');
  assert.equal(final?.status, 'COMPLETED');
  assert.equal(order?.status, OrderStatus.ORDER_STATUS_CONFIRMED);
  assert.deepEqual(payment, { status: PaymentStatus.PAYMENT_STATUS_CHARGED, amountCents: 2_000 });
  assert.deepEqual(
    stock.find((s) => s.productId === 'prod_1'),
    { productId: 'prod_1', available: 98, reserved: 0, sold: 2, total: 100, priceCents: undefined },
  );
});
