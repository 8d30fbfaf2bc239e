/**
 * The order service over a real gRPC server and as its own process (main.ts); the domain, the
 * store and the handlers in-process are in test/unit/order-service.test.ts.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { callUnary, serverCredentials, startGrpcServer } from '../../src/platform/grpc/grpc.js';
import { CreateOutcome, OrderServiceClient, OrderServiceService, OrderStatus } from '../../src/gen/order/v1/order.js';
import { createOrderStore, openOrderDatabase } from '../../src/services/order/store.js';
import { createOrderService } from '../../src/services/order/server.js';
import {
  errorCode,
  silentLogger,
  startMain,
  tempDir,
  tempDatabase,
  createOrderRequest as createReq,
} from '../helpers/participants.js';
import { asGateway, issuedUnder, testTls, tlsUnder } from '../helpers/tls.js';

const openTemp = () => tempDatabase(openOrderDatabase, 'order');

describe('order gRPC', () => {
  test('round trip over a real server with an idempotency key', async () => {
    const db = openTemp();
    const server = await startGrpcServer(
      { host: '127.0.0.1', port: 0 },
      [{ definition: OrderServiceService, implementation: createOrderService({ db, logger: silentLogger }) }],
      serverCredentials(await testTls(), 'order'),
    );
    const client = await asGateway(OrderServiceClient, server.address, 'order');
    try {
      const opts = { idempotencyKey: 'saga-rt:create_order', timeoutMs: 5_000 };
      const created = await callUnary(client.createOrder.bind(client), createReq({ orderId: 'rt-1' }), opts);
      assert.equal(created.outcome, CreateOutcome.CREATE_OUTCOME_CREATED);
      assert.equal(created.order?.totalCents, 3_099);
      const replay = await callUnary(client.createOrder.bind(client), createReq({ orderId: 'rt-1' }), opts);
      assert.deepEqual(replay, created);
      const got = await callUnary(client.getOrder.bind(client), { orderId: 'rt-1' }, { timeoutMs: 5_000 });
      assert.equal(got.order?.status, OrderStatus.ORDER_STATUS_PENDING);
      assert.equal(
        await errorCode(callUnary(client.getOrder.bind(client), { orderId: 'nope' }, { timeoutMs: 5_000 })),
        'not_found',
      );
    } finally {
      client.close();
      await server.shutdown();
    }
  });
});

describe('order main', () => {
  test('starts on port 0, reports ready, and stops cleanly on SIGTERM', async () => {
    const dir = tempDir('order-main');
    await issuedUnder(dir);
    const proc = startMain('order', { DATA_DIR: dir, ORDER_SERVICE_ADDR: '127.0.0.1:0' });
    const ready = await proc.ready;
    assert.equal(ready.service, 'order');
    assert.match(ready.address, /^127\.0\.0\.1:\d+$/);
    const client = await asGateway(OrderServiceClient, ready.address, 'order', tlsUnder(dir));
    const created = await callUnary(client.createOrder.bind(client), createReq(), {
      idempotencyKey: 'm1',
      timeoutMs: 5_000,
    });
    assert.equal(created.outcome, CreateOutcome.CREATE_OUTCOME_CREATED);
    client.close();
    proc.stop();
    assert.equal((await proc.exit).code, 0);
    const db = openOrderDatabase(path.join(dir, 'order.db'));
    after(() => db.close());
    assert.equal(createOrderStore(db).get('ord-1')?.status, 'PENDING');
  });

  test('a configuration error prints a clear message and exits 1', async () => {
    const proc = startMain('order', { DATA_DIR: tempDir('order-main'), ORDER_SERVICE_ADDR: 'not-an-address' });
    const { code, stderr } = await proc.exit;
    assert.equal(code, 1);
    assert.match(stderr, /ORDER_SERVICE_ADDR/);
  });
});
