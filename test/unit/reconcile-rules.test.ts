/**
 * `sagas reconcile`'s rules (src/reconcile/rules.ts), table-tested without I/O: one row per kind
 * of disagreement, rows of books that agree, and every combination of a PARKED saga's books
 * against DESIGN §6.7 (consistent iff they fit one of its two ways out).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DISAGREEMENT_KINDS, DISAGREEMENT_TITLES, judge, type DisagreementKind } from '../../src/reconcile/rules.js';
import {
  sagaBookOf,
  sagaOrderOf,
  type Books,
  type OrderBook,
  type PaymentBook,
  type ProductBook,
  type ReservationBook,
  type SagaBook,
} from '../../src/reconcile/books.js';
import type { SagaRecord, SagaStatus } from '../../src/saga/model.js';
import type { Json } from '../../src/saga/definition.js';
import { uuidv7 } from '../../src/platform/ids.js';

const ID = 'ord_1';
const TOTAL = 2_000;
const LINES = [{ productId: 'p1', quantity: 2 }];
const SUPPLIED = 10;

function saga(status: SagaStatus, over: Partial<SagaBook> = {}): SagaBook {
  return {
    id: ID,
    definition: 'place_order',
    status,
    currentStep: null,
    updatedAt: 1,
    placesOrder: true,
    order: {
      orderId: ID,
      customerId: 'c1',
      totalCents: TOTAL,
      lines: [{ productId: 'p1', quantity: 2, unitPriceCents: 1_000 }],
    },
    ...over,
  };
}

type OrderState = OrderBook['status'] | 'tombstone';
type PaymentState = PaymentBook['status'] | 'tombstone' | 'other_amount';
type ReservationState = ReservationBook['status'] | 'tombstone';

function order(state: OrderState, over: Partial<OrderBook> = {}): OrderBook | undefined {
  if (state === undefined) return undefined;
  const tombstone = state === 'tombstone';
  return {
    orderId: ID,
    status: tombstone ? undefined : state,
    customerId: tombstone ? '' : 'c1',
    totalCents: tombstone ? 0 : TOTAL,
    lines: tombstone ? [] : [{ productId: 'p1', quantity: 2, unitPriceCents: 1_000 }],
    reason: state === 'CANCELLED' ? 'payment_declined' : '',
    tombstoned: tombstone,
    ...over,
  };
}

function payment(state: PaymentState): PaymentBook | undefined {
  if (state === undefined) return undefined;
  if (state === 'tombstone')
    return { orderId: ID, status: undefined, amountCents: 0, refundedCents: 0, tombstoned: true };
  const status = state === 'other_amount' ? 'CHARGED' : state;
  const amountCents = state === 'other_amount' ? TOTAL - 1 : TOTAL;
  return {
    orderId: ID,
    status,
    amountCents,
    refundedCents: status === 'REFUNDED' ? amountCents : 0,
    tombstoned: false,
  };
}

function reservation(state: ReservationState, lines = LINES): ReservationBook | undefined {
  if (state === undefined) return undefined;
  if (state === 'tombstone') return { orderId: ID, status: undefined, lines: [], tombstoned: true };
  return { orderId: ID, status: state, lines, tombstoned: false };
}

/** The products as an inventory that kept its own books right holds them for these reservations. */
function stockFor(reservations: readonly (ReservationBook | undefined)[]): ProductBook[] {
  let reserved = 0;
  let sold = 0;
  for (const r of reservations) {
    const q = r?.lines.filter((l) => l.productId === 'p1').reduce((n, l) => n + l.quantity, 0) ?? 0;
    if (r?.status === 'HELD') reserved += q;
    if (r?.status === 'COMMITTED') sold += q;
  }
  return [{ productId: 'p1', available: SUPPLIED - reserved - sold, reserved, sold, total: SUPPLIED }];
}

interface Row {
  name: string;
  saga?: SagaBook;
  order?: OrderState;
  payment?: PaymentState;
  reservation?: ReservationState;
  lines?: typeof LINES;
  products?: ProductBook[];
  settled?: boolean;
  stable?: boolean;
  expect: DisagreementKind[];
}

function books(row: Pick<Row, 'saga' | 'order' | 'payment' | 'reservation' | 'lines' | 'products'>): Books {
  const r = reservation(row.reservation, row.lines);
  const only = <T>(x: T | undefined): T[] => (x === undefined ? [] : [x]);
  return {
    sagas: only(row.saga),
    orders: only(order(row.order)),
    payments: only(payment(row.payment)),
    reservations: only(r),
    products: row.products ?? stockFor([r]),
  };
}

