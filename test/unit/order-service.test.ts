import { LIMITS } from '../../src/contracts/limits.js';
import { MAX_AMOUNT_CENTS } from '../../src/services/payment/domain.js';
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { createInbox } from '../../src/platform/storage/inbox.js';
import {
  CancelOutcome,
  ConfirmOutcome,
  CreateOutcome,
  OrderStatus,
  type CreateOrderRequest,
} from '../../src/gen/order/v1/order.js';
import {
  decideCancel,
  decideConfirm,
  decideCreate,
  nextUpdatedAt,
  totalCents,
  validateCreate,
  validateReason,
  type OrderRecord,
} from '../../src/services/order/domain.js';
import { createOrderStore, openOrderDatabase } from '../../src/services/order/store.js';
import { createOrderService } from '../../src/services/order/server.js';
import {
  captureLogger,
  codeOf,
  errorCode,
  invoke,
  manualClock,
  silentLogger,
  tempDir,
  tempDatabase,
  createOrderRequest as createReq,
} from '../helpers/participants.js';

const NOW = 1_700_000_000_000;

function order(status: OrderRecord['status']): OrderRecord {
  return { id: 'o', customerId: 'c', items: [], status, totalCents: 1, reason: '', createdAtMs: 1, updatedAtMs: 1 };
}

const openTemp = () => tempDatabase(openOrderDatabase, 'order');

