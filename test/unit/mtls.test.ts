import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { credentials, status, type ChannelCredentials } from '@grpc/grpc-js';
import { PaymentServiceClient, PaymentServiceService, PaymentStatus } from '../../src/gen/payment/v1/payment.js';
import { callUnary, channelCredentials, channelOptions, isServiceError, serverCredentials, startGrpcServer, type RunningServer } from '../../src/platform/grpc.js';
import { ensureTlsMaterial, loadTlsMaterial, TLS_IDENTITIES, TlsError, type GrpcSecurity } from '../../src/platform/tls.js';
import { createPaymentService } from '../../src/services/payment/server.js';
import { openPaymentDatabase } from '../../src/services/payment/store.js';
import { ServiceStartError, spawnService } from '../../src/cli/supervisor.js';
import { silentLogger, startMain, tempDir } from '../helpers/participants.js';
import { foreignTls, mtlsDir, testTls } from '../helpers/tls.js';

/**
 * Mutual TLS between the gateway and the participants (issue 11, part 1): every process presents a
 * certificate of the deployment's CA; a participant refuses a caller without one, and the gateway
 * refuses a server with a wrong one. The whole suite runs over TLS; these tests prove the refusals.
 */

function codeOfTls(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof TlsError, `expected a TlsError, got ${String(err)}`);
    return err.code;
  }
  throw new Error('expected a TlsError');
}

describe('TLS material', () => {
  test('first start makes a CA and the four identities, keys private; a second start changes nothing', async () => {
    const dir = path.join(tempDir('tls-new'), 'tls');
    const made = await ensureTlsMaterial(dir);
    assert.deepEqual(made, [...TLS_IDENTITIES]);
    for (const id of TLS_IDENTITIES) {
      assert.equal(fs.statSync(path.join(dir, `${id}.key`)).mode & 0o777, 0o600, `${id}.key is private`);
      assert.equal(loadTlsMaterial(dir, id).identity, id);
    }
    assert.equal(fs.statSync(path.join(dir, 'ca.key')).mode & 0o777, 0o600);
    const before = fs.readFileSync(path.join(dir, 'order.crt'));
    assert.deepEqual(await ensureTlsMaterial(dir), []);
    assert.deepEqual(fs.readFileSync(path.join(dir, 'order.crt')), before);
    assert.deepEqual(fs.readdirSync(dir).sort(), ['ca.crt', 'ca.key', ...TLS_IDENTITIES.flatMap((id) => [`${id}.crt`, `${id}.key`])].sort(), 'no lock or work folder left');
  });

  test('processes that start together make one CA between them', async () => {
    const dir = path.join(tempDir('tls-race'), 'tls');
    const made = await Promise.all([1, 2, 3, 4].map(() => ensureTlsMaterial(dir)));
    assert.deepEqual(made.flat().sort(), [...TLS_IDENTITIES].sort(), 'each identity issued once');
    const ca = fs.readFileSync(path.join(dir, 'ca.crt'));
    for (const id of TLS_IDENTITIES) assert.deepEqual(loadTlsMaterial(dir, id).ca, ca);
  });

  test("an operator's own CA is used to issue the missing identities", async () => {
    const own = mtlsDir(await foreignTls());
    const dir = tempDir('tls-own-ca');
    fs.copyFileSync(path.join(own, 'ca.crt'), path.join(dir, 'ca.crt'));
    fs.copyFileSync(path.join(own, 'ca.key'), path.join(dir, 'ca.key'));
    fs.copyFileSync(path.join(own, 'payment.crt'), path.join(dir, 'payment.crt'));
    fs.copyFileSync(path.join(own, 'payment.key'), path.join(dir, 'payment.key'));
    assert.deepEqual(await ensureTlsMaterial(dir), ['gateway', 'order', 'inventory']);
    assert.deepEqual(fs.readFileSync(path.join(dir, 'ca.crt')), fs.readFileSync(path.join(own, 'ca.crt')), 'the CA is kept');
    assert.deepEqual(fs.readFileSync(path.join(dir, 'payment.crt')), fs.readFileSync(path.join(own, 'payment.crt')), 'a given certificate is kept');
    loadTlsMaterial(dir, 'order');
  });

  test('a folder that cannot be completed is refused with the reason, and nothing is made', async () => {
    const own = mtlsDir(await foreignTls());
    const noCa = tempDir('tls-no-ca');
    fs.copyFileSync(path.join(own, 'order.crt'), path.join(noCa, 'order.crt'));
    await assert.rejects(ensureTlsMaterial(noCa), (err: unknown) => err instanceof TlsError && err.code === 'tls_material_incomplete' && /no ca\.crt/.test(err.message));
    assert.deepEqual(fs.readdirSync(noCa), ['order.crt']);

    const noCaKey = tempDir('tls-no-ca-key');
    fs.copyFileSync(path.join(own, 'ca.crt'), path.join(noCaKey, 'ca.crt'));
    await assert.rejects(ensureTlsMaterial(noCaKey), (err: unknown) => err instanceof TlsError && err.code === 'tls_material_incomplete' && /no ca\.key/.test(err.message));
  });

  test('a certificate of another CA, of another identity, or with a foreign key is refused at start', async () => {
    const ours = mtlsDir(await testTls());
    const theirs = mtlsDir(await foreignTls());
    const mixed = tempDir('tls-mixed');
    for (const f of fs.readdirSync(ours)) fs.copyFileSync(path.join(ours, f), path.join(mixed, f));
    fs.copyFileSync(path.join(theirs, 'order.crt'), path.join(mixed, 'order.crt'));
    fs.copyFileSync(path.join(theirs, 'order.key'), path.join(mixed, 'order.key'));
    assert.equal(codeOfTls(() => loadTlsMaterial(mixed, 'order')), 'tls_material_invalid');
    fs.copyFileSync(path.join(ours, 'payment.crt'), path.join(mixed, 'order.crt'));
    fs.copyFileSync(path.join(ours, 'payment.key'), path.join(mixed, 'order.key'));
    assert.match(String((() => { try { loadTlsMaterial(mixed, 'order'); } catch (e) { return (e as Error).message; } })()), /CN=payment/);
    fs.copyFileSync(path.join(ours, 'order.crt'), path.join(mixed, 'order.crt'));
    assert.equal(codeOfTls(() => loadTlsMaterial(mixed, 'order')), 'tls_material_invalid', 'order.crt with payment.key');
    fs.writeFileSync(path.join(mixed, 'order.key'), 'not a key');
    assert.equal(codeOfTls(() => loadTlsMaterial(mixed, 'order')), 'tls_material_invalid');
  });
});