const kindsOf = (row: Row) =>
  judge(books(row), { settled: row.settled ?? false, stable: row.stable ?? true }).disagreements.map((d) => d.kind);

const AGREE: Row[] = [
  {
    name: 'completed: confirmed, charged the total, stock sold',
    saga: saga('COMPLETED'),
    order: 'CONFIRMED',
    payment: 'CHARGED',
    reservation: 'COMMITTED',
    expect: [],
  },
  {
    name: 'compensated after a decline: cancelled, declined, released',
    saga: saga('COMPENSATED'),
    order: 'CANCELLED',
    payment: 'DECLINED',
    reservation: 'RELEASED',
    expect: [],
  },
  {
    name: 'compensated for lack of stock: cancelled, nothing charged or held',
    saga: saga('COMPENSATED'),
    order: 'CANCELLED',
    expect: [],
  },
  {
    name: 'compensated after a charge: cancelled, refunded, released',
    saga: saga('COMPENSATED'),
    order: 'CANCELLED',
    payment: 'REFUNDED',
    reservation: 'RELEASED',
    expect: [],
  },
  {
    name: 'compensated before anything landed: three tombstones',
    saga: saga('COMPENSATED'),
    order: 'tombstone',
    payment: 'tombstone',
    reservation: 'tombstone',
    expect: [],
  },
  {
    name: 'in flight, books half way: not judged',
    saga: saga('RUNNING', { currentStep: 'charge_payment' }),
    order: 'PENDING',
    reservation: 'HELD',
    expect: [],
  },
  {
    name: 'compensating, books half way back: not judged',
    saga: saga('COMPENSATING'),
    order: 'PENDING',
    payment: 'REFUNDED',
    reservation: 'HELD',
    expect: [],
  },
  {
    name: 'RESOLVED by an operator: counted, not judged, whatever its books',
    saga: saga('RESOLVED'),
    order: 'CONFIRMED',
    payment: 'REFUNDED',
    reservation: 'RELEASED',
    expect: [],
  },
  {
    name: 'no saga, only tombstones and a decline: nothing held',
    payment: 'DECLINED',
    reservation: 'tombstone',
    expect: [],
  },
  { name: 'no saga, a refunded charge: nothing held net', payment: 'REFUNDED', expect: [] },
  {
    name: 'a saga of another definition is not judged',
    saga: saga('COMPLETED', { definition: 'other', placesOrder: false, order: undefined }),
    expect: [],
  },
];

