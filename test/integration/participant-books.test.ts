/**
 * The participants' read RPCs for reconciliation (ListOrders, ListPayments, ListReservations, and
 * ListProducts' total), served by the real services on real gRPC servers over mutual TLS and read
 * with the gateway's own clients: keyset pages that never skip or repeat an order id, bounded
 * page sizes, tokens the service gave out only; and the inventory's total, migrated onto a
 * database from before it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { callRpc, errorCodeOf, isServiceError } from '../../src/platform/grpc/grpc.js';
import { openDatabase, type Db } from '../../src/platform/storage/db.js';
import { OrderStatus } from '../../src/gen/order/v1/order.js';
import { PaymentStatus } from '../../src/gen/payment/v1/payment.js';
import { ReservationStatus } from '../../src/gen/inventory/v1/inventory.js';
import { createOrderService } from '../../src/services/order/server.js';
import { createOrderStore, openOrderDatabase } from '../../src/services/order/store.js';
import { validateCreate } from '../../src/services/order/domain.js';
import { createPaymentService } from '../../src/services/payment/server.js';
import { createPaymentStore, openPaymentDatabase } from '../../src/services/payment/store.js';
import { validateCharge } from '../../src/services/payment/domain.js';
import { createInventoryService } from '../../src/services/inventory/server.js';
import {
  createInventoryStore,
  INVENTORY_MIGRATIONS,
  openInventoryDatabase,
} from '../../src/services/inventory/store.js';
import { validateReserve } from '../../src/services/inventory/domain.js';
import { LIMITS } from '../../src/contracts/limits.js';

const { listPageSizeDefault: PAGE_SIZE_DEFAULT, listPageSizeMax: PAGE_SIZE_MAX } = LIMITS;
import { grpcParticipantBooks } from '../../src/reconcile/participant-books.js';
import { serveParticipants, type ServedParticipants } from '../helpers/grpc-participants.js';
import { silentLogger, tempDir } from '../helpers/participants.js';

const CATALOG = { p1: 100, p2: 50 };
const OPTS = { timeoutMs: 5_000 };
let served: ServedParticipants;
const dbs: Db[] = [];

/** 25 orders (one also tombstoned: born cancelled) and 5 order ids that hold a tombstone only. */
const ORDER_IDS = Array.from({ length: 25 }, (_, i) => `ord_${String(i).padStart(3, '0')}`);
const TOMBSTONED_ONLY = ['ord_004x', 'ord_010x', 'a_first', 'zz_last', 'ord_020x'];

before(async () => {
  const dir = tempDir('books');
  const orderDb = openOrderDatabase(path.join(dir, 'order.db'));
  const paymentDb = openPaymentDatabase(path.join(dir, 'payment.db'));
  const inventoryDb = openInventoryDatabase(path.join(dir, 'inventory.db'));
  dbs.push(orderDb, paymentDb, inventoryDb);

  const orders = createOrderStore(orderDb);
  for (const id of TOMBSTONED_ONLY) orders.cancel(id, 'released_early');
  orders.cancel('ord_007', 'cancelled_early');
  for (const id of ORDER_IDS)
    orders.create(
      validateCreate(
        {
          orderId: id,
          customerId: 'c1',
          items: [{ productId: 'p1', quantity: 1, unitPriceCents: 100 }],
          createdAtMs: 1,
        },
        1,
      ),
    );
  orders.confirm('ord_001');
  orders.cancel('ord_002', 'payment_declined');

  const payments = createPaymentStore(paymentDb, { chargeLimitCents: 500 });
  payments.charge(validateCharge({ orderId: 'ord_001', amountCents: 100 }));
  payments.charge(validateCharge({ orderId: 'ord_002', amountCents: 600 }));
  payments.charge(validateCharge({ orderId: 'ord_003', amountCents: 250 }));
  payments.refund('ord_003');
  payments.refund('ord_004');

  const inventory = createInventoryStore(inventoryDb, { catalog: CATALOG });
  inventory.reserve(
    validateReserve({
      orderId: 'ord_001',
      items: [
        { productId: 'p2', quantity: 2 },
        { productId: 'p1', quantity: 1 },
        { productId: 'p1', quantity: 3 },
      ],
    }),
  );
  inventory.commit('ord_001');
  inventory.reserve(validateReserve({ orderId: 'ord_002', items: [{ productId: 'p1', quantity: 1 }] }));
  inventory.release('ord_002');
  inventory.reserve(validateReserve({ orderId: 'ord_005', items: [{ productId: 'p1', quantity: 5 }] }));
  inventory.release('ord_006');

  served = await serveParticipants({
    order: createOrderService({ db: orderDb, logger: silentLogger }),
    payment: createPaymentService({ db: paymentDb, logger: silentLogger, chargeLimitCents: 500 }),
    inventory: createInventoryService({ db: inventoryDb, logger: silentLogger, catalog: CATALOG }),
  });
});

