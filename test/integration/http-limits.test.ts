import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import type { InjectOptions } from 'fastify';
import { fingerprint } from '../../src/platform/storage/inbox.js';
import { toOrderRequest } from '../../src/gateway/order-request.js';
import { PLACE_ORDER, type PlaceOrderInput } from '../../src/gateway/place-order.js';
import { WAIT_NOT_APPLIED } from '../../src/gateway/http/orders.js';
import { gatewayApp } from '../helpers/gateway-app.js';
import { FaultBoard } from '../../src/faults/plan.js';

/** Bounded load (DESIGN.md §6b): every limit answers at once instead of queueing. */

const body = { customer_id: 'cust_1', items: [{ product_id: 'prod_1', quantity: 1, price: 25 }] };
const post = (headers: Record<string, string> = {}): InjectOptions => ({
  method: 'POST',
  url: '/orders',
  payload: body,
  headers,
});

test('over the waiter cap a Prefer: wait is answered at once, PENDING, with a header saying why', async () => {
  const g = await gatewayApp({ limits: { maxWaiters: 0 } });
  try {
    const res = await g.app.inject(post({ prefer: 'wait=5' }));
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(res.json().status, 'PENDING');
    assert.equal(res.headers[WAIT_NOT_APPLIED], 'too-many-waiters');
    assert.equal(res.headers['preference-applied'], undefined);
  } finally {
    await g.close();
  }
});

test('over the in-flight cap a POST is 503 overloaded with Retry-After, and nothing is stored', async () => {
  const g = await gatewayApp({ limits: { maxInFlight: 0 } });
  try {
    const res = await g.app.inject(post());
    assert.equal(res.statusCode, 503, res.body);
    assert.equal(res.json().error, 'overloaded');
    assert.equal(res.headers['retry-after'], '1');
    assert.equal((await g.log.list({ limit: 10 })).sagas.length, 0);
  } finally {
    await g.close();
  }
});

/** Every charge_payment attempt held back 300 ms: the sagas of a burst are all still in flight when the burst ends. */
const slowCharges = () =>
  new FaultBoard([
    {
      id: 'slow-pay',
      target: { step: 'charge_payment' },
      kind: 'latency',
      latency_ms: 300,
      enabled: true,
      probability: 1,
      fired: 0,
    },
  ]);

test('the caps hold under concurrency: 50 POSTs at once against an in-flight cap of 3 start 3 sagas, the rest 503', async () => {
  const g = await gatewayApp({ limits: { maxInFlight: 3 }, faults: slowCharges() });
  try {
    let most = 0;
    const sample = setInterval(() => (most = Math.max(most, g.engine.inFlight)), 1);
    const answers = await Promise.all(Array.from({ length: 50 }, () => g.app.inject(post())));
    clearInterval(sample);
    const created = answers.filter((r) => r.statusCode === 201);
    const refused = answers.filter((r) => r.statusCode === 503 && r.json().error === 'overloaded');
    assert.equal(created.length + refused.length, 50, answers.map((r) => r.statusCode).join(','));
    assert.ok(created.length >= 1 && created.length <= 3, `${created.length} sagas started`);
    assert.equal(
      (await g.log.list({ limit: 100 })).sagas.length,
      created.length,
      'the log holds only the admitted sagas',
    );
    assert.ok(most <= 3, `the engine drove ${most} at once`);
  } finally {
    await g.close();
  }
});

test('the waiter cap holds under concurrency: 20 POSTs with Prefer: wait against a cap of 2, 2 wait', async () => {
  const g = await gatewayApp({ limits: { maxWaiters: 2 }, faults: slowCharges() });
  try {
    const answers = await Promise.all(Array.from({ length: 20 }, () => g.app.inject(post({ prefer: 'wait=5' }))));
    assert.ok(
      answers.every((r) => r.statusCode === 201),
      answers.map((r) => r.statusCode).join(','),
    );
    const waited = answers.filter((r) => r.headers['preference-applied'] === 'wait=5');
    assert.equal(waited.length, 2, 'two waited');
    assert.equal(answers.filter((r) => r.headers[WAIT_NOT_APPLIED] === 'too-many-waiters').length, 18);
    assert.ok(
      waited.every((r) => r.json().status === 'CONFIRMED'),
      'the two that waited saw the end',
    );
  } finally {
    await g.close();
  }
});

