/**
 * `GET /api/reconcile` and `sagas reconcile` over real parts in this process (the three real
 * participants on a real gRPC server over mutual TLS, a SQLite saga log, the engine): books that
 * agree, paging with a page far smaller than the books, the viewer role, a book broken behind the
 * saga's back (a refund of a confirmed order at the payment service), a participant down. Then
 * the reader's guards against a system that moves while it reads, with fakes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import type { LightMyRequestResponse } from 'fastify';
import { gatewayApp, type GatewayApp } from '../helpers/gateway-app.js';
import { main } from '../../src/cli/main.js';
import { callRpc } from '../../src/platform/grpc/grpc.js';
import { reconcile, type ReconcileSources } from '../../src/reconcile/read.js';
import { grpcParticipantBooks, BooksReadError, type ParticipantBooks } from '../../src/reconcile/participant-books.js';
import type { ProductBook } from '../../src/reconcile/books.js';
import { SAGA_STATUSES, type SagaRecord, type SagaStatus } from '../../src/saga/model.js';

const OPERATOR = 'op-Reconcile-0123456789';
const VIEWER = 'vw-Reconcile-9876543210';
const viewer = { authorization: `Bearer ${VIEWER}` };
const json = (r: LightMyRequestResponse) => r.json<Record<string, unknown>>();

const HAPPY = {
  customer_id: 'cust_rec',
  items: [
    { product_id: 'prod_1', quantity: 1, price: 10 },
    { product_id: 'prod_2', quantity: 2, price: 5 },
  ],
};
const DECLINED = { customer_id: 'cust_rec', items: [{ product_id: 'prod_1', quantity: 1, price: 600 }] };
const NO_STOCK = { customer_id: 'cust_rec', items: [{ product_id: 'prod_3', quantity: 1, price: 1 }] };

let g: GatewayApp;
const placed: Record<string, string[]> = { COMPLETED: [], COMPENSATED: [] };

before(async () => {
  g = await gatewayApp({ adminTokens: `ops:operator:${OPERATOR},watcher:viewer:${VIEWER}` });
  const place = async (body: unknown) => {
    const r = json(
      await g.app.inject({ method: 'POST', url: '/orders', payload: body as object, headers: { prefer: 'wait=5' } }),
    );
    placed[r.saga_status as string]?.push(r.id as string);
  };
  for (const body of [HAPPY, DECLINED, HAPPY, NO_STOCK, HAPPY, DECLINED, HAPPY]) await place(body);
  assert.deepEqual([placed.COMPLETED?.length, placed.COMPENSATED?.length], [4, 3]);
});
after(() => g.close());

const reconcileApi = (query = '', headers: Record<string, string> = viewer) =>
  g.admin.inject({ method: 'GET', url: `/api/reconcile${query}`, headers });

describe('GET /api/reconcile', () => {
  test('the books agree: every saga and record counted, nothing to report (a viewer may ask)', async () => {
    const r = await reconcileApi();
    assert.equal(r.statusCode, 200, r.body);
    const body = json(r);
    assert.deepEqual(body, {
      ok: true,
      settled: false,
      // 4 confirmed orders and 3 cancelled; 4 charged + 2 declined; 4 sold + 2 released (no reservation for the one out of stock).
      checked: { sagas: 7, orders: 7, payments: 6, reservations: 6, products: 3 },
      by_status: { RUNNING: 0, COMPENSATING: 0, COMPLETED: 4, COMPENSATED: 3, PARKED: 0, RESOLVED: 0 },
      not_judged: { in_flight: 0, resolved: 0, other_definition: 0, moved_while_reading: 0, pruned: 0 },
      stock_sums_compared: true,
      disagreements: [],
    });
    const settled = json(await reconcileApi('?settled=true'));
    assert.deepEqual([settled.ok, settled.settled], [true, true]);
    assert.equal(json(await reconcileApi('?settled=1')).settled, true);
  });

  test('a page of 1 or 2 reads the same books, page after page', async () => {
    const whole = json(await reconcileApi('?settled=true'));
    for (const size of [1, 2])
      assert.deepEqual(json(await reconcileApi(`?settled=true&page_size=${size}`)), whole, `page_size=${size}`);

    // What the reader asked for: many pages of each, each no bigger than asked.
    const calls: Record<string, number[]> = { sagas: [], orders: [], payments: [], reservations: [] };
    const books = grpcParticipantBooks(g.participants, 5_000);
    const counted: ParticipantBooks = {
      orders: async (t, n) => record('orders', await books.orders(t, n)),
      payments: async (t, n) => record('payments', await books.payments(t, n)),
      reservations: async (t, n) => record('reservations', await books.reservations(t, n)),
      products: () => books.products(),
    };
    function record<P extends { entries: unknown[] }>(what: string, page: P): P {
      calls[what]?.push(page.entries.length);
      return page;
    }
    const log: ReconcileSources['log'] = {
      list: async (q) => {
        const page = await g.log.list(q);
        calls.sagas?.push(page.sagas.length);
        return page;
      },
      get: (id) => g.log.get(id),
      countByStatus: () => g.log.countByStatus(),
    };
    const report = await reconcile({ log, books: counted }, { settled: true, pageSize: 2 });
    assert.deepEqual(report.checked, whole.checked);
    assert.equal(report.ok, true);
    assert.deepEqual(calls.sagas, [2, 2, 2, 1]);
    assert.deepEqual(calls.orders, [2, 2, 2, 1]);
    assert.deepEqual(calls.payments, [2, 2, 2]);
    assert.deepEqual(calls.reservations, [2, 2, 2]);
  });

  test('callers at once all get the answer of a shared read', async () => {
    const answers = await Promise.all(Array.from({ length: 5 }, () => reconcileApi('?settled=true')));
    for (const r of answers) assert.equal(r.statusCode, 200);
    assert.equal(new Set(answers.map((r) => r.body)).size, 1);
    assert.equal(json(answers[4] as LightMyRequestResponse).ok, true);
  });

  test('bad parameters are 400 naming them; no token is 401', async () => {
    for (const q of ['?page_size=0', '?page_size=1001', '?page_size=x', '?settled=maybe']) {
      const r = await reconcileApi(q);
      assert.equal(r.statusCode, 400, q);
      assert.equal(json(r).error, 'invalid_request', q);
    }
    const r = await reconcileApi('', {});
    assert.equal(r.statusCode, 401);
    assert.equal(json(r).error, 'unauthenticated');
  });
});

describe('sagas reconcile', () => {
  let url: string;
  before(async () => {
    url = await g.admin.listen({ host: '127.0.0.1', port: 0 });
  });

  async function cli(argv: string[], env: NodeJS.ProcessEnv = { SAGAS_ADMIN_TOKEN: VIEWER }) {
    let out = '';
    let err = '';
    const sink = (f: (s: string) => void) => new Writable({ write: (c, _e, cb) => (f(String(c)), cb()) });
    const code = await main(argv, {
      env: { SAGAS_ADMIN_URL: url, ...env },
      stdout: sink((s) => (out += s)),
      stderr: sink((s) => (err += s)),
    });
    return { code, out, err };
  }

  test('the books agree: exit 0, and what was checked', async () => {
    const r = await cli(['reconcile', '--settled']);
    assert.equal(r.code, 0, r.err);
    assert.equal(
      r.out,
      'the books agree: 7 sagas, 7 orders, 6 payments, 6 reservations, 3 products (COMPLETED 4, COMPENSATED 3)\n',
    );
    const paged = await cli(['reconcile', '--page-size', '1', '--json']);
    assert.equal(paged.code, 0);
    assert.equal(JSON.parse(paged.out).ok, true);
  });

  test("a confirmed order refunded behind the saga's back: exit 1, refund_on_confirmed_order for that order", async () => {
    const id = placed.COMPLETED?.[1] as string;
    // An operator's hand at the payment service: the gateway's own client, a fresh idempotency key.
    await callRpc(
      g.participants.payment,
      'refund',
      { orderId: id },
      { idempotencyKey: `by-hand-${id}`, timeoutMs: 5_000 },
    );
    const r = await cli(['reconcile', '--settled']);
    assert.equal(r.code, 1, r.err);
    assert.equal(
      r.out,
      [
        'the books disagree: 1 disagreement(s) in 7 sagas, 7 orders, 6 payments, 6 reservations, 3 products (COMPLETED 4, COMPENSATED 3)',
        '',
        'a confirmed order whose payment was refunded (refund_on_confirmed_order): 1',
        `  - order ${id} is CONFIRMED but its payment of $20.00 was refunded`,
        '',
      ].join('\n'),
    );
    const j = await cli(['reconcile', '--json']);
    assert.equal(j.code, 1);
    const body = JSON.parse(j.out);
    assert.equal(body.ok, false);
    assert.deepEqual(body.disagreements, [
      {
        kind: 'refund_on_confirmed_order',
        saga_id: id,
        order_id: id,
        message: `order ${id} is CONFIRMED but its payment of $20.00 was refunded`,
      },
    ]);
  });

  test("a wrong command line is exit 2; no token exit 1 with the API's refusal", async () => {
    const bad = await cli(['reconcile', '--page-size', '0']);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /^sagas reconcile: --page-size must be a whole number from 1 to 1000, got "0"/);
    const none = await cli(['reconcile'], {});
    assert.equal(none.code, 1);
    assert.match(none.err, /unauthenticated \(401\)/);
  });

  test('a participant down: 503 participant_unavailable, exit 1 naming it', async () => {
    await g.stopParticipants();
    const r = await reconcileApi();
    assert.equal(r.statusCode, 503);
    assert.equal(json(r).error, 'participant_unavailable');
    const c = await cli(['reconcile']);
    assert.equal(c.code, 1);
    assert.match(
      c.err,
      /^sagas reconcile: participant_unavailable \(503\): the (order|payment|inventory) service is unavailable/,
    );
  });
});

describe('the reader, against books that move while it reads (fakes)', () => {
  const saga = (id: string, status: SagaStatus, updatedAt = 1): SagaRecord => ({
    id,
    definition: 'place_order',
    version: 1,
    status,
    stepIndex: 0,
    compIndex: -1,
    attempt: 0,
    input: {
      order_id: id,
      customer_id: 'c',
      total_cents: 100,
      items: [{ product_id: 'p', quantity: 1, unit_price_cents: 100 }],
    },
    results: {},
    failure: null,
    traceparent: null,
    idempotencyKey: null,
    leaseOwner: null,
    leaseExpiresAt: 0,
    deadlineAt: 0,
    createdAt: 1,
    updatedAt,
    subject: 'c',
    currentStep: null,
  });
  const counts = (sagas: SagaRecord[]) =>
    Object.fromEntries(SAGA_STATUSES.map((s) => [s, sagas.filter((x) => x.status === s).length])) as Record<
      SagaStatus,
      number
    >;
  const products: ProductBook[] = [{ productId: 'p', available: 9, reserved: 0, sold: 1, total: 10 }];

  /** A log that answers `listed` while reading and `later` afterwards (get, the second count). */
  function movingLog(listed: SagaRecord[], later: SagaRecord[]): ReconcileSources['log'] {
    let countsAsked = 0;
    return {
      list: async () => ({ sagas: listed, nextCursor: null }),
      get: async (id) => later.find((s) => s.id === id),
      countByStatus: async () => counts(countsAsked++ === 0 ? listed : later),
    };
  }
  const books = (over: Partial<ParticipantBooks> = {}): ParticipantBooks => ({
    orders: async () => ({
      entries: [
        {
          orderId: 'o1',
          status: 'PENDING',
          customerId: 'c',
          totalCents: 100,
          lines: [{ productId: 'p', quantity: 1, unitPriceCents: 100 }],
          reason: '',
          tombstoned: false,
        },
      ],
      nextPageToken: '',
    }),
    payments: async () => ({ entries: [], nextPageToken: '' }),
    reservations: async () => ({
      entries: [{ orderId: 'o1', status: 'COMMITTED', lines: [{ productId: 'p', quantity: 1 }], tombstoned: false }],
      nextPageToken: '',
    }),
    products: async () => products,
    ...over,
  });

  test('a disagreement whose saga moved while reading is left out and counted; with settled it is a saga in flight', async () => {
    // Read: PARKED with its order PENDING and its stock sold (neither way out fits); then an
    // operator's retry finished it. What was read is no longer true.
    const listed = [saga('o1', 'PARKED', 1)];
    const later = [saga('o1', 'COMPLETED', 2)];
    const loose = await reconcile({ log: movingLog(listed, later), books: books() });
    assert.deepEqual(
      [loose.ok, loose.disagreements, loose.not_judged.moved_while_reading, loose.stock_sums_compared],
      [true, [], 2, false],
    );
    const settled = await reconcile({ log: movingLog(listed, later), books: books() }, { settled: true });
    assert.deepEqual(
      settled.disagreements.map((d) => [d.kind, d.order_id ?? null]),
      [
        ['saga_in_flight', null],
        ['saga_in_flight', 'o1'],
      ],
    );
    assert.match(
      settled.disagreements[0]?.message ?? '',
      /^the saga log changed while the books were read \(sagas by status before: PARKED 1; after: COMPLETED 1\)$/,
    );
    assert.match(
      settled.disagreements[1]?.message ?? '',
      /^saga o1 moved while the books were read \(it is COMPLETED now\)$/,
    );
  });

  test('the same books, nothing moved: the disagreements stand', async () => {
    const listed = [saga('o1', 'PARKED', 1)];
    const r = await reconcile({ log: movingLog(listed, listed), books: books() });
    assert.deepEqual(
      r.disagreements.map((d) => d.kind),
      ['sold_without_confirmed_order', 'parked_books_inconsistent'],
    );
    assert.equal(r.stock_sums_compared, true);
  });

  test('records of a saga created after the log was read are not "without a saga"', async () => {
    const r = await reconcile({ log: movingLog([], [saga('o1', 'RUNNING', 5)]), books: books() });
    assert.deepEqual([r.ok, r.not_judged.moved_while_reading], [true, 2]);
  });

  test('a participant whose pages do not advance is a failure, not a loop', async () => {
    const stuck = books({
      payments: async (token) => ({
        entries: [{ orderId: 'o1', status: 'CHARGED', amountCents: 1, refundedCents: 0, tombstoned: false }],
        nextPageToken: token || 'again',
      }),
    });
    await assert.rejects(
      reconcile({ log: movingLog([], []), books: stuck }),
      (err: unknown) =>
        err instanceof BooksReadError && err.code === 'participant_error' && /listed o1 after o1/.test(err.message),
    );
    const empty = books({ orders: async () => ({ entries: [], nextPageToken: 'more' }) });
    await assert.rejects(
      reconcile({ log: movingLog([], []), books: empty }),
      (err: unknown) => err instanceof BooksReadError && /empty page that is not the last/.test(err.message),
    );
  });
});
