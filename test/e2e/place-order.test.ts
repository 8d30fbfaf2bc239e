import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { freshSystem, eventually } from '../helpers/system.js';

const HAPPY = {
  customer_id: 'cust_123',
  items: [
    { product_id: 'prod_1', quantity: 2, price: 50.0 },
    { product_id: 'prod_2', quantity: 1, price: 30.0 },
  ],
};
const DECLINED = { customer_id: 'cust_456', items: [{ product_id: 'prod_1', quantity: 1, price: 600.0 }] };
const NO_STOCK = { customer_id: 'cust_789', items: [{ product_id: 'prod_3', quantity: 1, price: 10.0 }] };

let sys: Awaited<ReturnType<typeof freshSystem>>;
before(async () => {
  sys = await freshSystem();
});
after(async () => {
  await sys?.stop();
});

async function stock() {
  const r = await sys.api('GET', '/products');
  assert.equal(r.status, 200);
  return Object.fromEntries(
    r.body.products.map((p: { product_id: string; available: number; reserved: number }) => [
      p.product_id,
      { available: p.available, reserved: p.reserved },
    ]),
  );
}

test("the original's curls: confirmed, declined, out of stock, with stock where it should be", async () => {
  assert.deepEqual(await stock(), {
    prod_1: { available: 15, reserved: 0 },
    prod_2: { available: 10, reserved: 0 },
    prod_3: { available: 0, reserved: 0 },
  });

  const ok = await sys.api('POST', '/orders', HAPPY, { 'X-Idempotency-Key': 'unique-key-001', Prefer: 'wait=10' });
  assert.equal(ok.status, 201);
  assert.equal(ok.body.status, 'CONFIRMED');
  assert.equal(ok.body.total, 130);
  assert.equal(ok.body.customer_id, 'cust_123');
  assert.deepEqual(ok.body.items, HAPPY.items);
  assert.match(ok.body.created_at, /^\d{4}-\d\d-\d\dT/);
  assert.equal(ok.headers.get('preference-applied'), 'wait=10');
  assert.deepEqual(await stock(), {
    prod_1: { available: 13, reserved: 0 },
    prod_2: { available: 9, reserved: 0 },
    prod_3: { available: 0, reserved: 0 },
  });
  const got = await sys.api('GET', `/orders/${ok.body.id}`);
  assert.equal(got.status, 200);
  assert.equal(got.body.status, 'CONFIRMED');
  assert.equal(got.body.saga_status, 'COMPLETED');
  assert.deepEqual(got.body.payment, { status: 'charged', amount: 130 });
  assert.equal(got.body.reason, undefined);

  const declined = await sys.api('POST', '/orders', DECLINED, {
    'X-Idempotency-Key': 'unique-key-fail-002',
    Prefer: 'wait=10',
  });
  assert.equal(declined.status, 201);
  assert.equal(declined.body.status, 'CANCELLED');
  assert.equal(declined.body.reason, 'payment_declined');
  const declinedGet = await sys.api('GET', `/orders/${declined.body.id}`);
  assert.deepEqual(declinedGet.body.payment, { status: 'declined', amount: 600 });
  assert.equal(declinedGet.body.saga_status, 'COMPENSATED');
  assert.deepEqual((await stock()).prod_1, { available: 13, reserved: 0 });

  const none = await sys.api('POST', '/orders', NO_STOCK, { Prefer: 'wait=10' });
  assert.equal(none.status, 201);
  assert.equal(none.body.status, 'CANCELLED');
  assert.equal(none.body.reason, 'insufficient_stock');
  assert.deepEqual((await stock()).prod_3, { available: 0, reserved: 0 });
});

test('without Prefer the order comes back PENDING at once and the saga finishes in the background', async () => {
  const r = await sys.api('POST', '/orders', {
    customer_id: 'c-bg',
    items: [{ product_id: 'prod_2', quantity: 1, price: 1.25 }],
  });
  assert.equal(r.status, 201);
  assert.equal(r.body.status, 'PENDING');
  assert.equal(r.body.total, 1.25);
  assert.ok(r.headers.get('x-request-id'));
  // The order is CONFIRMED at the pivot; the saga completes once the stock is committed after it.
  const final = await eventually('saga completed', async () => {
    const g = await sys.api('GET', `/orders/${r.body.id}`);
    return g.body.saga_status === 'COMPLETED' ? g.body : undefined;
  });
  assert.equal(final.status, 'CONFIRMED');
});