const ONE_PER_KIND: Row[] = [
  {
    name: 'charge_without_confirmed_order: compensated, cancelled, still charged',
    saga: saga('COMPENSATED'),
    order: 'CANCELLED',
    payment: 'CHARGED',
    reservation: 'RELEASED',
    expect: ['charge_without_confirmed_order'],
  },
  {
    name: 'confirmed_without_charge: completed, confirmed, nothing charged',
    saga: saga('COMPLETED'),
    order: 'CONFIRMED',
    reservation: 'COMMITTED',
    expect: ['confirmed_without_charge'],
  },
  {
    name: 'charge_amount_mismatch: confirmed, charged another amount',
    saga: saga('COMPLETED'),
    order: 'CONFIRMED',
    payment: 'other_amount',
    reservation: 'COMMITTED',
    expect: ['charge_amount_mismatch'],
  },
  {
    name: 'refund_on_confirmed_order: completed, then refunded behind its back',
    saga: saga('COMPLETED'),
    order: 'CONFIRMED',
    payment: 'REFUNDED',
    reservation: 'COMMITTED',
    expect: ['refund_on_confirmed_order'],
  },
  {
    name: 'sold_without_confirmed_order: compensated, cancelled, stock sold',
    saga: saga('COMPENSATED'),
    order: 'CANCELLED',
    reservation: 'COMMITTED',
    expect: ['sold_without_confirmed_order'],
  },
  {
    name: 'confirmed_without_sold_stock: completed, stock still held',
    saga: saga('COMPLETED'),
    order: 'CONFIRMED',
    payment: 'CHARGED',
    reservation: 'HELD',
    expect: ['confirmed_without_sold_stock'],
  },
  {
    name: 'confirmed_without_sold_stock: completed, stock released',
    saga: saga('COMPLETED'),
    order: 'CONFIRMED',
    payment: 'CHARGED',
    reservation: 'RELEASED',
    expect: ['confirmed_without_sold_stock'],
  },
  {
    name: 'reservation_without_saga: compensated, stock still held',
    saga: saga('COMPENSATED'),
    order: 'CANCELLED',
    reservation: 'HELD',
    expect: ['reservation_without_saga'],
  },
  {
    name: 'reservation_without_saga: held for an order no saga placed',
    reservation: 'HELD',
    expect: ['reservation_without_saga'],
  },
  {
    name: 'stock_not_conserved: available + reserved + sold is not the stock ever supplied',
    saga: saga('COMPLETED'),
    order: 'CONFIRMED',
    payment: 'CHARGED',
    reservation: 'COMMITTED',
    products: [{ productId: 'p1', available: 9, reserved: 0, sold: 2, total: SUPPLIED }],
    expect: ['stock_not_conserved'],
  },
  {
    name: 'stock_not_conserved: reserved is not the sum of the held reservations',
    saga: saga('COMPLETED'),
    order: 'CONFIRMED',
    payment: 'CHARGED',
    reservation: 'COMMITTED',
    products: [{ productId: 'p1', available: 7, reserved: 1, sold: 2, total: SUPPLIED }],
    expect: ['stock_not_conserved'],
  },
  {
    name: 'stock_not_conserved: sold is not the sum of the committed reservations',
    saga: saga('COMPLETED'),
    order: 'CONFIRMED',
    payment: 'CHARGED',
    reservation: 'COMMITTED',
    products: [{ productId: 'p1', available: 9, reserved: 0, sold: 1, total: SUPPLIED }],
    expect: ['stock_not_conserved'],
  },
  {
    name: 'order_status_mismatch: compensated, order still pending',
    saga: saga('COMPENSATED'),
    order: 'PENDING',
    expect: ['order_status_mismatch'],
  },
  {
    name: 'order_status_mismatch: compensated, order confirmed (charged, sold)',
    saga: saga('COMPENSATED'),
    order: 'CONFIRMED',
    payment: 'CHARGED',
    reservation: 'COMMITTED',
    expect: ['order_status_mismatch'],
  },
  {
    name: 'order_status_mismatch: completed, order cancelled',
    saga: saga('COMPLETED'),
    order: 'CANCELLED',
    payment: 'REFUNDED',
    reservation: 'RELEASED',
    expect: ['order_status_mismatch'],
  },
  { name: 'order_without_saga: an order the log never placed', order: 'CANCELLED', expect: ['order_without_saga'] },
  {
    name: 'reservation_lines_mismatch: sold other quantities than ordered',
    saga: saga('COMPLETED'),
    order: 'CONFIRMED',
    payment: 'CHARGED',
    reservation: 'COMMITTED',
    lines: [{ productId: 'p1', quantity: 3 }],
    expect: ['reservation_lines_mismatch'],
  },
  {
    name: "parked_books_inconsistent: the issue's case, confirmed then refunded and released",
    saga: saga('PARKED', { currentStep: 'create_order' }),
    order: 'CONFIRMED',
    payment: 'REFUNDED',
    reservation: 'RELEASED',
    expect: ['refund_on_confirmed_order', 'confirmed_without_sold_stock', 'parked_books_inconsistent'],
  },
  {
    name: 'saga_unreadable: a place-order saga whose input is not an order',
    saga: saga('COMPLETED', { order: undefined }),
    expect: ['saga_unreadable'],
  },
  {
    name: 'saga_in_flight: settled, a saga still running',
    saga: saga('RUNNING', { currentStep: 'reserve_stock' }),
    order: 'PENDING',
    settled: true,
    expect: ['saga_in_flight'],
  },
];

describe('reconcile rules: books that agree', () => {
  for (const row of AGREE) test(row.name, () => assert.deepEqual(kindsOf(row), row.expect));
});

