import { test, before, after } from 'node:test';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { freshSystem, eventually, freePort } from '../helpers/system.js';
import { TestRedis } from '../helpers/redis.js';
import { InventoryServiceClient, ReserveOutcome } from '../../src/gen/inventory/v1/inventory.js';
import { callUnary } from '../../src/platform/grpc/grpc.js';
import { asGateway } from '../helpers/tls.js';

const BODY = { customer_id: 'cust_idem', items: [{ product_id: 'prod_2', quantity: 1, price: 30 }] };
const PREFIX = 'idem-test';

let redis: TestRedis;
let sys: Awaited<ReturnType<typeof freshSystem>>;
let catalogDir = '';
before(async () => {
  redis = await TestRedis.start();
  // A short lease so that a killed gateway's sagas are resumed within a second.
  catalogDir = fs.mkdtempSync(path.join(os.tmpdir(), 'idem-catalog-'));
  const catalog = path.join(catalogDir, 'catalog.json');
  fs.writeFileSync(catalog, JSON.stringify({ prod_1: 1_000, prod_2: 1_000 }));
  sys = await freshSystem({
    REDIS_URL: redis.url,
    REDIS_KEY_PREFIX: PREFIX,
    // The participants' Redis fast path is off by default (a SQLite inbox needs no lock); this
    // file checks what it does when it is on.
    INBOX_FAST_PATH: 'redis',
    INVENTORY_CATALOG: catalog,
    IDEMPOTENCY_LOCK_TTL: '2s',
    SAGA_LEASE_MS: '1000',
    SAGA_RECOVERY_INTERVAL_MS: '200',
  });
  await eventually('the gateway to use redis', async () => {
    const r = await sys.api('GET', '/readyz');
    return r.body.details?.idempotency_fast_path === 'redis' ? true : undefined;
  });
});
after(async () => {
  await sys?.stop();
  if (catalogDir) fs.rmSync(catalogDir, { recursive: true, force: true });
  await redis?.kill();
});

async function sagaCount(): Promise<number> {
  return (await sys.admin('GET', '/api/sagas?limit=500')).body.sagas.length;
}

test('50 concurrent identical POSTs make one order, one saga and one charge', async () => {
  const before = await sagaCount();
  const answers = await Promise.all(
    Array.from({ length: 50 }, () => sys.api('POST', '/orders', BODY, { 'X-Idempotency-Key': 'burst-1' })),
  );
  const created = answers.filter((a) => a.status === 201);
  const conflicts = answers.filter((a) => a.status === 409);
  assert.equal(created.length + conflicts.length, 50, `unexpected statuses ${answers.map((a) => a.status).join(',')}`);
  assert.ok(created.length >= 1);
  const ids = new Set(created.map((a) => a.body.id));
  assert.equal(ids.size, 1, 'every 201 names the same order');
  assert.ok(conflicts.every((c) => c.body.error === 'idempotency_in_flight'));
  assert.equal(await sagaCount(), before + 1);
  const id = [...ids][0] as string;
  const order = await eventually('the order to be confirmed', async () => {
    const g = await sys.api('GET', `/orders/${id}`);
    return g.body.saga_status === 'COMPLETED' ? g.body : undefined;
  });
  assert.deepEqual(order.payment, { status: 'charged', amount: 30 });
  // The record lives in Redis, under the deployment's prefix.
  const c = redis.client();
  try {
    const [record] = await c.keys(`${PREFIX}:gateway:*:idem:burst-1`);
    assert.ok(record, 'the record is in Redis');
    assert.match((await c.get(record)) ?? '', /"s":"done"/);
  } finally {
    c.disconnect();
  }
  const replay = await sys.api('POST', '/orders', BODY, { 'X-Idempotency-Key': 'burst-1' });
  assert.equal(replay.status, 201);
  assert.equal(replay.body.id, id);
  assert.equal(replay.headers.get('idempotent-replayed'), 'true');
});

test('the same key with a different body is 422 and changes nothing', async () => {
  const first = await sys.api('POST', '/orders', BODY, { 'X-Idempotency-Key': 'reuse-1', Prefer: 'wait=10' });
  assert.equal(first.status, 201);
  const before = await sagaCount();
  const other = await sys.api(
    'POST',
    '/orders',
    { ...BODY, customer_id: 'someone_else' },
    { 'X-Idempotency-Key': 'reuse-1' },
  );
  assert.equal(other.status, 422);
  assert.equal(other.body.error, 'idempotency_key_reused');
  assert.equal(await sagaCount(), before);
});

test('when Redis loses its data the saga log still guarantees one order per key', async () => {
  const first = await sys.api('POST', '/orders', BODY, { 'X-Idempotency-Key': 'flushed-1', Prefer: 'wait=10' });
  const c = redis.client();
  try {
    await c.flushall();
  } finally {
    c.disconnect();
  }
  const before = await sagaCount();
  const again = await sys.api('POST', '/orders', BODY, { 'X-Idempotency-Key': 'flushed-1' });
  assert.equal(again.status, 201);
  assert.equal(again.body.id, first.body.id);
  assert.equal(again.headers.get('idempotent-replayed'), 'true');
  const mismatch = await sys.api(
    'POST',
    '/orders',
    { ...BODY, customer_id: 'x' },
    { 'X-Idempotency-Key': 'flushed-1' },
  );
  assert.equal(mismatch.status, 422);
  assert.equal(await sagaCount(), before);
});

