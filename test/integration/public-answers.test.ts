// What the public API (HTTP_ADDR) may say (DESIGN §6b): every field of every public answer is in
// an allow-list, so a field added to a public view fails here until someone decides it is the
// customer's to see. Operators' names and notes, error text, internal addresses, fault rules,
// request fingerprints and trace context stay on the admin API.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { InjectOptions } from 'fastify';
import { FaultBoard, validateFaultPlan } from '../../src/faults/plan.js';
import { PLACE_ORDER_DEFINITION, type PlaceOrderInput } from '../../src/gateway/place-order.js';
import { vocabularyOf } from '../../src/faults/vocabulary.js';
import { gatewayApp } from '../helpers/gateway-app.js';

const OPERATOR = 'op-PublicAnswers-0123456789';
const NOTE = 'refunded by hand, ticket OPS-4711, call alice on +1-555-0100';

/** Every field path of a JSON value: `events[].code`, `failure.step`... */
function paths(value: unknown, prefix = ''): Set<string> {
  const out = new Set<string>();
  if (Array.isArray(value)) {
    for (const v of value) for (const p of paths(v, `${prefix}[]`)) out.add(p);
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      const p = prefix ? `${prefix}.${k}` : k;
      out.add(p);
      for (const q of paths(v, p)) out.add(q);
    }
  }
  return out;
}

const ORDER_FIELDS = [
  'id',
  'customer_id',
  'status',
  'reason',
  'total',
  'items',
  'items[].product_id',
  'items[].quantity',
  'items[].price',
  'created_at',
  'updated_at',
  'saga_status',
];
const EVENT_FIELDS = ['seq', 'type', 'step', 'display_name', 'time', 'attempt', 'code'].map((f) => `events[].${f}`);
const ALLOWED: Record<string, readonly string[]> = {
  'POST /orders': ORDER_FIELDS,
  'GET /orders/{id}': [...ORDER_FIELDS, 'payment', 'payment.status', 'payment.amount'],
  'GET /orders/{id}/saga': [
    'id',
    'status',
    'failure',
    'failure.step',
    'failure.code',
    'created_at',
    'updated_at',
    'events',
    ...EVENT_FIELDS,
    'next_after_seq',
  ],
  'GET /products': [
    'products',
    'products[].product_id',
    'products[].available',
    'products[].reserved',
    'products[].sold',
    'products[].price',
  ],
  'GET /healthz': ['status'],
  'GET /readyz': [
    'status',
    'checks',
    'checks.order',
    'checks.inventory',
    'checks.payment',
    'checks.saga_log',
    'details',
    'details.idempotency_fast_path',
    // How many of each participant's replicas answer: counts, never their addresses.
    'details.participants',
    'details.participants.order',
    'details.participants.order.up',
    'details.participants.order.addresses',
    'details.participants.inventory',
    'details.participants.inventory.up',
    'details.participants.inventory.addresses',
    'details.participants.payment',
    'details.participants.payment.up',
    'details.participants.payment.addresses',
    'in_flight',
    // Which saga versions this gateway drives, and which (with how many in flight) it leaves to
    // other gateways: what an orchestrator rolling an upgrade looks at; names and counts only.
    'definitions',
    'definitions.registered',
    'definitions.starts',
    'definitions.starts.place_order',
    'definitions.left_to_others',
    'definitions.left_to_others[].definition',
    'definitions.left_to_others[].version',
    'definitions.left_to_others[].in_flight',
  ],
  error: ['error', 'message'],
};