describe('reconcile rules: one row per kind', () => {
  for (const row of ONE_PER_KIND) test(row.name, () => assert.deepEqual(kindsOf(row), row.expect));

  test("order_content_mismatch: another customer, total or lines under the saga's order id", () => {
    const b = books({ saga: saga('COMPENSATED'), order: 'CANCELLED' });
    const d = judge(
      { ...b, orders: [order('PENDING', { customerId: 'someone_else', totalCents: 1 }) as OrderBook] },
      { settled: false, stable: true },
    ).disagreements;
    assert.deepEqual(
      d.map((x) => x.kind),
      ['order_status_mismatch', 'order_content_mismatch'],
    );
    assert.match(d[1]?.message ?? '', /customer someone_else, \$0\.01.*customer c1, \$20\.00/);
  });

  test('stock_not_conserved: a reservation of a product the inventory does not have', () => {
    const b = books({
      saga: saga('COMPLETED'),
      order: 'CONFIRMED',
      payment: 'CHARGED',
      reservation: 'COMMITTED',
      products: [],
    });
    const d = judge(b, { settled: false, stable: true }).disagreements;
    assert.deepEqual(
      d.map((x) => [x.kind, x.product_id, x.order_id]),
      [['stock_not_conserved', 'p1', ID]],
    );
  });

  test('every kind has a row here and a title', () => {
    const covered = new Set([...ONE_PER_KIND.flatMap((r) => r.expect), 'order_content_mismatch']);
    for (const kind of DISAGREEMENT_KINDS) {
      assert.ok(covered.has(kind), `no row for ${kind}`);
      assert.ok(DISAGREEMENT_TITLES[kind].length > 0, kind);
    }
  });

  test('each disagreement names its saga and order, in business words', () => {
    const [d] = judge(
      books({ saga: saga('COMPLETED'), order: 'CONFIRMED', payment: 'REFUNDED', reservation: 'COMMITTED' }),
      { settled: false, stable: true },
    ).disagreements;
    assert.deepEqual(d, {
      kind: 'refund_on_confirmed_order',
      saga_id: ID,
      order_id: ID,
      message: 'order ord_1 is CONFIRMED but its payment of $20.00 was refunded',
    });
  });
});

describe('reconcile rules: what is and is not judged', () => {
  test('in flight: counted, its records not judged; with settled, the saga itself is a disagreement', () => {
    const b = books({
      saga: saga('RUNNING', { currentStep: 'charge_payment' }),
      order: 'CONFIRMED',
      payment: 'REFUNDED',
      reservation: 'RELEASED',
    });
    const loose = judge(b, { settled: false, stable: true });
    assert.deepEqual(loose.disagreements, []);
    assert.equal(loose.notJudged.in_flight, 1);
    const settled = judge(b, { settled: true, stable: true });
    assert.deepEqual(settled.disagreements, [
      { kind: 'saga_in_flight', saga_id: ID, order_id: ID, message: 'saga ord_1 is still RUNNING at charge_payment' },
    ]);
  });

  test('reserved and sold are compared with the reservations only when the books were read as of one moment with nothing in flight', () => {
    const off = [{ productId: 'p1', available: 7, reserved: 1, sold: 2, total: SUPPLIED }];
    const row = {
      saga: saga('COMPLETED'),
      order: 'CONFIRMED' as const,
      payment: 'CHARGED' as const,
      reservation: 'COMMITTED' as const,
      products: off,
    };
    assert.equal(judge(books(row), { settled: false, stable: true }).stockSumsCompared, true);
    const unstable = judge(books(row), { settled: false, stable: false });
    assert.deepEqual([unstable.disagreements, unstable.stockSumsCompared], [[], false]);
    const withLive = books(row);
    const busy = judge(
      {
        ...withLive,
        sagas: [
          ...withLive.sagas,
          saga('RUNNING', { id: 'ord_2', order: { orderId: 'ord_2', customerId: 'c', totalCents: 1, lines: [] } }),
        ],
      },
      { settled: false, stable: true },
    );
    assert.equal(busy.stockSumsCompared, false);
    // available + reserved + sold = total is one row, read at once: judged whatever moves.
    const broken = [{ productId: 'p1', available: 0, reserved: 0, sold: 2, total: SUPPLIED }];
    assert.deepEqual(
      judge(books({ ...row, products: broken }), { settled: false, stable: false }).disagreements.map((d) => d.kind),
      ['stock_not_conserved'],
    );
  });

  test('counts: sagas by status, records (tombstones alone are not records), products', () => {
    const j = judge(
      books({ saga: saga('COMPENSATED'), order: 'tombstone', payment: 'DECLINED', reservation: 'tombstone' }),
      { settled: true, stable: true },
    );
    assert.deepEqual(j.checked, { sagas: 1, orders: 0, payments: 1, reservations: 0, products: 1 });
    assert.equal(j.byStatus.COMPENSATED, 1);
    assert.equal(j.byStatus.RUNNING, 0);
  });

  test('the same books, the same list: most serious kind first, then by order id', () => {
    const two = (id: string, status: PaymentBook['status']): Books => ({
      sagas: [
        {
          ...saga('COMPLETED'),
          id,
          order: {
            orderId: id,
            customerId: 'c1',
            totalCents: TOTAL,
            lines: [{ productId: 'p1', quantity: 2, unitPriceCents: 1_000 }],
          },
        },
      ],
      orders: [{ ...(order('CONFIRMED') as OrderBook), orderId: id }],
      payments: status ? [{ orderId: id, status, amountCents: TOTAL, refundedCents: 0, tombstoned: false }] : [],
      reservations: [{ orderId: id, status: 'COMMITTED', lines: LINES, tombstoned: false }],
      products: [],
    });
    const a = two('ord_b', 'REFUNDED');
    const b = two('ord_a', undefined);
    const merged: Books = {
      sagas: [...a.sagas, ...b.sagas],
      orders: [...a.orders, ...b.orders],
      payments: [...a.payments],
      reservations: [...a.reservations, ...b.reservations],
      products: [{ productId: 'p1', available: 6, reserved: 0, sold: 4, total: SUPPLIED }],
    };
    const d = judge(merged, { settled: false, stable: true }).disagreements;
    assert.deepEqual(
      d.map((x) => [x.kind, x.order_id]),
      [
        ['confirmed_without_charge', 'ord_a'],
        ['refund_on_confirmed_order', 'ord_b'],
      ],
    );
  });
});