describe('order domain', () => {
  test('total is Σ quantity × unit price in cents', () => {
    assert.equal(totalCents(createReq().items), 2 * 1_050 + 999);
    const valid = validateCreate(createReq(), NOW);
    assert.equal(valid.totalCents, 3_099);
  });

  test('created_at_ms 0 means now; a given one is kept', () => {
    assert.equal(validateCreate(createReq(), NOW).createdAtMs, NOW);
    assert.equal(validateCreate(createReq({ createdAtMs: 42 }), NOW).createdAtMs, 42);
  });

  // The cap is the contract's (src/contracts/limits.ts): an order the payment service could never
  // charge (its amounts stop there too) is refused here, not created and then compensated.
  test('the order total is capped where the gateway and the payment service cap it', () => {
    const cap = LIMITS.orderTotalMaxCents;
    const at = [{ productId: 'p1', quantity: 100, unitPriceCents: cap / 100 }];
    assert.equal(validateCreate(createReq({ items: at }), NOW).totalCents, cap);
    const over = [...at, { productId: 'p2', quantity: 1, unitPriceCents: 1 }];
    assert.equal(
      codeOf(() => validateCreate(createReq({ items: over }), NOW)),
      'invalid_argument',
    );
    assert.equal(MAX_AMOUNT_CENTS, cap);
  });

  const invalid: Array<[string, Partial<CreateOrderRequest>]> = [
    ['empty order id', { orderId: '' }],
    ['order id of 65 chars', { orderId: 'a'.repeat(65) }],
    ['order id with a slash', { orderId: 'a/b' }],
    ['order id with a space', { orderId: 'a b' }],
    ['blank customer', { customerId: '   ' }],
    ['customer of 129 chars', { customerId: 'c'.repeat(129) }],
    ['no items', { items: [] }],
    ['101 items', { items: Array.from({ length: 101 }, () => ({ productId: 'p', quantity: 1, unitPriceCents: 1 })) }],
    ['blank product', { items: [{ productId: ' ', quantity: 1, unitPriceCents: 1 }] }],
    ['product of 65 chars', { items: [{ productId: 'p'.repeat(65), quantity: 1, unitPriceCents: 1 }] }],
    ['zero quantity', { items: [{ productId: 'p', quantity: 0, unitPriceCents: 1 }] }],
    ['quantity 10001', { items: [{ productId: 'p', quantity: 10_001, unitPriceCents: 1 }] }],
    ['fractional quantity', { items: [{ productId: 'p', quantity: 1.5, unitPriceCents: 1 }] }],
    ['zero price', { items: [{ productId: 'p', quantity: 1, unitPriceCents: 0 }] }],
    ['price above 1e8', { items: [{ productId: 'p', quantity: 1, unitPriceCents: 100_000_001 }] }],
    ['negative created_at_ms', { createdAtMs: -1 }],
  ];
  for (const [name, overrides] of invalid) {
    test(`refuses ${name} as invalid_argument`, () => {
      assert.equal(
        codeOf(() => validateCreate(createReq(overrides), NOW)),
        'invalid_argument',
      );
    });
  }

  test('accepts every allowed order id character', () => {
    assert.equal(validateCreate(createReq({ orderId: 'Ab9_-:.' }), NOW).orderId, 'Ab9_-:.');
    assert.equal(validateCreate(createReq({ orderId: 'x'.repeat(64) }), NOW).orderId.length, 64);
  });

  test('a cancel reason is 1-64 of [a-z0-9_]', () => {
    assert.equal(validateReason('payment_declined'), 'payment_declined');
    assert.equal(validateReason('r'.repeat(64)), 'r'.repeat(64));
    for (const bad of ['', 'Payment', 'has space', 'dash-ed', 'r'.repeat(65)]) {
      assert.equal(
        codeOf(() => validateReason(bad)),
        'invalid_argument',
        bad,
      );
    }
  });

  test('create: an existing order answers its state, a tombstone makes it born cancelled', () => {
    const same = order('PENDING');
    assert.deepEqual(decideCreate(undefined, undefined, same), { action: 'insert_pending' });
    assert.deepEqual(decideCreate(undefined, { reason: 'x', createdAt: 1 }, same), {
      action: 'insert_cancelled',
      reason: 'x',
    });
    assert.deepEqual(decideCreate(order('PENDING'), undefined, same), { action: 'none', outcome: 'created' });
    assert.deepEqual(decideCreate(order('CONFIRMED'), undefined, same), { action: 'none', outcome: 'created' });
    assert.deepEqual(decideCreate(order('CANCELLED'), { reason: 'x', createdAt: 1 }, same), {
      action: 'none',
      outcome: 'cancelled',
    });
  });

  test('create: another customer, other lines or another total for an existing order is a conflict, in every state', () => {
    const line = { productId: 'p', quantity: 1, unitPriceCents: 1 };
    const others = [
      { customerId: 'other', items: [line], totalCents: 1 },
      { customerId: 'c', items: [{ ...line, quantity: 2 }], totalCents: 2 },
      { customerId: 'c', items: [{ ...line, unitPriceCents: 2 }], totalCents: 2 },
      { customerId: 'c', items: [{ ...line, productId: 'q' }], totalCents: 1 },
      { customerId: 'c', items: [line, line], totalCents: 2 },
      { customerId: 'c', items: [line], totalCents: 3 },
    ];
    for (const status of ['PENDING', 'CONFIRMED', 'CANCELLED'] as const) {
      const existing = { ...order(status), items: [line] };
      const outcome = status === 'CANCELLED' ? 'cancelled' : 'created';
      assert.deepEqual(decideCreate(existing, undefined, { customerId: 'c', items: [{ ...line }], totalCents: 1 }), {
        action: 'none',
        outcome,
      });
      for (const other of others) {
        assert.deepEqual(
          decideCreate(existing, undefined, other),
          { action: 'none', outcome: 'conflict' },
          `${status} ${JSON.stringify(other)}`,
        );
      }
    }
  });

  test('confirm: only PENDING moves; CONFIRMED repeats; CANCELLED is refused', () => {
    assert.deepEqual(decideConfirm(order('PENDING')), { outcome: 'confirmed', transition: true });
    assert.deepEqual(decideConfirm(order('CONFIRMED')), { outcome: 'confirmed', transition: false });
    assert.deepEqual(decideConfirm(order('CANCELLED')), { outcome: 'not_pending', transition: false });
    assert.deepEqual(decideConfirm(undefined), { outcome: 'not_found', transition: false });
  });

  test('cancel: only PENDING moves; CANCELLED repeats; CONFIRMED is refused; unknown leaves a tombstone', () => {
    assert.deepEqual(decideCancel(order('PENDING')), { outcome: 'cancelled', action: 'cancel' });
    assert.deepEqual(decideCancel(order('CANCELLED')), { outcome: 'cancelled', action: 'none' });
    assert.deepEqual(decideCancel(order('CONFIRMED')), { outcome: 'not_pending', action: 'none' });
    assert.deepEqual(decideCancel(undefined), { outcome: 'tombstoned', action: 'tombstone' });
  });

  test('updated_at always moves forward, even if the clock did not', () => {
    assert.equal(nextUpdatedAt(100, 200), 200);
    assert.equal(nextUpdatedAt(100, 100), 101);
    assert.equal(nextUpdatedAt(100, 50), 101);
  });
});