test('every field of every public answer is in the allow-list, and none carries an operator, a note, an address, a rule, a fingerprint or a trace', async () => {
  // A declined order whose cancellation a fault rule refuses: it parks, and an operator resolves it with a note.
  const rules = [{ id: 'refuse-cancel-7f3a', target: { participant: 'order', method: 'CancelOrder' }, kind: 'error' }];
  const board = new FaultBoard(validateFaultPlan({ rules }, vocabularyOf([PLACE_ORDER_DEFINITION])));
  const g = await gatewayApp({ faults: board, adminTokens: `alice:operator:${OPERATOR}` });
  try {
    const answers: Array<{ route: string; body: unknown }> = [];
    const call = async (route: string, opts: InjectOptions) => {
      const res = await g.app.inject(opts);
      const body: unknown = res.json();
      answers.push({ route: res.statusCode >= 400 ? 'error' : route, body });
      return { status: res.statusCode, body: body as Record<string, unknown> };
    };
    const lines = (price: number) => ({
      customer_id: 'cust_pub',
      items: [{ product_id: 'prod_1', quantity: 1, price }],
    });

    const happy = await call('POST /orders', {
      method: 'POST',
      url: '/orders',
      payload: lines(20),
      headers: { prefer: 'wait=5', 'x-idempotency-key': 'pub-happy-1' },
    });
    assert.equal(happy.body.status, 'CONFIRMED');
    const parked = await call('POST /orders', {
      method: 'POST',
      url: '/orders',
      payload: lines(600),
      headers: { prefer: 'wait=5' },
    });
    assert.equal(parked.body.saga_status, 'PARKED');
    const id = parked.body.id as string;
    const resolved = await g.admin.inject({
      method: 'POST',
      url: `/api/sagas/${id}/actions`,
      headers: { authorization: `Bearer ${OPERATOR}` },
      payload: { action: 'resolve', action_id: 'pub-resolve-1', note: NOTE },
    });
    assert.equal(resolved.statusCode, 200, resolved.body);

    for (const orderId of [happy.body.id as string, id]) {
      await call('GET /orders/{id}', { method: 'GET', url: `/orders/${orderId}` });
      await call('GET /orders/{id}/saga', { method: 'GET', url: `/orders/${orderId}/saga` });
    }
    await call('GET /products', { method: 'GET', url: '/products' });
    await call('GET /healthz', { method: 'GET', url: '/healthz' });
    await call('GET /readyz', { method: 'GET', url: '/readyz' });
    await call('error', { method: 'GET', url: `/orders/${id.slice(0, -4)}ffff/saga` });
    await call('error', { method: 'POST', url: '/orders', payload: { customer_id: 'cust_pub' } });

    // The admin timeline holds what the public one must not: the test is not vacuous.
    const admin = (
      await g.admin.inject({ method: 'GET', url: `/api/sagas/${id}`, headers: { authorization: `Bearer ${OPERATOR}` } })
    ).json();
    const adminText = JSON.stringify(admin);
    const input = (await g.log.get(id))?.input as PlaceOrderInput;
    const secrets = [
      NOTE,
      'alice',
      'refuse-cancel-7f3a',
      input.fingerprint,
      '127.0.0.1',
      ...(input.request_id ? [input.request_id] : []),
    ];
    for (const s of [NOTE, 'alice', 'refuse-cancel-7f3a', input.fingerprint])
      assert.ok(adminText.includes(s), `the admin timeline shows ${s}`);
    assert.match(adminText, /"trace_id":/);

    const publicTimeline = answers.find(
      (a) => a.route === 'GET /orders/{id}/saga' && (a.body as { id: string }).id === id,
    )?.body as {
      status: string;
      failure: unknown;
      events: Array<{ type: string; code: string | null }>;
    };
    assert.equal(publicTimeline.status, 'RESOLVED');
    assert.ok(
      publicTimeline.events.some((e) => e.type === 'OPERATOR_ACTION'),
      'the customer sees that an operator acted',
    );
    assert.deepEqual(
      publicTimeline.events.filter((e) => e.code !== null).map((e) => `${e.type}:${e.code}`),
      ['STEP_FAILED:payment_declined', 'COMPENSATION_FAILED:failed', 'SAGA_PARKED:failed'],
      'failures as codes; the fault rule behind the refusal is not named',
    );

    for (const { route, body } of answers) {
      const allowed = new Set(ALLOWED[route]);
      const extra = [...paths(body)].filter((p) => !allowed.has(p));
      assert.deepEqual(extra, [], `${route}: fields not in the public allow-list`);
      const text = JSON.stringify(body);
      for (const s of secrets) assert.ok(!text.includes(s), `${route} shows ${s}`);
      assert.doesNotMatch(text, /traceparent|"trace_id"|"span_id"|fingerprint/, route);
    }
  } finally {
    await g.close();
  }
});