describe('reconcile rules: every PARKED combination (DESIGN §6.7)', () => {
  const ORDERS: OrderState[] = [undefined, 'tombstone', 'PENDING', 'CONFIRMED', 'CANCELLED'];
  const PAYMENTS: PaymentState[] = [undefined, 'tombstone', 'CHARGED', 'other_amount', 'REFUNDED', 'DECLINED'];
  const RESERVATIONS: ReservationState[] = [undefined, 'tombstone', 'HELD', 'COMMITTED', 'RELEASED'];

  // DESIGN §6.7 and issue 21, written out again independently of the rules module.
  const forward = (o: OrderState, p: PaymentState, r: ReservationState) =>
    (o === 'PENDING' || o === 'CONFIRMED') &&
    (p === undefined || p === 'CHARGED') &&
    (r === 'HELD' || r === 'COMMITTED') &&
    (o !== 'CONFIRMED' || p === 'CHARGED') &&
    (r !== 'COMMITTED' || o === 'CONFIRMED');
  const backward = (o: OrderState, r: ReservationState) => o !== 'CONFIRMED' && r !== 'COMMITTED';

  test(`${ORDERS.length * PAYMENTS.length * RESERVATIONS.length} combinations: inconsistent iff neither retry nor compensate fits`, () => {
    let consistent = 0;
    for (const o of ORDERS) {
      for (const p of PAYMENTS) {
        for (const r of RESERVATIONS) {
          const what = `order ${o ?? 'none'}, payment ${p ?? 'none'}, reservation ${r ?? 'none'}`;
          const d = judge(
            books({ saga: saga('PARKED', { currentStep: 'charge_payment' }), order: o, payment: p, reservation: r }),
            { settled: true, stable: true },
          ).disagreements;
          const kinds = d.map((x) => x.kind);
          const fits = forward(o, p, r) || backward(o, r);
          if (fits) consistent += 1;
          assert.equal(kinds.includes('parked_books_inconsistent'), !fits, what);
          // A PARKED saga has not ended: what only an ended saga must have is not asked of it.
          for (const k of [
            'charge_without_confirmed_order',
            'reservation_without_saga',
            'order_status_mismatch',
            'saga_in_flight',
          ] as const)
            assert.ok(!kinds.includes(k), `${what}: ${k}`);
          // What is never allowed is reported whatever the saga.
          assert.equal(kinds.includes('refund_on_confirmed_order'), o === 'CONFIRMED' && p === 'REFUNDED', what);
          assert.equal(kinds.includes('sold_without_confirmed_order'), r === 'COMMITTED' && o !== 'CONFIRMED', what);
          if (!fits)
            assert.match(
              d.find((x) => x.kind === 'parked_books_inconsistent')?.message ?? '',
              /^saga ord_1 is PARKED at charge_payment and neither way out fits its books: retry cannot finish it \(.+\), compensate cannot \(.+\)$/,
            );
        }
      }
    }
    assert.ok(consistent > 0 && consistent < ORDERS.length * PAYMENTS.length * RESERVATIONS.length);
  });
});