describe('a participant over mutual TLS', () => {
  let ours: GrpcSecurity;
  let theirs: GrpcSecurity;
  let server: RunningServer;
  let charges = 0;

  before(async () => {
    ours = await testTls();
    theirs = await foreignTls();
    const db = openPaymentDatabase(path.join(tempDir('mtls-payment'), 'payment.db'), 'normal');
    const implementation = createPaymentService({ db, logger: silentLogger, chargeLimitCents: 1_000_000 });
    const charge = implementation.charge;
    implementation.charge = (call, cb) => {
      charges++;
      charge.call(implementation, call, cb);
    };
    server = await startGrpcServer({ host: '127.0.0.1', port: 0 }, [{ definition: PaymentServiceService, implementation }], serverCredentials(ours, 'payment'));
  });
  after(() => server.shutdown(0));

  /** A Charge through `creds`: the status code it failed with, or 'OK'. */
  async function charge(creds: ChannelCredentials, orderId: string): Promise<string | number> {
    const client = new PaymentServiceClient(server.address, creds, channelOptions(ours, 'payment'));
    try {
      await callUnary(client.charge.bind(client), { orderId, amountCents: 100 }, { idempotencyKey: `${orderId}:charge_payment`, timeoutMs: 3_000 });
      return 'OK';
    } catch (err) {
      assert.ok(isServiceError(err), String(err));
      return err.code;
    } finally {
      client.close();
    }
  }

  /** What the service holds for `orderId`, asked as the gateway. */
  async function payment(orderId: string): Promise<PaymentStatus> {
    const client = new PaymentServiceClient(server.address, channelCredentials(ours, 'gateway', 'payment'), channelOptions(ours, 'payment'));
    try {
      return (await callUnary(client.getPayment.bind(client), { orderId }, { timeoutMs: 3_000 })).status;
    } finally {
      client.close();
    }
  }

  test('the gateway with its certificate is served', async () => {
    assert.equal(await charge(channelCredentials(ours, 'gateway', 'payment'), 'tls-ok'), 'OK');
    assert.equal(await payment('tls-ok'), PaymentStatus.PAYMENT_STATUS_CHARGED);
  });

  test('a caller without a client certificate, or in plaintext, is refused before any call', async () => {
    const before = charges;
    const m = loadTlsMaterial(mtlsDir(ours), 'gateway');
    assert.equal(await charge(credentials.createSsl(m.ca, null, null, { checkServerIdentity: () => undefined }), 'tls-no-cert'), status.UNAVAILABLE);
    assert.equal(await charge(credentials.createInsecure(), 'tls-plain'), status.UNAVAILABLE);
    assert.equal(charges, before, 'the service saw no call');
    assert.equal(await payment('tls-no-cert'), PaymentStatus.PAYMENT_STATUS_NONE);
    assert.equal(await payment('tls-plain'), PaymentStatus.PAYMENT_STATUS_NONE);
  });

  test('a caller with a certificate from another CA is refused', async () => {
    const before = charges;
    const stranger = loadTlsMaterial(mtlsDir(theirs), 'gateway');
    const server = loadTlsMaterial(mtlsDir(ours), 'gateway');
    // Trusts our server, presents their client certificate: only the client side is foreign.
    const creds = credentials.createSsl(server.ca, stranger.key, stranger.cert, { checkServerIdentity: () => undefined });
    assert.equal(await charge(creds, 'tls-foreign-client'), status.UNAVAILABLE);
    assert.equal(charges, before);
    assert.equal(await payment('tls-foreign-client'), PaymentStatus.PAYMENT_STATUS_NONE);
  });

  test("a participant's certificate, of the same CA, cannot call another participant", async () => {
    const before = charges;
    const order = loadTlsMaterial(mtlsDir(ours), 'order');
    const creds = credentials.createSsl(order.ca, order.key, order.cert, { checkServerIdentity: () => undefined });
    assert.equal(await charge(creds, 'tls-order-as-caller'), status.UNAVAILABLE);
    assert.equal(charges, before);
    assert.equal(await payment('tls-order-as-caller'), PaymentStatus.PAYMENT_STATUS_NONE);
  });

  test('the gateway refuses a server of another CA, or one with another participant\'s certificate', async () => {
    const before = charges;
    // Our CA only trusts our certificates: their CA's server is not ours.
    assert.equal(await charge(channelCredentials(theirs, 'gateway', 'payment'), 'tls-foreign-server'), status.UNAVAILABLE);
    // The server at this address presents CN=payment: a gateway dialling "order" there refuses it.
    assert.equal(await charge(channelCredentials(ours, 'gateway', 'order'), 'tls-wrong-identity'), status.UNAVAILABLE);
    assert.equal(charges, before);
  });
});