describe('order store', () => {
  test('create inserts PENDING with the total; a repeat answers the stored order; other content is CONFLICT', () => {
    const clock = manualClock(NOW);
    const store = createOrderStore(openTemp(), clock.now);
    const first = store.create(validateCreate(createReq(), clock.now()));
    assert.equal(first.outcome, 'created');
    assert.deepEqual(first.order, {
      id: 'ord-1',
      customerId: 'cust-1',
      items: createReq().items,
      status: 'PENDING',
      totalCents: 3_099,
      reason: '',
      createdAtMs: NOW,
      updatedAtMs: NOW,
    });
    clock.advance(10);
    const again = store.create(validateCreate(createReq(), clock.now()));
    assert.equal(again.outcome, 'created');
    assert.deepEqual(again.order, first.order);
    const items = createReq().items;
    for (const other of [
      createReq({ customerId: 'someone-else' }),
      createReq({ items: items.slice(0, 1) }),
      createReq({ items: [...items].reverse() }),
      createReq({ items: items.map((i) => ({ ...i, unitPriceCents: 1 })) }),
    ]) {
      assert.deepEqual(store.create(validateCreate(other, clock.now())), { outcome: 'conflict', order: undefined });
    }
    assert.deepEqual(store.get('ord-1'), first.order);
  });

  test('PENDING → CONFIRMED, updated_at changes, and a later cancel is refused', () => {
    const clock = manualClock(NOW);
    const store = createOrderStore(openTemp(), clock.now);
    store.create(validateCreate(createReq(), clock.now()));
    clock.advance(5);
    const confirmed = store.confirm('ord-1');
    assert.equal(confirmed.outcome, 'confirmed');
    assert.equal(confirmed.order?.status, 'CONFIRMED');
    assert.equal(confirmed.order?.updatedAtMs, NOW + 5);
    assert.equal(store.confirm('ord-1').outcome, 'confirmed');
    const cancel = store.cancel('ord-1', 'late');
    assert.equal(cancel.outcome, 'not_pending');
    assert.equal(cancel.order?.status, 'CONFIRMED');
    assert.equal(store.create(validateCreate(createReq(), clock.now())).outcome, 'created');
  });

  test('PENDING → CANCELLED keeps the first reason; a later confirm is refused', () => {
    const clock = manualClock(NOW);
    const store = createOrderStore(openTemp(), clock.now);
    store.create(validateCreate(createReq(), clock.now()));
    const cancelled = store.cancel('ord-1', 'payment_declined');
    assert.equal(cancelled.outcome, 'cancelled');
    assert.equal(cancelled.order?.status, 'CANCELLED');
    assert.equal(cancelled.order?.reason, 'payment_declined');
    assert.equal(cancelled.order?.updatedAtMs, NOW + 1, 'same millisecond still moves updated_at');
    const again = store.cancel('ord-1', 'other_reason');
    assert.equal(again.outcome, 'cancelled');
    assert.equal(again.order?.reason, 'payment_declined');
    const confirm = store.confirm('ord-1');
    assert.equal(confirm.outcome, 'not_pending');
    assert.equal(confirm.order?.status, 'CANCELLED');
    assert.equal(store.create(validateCreate(createReq(), clock.now())).outcome, 'cancelled');
  });

  test('cancel of an unknown order leaves a tombstone; the late create is born CANCELLED with its reason', () => {
    const clock = manualClock(NOW);
    const store = createOrderStore(openTemp(), clock.now);
    const cancel = store.cancel('ord-1', 'saga_timeout');
    assert.deepEqual(cancel, { outcome: 'tombstoned', order: undefined });
    assert.equal(store.cancel('ord-1', 'second_reason').outcome, 'tombstoned');
    assert.equal(store.tombstone('ord-1')?.reason, 'saga_timeout');
    clock.advance(1_000);
    const late = store.create(validateCreate(createReq({ createdAtMs: NOW - 50 }), clock.now()));
    assert.equal(late.outcome, 'cancelled');
    assert.equal(late.order.status, 'CANCELLED');
    assert.equal(late.order.reason, 'saga_timeout');
    assert.equal(late.order.createdAtMs, NOW - 50);
    assert.equal(late.order.updatedAtMs, NOW + 1_000);
    assert.equal(store.confirm('ord-1').outcome, 'not_pending');
    assert.equal(
      store.create(validateCreate(createReq(), clock.now())).outcome,
      'cancelled',
      'a repeat stays cancelled',
    );
  });

  test('confirm of an unknown order is NOT_FOUND and leaves nothing behind', () => {
    const store = createOrderStore(openTemp());
    assert.deepEqual(store.confirm('nope'), { outcome: 'not_found', order: undefined });
    assert.equal(store.tombstone('nope'), undefined);
    assert.equal(store.create(validateCreate(createReq({ orderId: 'nope' }), NOW)).outcome, 'created');
  });

  test('data survives a reopen', () => {
    const file = path.join(tempDir('order'), 'order.db');
    const db1 = openOrderDatabase(file);
    createOrderStore(db1).create(validateCreate(createReq(), NOW));
    db1.close();
    const db2 = openOrderDatabase(file, 'full');
    after(() => db2.close());
    assert.equal(createOrderStore(db2).get('ord-1')?.totalCents, 3_099);
  });
});