describe('reconcile books: a saga as the rules read it', () => {
  const record = (input: SagaRecord['input'], definition = 'place_order'): SagaRecord => ({
    id: 'ord_9',
    definition,
    version: 1,
    status: 'COMPLETED',
    stepIndex: 5,
    compIndex: -1,
    attempt: 0,
    input,
    results: {},
    failure: null,
    traceparent: null,
    idempotencyKey: null,
    leaseOwner: null,
    leaseExpiresAt: 0,
    deadlineAt: 0,
    createdAt: 1,
    updatedAt: 2,
    subject: 'c9',
    currentStep: null,
  });

  test('a place-order input is read as its order', () => {
    const input = {
      order_id: 'ord_9',
      customer_id: 'c9',
      total_cents: 300,
      created_at_ms: 1,
      fingerprint: 'f',
      request_id: null,
      items: [{ product_id: 'p', quantity: 3, unit_price_cents: 100 }],
    };
    assert.deepEqual(sagaBookOf(record(input)), {
      id: 'ord_9',
      definition: 'place_order',
      status: 'COMPLETED',
      currentStep: null,
      updatedAt: 2,
      placesOrder: true,
      order: {
        orderId: 'ord_9',
        customerId: 'c9',
        totalCents: 300,
        lines: [{ productId: 'p', quantity: 3, unitPriceCents: 100 }],
      },
    });
  });

  test('an input that is not an order is unreadable; another definition carries none', () => {
    const bads: Json[] = [
      null,
      'x',
      [],
      { order_id: 1 },
      { order_id: 'o', customer_id: 'c', total_cents: -1, items: [] },
      {
        order_id: 'o',
        customer_id: 'c',
        total_cents: 1,
        items: [{ product_id: 'p', quantity: 1.5, unit_price_cents: 1 }],
      },
    ];
    for (const bad of bads) {
      assert.equal(sagaOrderOf(bad), undefined, JSON.stringify(bad));
    }
    assert.deepEqual(
      [sagaBookOf(record({}, 'other')).placesOrder, sagaBookOf(record({}, 'other')).order],
      [false, undefined],
    );
  });
});

describe('an order older than the retention horizon whose saga was pruned', () => {
  const MADE = Date.parse('2026-11-01T00:00:00Z');
  const id = uuidv7(MADE);
  // The books of one order id, without its saga.
  const booksOf = (o: OrderState, p: PaymentState, r: ReservationState): Books => {
    const rs = reservation(r);
    const withId = <T extends { orderId: string }>(x: T | undefined): T[] => (x ? [{ ...x, orderId: id }] : []);
    return {
      sagas: [],
      orders: withId(order(o)),
      payments: withId(payment(p)),
      reservations: withId(rs),
      products: stockFor([rs]),
    };
  };

  test('is counted as pruned, not as an order no saga placed', () => {
    const j = judge(booksOf('CONFIRMED', 'CHARGED', 'COMMITTED'), {
      settled: true,
      stable: true,
      prunedBefore: MADE + 1,
    });
    assert.deepEqual(j.disagreements, []);
    assert.equal(j.notJudged.pruned, 1);
  });

  test('made after the horizon (or with retention off), it is still an order no saga placed', () => {
    for (const prunedBefore of [MADE, undefined]) {
      const j = judge(booksOf('CANCELLED', 'REFUNDED', 'RELEASED'), {
        settled: true,
        stable: true,
        ...(prunedBefore === undefined ? {} : { prunedBefore }),
      });
      assert.deepEqual(
        j.disagreements.map((d) => d.kind),
        ['order_without_saga'],
      );
      assert.equal(j.notJudged.pruned, 0);
    }
  });

  test('its records are still judged against each other', () => {
    const j = judge(booksOf('CANCELLED', 'CHARGED', 'RELEASED'), {
      settled: true,
      stable: true,
      prunedBefore: MADE + 1,
    });
    assert.deepEqual(
      j.disagreements.map((d) => d.kind),
      ['charge_without_confirmed_order'],
    );
  });
});