describe('a process at start', () => {
  test('makes its certificates under DATA_DIR/tls on first start', async () => {
    const dir = tempDir('mtls-main');
    const proc = startMain('payment', { DATA_DIR: dir, PAYMENT_SERVICE_ADDR: '127.0.0.1:0', METRICS_ADDR: 'off' });
    await proc.ready;
    proc.stop();
    assert.equal((await proc.exit).code, 0);
    for (const id of TLS_IDENTITIES) loadTlsMaterial(path.join(dir, 'tls'), id);
  });

  test('refuses to start with a certificate that is not its own, saying why', async () => {
    const ours = mtlsDir(await testTls());
    const dir = tempDir('mtls-bad');
    const tls = path.join(dir, 'certs');
    fs.mkdirSync(tls);
    for (const f of fs.readdirSync(ours)) fs.copyFileSync(path.join(ours, f), path.join(tls, f));
    fs.copyFileSync(path.join(ours, 'order.crt'), path.join(tls, 'payment.crt'));
    const proc = startMain('payment', { DATA_DIR: dir, TLS_DIR: tls, PAYMENT_SERVICE_ADDR: '127.0.0.1:0', METRICS_ADDR: 'off' });
    const { code, stderr } = await proc.exit;
    assert.equal(code, 1);
    assert.match(stderr, /payment: cannot start mutual TLS \(tls_material_invalid\): .*payment\.crt names CN=order/);
    assert.doesNotMatch(stderr, /\n\s+at /, 'a clear line, not a stack trace');
  });

  test('GRPC_INSECURE=1 serves plaintext, with a warning at start, and makes no certificates', async () => {
    const dir = tempDir('mtls-insecure');
    const proc = startMain('payment', { DATA_DIR: dir, GRPC_INSECURE: '1', PAYMENT_SERVICE_ADDR: '127.0.0.1:0', METRICS_ADDR: 'off', LOG_LEVEL: 'warn', LOG_FORMAT: 'json' });
    const ready = await proc.ready;
    const client = new PaymentServiceClient(ready.address, credentials.createInsecure());
    try {
      const res = await callUnary(client.getPayment.bind(client), { orderId: 'none' }, { timeoutMs: 3_000 });
      assert.equal(res.status, PaymentStatus.PAYMENT_STATUS_NONE, 'a plaintext call is answered');
    } finally {
      client.close();
    }
    proc.stop();
    assert.equal((await proc.exit).code, 0);
    assert.equal(fs.existsSync(path.join(dir, 'tls')), false);
    assert.ok(proc.stdout().some((l) => /GRPC_INSECURE=1/.test(l)), 'the warning is logged');
  });

  test('the gateway refuses to start with a certificate of another CA, saying why', async () => {
    const ours = mtlsDir(await testTls());
    const theirs = mtlsDir(await foreignTls());
    const dir = tempDir('mtls-gateway');
    const tls = path.join(dir, 'tls');
    fs.mkdirSync(tls);
    for (const f of fs.readdirSync(ours)) fs.copyFileSync(path.join(ours, f), path.join(tls, f));
    fs.copyFileSync(path.join(theirs, 'gateway.crt'), path.join(tls, 'gateway.crt'));
    fs.copyFileSync(path.join(theirs, 'gateway.key'), path.join(tls, 'gateway.key'));
    const err = await spawnService('gateway', {
      env: { PATH: process.env.PATH ?? '', DATA_DIR: dir, HTTP_ADDR: '127.0.0.1:0', LOG_FORMAT: 'json', REDIS_URL: '' },
      readyTimeoutMs: 30_000,
    }).then(
      () => assert.fail('the gateway should not start'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ServiceStartError, String(err));
    const fatal = err.output.map((l) => JSON.parse(l) as { level?: number | string; code?: string; msg?: string }).find((l) => l.code !== undefined);
    assert.equal(fatal?.code, 'tls_material_invalid');
    assert.match(fatal?.msg ?? '', /cannot start mutual TLS: .*gateway\.crt was not issued by/);
  });
});