after(async () => {
  await served.close();
  for (const db of dbs) db.close();
});

/** Every page of a List RPC at `pageSize`: the ids of each page, checked to be in strict order. */
async function pages(
  list: (token: string) => Promise<{ entries: Array<{ orderId: string }>; nextPageToken: string }>,
): Promise<string[][]> {
  const out: string[][] = [];
  let token = '';
  do {
    const res = await list(token);
    out.push(res.entries.map((e) => e.orderId));
    token = res.nextPageToken;
    assert.ok(out.length < 1_000, 'pages do not end');
  } while (token !== '');
  return out;
}

async function refusal(p: Promise<unknown>): Promise<{ code: number; error: string | undefined; details: string }> {
  try {
    await p;
  } catch (err) {
    assert.ok(isServiceError(err), String(err));
    return { code: err.code, error: errorCodeOf(err), details: err.details };
  }
  throw new Error('expected a refusal');
}

describe('ListOrders', () => {
  const all = [...ORDER_IDS, ...TOMBSTONED_ONLY].sort();

  test('every page size from 1 to past the end: every order id once, in order, full pages but the last', async () => {
    const p = served.participants;
    for (const size of [1, 2, 3, 7, 29, 30, 31, 0]) {
      const got = await pages((pageToken) => callRpc(p.order, 'listOrders', { pageSize: size, pageToken }, OPTS));
      assert.deepEqual(got.flat(), all, `page size ${size}`);
      const per = size === 0 ? PAGE_SIZE_DEFAULT : size;
      for (const page of got.slice(0, -1)) assert.equal(page.length, per, `page size ${size}`);
      assert.ok(
        (got.at(-1)?.length ?? 0) <= per && (got.at(-1)?.length ?? 0) > 0,
        `page size ${size}: no empty last page`,
      );
    }
  });

  test('what each entry holds: the order, and whether a tombstone is kept for its id', async () => {
    const { entries } = await callRpc(
      served.participants.order,
      'listOrders',
      { pageSize: PAGE_SIZE_MAX, pageToken: '' },
      OPTS,
    );
    const byId = new Map(entries.map((e) => [e.orderId, e]));
    assert.equal(byId.get('ord_001')?.order?.status, OrderStatus.ORDER_STATUS_CONFIRMED);
    assert.deepEqual(
      [byId.get('ord_002')?.order?.status, byId.get('ord_002')?.order?.reason],
      [OrderStatus.ORDER_STATUS_CANCELLED, 'payment_declined'],
    );
    assert.deepEqual(
      [
        byId.get('ord_000')?.order?.totalCents,
        byId.get('ord_000')?.order?.items.length,
        byId.get('ord_000')?.tombstoned,
      ],
      [100, 1, false],
    );
    // Cancelled before it was created: its create was born cancelled, and the tombstone stays.
    assert.deepEqual(
      [byId.get('ord_007')?.order?.status, byId.get('ord_007')?.order?.reason, byId.get('ord_007')?.tombstoned],
      [OrderStatus.ORDER_STATUS_CANCELLED, 'cancelled_early', true],
    );
    assert.deepEqual([byId.get('zz_last')?.order, byId.get('zz_last')?.tombstoned], [undefined, true]);
  });

  test('a page size out of range and a token it did not give out are INVALID_ARGUMENT, naming the field', async () => {
    const p = served.participants;
    for (const pageSize of [-1, PAGE_SIZE_MAX + 1]) {
      const r = await refusal(callRpc(p.order, 'listOrders', { pageSize, pageToken: '' }, OPTS));
      assert.deepEqual([r.code, r.error], [status.INVALID_ARGUMENT, 'invalid_argument']);
      assert.match(r.details, /^page_size must be an integer from 1 to 1000 \(0: 500\)/);
    }
    const forged = [
      Buffer.from('ord_003').toString('base64url'),
      'not a token!',
      Buffer.from('o1:').toString('base64url'),
      Buffer.from('o1:bad id').toString('base64url'),
    ];
    for (const pageToken of forged) {
      const r = await refusal(callRpc(p.order, 'listOrders', { pageSize: 2, pageToken }, OPTS));
      assert.deepEqual([r.code, r.error], [status.INVALID_ARGUMENT, 'invalid_argument'], pageToken);
      assert.match(r.details, /^page_token is not one this service gave out/);
    }
  });

  test('an order created between two pages is found on a later page when its id comes later, never twice', async () => {
    const p = served.participants;
    const first = await callRpc(p.order, 'listOrders', { pageSize: 10, pageToken: '' }, OPTS);
    const orders = createOrderStore(dbs[0] as Db);
    const create = (orderId: string) =>
      orders.create(
        validateCreate(
          { orderId, customerId: 'c1', items: [{ productId: 'p1', quantity: 1, unitPriceCents: 100 }], createdAtMs: 1 },
          1,
        ),
      );
    create('ord_999');
    create('b_0');
    const rest = await pages((pageToken) =>
      callRpc(p.order, 'listOrders', { pageSize: 10, pageToken: pageToken || first.nextPageToken }, OPTS),
    );
    const ids = [...first.entries.map((e) => e.orderId), ...rest.flat()];
    assert.equal(new Set(ids).size, ids.length, 'no id twice');
    assert.ok(ids.includes('ord_999'), 'a later id is found');
    assert.ok(!ids.includes('b_0'), 'an id inside a page already read is not (the next read finds it)');
  });
});