describe('order store + inbox', () => {
  test('the same key twice runs the effect once and replays the stored response', () => {
    const db = openTemp();
    const store = createOrderStore(db);
    const inbox = createInbox(db);
    const req = { orderId: 'ord-1', reason: 'payment_declined' };
    store.create(validateCreate(createReq(), NOW));
    let effects = 0;
    const run = () =>
      inbox.once('saga-1:create_order:undo', 'CancelOrder', req, () => {
        effects++;
        return store.cancel(req.orderId, req.reason);
      });
    const first = run();
    const second = run();
    assert.equal(effects, 1);
    assert.equal(first.replayed, false);
    assert.equal(second.replayed, true);
    assert.deepEqual(second.response, first.response);
  });

  test('the same key for a different request is idempotency_key_reused, and nothing changes', () => {
    const db = openTemp();
    const store = createOrderStore(db);
    const inbox = createInbox(db);
    store.create(validateCreate(createReq(), NOW));
    inbox.once('k1', 'ConfirmOrder', { orderId: 'ord-1' }, () => store.confirm('ord-1'));
    assert.equal(
      codeOf(() =>
        inbox.once('k1', 'CancelOrder', { orderId: 'ord-1', reason: 'x' }, () => store.cancel('ord-1', 'x')),
      ),
      'idempotency_key_reused',
    );
    assert.equal(store.get('ord-1')?.status, 'CONFIRMED');
  });

  test('an effect that throws rolls back with its inbox record, so a retry runs it again', () => {
    const db = openTemp();
    const store = createOrderStore(db);
    const inbox = createInbox(db);
    const input = validateCreate(createReq(), NOW);
    assert.throws(() =>
      inbox.once('k1', 'CreateOrder', input, () => {
        store.create(input);
        throw new Error('crash before commit');
      }),
    );
    assert.equal(store.get('ord-1'), undefined);
    const retry = inbox.once('k1', 'CreateOrder', input, () => store.create(input));
    assert.equal(retry.replayed, false);
    assert.equal(retry.response.outcome, 'created');
  });
});