test('Redis killed mid-run: orders keep succeeding from memory; Redis back: it is used again', async () => {
  // Killed while a burst of orders is in flight: none of them may fail because of the switch.
  const burst = Promise.all(
    Array.from({ length: 30 }, (_, i) =>
      sys.api('POST', '/orders', BODY, { 'X-Idempotency-Key': `mid-kill-${i}`, Prefer: 'wait=10' }),
    ),
  );
  await redis.kill();
  for (const r of await burst) {
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.status, 'CONFIRMED');
  }
  for (let i = 0; i < 5; i++) {
    const r = await sys.api('POST', '/orders', BODY, { 'X-Idempotency-Key': `no-redis-${i}`, Prefer: 'wait=10' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.status, 'CONFIRMED');
    const replay = await sys.api('POST', '/orders', BODY, { 'X-Idempotency-Key': `no-redis-${i}` });
    assert.equal(replay.body.id, r.body.id);
  }
  assert.equal((await sys.api('GET', '/readyz')).body.details.idempotency_fast_path, 'memory');
  await redis.restart();
  await eventually('the gateway to return to redis', async () => {
    const r = await sys.api('GET', '/readyz');
    return r.body.details.idempotency_fast_path === 'redis' ? true : undefined;
  });
  const r = await sys.api('POST', '/orders', BODY, { 'X-Idempotency-Key': 'redis-back-1', Prefer: 'wait=10' });
  assert.equal(r.status, 201);
  const c = redis.client();
  try {
    assert.equal((await c.keys(`${PREFIX}:gateway:*:idem:redis-back-1`)).length, 1, 'the new record is in Redis');
    // The participants reconnect on their own schedule; once back, their answers appear there.
    let n = 0;
    const inbox = await eventually('participant records in redis', async () => {
      await sys.api('POST', '/orders', BODY, { 'X-Idempotency-Key': `redis-back-probe-${n++}`, Prefer: 'wait=10' });
      const keys = await c.keys(`${PREFIX}:payment:*:inbox:*`);
      return keys.length > 0 ? keys : undefined;
    });
    assert.ok(inbox.length > 0);
  } finally {
    c.disconnect();
  }
});

test('the same participant call sent twice at once has one effect', async () => {
  const client = await asGateway(InventoryServiceClient, sys.addresses.inventory, 'inventory');
  try {
    const stockBefore = (await sys.api('GET', '/products')).body.products.find(
      (p: { product_id: string }) => p.product_id === 'prod_1',
    );
    const req = { orderId: 'direct-order-1', items: [{ productId: 'prod_1', quantity: 3 }] };
    const both = await Promise.all(
      [1, 2].map(() =>
        callUnary(client.reserve.bind(client), req, {
          idempotencyKey: 'direct-order-1:reserve_stock',
          timeoutMs: 5_000,
        }),
      ),
    );
    assert.deepEqual(
      both.map((r) => r.outcome),
      [ReserveOutcome.RESERVE_OUTCOME_RESERVED, ReserveOutcome.RESERVE_OUTCOME_RESERVED],
    );
    const stockAfter = (await sys.api('GET', '/products')).body.products.find(
      (p: { product_id: string }) => p.product_id === 'prod_1',
    );
    assert.equal(stockAfter.available, stockBefore.available - 3);
    assert.equal(stockAfter.reserved, stockBefore.reserved + 3);
    await callUnary(
      client.release.bind(client),
      { orderId: 'direct-order-1' },
      { idempotencyKey: 'direct-order-1:reserve_stock:undo', timeoutMs: 5_000 },
    );
  } finally {
    client.close();
  }
});

test('a client that retries with its key after the gateway died mid-request ends up with one order', async () => {
  const before = await sagaCount();
  const armed = await sys.restart('gateway', { CRASH_AT: 'saga.create_order.before_intent', SAGAS_TEST_HOOKS: '1' });
  await assert.rejects(
    sys.api('POST', '/orders', BODY, { 'X-Idempotency-Key': 'died-1' }),
    'the gateway dies before it answers',
  );
  assert.equal((await armed.exited).signal, 'SIGKILL');
  await sys.restart('gateway');
  const answered = await eventually('the retried POST to be answered', async () => {
    const r = await sys.api('POST', '/orders', BODY, { 'X-Idempotency-Key': 'died-1' });
    return r.status === 201 ? r : undefined;
  });
  assert.equal(answered.headers.get('idempotent-replayed'), 'true');
  const saga = await eventually('the saga to complete', async () => {
    const t = await sys.api('GET', `/orders/${answered.body.id}/saga`);
    return t.body.status === 'COMPLETED' ? t.body : undefined;
  });
  assert.ok(saga.events.some((e: { type: string }) => e.type === 'SAGA_RESUMED'));
  assert.equal(await sagaCount(), before + 1);
});

test('with Redis unreachable from the start every process serves from memory', async () => {
  const closedPort = await freePort();
  const alone = await freshSystem({ REDIS_URL: `redis://127.0.0.1:${closedPort}`, INBOX_FAST_PATH: 'redis' });
  try {
    const started = Date.now();
    const r = await alone.api('POST', '/orders', BODY, { 'X-Idempotency-Key': 'memory-only', Prefer: 'wait=10' });
    assert.equal(r.status, 201);
    assert.equal(r.body.status, 'CONFIRMED');
    assert.ok(Date.now() - started < 2_000, 'a dead Redis does not slow requests down');
    assert.equal((await alone.api('POST', '/orders', BODY, { 'X-Idempotency-Key': 'memory-only' })).body.id, r.body.id);
    assert.equal((await alone.api('GET', '/readyz')).body.details.idempotency_fast_path, 'memory');
  } finally {
    await alone.stop();
  }
});