describe('ListPayments', () => {
  test('every payment and tombstone, paged: status, amount, refunded amount', async () => {
    const p = served.participants;
    const got = await pages((pageToken) => callRpc(p.payment, 'listPayments', { pageSize: 2, pageToken }, OPTS));
    assert.deepEqual(got, [
      ['ord_001', 'ord_002'],
      ['ord_003', 'ord_004'],
    ]);
    const { entries } = await callRpc(p.payment, 'listPayments', { pageSize: 0, pageToken: '' }, OPTS);
    assert.deepEqual(entries, [
      {
        orderId: 'ord_001',
        status: PaymentStatus.PAYMENT_STATUS_CHARGED,
        amountCents: 100,
        refundedCents: 0,
        tombstoned: false,
      },
      {
        orderId: 'ord_002',
        status: PaymentStatus.PAYMENT_STATUS_DECLINED,
        amountCents: 600,
        refundedCents: 0,
        tombstoned: false,
      },
      {
        orderId: 'ord_003',
        status: PaymentStatus.PAYMENT_STATUS_REFUNDED,
        amountCents: 250,
        refundedCents: 250,
        tombstoned: false,
      },
      {
        orderId: 'ord_004',
        status: PaymentStatus.PAYMENT_STATUS_NONE,
        amountCents: 0,
        refundedCents: 0,
        tombstoned: true,
      },
    ]);
    const r = await refusal(callRpc(p.payment, 'listPayments', { pageSize: 5_000, pageToken: '' }, OPTS));
    assert.equal(r.code, status.INVALID_ARGUMENT);
  });
});

