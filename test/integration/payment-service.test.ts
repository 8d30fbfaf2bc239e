/**
 * The payment service over a real gRPC server and as its own process (main.ts); the domain, the
 * store and the handlers in-process are in test/unit/payment-service.test.ts.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { callUnary, serverCredentials, startGrpcServer } from '../../src/platform/grpc/grpc.js';
import {
  ChargeOutcome,
  PaymentServiceClient,
  PaymentServiceService,
  PaymentStatus,
} from '../../src/gen/payment/v1/payment.js';
import { DEFAULT_CHARGE_LIMIT_CENTS } from '../../src/services/payment/domain.js';
import { openPaymentDatabase } from '../../src/services/payment/store.js';
import { createPaymentService } from '../../src/services/payment/server.js';
import { errorCode, silentLogger, startMain, tempDir, tempDatabase } from '../helpers/participants.js';
import { asGateway, issuedUnder, testTls, tlsUnder } from '../helpers/tls.js';

const LIMIT = DEFAULT_CHARGE_LIMIT_CENTS;

const openTemp = () => tempDatabase(openPaymentDatabase, 'payment');

describe('payment gRPC', () => {
  test('round trip over a real server with an idempotency key', async () => {
    const implementation = createPaymentService({ db: openTemp(), logger: silentLogger, chargeLimitCents: LIMIT });
    const server = await startGrpcServer(
      { host: '127.0.0.1', port: 0 },
      [{ definition: PaymentServiceService, implementation }],
      serverCredentials(await testTls(), 'payment'),
    );
    const client = await asGateway(PaymentServiceClient, server.address, 'payment');
    try {
      const opts = { idempotencyKey: 'rt-1:charge_payment', timeoutMs: 5_000 };
      const first = await callUnary(client.charge.bind(client), { orderId: 'rt-1', amountCents: 12_345 }, opts);
      assert.equal(first.outcome, ChargeOutcome.CHARGE_OUTCOME_CHARGED);
      assert.deepEqual(
        await callUnary(client.charge.bind(client), { orderId: 'rt-1', amountCents: 12_345 }, opts),
        first,
      );
      const got = await callUnary(client.getPayment.bind(client), { orderId: 'rt-1' }, { timeoutMs: 5_000 });
      assert.deepEqual(got, { status: PaymentStatus.PAYMENT_STATUS_CHARGED, amountCents: 12_345 });
      const reused = callUnary(client.charge.bind(client), { orderId: 'rt-1', amountCents: 1 }, opts);
      assert.equal(await errorCode(reused), 'idempotency_key_reused');
    } finally {
      client.close();
      await server.shutdown();
    }
  });
});

describe('payment main', () => {
  test('reads PAYMENT_CHARGE_LIMIT_CENTS, reports ready, and stops cleanly on SIGTERM', async () => {
    const dir = tempDir('payment-main');
    await issuedUnder(dir);
    const proc = startMain('payment', {
      DATA_DIR: dir,
      PAYMENT_SERVICE_ADDR: '127.0.0.1:0',
      PAYMENT_CHARGE_LIMIT_CENTS: '1000',
      SERVICE_DB_SYNC: 'full',
    });
    const ready = await proc.ready;
    assert.equal(ready.service, 'payment');
    const client = await asGateway(PaymentServiceClient, ready.address, 'payment', tlsUnder(dir));
    const declined = await callUnary(
      client.charge.bind(client),
      { orderId: 'm1', amountCents: 1_001 },
      { idempotencyKey: 'm1', timeoutMs: 5_000 },
    );
    assert.equal(declined.outcome, ChargeOutcome.CHARGE_OUTCOME_DECLINED);
    client.close();
    proc.stop();
    assert.equal((await proc.exit).code, 0);
  });

  test('a kill -9 before commit loses the charge whole; after commit, the retry replays it', async () => {
    const dir = tempDir('payment-main');
    await issuedUnder(dir);
    const env = { DATA_DIR: dir, PAYMENT_SERVICE_ADDR: '127.0.0.1:0' };
    const withClient = async <T>(address: string, fn: (c: PaymentServiceClient) => Promise<T>): Promise<T> => {
      const client = await asGateway(PaymentServiceClient, address, 'payment', tlsUnder(dir));
      try {
        return await fn(client);
      } finally {
        client.close();
      }
    };

    for (const [i, point] of ['payment.charge.before_commit', 'payment.charge.after_commit'].entries()) {
      const req = { orderId: `crash-${i}`, amountCents: 700 };
      const opts = { idempotencyKey: `crash-${i}:charge_payment`, timeoutMs: 5_000 };
      const doomed = startMain('payment', { ...env, CRASH_AT: point, SAGAS_TEST_HOOKS: '1' });
      const { address } = await doomed.ready;
      await assert.rejects(withClient(address, (c) => callUnary(c.charge.bind(c), req, opts)));
      assert.equal((await doomed.exit).code, null, 'killed by a signal');

      const revived = startMain('payment', env);
      const status = await withClient((await revived.ready).address, async (c) => {
        const before = await callUnary(c.getPayment.bind(c), { orderId: req.orderId }, { timeoutMs: 5_000 });
        const retry = await callUnary(c.charge.bind(c), req, opts);
        assert.equal(retry.outcome, ChargeOutcome.CHARGE_OUTCOME_CHARGED);
        return before.status;
      });
      revived.stop();
      await revived.exit;
      // Before commit nothing survived; after commit the charge did, and the retry only replayed it.
      const expected = point.endsWith('before_commit')
        ? PaymentStatus.PAYMENT_STATUS_NONE
        : PaymentStatus.PAYMENT_STATUS_CHARGED;
      assert.equal(status, expected, point);
    }
  });

  test('an invalid PAYMENT_CHARGE_LIMIT_CENTS prints a clear message and exits 1', async () => {
    const dir = tempDir('payment-main');
    const proc = startMain('payment', {
      DATA_DIR: dir,
      PAYMENT_SERVICE_ADDR: '127.0.0.1:0',
      PAYMENT_CHARGE_LIMIT_CENTS: '5.00',
    });
    const { code, stderr } = await proc.exit;
    assert.equal(code, 1);
    assert.match(stderr, /PAYMENT_CHARGE_LIMIT_CENTS/);
  });
});