test('the per-client rate limit, when set, answers 429 rate_limited with Retry-After', async () => {
  const g = await gatewayApp({ limits: { ratePerMinute: 2 } });
  try {
    for (let i = 0; i < 2; i++) assert.equal((await g.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
    const res = await g.app.inject({ method: 'GET', url: '/healthz' });
    assert.equal(res.statusCode, 429, res.body);
    assert.equal(res.json().error, 'rate_limited');
    assert.ok(Number(res.headers['retry-after']) > 0, String(res.headers['retry-after']));
  } finally {
    await g.close();
  }
});

test('a gateway that stops answers its waiters at once with the order as it stands', async () => {
  const g = await gatewayApp();
  try {
    // A saga that cannot end: its participants are gone (it retries), started under a key.
    await g.stopParticipants();
    const order = toOrderRequest(body);
    const input: PlaceOrderInput = {
      order_id: 'stuck-1',
      ...order,
      created_at_ms: Date.now(),
      fingerprint: fingerprint('POST /orders', order),
      request_id: null,
    };
    await g.engine.start(PLACE_ORDER, { id: input.order_id, input, idempotencyKey: 'stuck-key' });
    // The same key again, waiting up to 30 s for the end that will not come.
    const waiting = g.app.inject(post({ 'x-idempotency-key': 'stuck-key', prefer: 'wait=30' }));
    await waitUntil(async () => (await g.engine.waitFor('stuck-1', 0)) !== undefined);
    const started = performance.now();
    const closing = g.app.close();
    const res = await waiting;
    assert.ok(
      performance.now() - started < 2_000,
      `answered ${Math.round(performance.now() - started)} ms after close`,
    );
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(res.json().id, 'stuck-1');
    assert.equal(res.json().status, 'PENDING');
    await closing;
  } finally {
    await g.close();
  }
});

test('a request that does not arrive whole within HTTP_REQUEST_TIMEOUT_MS is cut off', async () => {
  const g = await gatewayApp({ limits: { requestTimeoutMs: 300 } });
  try {
    const port = await listen(g.app);
    // Headers that never end: Node answers 408 and closes.
    const slowHeaders = net.connect(port, '127.0.0.1');
    await once(slowHeaders, 'connect');
    slowHeaders.write('POST /orders HTTP/1.1\r\nHost: x\r\n');
    assert.match(await readUntilClosed(slowHeaders, 5_000), /^HTTP\/1\.1 408/);
    // A body that never ends (100 bytes promised, one sent): the connection is closed.
    const slowBody = net.connect(port, '127.0.0.1');
    await once(slowBody, 'connect');
    slowBody.write(
      'POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{',
    );
    const answer = await readUntilClosed(slowBody, 5_000);
    assert.ok(answer === '' || /^HTTP\/1\.1 408/.test(answer), answer);
    assert.equal((await g.log.list({ limit: 10 })).sagas.length, 0, 'nothing stored');
  } finally {
    await g.close();
  }
});

test('connections over HTTP_MAX_CONNECTIONS are closed as they arrive', async () => {
  const g = await gatewayApp({ limits: { maxConnections: 2 } });
  try {
    const port = await listen(g.app);
    const held = await Promise.all(
      [0, 1].map(async () => {
        const s = net.connect(port, '127.0.0.1');
        await once(s, 'connect');
        return s;
      }),
    );
    await waitUntil(async () => (await new Promise<number>((r) => g.app.server.getConnections((_e, n) => r(n)))) === 2);
    const third = net.connect(port, '127.0.0.1');
    third.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.equal(await readUntilClosed(third, 5_000), '', 'closed without an answer');
    // One of the held connections still gets answers.
    held[0]?.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.match(await readUntilClosed(held[0] as net.Socket, 5_000), /^HTTP\/1\.1 200/);
    for (const s of held) s.destroy();
  } finally {
    await g.close();
  }
});

async function listen(app: { listen(o: { host: string; port: number }): Promise<string> }): Promise<number> {
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return Number(new URL(url).port);
}

/** Everything the server sent before it closed the connection; fails if it is still open after `ms`. */
async function readUntilClosed(socket: net.Socket, ms: number): Promise<string> {
  let text = '';
  let timedOut = false;
  socket.on('data', (b) => (text += b.toString()));
  socket.on('error', () => {});
  const timer = setTimeout(() => {
    timedOut = true;
    socket.destroy();
  }, ms);
  await once(socket, 'close');
  clearTimeout(timer);
  assert.ok(!timedOut, `the server left the connection open for ${ms} ms`);
  return text;
}

/** A condition, polled: never a fixed sleep. */
async function waitUntil(check: () => Promise<boolean>, ms = 5_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) assert.fail('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
