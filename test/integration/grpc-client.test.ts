import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  Server,
  ServerCredentials,
  connectivityState,
  status,
  type ServerUnaryCall,
  type sendUnaryData,
} from '@grpc/grpc-js';
import {
  HealthService,
  HealthCheckResponse_ServingStatus,
  type HealthCheckRequest,
  type HealthCheckResponse,
  type HealthClient,
} from '../../src/gen/health/v1/health.js';
import { ChargeOutcome, PaymentServiceService, type PaymentServiceClient } from '../../src/gen/payment/v1/payment.js';
import { InventoryServiceService, type InventoryServiceClient } from '../../src/gen/inventory/v1/inventory.js';
import {
  callUnary,
  errorCodeOf,
  isDefiniteGrpcError,
  isServiceError,
  serverCredentials,
  startGrpcServer,
  type RunningServer,
} from '../../src/platform/grpc/grpc.js';
import { dialerAs, UnaryChannel, unaryClient } from '../../src/platform/grpc/grpc-client.js';
import { createPaymentService } from '../../src/services/payment/server.js';
import { openPaymentDatabase } from '../../src/services/payment/store.js';
import { freePort } from '../helpers/system.js';
import { foreignTls, testTls } from '../helpers/tls.js';
import { silentLogger, tempDir } from '../helpers/participants.js';
import type { GrpcSecurity } from '../../src/platform/grpc/tls.js';

/** The status a call failed with, or 'OK'. */
async function outcome(p: Promise<unknown>): Promise<number | 'OK'> {
  try {
    await p;
    return 'OK';
  } catch (err) {
    assert.ok(isServiceError(err), String(err));
    return err.code;
  }
}