describe('order service (in-process)', () => {
  function service() {
    const clock = manualClock(NOW);
    return { svc: createOrderService({ db: openTemp(), logger: silentLogger, now: clock.now }), clock };
  }

  test('create → confirm over the handlers, with the proto enums', async () => {
    const { svc } = service();
    const created = await invoke(svc.createOrder, createReq(), 'saga-1:create_order');
    assert.equal(created.outcome, CreateOutcome.CREATE_OUTCOME_CREATED);
    assert.equal(created.order?.status, OrderStatus.ORDER_STATUS_PENDING);
    assert.equal(created.order?.totalCents, 3_099);
    const confirmed = await invoke(svc.confirmOrder, { orderId: 'ord-1' }, 'saga-1:confirm_order');
    assert.equal(confirmed.outcome, ConfirmOutcome.CONFIRM_OUTCOME_CONFIRMED);
    assert.equal(confirmed.order?.status, OrderStatus.ORDER_STATUS_CONFIRMED);
    const cancel = await invoke(svc.cancelOrder, { orderId: 'ord-1', reason: 'too_late' }, 'saga-1:create_order:undo');
    assert.equal(cancel.outcome, CancelOutcome.CANCEL_OUTCOME_NOT_PENDING);
    const got = await invoke(svc.getOrder, { orderId: 'ord-1' });
    assert.equal(got.order?.status, OrderStatus.ORDER_STATUS_CONFIRMED);
  });

  test('a create of other content under another key is CONFLICT without the stored order; its retry replays that', async () => {
    const { svc } = service();
    await invoke(
      svc.createOrder,
      createReq({ items: [{ productId: 'prod_1', quantity: 1, unitPriceCents: 1 }] }),
      'intruder',
    );
    const real = await invoke(svc.createOrder, createReq(), 'saga-1:create_order');
    assert.equal(real.outcome, CreateOutcome.CREATE_OUTCOME_CONFLICT);
    assert.equal(real.order, undefined);
    // Replayed from the inbox's JSON, where an absent order has no key at all.
    const replay = await invoke(svc.createOrder, createReq(), 'saga-1:create_order');
    assert.deepEqual([replay.outcome, replay.order], [real.outcome, undefined]);
    assert.equal((await invoke(svc.getOrder, { orderId: 'ord-1' })).order?.totalCents, 1);
  });

  test('a replayed create returns the stored snapshot, not a second order', async () => {
    const { svc, clock } = service();
    const first = await invoke(svc.createOrder, createReq(), 'k');
    clock.advance(100);
    await invoke(svc.confirmOrder, { orderId: 'ord-1' }, 'k2');
    const replay = await invoke(svc.createOrder, createReq(), 'k');
    assert.deepEqual(replay, first);
  });

  test('the tombstone path: cancel first, then the late create is CANCELLED', async () => {
    const { svc } = service();
    const cancel = await invoke(svc.cancelOrder, { orderId: 'ord-1', reason: 'saga_timeout' }, 'k-undo');
    assert.equal(cancel.outcome, CancelOutcome.CANCEL_OUTCOME_TOMBSTONED);
    assert.equal(cancel.order, undefined);
    const late = await invoke(svc.createOrder, createReq(), 'k-do');
    assert.equal(late.outcome, CreateOutcome.CREATE_OUTCOME_CANCELLED);
    assert.equal(late.order?.status, OrderStatus.ORDER_STATUS_CANCELLED);
    assert.equal(late.order?.reason, 'saga_timeout');
  });

  test('errors carry stable codes', async () => {
    const { svc } = service();
    assert.equal(await errorCode(invoke(svc.getOrder, { orderId: 'missing' })), 'not_found');
    assert.equal(await errorCode(invoke(svc.createOrder, createReq())), 'idempotency_key_required');
    assert.equal(await errorCode(invoke(svc.createOrder, createReq(), 'bad key')), 'invalid_idempotency_key');
    assert.equal(await errorCode(invoke(svc.createOrder, createReq({ items: [] }), 'k')), 'invalid_argument');
    assert.equal(
      await errorCode(invoke(svc.cancelOrder, { orderId: 'ord-1', reason: 'Bad Reason' }, 'k')),
      'invalid_argument',
    );
    await invoke(svc.createOrder, createReq(), 'k');
    assert.equal(
      await errorCode(invoke(svc.createOrder, createReq({ customerId: 'other' }), 'k')),
      'idempotency_key_reused',
    );
  });

  test('logs each effect once at info with order_id, outcome and key; reads only at debug', async () => {
    const { logger, lines } = captureLogger();
    const svc = createOrderService({ db: openTemp(), logger });
    await invoke(svc.createOrder, createReq(), 'saga-9:create_order');
    await invoke(svc.getOrder, { orderId: 'ord-1' });
    const info = lines.filter((l) => l.level === 'info');
    assert.equal(info.length, 1);
    assert.equal(info[0]?.order_id, 'ord-1');
    assert.equal(info[0]?.outcome, 'CREATE_OUTCOME_CREATED');
    assert.equal(info[0]?.idempotency_key, 'saga-9:create_order');
    assert.equal(lines.filter((l) => l.level === 'debug' && l.rpc === 'GetOrder').length, 1);
  });

  test('an invalid request stores nothing under its key', async () => {
    const { svc } = service();
    await errorCode(invoke(svc.createOrder, createReq({ items: [] }), 'k'));
    const ok = await invoke(svc.createOrder, createReq(), 'k');
    assert.equal(ok.outcome, CreateOutcome.CREATE_OUTCOME_CREATED);
  });
});
