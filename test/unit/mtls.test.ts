import 'reflect-metadata'; // before @peculiar/x509, whose tsyringe needs it (see src/platform/tls.ts)
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BasicConstraintsExtension, KeyUsageFlags, KeyUsagesExtension, X509Certificate as AsnCertificate } from '@peculiar/x509';
import { credentials, status, type ChannelCredentials } from '@grpc/grpc-js';
import { PaymentServiceClient, PaymentServiceService, PaymentStatus } from '../../src/gen/payment/v1/payment.js';
import { callUnary, channelCredentials, channelOptions, isServiceError, serverCredentials, startGrpcServer, type RunningServer } from '../../src/platform/grpc.js';
import { ensureTlsMaterial, loadTlsMaterial, TLS_IDENTITIES, TlsError, type GrpcSecurity } from '../../src/platform/tls.js';
import { createPaymentService } from '../../src/services/payment/server.js';
import { openPaymentDatabase } from '../../src/services/payment/store.js';
import { ServiceStartError, spawnService, startSystem } from '../../src/cli/supervisor.js';
import { silentLogger, startMain, tempDir } from '../helpers/participants.js';
import { http } from '../helpers/system.js';
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

const DAY_MS = 86_400_000;
const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures', 'tls');

/** A folder holding only the CA of a fixture (made by the openssl CLI, test/fixtures/tls/README.md). */
function withFixtureCa(fixture: string): string {
  const dir = tempDir(`tls-${fixture}`);
  for (const f of ['ca.crt', 'ca.key']) fs.copyFileSync(path.join(FIXTURES, fixture, f), path.join(dir, f));
  return dir;
}

/** What a payment server with `dir`'s payment certificate answers the gateway's certificate in `dir`: a real mTLS handshake, then a call. */
async function handshake(dir: string): Promise<PaymentStatus> {
  const security: GrpcSecurity = { kind: 'mtls', dir };
  const db = openPaymentDatabase(path.join(tempDir('mtls-handshake'), 'payment.db'), 'normal');
  const implementation = createPaymentService({ db, logger: silentLogger, chargeLimitCents: 1_000_000 });
  const server = await startGrpcServer({ host: '127.0.0.1', port: 0 }, [{ definition: PaymentServiceService, implementation }], serverCredentials(security, 'payment'));
  const client = new PaymentServiceClient(server.address, channelCredentials(security, 'gateway', 'payment'), channelOptions(security, 'payment'));
  try {
    return (await callUnary(client.getPayment.bind(client), { orderId: 'handshake' }, { timeoutMs: 3_000 })).status;
  } finally {
    client.close();
    server.shutdown(0);
  }
}