/** A health service whose answer waits `delayMs` (or never comes, with Infinity). */
async function slowHealth(
  delayMs: number,
  creds = ServerCredentials.createInsecure(),
): Promise<{ address: string; server: Server }> {
  const server = new Server();
  server.addService(HealthService, {
    check: (
      _call: ServerUnaryCall<HealthCheckRequest, HealthCheckResponse>,
      cb: sendUnaryData<HealthCheckResponse>,
    ) => {
      if (Number.isFinite(delayMs))
        setTimeout(() => cb(null, { status: HealthCheckResponse_ServingStatus.SERVING }), delayMs);
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { address: `127.0.0.1:${port}`, server };
}

const insecure: GrpcSecurity = { kind: 'insecure' };
const healthOver = (
  address: string,
  security: GrpcSecurity = insecure,
  peer: 'payment' | 'order' = 'payment',
  opts = {},
) => unaryClient<HealthClient>(HealthService, new UnaryChannel(address, dialerAs(security, 'gateway')(peer), opts));
const check = (c: HealthClient, timeoutMs = 2_000) => callUnary(c.check.bind(c), { service: '' }, { timeoutMs });

describe('the gateway gRPC client against a real payment service over mutual TLS', () => {
  let tls: GrpcSecurity;
  let server: RunningServer;
  let client: PaymentServiceClient & { close(): void; channel: UnaryChannel };
  before(async () => {
    tls = await testTls();
    const db = openPaymentDatabase(path.join(tempDir('grpc-client-payment'), 'payment.db'), 'normal');
    const implementation = createPaymentService({ db, logger: silentLogger, chargeLimitCents: 1_000 });
    server = await startGrpcServer(
      { host: '127.0.0.1', port: 0 },
      [{ definition: PaymentServiceService, implementation }],
      serverCredentials(tls, 'payment'),
    );
    client = unaryClient<PaymentServiceClient>(
      PaymentServiceService,
      new UnaryChannel(server.address, dialerAs(tls, 'gateway')('payment')),
    );
  });
  after(async () => {
    client?.close();
    await server?.shutdown(0);
  });

  test('a call answers with the decoded response, and the same key replays it', async () => {
    const charge = () =>
      callUnary(
        client.charge.bind(client),
        { orderId: 'gc-1', amountCents: 500 },
        { idempotencyKey: 'gc-1:charge_payment', timeoutMs: 3_000 },
      );
    const first = await charge();
    assert.equal(first.outcome, ChargeOutcome.CHARGE_OUTCOME_CHARGED);
    assert.deepEqual(await charge(), first);
    assert.equal(client.channel.getConnectivityState(), 2 /* READY */);
  });

  test('a refusal keeps its status, its details and its x-error-code, and is definite', async () => {
    const err = await callUnary(
      client.charge.bind(client),
      { orderId: 'gc-2', amountCents: 500 },
      { timeoutMs: 3_000 },
    ).catch((e: unknown) => e);
    assert.ok(isServiceError(err));
    assert.equal(err.code, status.INVALID_ARGUMENT);
    assert.equal(errorCodeOf(err), 'idempotency_key_required');
    assert.match(err.details, /x-idempotency-key/);
    assert.ok(isDefiniteGrpcError(err));
  });

  test('a server presenting another identity, or another CA, is refused: UNAVAILABLE, never definite', async () => {
    const asOrder = healthOver(server.address, tls, 'order');
    const foreign = healthOver(server.address, await foreignTls(), 'payment');
    try {
      assert.equal(await outcome(check(asOrder)), status.UNAVAILABLE);
      assert.equal(await outcome(check(foreign)), status.UNAVAILABLE);
    } finally {
      asOrder.close();
      foreign.close();
    }
  });
});

describe('the gateway gRPC client when things go wrong', () => {
  test('nothing listening: UNAVAILABLE at once, again at once during the backoff, and a call succeeds once the server is up', async () => {
    const port = await freePort();
    const c = healthOver(`127.0.0.1:${port}`, insecure, 'payment', { initialBackoffMs: 300 });
    try {
      assert.equal(await outcome(check(c)), status.UNAVAILABLE);
      const started = performance.now();
      assert.equal(await outcome(check(c)), status.UNAVAILABLE);
      assert.ok(performance.now() - started < 100, 'fails fast between attempts');
      const server = new Server();
      server.addService(HealthService, {
        check: (_c: unknown, cb: sendUnaryData<HealthCheckResponse>) =>
          cb(null, { status: HealthCheckResponse_ServingStatus.SERVING }),
      });
      await new Promise<void>((resolve, reject) =>
        server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (err) =>
          err ? reject(err) : resolve(),
        ),
      );
      try {
        let last: number | 'OK' = status.UNAVAILABLE;
        for (const until = Date.now() + 5_000; last !== 'OK' && Date.now() < until;) {
          last = await outcome(check(c));
          if (last !== 'OK') await new Promise((r) => setTimeout(r, 50));
        }
        assert.equal(last, 'OK');
      } finally {
        server.forceShutdown();
      }
    } finally {
      c.close();
    }
  });

  test('a slow answer: DEADLINE_EXCEEDED at the deadline', async () => {
    const { address, server } = await slowHealth(2_000);
    const c = healthOver(address);
    try {
      const started = performance.now();
      assert.equal(await outcome(check(c, 200)), status.DEADLINE_EXCEEDED);
      const took = performance.now() - started;
      assert.ok(took >= 190 && took < 1_500, `${took} ms`);
    } finally {
      c.close();
      server.forceShutdown();
    }
  });

  test('the server goes away mid-call: UNAVAILABLE (the outcome is unknown), not a definite status', async () => {
    const { address, server } = await slowHealth(Infinity);
    const c = healthOver(address);
    try {
      const call = check(c, 5_000);
      await new Promise((r) => setTimeout(r, 100));
      server.forceShutdown();
      const code = await outcome(call);
      assert.ok(code === status.UNAVAILABLE || code === status.CANCELLED, `got ${code}`);
    } finally {
      c.close();
    }
  });

  test('a response larger than allowed: RESOURCE_EXHAUSTED', async () => {
    const server = new Server();
    server.addService(InventoryServiceService, {
      listProducts: (_c: unknown, cb: sendUnaryData<unknown>) =>
        cb(null, {
          products: Array.from({ length: 100 }, (_, i) => ({
            productId: `product-${i}`,
            available: 1,
            reserved: 0,
            sold: 0,
            total: 1,
          })),
        }),
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    const c = unaryClient<InventoryServiceClient>(
      InventoryServiceService,
      new UnaryChannel(`127.0.0.1:${port}`, dialerAs(insecure, 'gateway')('inventory'), { maxReceiveBytes: 1_000 }),
    );
    try {
      assert.equal(
        await outcome(callUnary(c.listProducts.bind(c), { productIds: [] }, { timeoutMs: 2_000 })),
        status.RESOURCE_EXHAUSTED,
      );
    } finally {
      c.close();
      server.forceShutdown();
    }
  });

  test('an unknown method: UNIMPLEMENTED from the server, definite', async () => {
    const { address, server } = await slowHealth(0);
    const c = unaryClient<PaymentServiceClient>(
      PaymentServiceService,
      new UnaryChannel(address, dialerAs(insecure, 'gateway')('payment')),
    );
    try {
      assert.equal(
        await outcome(callUnary(c.getPayment.bind(c), { orderId: 'o' }, { timeoutMs: 2_000 })),
        status.UNIMPLEMENTED,
      );
    } finally {
      c.close();
      server.forceShutdown();
    }
  });
});

describe('the gateway gRPC client and a peer that hangs up', () => {
  test('a connection closed before it is established: UNAVAILABLE at once, not at the deadline', async () => {
    const net = await import('node:net');
    const rude = net.createServer((s) => s.destroy());
    await new Promise<void>((r) => rude.listen(0, '127.0.0.1', () => r()));
    const address = `127.0.0.1:${(rude.address() as import('node:net').AddressInfo).port}`;
    const c = unaryClient<HealthClient>(
      HealthService,
      new UnaryChannel(address, dialerAs(await testTls(), 'gateway')('payment')),
    );
    try {
      const started = performance.now();
      assert.equal(await outcome(check(c, 3_000)), status.UNAVAILABLE);
      assert.ok(performance.now() - started < 1_000, `took ${performance.now() - started} ms`);
    } finally {
      c.close();
      rude.close();
    }
  });
});

describe('the gateway gRPC client and a peer that never completes the handshake', () => {
  test('a call waits no longer than its deadline, and the attempt gives up after connectTimeoutMs', async () => {
    // A TCP listener that accepts and then says nothing: TLS never completes.
    const net = await import('node:net');
    const sockets = new Set<import('node:net').Socket>();
    const mute = net.createServer((s) => sockets.add(s));
    await new Promise<void>((r) => mute.listen(0, '127.0.0.1', () => r()));
    const address = `127.0.0.1:${(mute.address() as import('node:net').AddressInfo).port}`;
    const channel = new UnaryChannel(address, dialerAs(await testTls(), 'gateway')('payment'), {
      connectTimeoutMs: 400,
    });
    const c = unaryClient<HealthClient>(HealthService, channel);
    try {
      const started = performance.now();
      assert.equal(await outcome(check(c, 150)), status.DEADLINE_EXCEEDED);
      assert.ok(performance.now() - started < 350, 'the deadline, not the connection attempt, ends the call');
      const until = Date.now() + 2_000;
      while (channel.getConnectivityState() !== connectivityState.TRANSIENT_FAILURE && Date.now() < until)
        await new Promise((r) => setTimeout(r, 20));
      assert.equal(
        channel.getConnectivityState(),
        connectivityState.TRANSIENT_FAILURE,
        'the attempt failed after connectTimeoutMs',
      );
    } finally {
      c.close();
      for (const s of sockets) s.destroy();
      mute.close();
    }
  });
});