describe('ListReservations and ListProducts', () => {
  test('every reservation and tombstone, paged: status and lines (summed, sorted)', async () => {
    const p = served.participants;
    const got = await pages((pageToken) => callRpc(p.inventory, 'listReservations', { pageSize: 3, pageToken }, OPTS));
    assert.deepEqual(got, [['ord_001', 'ord_002', 'ord_005'], ['ord_006']]);
    const { entries } = await callRpc(p.inventory, 'listReservations', { pageSize: 0, pageToken: '' }, OPTS);
    assert.deepEqual(entries, [
      {
        orderId: 'ord_001',
        status: ReservationStatus.RESERVATION_STATUS_COMMITTED,
        items: [
          { productId: 'p1', quantity: 4 },
          { productId: 'p2', quantity: 2 },
        ],
        tombstoned: false,
      },
      {
        orderId: 'ord_002',
        status: ReservationStatus.RESERVATION_STATUS_RELEASED,
        items: [{ productId: 'p1', quantity: 1 }],
        tombstoned: false,
      },
      {
        orderId: 'ord_005',
        status: ReservationStatus.RESERVATION_STATUS_HELD,
        items: [{ productId: 'p1', quantity: 5 }],
        tombstoned: false,
      },
      { orderId: 'ord_006', status: ReservationStatus.RESERVATION_STATUS_NONE, items: [], tombstoned: true },
    ]);
    const r = await refusal(callRpc(p.inventory, 'listReservations', { pageSize: 1, pageToken: 'x' }, OPTS));
    assert.equal(r.code, status.INVALID_ARGUMENT);
  });

  test('each product says the stock ever supplied, and its counters add up to it', async () => {
    const { products } = await callRpc(served.participants.inventory, 'listProducts', { productIds: [] }, OPTS);
    assert.deepEqual(
      products.map((x) => [x.productId, x.available, x.reserved, x.sold, x.total]),
      [
        ['p1', 91, 5, 4, 100],
        ['p2', 48, 0, 2, 50],
      ],
    );
  });

  test('the gateway reads them as books: plain records, tombstones marked', async () => {
    const books = grpcParticipantBooks(served.participants, 5_000);
    const page = await books.reservations('', 2);
    assert.deepEqual(page.entries, [
      {
        orderId: 'ord_001',
        status: 'COMMITTED',
        lines: [
          { productId: 'p1', quantity: 4 },
          { productId: 'p2', quantity: 2 },
        ],
        tombstoned: false,
      },
      { orderId: 'ord_002', status: 'RELEASED', lines: [{ productId: 'p1', quantity: 1 }], tombstoned: false },
    ]);
    assert.notEqual(page.nextPageToken, '');
    assert.deepEqual(
      (await books.payments('', 10)).entries.map((e) => [e.orderId, e.status ?? 'none', e.tombstoned]),
      [
        ['ord_001', 'CHARGED', false],
        ['ord_002', 'DECLINED', false],
        ['ord_003', 'REFUNDED', false],
        ['ord_004', 'none', true],
      ],
    );
    const order = (await books.orders('', 2)).entries[0];
    assert.deepEqual(order, {
      orderId: 'a_first',
      status: undefined,
      customerId: '',
      totalCents: 0,
      lines: [],
      reason: '',
      tombstoned: true,
    });
    assert.deepEqual(await books.products(), [
      { productId: 'p1', available: 91, reserved: 5, sold: 4, total: 100 },
      { productId: 'p2', available: 48, reserved: 0, sold: 2, total: 50 },
    ]);
  });
});

describe('the inventory total on a database from before it', () => {
  test('it is what the products held when the database was upgraded; seeded ones get the catalog stock', () => {
    const file = path.join(tempDir('inventory-total'), 'inventory.db');
    const old = openDatabase(file, { migrations: INVENTORY_MIGRATIONS.slice(0, 3) });
    old.exec(
      "INSERT INTO products (product_id, available, reserved, sold) VALUES ('apple', 7, 2, 1); INSERT INTO meta (key, value) VALUES ('seeded_at', '1')",
    );
    old.close();
    const db = openInventoryDatabase(file);
    try {
      const store = createInventoryStore(db, { catalog: { apple: 99 } });
      assert.deepEqual(store.listProducts(), [{ productId: 'apple', available: 7, reserved: 2, sold: 1, total: 10 }]);
    } finally {
      db.close();
    }
    const fresh = openInventoryDatabase(':memory:');
    try {
      assert.deepEqual(createInventoryStore(fresh, { catalog: { apple: 3 } }).listProducts(), [
        { productId: 'apple', available: 3, reserved: 0, sold: 0, total: 3 },
      ]);
    } finally {
      fresh.close();
    }
  });
});