/** Checks, with node's own X509Certificate, that `dir`'s leaves are what the product issues, by the CA in `dir`. */
function assertLeaves(dir: string): void {
  const ca = new X509Certificate(fs.readFileSync(path.join(dir, 'ca.crt')));
  for (const id of TLS_IDENTITIES) {
    const pem = fs.readFileSync(path.join(dir, `${id}.crt`));
    const leaf = new X509Certificate(pem);
    assert.equal(leaf.subject, `CN=${id}`);
    assert.equal(leaf.issuer, ca.subject, `${id}.crt names its CA as issuer`);
    assert.ok(leaf.checkIssued(ca), `${id}.crt is issued by ca.crt`);
    assert.ok(leaf.verify(ca.publicKey), `${id}.crt is signed by ca.key`);
    assert.equal(leaf.ca, false);
    assert.equal(leaf.subjectAltName, `DNS:${id}, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1`);
    // Node's keyUsage is the extended key usage: clientAuth for the gateway, serverAuth for the others.
    assert.deepEqual(leaf.keyUsage, [id === 'gateway' ? '1.3.6.1.5.5.7.3.2' : '1.3.6.1.5.5.7.3.1'], `${id}'s extended key usage`);
    assert.equal(new Date(leaf.validTo).getTime() - new Date(leaf.validFrom).getTime(), 825 * DAY_MS);
    assert.equal(leaf.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1', `${id}.key is P-256`);
    const key = fs.readFileSync(path.join(dir, `${id}.key`), 'utf8');
    assert.match(key, /^-----BEGIN PRIVATE KEY-----\n/, `${id}.key is unencrypted PKCS#8`);
    assert.ok(leaf.checkPrivateKey(createPrivateKey(key)));
    // The bits node does not show: key usage digitalSignature only, critical; not a CA, critical.
    const asn = new AsnCertificate(new Uint8Array(leaf.raw));
    const ku = asn.getExtension(KeyUsagesExtension);
    assert.equal(ku?.usages, KeyUsageFlags.digitalSignature);
    assert.equal(ku?.critical, true);
    const bc = asn.getExtension(BasicConstraintsExtension);
    assert.equal(bc?.ca, false);
    assert.equal(bc?.critical, true);
  }
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

  test('the certificates are those the openssl CLI made: P-256 keys in PKCS#8, names, usages, alternative names and validity', async () => {
    const dir = path.join(tempDir('tls-content'), 'tls');
    await ensureTlsMaterial(dir);
    const ca = new X509Certificate(fs.readFileSync(path.join(dir, 'ca.crt')));
    assert.match(ca.subject, /^CN=ecommerce-sagas local CA [0-9a-f]{8}$/);
    assert.equal(ca.issuer, ca.subject);
    assert.equal(ca.ca, true);
    assert.ok(ca.checkIssued(ca) && ca.verify(ca.publicKey), 'self-signed');
    assert.equal(new Date(ca.validTo).getTime() - new Date(ca.validFrom).getTime(), 3650 * DAY_MS);
    assert.ok(Math.abs(new Date(ca.validFrom).getTime() - Date.now()) < 60_000, 'valid from now');
    assert.equal(ca.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.ok(ca.checkPrivateKey(createPrivateKey(fs.readFileSync(path.join(dir, 'ca.key')))));
    const asn = new AsnCertificate(new Uint8Array(ca.raw));
    assert.equal(asn.getExtension(KeyUsagesExtension)?.usages, KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign);
    const bc = asn.getExtension(BasicConstraintsExtension);
    assert.deepEqual([bc?.ca, bc?.pathLength, bc?.critical], [true, 0, true], 'a CA of leaves only, critical');
    assertLeaves(dir);
    // Files as the openssl path wrote them: keys private whatever the umask, certificates readable.
    const certMode = 0o644 & ~process.umask();
    for (const f of fs.readdirSync(dir)) assert.equal(fs.statSync(path.join(dir, f)).mode & 0o777, f.endsWith('.key') ? 0o600 : certMode, f);
    assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
    assert.equal(await handshake(dir), PaymentStatus.PAYMENT_STATUS_NONE, 'the gateway is served by the payment service');
  });

  test('a CA that the openssl CLI made (EC as this project made it, or an RSA CA with a PKCS#1 key) issues the missing identities', async () => {
    for (const fixture of ['openssl-ec-ca', 'openssl-rsa-ca']) {
      const dir = withFixtureCa(fixture);
      assert.deepEqual(await ensureTlsMaterial(dir), [...TLS_IDENTITIES], fixture);
      assertLeaves(dir);
      for (const id of TLS_IDENTITIES) loadTlsMaterial(dir, id);
      assert.equal(await handshake(dir), PaymentStatus.PAYMENT_STATUS_NONE, `${fixture}: the gateway is served`);
    }
  });

  test('a ca.key that is not the key of ca.crt is refused naming it, and nothing is issued', async () => {
    const dir = withFixtureCa('openssl-ec-ca');
    fs.copyFileSync(path.join(FIXTURES, 'openssl-rsa-ca', 'ca.key'), path.join(dir, 'ca.key'));
    await assert.rejects(ensureTlsMaterial(dir), (err: unknown) => err instanceof TlsError && err.code === 'tls_material_invalid' && /ca\.key is not the key of .*ca\.crt/.test(err.message));
    fs.writeFileSync(path.join(dir, 'ca.key'), 'not a key');
    await assert.rejects(ensureTlsMaterial(dir), (err: unknown) => err instanceof TlsError && err.code === 'tls_material_invalid' && /ca\.key is not an unencrypted PEM private key/.test(err.message));
    assert.deepEqual(fs.readdirSync(dir).sort(), ['ca.crt', 'ca.key']);
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

  test('a whole system with nothing but node on its PATH (no openssl) makes its certificates on first start and serves an order', async () => {
    const dataDir = tempDir('mtls-node-only');
    // A folder with the node binary alone: whatever else sits beside node on this machine, no openssl.
    const bin = tempDir('node-only-bin');
    fs.symlinkSync(process.execPath, path.join(bin, path.basename(process.execPath)));
    const tlsDir = path.join(dataDir, 'tls');
    const sys = await startSystem({
      dataDir,
      ports: 'ephemeral',
      env: { PATH: bin, TLS_DIR: tlsDir, LOG_LEVEL: 'warn', REDIS_KEY_PREFIX: `test-${path.basename(dataDir)}`, ADMIN_ADDR: 'off' },
      readyTimeoutMs: 60_000,
    });
    try {
      const r = await http(sys.url, 'POST', '/orders', { customer_id: 'cust_node_only', items: [{ product_id: 'prod_1', quantity: 1, price: 10 }] }, { Prefer: 'wait=5' });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.equal(r.body.status, 'CONFIRMED', JSON.stringify(r.body));
    } finally {
      await sys.stop();
    }
    assert.deepEqual(fs.readdirSync(tlsDir).sort(), ['ca.crt', 'ca.key', ...TLS_IDENTITIES.flatMap((id) => [`${id}.crt`, `${id}.key`])].sort());
    const certMode = 0o644 & ~process.umask();
    for (const f of fs.readdirSync(tlsDir)) assert.equal(fs.statSync(path.join(tlsDir, f)).mode & 0o777, f.endsWith('.key') ? 0o600 : certMode, f);
    assertLeaves(tlsDir);
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