test('the saga timeline lists every transition with its step and attempt; the admin one adds error text and trace columns', async () => {
  const r = await sys.api('POST', '/orders', DECLINED, { Prefer: 'wait=10' });
  const t = await sys.admin('GET', `/api/sagas/${r.body.id}`);
  assert.equal(t.status, 200);
  assert.equal(t.body.status, 'COMPENSATED');
  const steps = t.body.events.map((e: { type: string; step: string | null }) =>
    e.step ? `${e.type}:${e.step}` : e.type,
  );
  assert.deepEqual(steps, [
    'SAGA_STARTED',
    'STEP_STARTED:create_order',
    'STEP_SUCCEEDED:create_order',
    'STEP_STARTED:reserve_stock',
    'STEP_SUCCEEDED:reserve_stock',
    'STEP_STARTED:charge_payment',
    'STEP_FAILED:charge_payment',
    'COMPENSATION_STARTED:reserve_stock',
    'COMPENSATION_SUCCEEDED:reserve_stock',
    'COMPENSATION_STARTED:create_order',
    'COMPENSATION_SUCCEEDED:create_order',
    'SAGA_COMPENSATED',
  ]);
  const first = t.body.events[0];
  for (const key of ['seq', 'type', 'step', 'time', 'attempt', 'error', 'trace_id', 'span_id'])
    assert.ok(key in first, key);
  assert.deepEqual(
    t.body.events.map((e: { seq: number }) => e.seq),
    steps.map((_: string, i: number) => i + 1),
  );
  assert.equal(t.body.events[6].error, 'payment declined: amount_over_limit');
  assert.equal(t.body.events[3].display_name, 'Inventory_Reservation_Step');
  const pub = await sys.api('GET', `/orders/${r.body.id}/saga`);
  assert.equal(pub.status, 200);
  assert.deepEqual(
    pub.body.events.map((e: { type: string; step: string | null }) => (e.step ? `${e.type}:${e.step}` : e.type)),
    steps,
  );
  for (const e of pub.body.events)
    assert.deepEqual(
      Object.keys(e).sort(),
      [...(e.display_name ? ['display_name'] : []), 'attempt', 'code', 'seq', 'step', 'time', 'type'].sort(),
    );
  assert.equal(pub.body.events[6].code, 'payment_declined', 'the failure as a code, not its text');
  assert.equal(pub.body.events.at(-1).code, 'payment_declined');
  assert.deepEqual(pub.body.failure, { step: 'charge_payment', code: 'payment_declined' });
});

test("the admin API's GET /api/sagas lists newest first, filters by status and pages with a cursor", async () => {
  for (let i = 0; i < 3; i++) await sys.api('POST', '/orders', NO_STOCK, { Prefer: 'wait=10' });
  const page1 = await sys.admin('GET', '/api/sagas?status=COMPENSATED&limit=2');
  assert.equal(page1.status, 200);
  assert.equal(page1.body.sagas.length, 2);
  assert.ok(page1.body.sagas.every((s: { status: string }) => s.status === 'COMPENSATED'));
  assert.ok(page1.body.next_cursor);
  const page2 = await sys.admin('GET', `/api/sagas?status=COMPENSATED&limit=2&cursor=${page1.body.next_cursor}`);
  assert.ok(page2.body.sagas.length >= 1);
  const ids = [...page1.body.sagas, ...page2.body.sagas].map((s: { id: string }) => s.id);
  assert.equal(new Set(ids).size, ids.length, 'pages do not overlap');
  assert.ok(page1.body.sagas[0].created_at >= page1.body.sagas[1].created_at);
  assert.equal((await sys.admin('GET', '/api/sagas?status=NOPE')).status, 400);
  assert.equal((await sys.admin('GET', '/api/sagas?limit=0')).status, 400);
  assert.equal((await sys.admin('GET', '/api/sagas?cursor=garbage')).body.error, 'invalid_cursor');
  // The public port lists no sagas (DESIGN §6b): they moved to the admin listener.
  for (const u of ['/sagas', '/sagas?status=COMPENSATED', `/sagas/${page1.body.sagas[0].id}`, '/api/sagas'])
    assert.equal((await sys.api('GET', u)).status, 404, u);
});

test('bad input gets a clear 400 with the original codes and stores nothing', async () => {
  const before = (await sys.admin('GET', '/api/sagas?limit=500')).body.sagas.length;
  const cases: Array<[unknown, string, Record<string, string>?]> = [
    ['{"customer_id": "c", ', 'invalid_json'],
    [{ items: HAPPY.items }, 'invalid_request'],
    [{ customer_id: 'c', items: [] }, 'invalid_request'],
    [{ customer_id: 'c', items: [{ product_id: 'prod_1', quantity: 0, price: 1 }] }, 'invalid_item'],
    [{ customer_id: 'c', items: [{ product_id: 'prod_1', quantity: 1.5, price: 1 }] }, 'invalid_item'],
    [{ customer_id: 'c', items: [{ product_id: 'prod_1', quantity: 1, price: 1.001 }] }, 'invalid_item'],
    [{ customer_id: 'c', items: [{ product_id: '', quantity: 1, price: 1 }] }, 'invalid_item'],
    [HAPPY, 'invalid_idempotency_key', { 'X-Idempotency-Key': 'x'.repeat(256) }],
  ];
  for (const [body, code, headers] of cases) {
    const r = await sys.api('POST', '/orders', body, headers);
    assert.equal(r.status, 400, JSON.stringify(body).slice(0, 80));
    assert.equal(r.body.error, code);
    assert.equal(typeof r.body.message, 'string');
  }
  const text = await fetch(`${sys.url}/orders`, {
    method: 'POST',
    headers: { 'content-type': 'text/plain' },
    body: JSON.stringify(HAPPY),
  });
  assert.equal(text.status, 415);
  assert.equal(((await text.json()) as { error: string }).error, 'unsupported_media_type');
  const big = await sys.api(
    'POST',
    '/orders',
    JSON.stringify({ customer_id: 'c', items: [], pad: 'x'.repeat(70_000) }),
  );
  assert.equal(big.status, 413);
  assert.equal(big.body.error, 'body_too_large');
  assert.equal((await sys.admin('GET', '/api/sagas?limit=500')).body.sagas.length, before);
});

test('unknown orders and routes are 404 with a JSON error', async () => {
  const r = await sys.api('GET', '/orders/6d1c5f9e-0000-4000-8000-000000000000');
  assert.equal(r.status, 404);
  assert.equal(r.body.error, 'order_not_found');
  assert.equal((await sys.api('GET', '/orders/x/saga')).body.error, 'saga_not_found');
  assert.equal((await sys.api('GET', '/nope')).status, 404);
});

test('health and readiness', async () => {
  assert.deepEqual((await sys.api('GET', '/healthz')).body, { status: 'ok' });
  const ready = await sys.api('GET', '/readyz');
  assert.equal(ready.status, 200);
  assert.deepEqual(ready.body.checks, { order: 'ok', inventory: 'ok', payment: 'ok', saga_log: 'ok' });
});

test('X-Request-Id is echoed back', async () => {
  const r = await sys.api('GET', '/healthz', undefined, { 'X-Request-Id': 'req-abc-123' });
  assert.equal(r.headers.get('x-request-id'), 'req-abc-123');
});

test('with no OTLP endpoint nothing is exported and no process logged an error', async () => {
  for (const name of ['gateway', 'order', 'inventory', 'payment'] as const) {
    const bad = sys.procs[name].output().filter((l) => /"level":"(error|fatal)"/.test(l) || /otlp|export/i.test(l));
    assert.deepEqual(bad, [], `${name} logged: ${bad.join('\n')}`);
  }
});
