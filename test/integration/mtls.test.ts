import 'reflect-metadata'; // before @peculiar/x509, whose tsyringe needs it (see src/platform/grpc/tls.ts)
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import {
  BasicConstraintsExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  X509Certificate as AsnCertificate,
} from '@peculiar/x509';
import { credentials, status, type ChannelCredentials, type ServiceError } from '@grpc/grpc-js';
import { PaymentServiceClient, PaymentServiceService, PaymentStatus } from '../../src/gen/payment/v1/payment.js';
import { HealthClient } from '../../src/gen/health/v1/health.js';
import {
  callUnary,
  channelCredentials,
  channelOptions,
  errorCodeOf,
  isServiceError,
  serverCredentials,
  startGrpcServer,
  type RunningServer,
} from '../../src/platform/grpc/grpc.js';
import {
  identityDir,
  issueIdentities,
  loadTlsMaterial,
  TLS_IDENTITIES,
  TlsError,
  type GrpcSecurity,
  type TlsIdentity,
} from '../../src/platform/grpc/tls.js';
import { createPaymentService } from '../../src/services/payment/server.js';
import { openPaymentDatabase } from '../../src/services/payment/store.js';
import { ServiceStartError, spawnService, startSystem } from '../../src/supervisor/supervisor.js';
import { captureLogger, silentLogger, startMain, tempDir } from '../helpers/participants.js';
import { http } from '../helpers/system.js';
import {
  callerCredentials,
  foreignTls,
  mintCertificate,
  mtlsDir,
  testTls,
  filesUnder,
  IDENTITY_LAYOUT,
} from '../helpers/tls.js';

/**
 * Mutual TLS between the gateway and the participants (issue 11 part 1, issue 23): one CA, and one
 * folder per identity holding only ca.crt and that process's key and certificate; the CA's key in
 * none of them. A participant serves only a caller whose certificate, of the deployment's CA,
 * names the gateway; the gateway accepts a participant only with that participant's certificate.
 * The whole suite runs over TLS; these tests prove the layout and the refusals.
 */

async function tlsErrorOf(p: Promise<unknown> | (() => unknown)): Promise<TlsError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    assert.ok(err instanceof TlsError, `expected a TlsError, got ${String(err)}`);
    return err;
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

const mode = (f: string) => fs.statSync(f).mode & 0o777;

/** Checks the layout: one folder per identity (0700) with its three files, keys 0600, one CA for all, and no CA key in it. */
function assertLayout(tlsDir: string): void {
  assert.deepEqual(
    filesUnder(tlsDir),
    IDENTITY_LAYOUT,
    'only the four identities, each its own three files: no lock, no work file, no ca.key',
  );
  const ca = fs.readFileSync(path.join(identityDir(tlsDir, 'gateway'), 'ca.crt'));
  const caCert = new X509Certificate(ca);
  for (const id of TLS_IDENTITIES) {
    const dir = identityDir(tlsDir, id);
    assert.equal(mode(dir), 0o700, `${id}/ is private`);
    assert.equal(mode(path.join(dir, `${id}.key`)), 0o600, `${id}.key is private`);
    assert.deepEqual(fs.readFileSync(path.join(dir, 'ca.crt')), ca, `${id}/ca.crt is the one CA`);
    const key = createPrivateKey(fs.readFileSync(path.join(dir, `${id}.key`)));
    assert.equal(caCert.checkPrivateKey(key), false, `${id}.key is not the CA's key`);
    assert.equal(loadTlsMaterial(tlsDir, id).identity, id);
  }
}

/** What a payment server with `dir`'s payment identity answers the gateway's identity in `dir`: a real mTLS handshake, then a call. */
async function handshake(dir: string): Promise<PaymentStatus> {
  const security: GrpcSecurity = { kind: 'mtls', dir };
  const db = openPaymentDatabase(path.join(tempDir('mtls-handshake'), 'payment.db'), 'normal');
  const implementation = createPaymentService({ db, logger: silentLogger, chargeLimitCents: 1_000_000 });
  const server = await startGrpcServer(
    { host: '127.0.0.1', port: 0 },
    [{ definition: PaymentServiceService, implementation }],
    serverCredentials(security, 'payment'),
  );
  const client = new PaymentServiceClient(
    server.address,
    channelCredentials(security, 'gateway', 'payment'),
    channelOptions(security, 'payment'),
  );
  try {
    return (await callUnary(client.getPayment.bind(client), { orderId: 'handshake' }, { timeoutMs: 3_000 })).status;
  } finally {
    client.close();
    await server.shutdown(0);
    db.close();
  }
}

/** Checks, with node's own X509Certificate, that `tlsDir`'s leaves are what the product issues, by the CA in `caDir`. */
function assertLeaves(tlsDir: string, caDir: string): void {
  const ca = new X509Certificate(fs.readFileSync(path.join(caDir, 'ca.crt')));
  for (const id of TLS_IDENTITIES) {
    const dir = identityDir(tlsDir, id);
    const leaf = new X509Certificate(fs.readFileSync(path.join(dir, `${id}.crt`)));
    assert.equal(leaf.subject, `CN=${id}`);
    assert.equal(leaf.issuer, ca.subject, `${id}.crt names its CA as issuer`);
    assert.ok(leaf.checkIssued(ca), `${id}.crt is issued by ca.crt`);
    assert.ok(leaf.verify(ca.publicKey), `${id}.crt is signed by ca.key`);
    assert.equal(leaf.ca, false);
    assert.equal(leaf.subjectAltName, `DNS:${id}, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1`);
    // Node's keyUsage is the extended key usage: clientAuth for the gateway, serverAuth for the others.
    assert.deepEqual(
      leaf.keyUsage,
      [id === 'gateway' ? '1.3.6.1.5.5.7.3.2' : '1.3.6.1.5.5.7.3.1'],
      `${id}'s extended key usage`,
    );
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

/** An old one-folder TLS_DIR (before issue 23): ca.crt, ca.key and every identity's files side by side. */
async function oldLayout(): Promise<{ dir: string; keys: Record<TlsIdentity, Buffer>; caKey: Buffer }> {
  const made = path.join(tempDir('tls-old-src'), 'tls');
  const caDir = tempDir('tls-old-ca');
  await issueIdentities(made, { ca: caDir });
  const dir = tempDir('tls-old');
  fs.copyFileSync(path.join(caDir, 'ca.crt'), path.join(dir, 'ca.crt'));
  fs.copyFileSync(path.join(caDir, 'ca.key'), path.join(dir, 'ca.key'));
  for (const id of TLS_IDENTITIES)
    for (const f of [`${id}.crt`, `${id}.key`]) fs.copyFileSync(path.join(identityDir(made, id), f), path.join(dir, f));
  const keys = Object.fromEntries(
    TLS_IDENTITIES.map((id) => [id, fs.readFileSync(path.join(dir, `${id}.key`))]),
  ) as Record<TlsIdentity, Buffer>;
  return { dir, keys, caKey: fs.readFileSync(path.join(dir, 'ca.key')) };
}

describe('TLS material (sagas certs, or a first sagas start)', () => {
  test('a first issue makes a CA and the four identities, one private folder each with only its own key; the CA key is written nowhere; a second issue changes nothing', async () => {
    const dir = path.join(tempDir('tls-new'), 'tls');
    const report = await issueIdentities(dir);
    assert.deepEqual(report.issued, [...TLS_IDENTITIES]);
    assert.equal(report.newCa, true);
    assert.equal(mode(dir), 0o700);
    assertLayout(dir);
    const before = fs.readFileSync(path.join(identityDir(dir, 'order'), 'order.crt'));
    assert.deepEqual((await issueIdentities(dir)).issued, []);
    assert.deepEqual(fs.readFileSync(path.join(identityDir(dir, 'order'), 'order.crt')), before);
    assertLayout(dir);
    assert.equal(
      await handshake(dir),
      PaymentStatus.PAYMENT_STATUS_NONE,
      'the gateway is served by the payment service',
    );
  });

  test('the certificates are those the openssl CLI made: P-256 keys in PKCS#8, names, usages, alternative names and validity; --ca with an empty folder keeps the new CA there', async () => {
    const dir = path.join(tempDir('tls-content'), 'tls');
    const caDir = path.join(tempDir('tls-content-ca'), 'ca');
    const report = await issueIdentities(dir, { ca: caDir });
    assert.equal(report.newCa, true);
    assert.deepEqual(fs.readdirSync(caDir).sort(), ['ca.crt', 'ca.key']);
    assert.equal(mode(caDir), 0o700);
    assert.equal(mode(path.join(caDir, 'ca.key')), 0o600);
    const ca = new X509Certificate(fs.readFileSync(path.join(caDir, 'ca.crt')));
    assert.match(ca.subject, /^CN=ecommerce-sagas local CA [0-9a-f]{8}$/);
    assert.equal(ca.issuer, ca.subject);
    assert.equal(ca.ca, true);
    assert.ok(ca.checkIssued(ca) && ca.verify(ca.publicKey), 'self-signed');
    assert.equal(new Date(ca.validTo).getTime() - new Date(ca.validFrom).getTime(), 3650 * DAY_MS);
    assert.ok(Math.abs(new Date(ca.validFrom).getTime() - Date.now()) < 60_000, 'valid from now');
    assert.equal(ca.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.ok(ca.checkPrivateKey(createPrivateKey(fs.readFileSync(path.join(caDir, 'ca.key')))));
    const asn = new AsnCertificate(new Uint8Array(ca.raw));
    assert.equal(asn.getExtension(KeyUsagesExtension)?.usages, KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign);
    const bc = asn.getExtension(BasicConstraintsExtension);
    assert.deepEqual([bc?.ca, bc?.pathLength, bc?.critical], [true, 0, true], 'a CA of leaves only, critical');
    assertLeaves(dir, caDir);
    assertLayout(dir);
    // Certificates readable as the openssl path wrote them; keys private whatever the umask.
    const certMode = 0o644 & ~process.umask();
    for (const f of filesUnder(dir)) assert.equal(mode(path.join(dir, f)), f.endsWith('.key') ? 0o600 : certMode, f);
  });

  test('a CA that the openssl CLI made (EC as this project made it, or an RSA CA with a PKCS#1 key) issues the identities (--ca)', async () => {
    for (const fixture of ['openssl-ec-ca', 'openssl-rsa-ca']) {
      const caDir = withFixtureCa(fixture);
      const dir = path.join(tempDir(`tls-${fixture}-out`), 'tls');
      const report = await issueIdentities(dir, { ca: caDir });
      assert.deepEqual(report.issued, [...TLS_IDENTITIES], fixture);
      assert.equal(report.newCa, false);
      assertLeaves(dir, caDir);
      assertLayout(dir);
      assert.deepEqual(fs.readdirSync(caDir).sort(), ['ca.crt', 'ca.key'], 'the CA folder is left as it was');
      assert.equal(await handshake(dir), PaymentStatus.PAYMENT_STATUS_NONE, `${fixture}: the gateway is served`);
    }
  });

  test('a ca.key that is not the key of ca.crt is refused naming it, and nothing is issued', async () => {
    const caDir = withFixtureCa('openssl-ec-ca');
    const dir = path.join(tempDir('tls-wrong-ca-key'), 'tls');
    fs.copyFileSync(path.join(FIXTURES, 'openssl-rsa-ca', 'ca.key'), path.join(caDir, 'ca.key'));
    let err = await tlsErrorOf(issueIdentities(dir, { ca: caDir }));
    assert.equal(err.code, 'tls_material_invalid');
    assert.match(err.message, /ca\.key is not the key of .*ca\.crt/);
    fs.writeFileSync(path.join(caDir, 'ca.key'), 'not a key');
    err = await tlsErrorOf(issueIdentities(dir, { ca: caDir }));
    assert.match(err.message, /ca\.key is not an unencrypted PEM private key/);
    fs.rmSync(path.join(caDir, 'ca.key'));
    err = await tlsErrorOf(issueIdentities(dir, { ca: caDir }));
    assert.equal(err.code, 'tls_material_incomplete');
    assert.match(err.message, /has ca\.crt but no ca\.key/);
    assert.deepEqual(filesUnder(dir), [], 'no identity issued');
  });

  test('issuers that start together make one CA between them', async () => {
    const dir = path.join(tempDir('tls-race'), 'tls');
    const reports = await Promise.all([1, 2, 3, 4].map(() => issueIdentities(dir)));
    assert.deepEqual(reports.flatMap((r) => r.issued).sort(), [...TLS_IDENTITIES].sort(), 'each identity issued once');
    assertLayout(dir);
  });

  test("an operator's own CA issues the missing identities and keeps those given", async () => {
    const caDir = tempDir('tls-own-ca');
    const own = path.join(tempDir('tls-own-src'), 'tls');
    await issueIdentities(own, { ca: caDir });
    const dir = path.join(tempDir('tls-own'), 'tls');
    fs.cpSync(identityDir(own, 'payment'), identityDir(dir, 'payment'), { recursive: true });
    const report = await issueIdentities(dir, { ca: caDir });
    assert.deepEqual(report.issued, ['gateway', 'order', 'inventory']);
    assert.deepEqual(
      fs.readFileSync(path.join(identityDir(dir, 'payment'), 'payment.crt')),
      fs.readFileSync(path.join(identityDir(own, 'payment'), 'payment.crt')),
      'a given identity is kept',
    );
    assertLayout(dir);
    // Another CA than the one of the identities there does not complete the folder.
    fs.rmSync(identityDir(dir, 'order'), { recursive: true });
    const other = withFixtureCa('openssl-ec-ca');
    const err = await tlsErrorOf(issueIdentities(dir, { ca: other }));
    assert.equal(err.code, 'tls_material_invalid');
    assert.match(err.message, /issued by another CA/);
  });

  test('a folder whose CA key was not kept cannot be completed, saying what to do; --renew issues all four again from a new CA', async () => {
    const dir = path.join(tempDir('tls-incomplete'), 'tls');
    await issueIdentities(dir);
    fs.rmSync(identityDir(dir, 'order'), { recursive: true });
    const gateway = fs.readFileSync(path.join(identityDir(dir, 'gateway'), 'gateway.crt'));
    const err = await tlsErrorOf(issueIdentities(dir));
    assert.equal(err.code, 'tls_material_incomplete');
    assert.match(
      err.message,
      /has gateway, inventory, payment but not order, and the key of the CA that issued them is not kept here .*--ca DIR.*--renew/,
    );
    assert.deepEqual(filesUnder(identityDir(dir, 'order')), [], 'nothing issued');
    // Half an identity (an interrupted copy) is named, not completed.
    fs.writeFileSync(path.join(identityDir(dir, 'order'), 'order.crt'), 'x');
    assert.match((await tlsErrorOf(issueIdentities(dir))).message, /order has order\.crt but no ca\.crt or order\.key/);

    const renewed = await issueIdentities(dir, { renew: true });
    assert.deepEqual(renewed.issued, [...TLS_IDENTITIES]);
    assert.equal(renewed.newCa, true);
    assert.notDeepEqual(fs.readFileSync(path.join(identityDir(dir, 'gateway'), 'gateway.crt')), gateway, 'replaced');
    assertLayout(dir);
    assert.equal(await handshake(dir), PaymentStatus.PAYMENT_STATUS_NONE);
  });

  test('an old one-folder TLS_DIR: a process refuses it saying how to move it; issuing moves each identity into its folder (the same keys) and the CA key out of them', async () => {
    const { dir, keys, caKey } = await oldLayout();
    const refused = await tlsErrorOf(() => loadTlsMaterial(dir, 'order'));
    assert.equal(refused.code, 'tls_old_layout');
    assert.match(refused.message, /old one-folder layout .*`sagas certs` moves it/);

    const report = await issueIdentities(dir);
    assert.deepEqual(report.issued, []);
    assert.deepEqual(report.migrated, {
      identities: [...TLS_IDENTITIES],
      caKeyMovedTo: path.join(dir, 'ca', 'ca.key'),
    });
    assert.deepEqual(filesUnder(dir), ['ca/ca.crt', 'ca/ca.key', ...IDENTITY_LAYOUT].sort(), 'nothing left at the top');
    for (const id of TLS_IDENTITIES)
      assert.deepEqual(
        fs.readFileSync(path.join(identityDir(dir, id), `${id}.key`)),
        keys[id],
        `${id}.key moved, not made anew`,
      );
    assert.deepEqual(fs.readFileSync(path.join(dir, 'ca', 'ca.key')), caKey);
    assert.equal(mode(path.join(dir, 'ca')), 0o700);
    assert.equal(mode(path.join(dir, 'ca', 'ca.key')), 0o600);
    for (const id of TLS_IDENTITIES) assert.equal(mode(identityDir(dir, id)), 0o700);
    assert.equal(await handshake(dir), PaymentStatus.PAYMENT_STATUS_NONE, 'the moved identities still work together');
    assert.deepEqual((await issueIdentities(dir)).migrated, undefined, 'moved once');
  });

  test('a certificate of another CA, of another identity, or with a foreign key is refused at start', async () => {
    const ours = mtlsDir(await testTls());
    const theirs = mtlsDir(await foreignTls());
    const mixed = tempDir('tls-mixed');
    fs.cpSync(ours, mixed, { recursive: true });
    const order = identityDir(mixed, 'order');
    const code = async () => (await tlsErrorOf(() => loadTlsMaterial(mixed, 'order'))).code;
    fs.copyFileSync(path.join(identityDir(theirs, 'order'), 'order.crt'), path.join(order, 'order.crt'));
    fs.copyFileSync(path.join(identityDir(theirs, 'order'), 'order.key'), path.join(order, 'order.key'));
    assert.equal(await code(), 'tls_material_invalid');
    fs.copyFileSync(path.join(identityDir(ours, 'payment'), 'payment.crt'), path.join(order, 'order.crt'));
    fs.copyFileSync(path.join(identityDir(ours, 'payment'), 'payment.key'), path.join(order, 'order.key'));
    assert.match((await tlsErrorOf(() => loadTlsMaterial(mixed, 'order'))).message, /CN=payment/);
    fs.copyFileSync(path.join(identityDir(ours, 'order'), 'order.crt'), path.join(order, 'order.crt'));
    assert.equal(await code(), 'tls_material_invalid', 'order.crt with payment.key');
    fs.writeFileSync(path.join(order, 'order.key'), 'not a key');
    assert.equal(await code(), 'tls_material_invalid');
    fs.rmSync(order, { recursive: true });
    const missing = await tlsErrorOf(() => loadTlsMaterial(mixed, 'order'));
    assert.equal(missing.code, 'tls_material_incomplete');
    assert.match(missing.message, /no order identity: .* does not exist; issue the identities with `sagas certs`/);
  });
});

describe('a participant over mutual TLS', () => {
  let ours: GrpcSecurity;
  let theirs: GrpcSecurity;
  let server: RunningServer;
  let charges = 0;
  const captured = captureLogger();

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
    server = await startGrpcServer(
      { host: '127.0.0.1', port: 0 },
      [{ definition: PaymentServiceService, implementation }],
      serverCredentials(ours, 'payment'),
      { logger: captured.logger },
    );
  });
  after(() => server.shutdown(0));

  /** A Charge through `creds`: the error it failed with, or 'OK'. */
  async function chargeAs(creds: ChannelCredentials, orderId: string): Promise<'OK' | ServiceError> {
    const client = new PaymentServiceClient(server.address, creds, channelOptions(ours, 'payment'));
    try {
      await callUnary(
        client.charge.bind(client),
        { orderId, amountCents: 100 },
        { idempotencyKey: `${orderId}:charge_payment`, timeoutMs: 3_000 },
      );
      return 'OK';
    } catch (err) {
      assert.ok(isServiceError(err), String(err));
      return err;
    } finally {
      client.close();
    }
  }
  const charge = async (creds: ChannelCredentials, orderId: string) => {
    const r = await chargeAs(creds, orderId);
    return r === 'OK' ? r : r.code;
  };

  /** What the service holds for `orderId`, asked as the gateway. */
  async function payment(orderId: string): Promise<PaymentStatus> {
    const client = new PaymentServiceClient(
      server.address,
      channelCredentials(ours, 'gateway', 'payment'),
      channelOptions(ours, 'payment'),
    );
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

  test("the caller's certificate is read once per connection, not on every call", async () => {
    const client = new PaymentServiceClient(
      server.address,
      channelCredentials(ours, 'gateway', 'payment'),
      channelOptions(ours, 'payment'),
    );
    // eslint-disable-next-line @typescript-eslint/unbound-method -- kept to be put back, and called with its socket as this
    const read = tls.TLSSocket.prototype.getPeerCertificate;
    let reads = 0;
    tls.TLSSocket.prototype.getPeerCertificate = function (this: tls.TLSSocket, ...args: Parameters<typeof read>) {
      reads++;
      return read.apply(this, args);
    } as typeof read;
    try {
      for (let i = 0; i < 20; i++)
        await callUnary(client.getPayment.bind(client), { orderId: `once-${i}` }, { timeoutMs: 3_000 });
    } finally {
      tls.TLSSocket.prototype.getPeerCertificate = read;
      client.close();
    }
    // A few reads for the one connection (the client pinning the server's name, the server learning
    // its caller), whatever the number of calls: read on every call, it would be 20 more.
    assert.ok(reads >= 1 && reads <= 4, `${reads} certificate reads for 20 calls`);
  });

  test('a caller without a client certificate, or in plaintext, is refused before any call', async () => {
    const before = charges;
    const m = loadTlsMaterial(mtlsDir(ours), 'gateway');
    assert.equal(
      await charge(credentials.createSsl(m.ca, null, null, { checkServerIdentity: () => undefined }), 'tls-no-cert'),
      status.UNAVAILABLE,
    );
    assert.equal(await charge(credentials.createInsecure(), 'tls-plain'), status.UNAVAILABLE);
    assert.equal(charges, before, 'the service saw no call');
    assert.equal(await payment('tls-no-cert'), PaymentStatus.PAYMENT_STATUS_NONE);
    assert.equal(await payment('tls-plain'), PaymentStatus.PAYMENT_STATUS_NONE);
  });

  test('a caller with a certificate from another CA is refused', async () => {
    const before = charges;
    const stranger = loadTlsMaterial(mtlsDir(theirs), 'gateway');
    // Trusts our server, presents their client certificate (CN=gateway): only the CA differs.
    assert.equal(await charge(await callerCredentials(stranger), 'tls-foreign-client'), status.UNAVAILABLE);
    assert.equal(charges, before);
    assert.equal(await payment('tls-foreign-client'), PaymentStatus.PAYMENT_STATUS_NONE);
  });

  test("a participant's certificate, of the same CA, cannot call another participant", async () => {
    const before = charges;
    for (const id of ['order', 'inventory', 'payment'] as const) {
      // serverAuth only: the handshake itself refuses it as a client certificate.
      assert.equal(
        await charge(await callerCredentials(loadTlsMaterial(mtlsDir(ours), id)), `tls-${id}-as-caller`),
        status.UNAVAILABLE,
        id,
      );
      assert.equal(await payment(`tls-${id}-as-caller`), PaymentStatus.PAYMENT_STATUS_NONE);
    }
    assert.equal(charges, before);
  });

  test('a client certificate of our own CA that does not name the gateway is refused before any handler runs: PERMISSION_DENIED, logged once', async () => {
    const before = charges;
    for (const cn of ['mallory', 'order', 'Gateway', 'gateway.evil']) {
      const refused = await chargeAs(await callerCredentials(await mintCertificate(cn, 'clientAuth')), `tls-cn-${cn}`);
      assert.notEqual(refused, 'OK', cn);
      assert.equal((refused as ServiceError).code, status.PERMISSION_DENIED, cn);
      assert.equal(errorCodeOf(refused), 'caller_not_allowed');
      assert.match(
        (refused as ServiceError).details,
        new RegExp(
          `only the gateway may call this service; the caller's certificate names CN=${cn.replace('.', '\\.')}`,
        ),
      );
      assert.equal(await payment(`tls-cn-${cn}`), PaymentStatus.PAYMENT_STATUS_NONE, `${cn}: nothing stored`);
    }
    assert.equal(charges, before, 'the handler ran for none of them');
    // The health service too: there is no method a non-gateway caller is served.
    const health = new HealthClient(
      server.address,
      await callerCredentials(await mintCertificate('mallory')),
      channelOptions(ours, 'payment'),
    );
    try {
      await assert.rejects(
        callUnary(health.check.bind(health), { service: '' }, { timeoutMs: 3_000 }),
        (e: ServiceError) => e.code === status.PERMISSION_DENIED,
      );
    } finally {
      health.close();
    }
    // Callers repeating refused calls make one line a minute, not one a call: the first is said.
    const said = captured.lines.filter((l) => l.msg === 'a caller that is not the gateway was refused');
    assert.equal(said.length, 1, JSON.stringify(said));
    assert.deepEqual(
      [said[0]?.level, said[0]?.caller, said[0]?.rpc],
      ['warn', 'mallory', '/payment.v1.PaymentService/Charge'],
    );
    // A certificate named gateway but for serving only (serverAuth): refused by the handshake.
    assert.equal(
      await charge(await callerCredentials(await mintCertificate('gateway', 'serverAuth')), 'tls-gateway-server-usage'),
      status.UNAVAILABLE,
    );
    assert.equal(charges, before);
  });

  test("the gateway refuses a server of another CA, or one with another participant's certificate", async () => {
    const before = charges;
    // Our CA only trusts our certificates: their CA's server is not ours.
    assert.equal(
      await charge(channelCredentials(theirs, 'gateway', 'payment'), 'tls-foreign-server'),
      status.UNAVAILABLE,
    );
    // The server at this address presents CN=payment: a gateway dialling "order" there refuses it.
    assert.equal(await charge(channelCredentials(ours, 'gateway', 'order'), 'tls-wrong-identity'), status.UNAVAILABLE);
    assert.equal(charges, before);
  });

  test("TLS credentials not made by serverCredentials (no check of the caller's name) are refused by startGrpcServer", async () => {
    const m = loadTlsMaterial(mtlsDir(ours), 'payment');
    const { ServerCredentials } = await import('@grpc/grpc-js');
    const bare = ServerCredentials.createSsl(m.ca, [{ private_key: m.key, cert_chain: m.cert }], true);
    await assert.rejects(startGrpcServer({ host: '127.0.0.1', port: 0 }, [], bare), /must come from serverCredentials/);
  });
});

describe('a process at start', () => {
  test('a participant alone issues nothing: with no identities it refuses to start, saying to run sagas certs', async () => {
    const dir = tempDir('mtls-main');
    const proc = startMain('payment', { DATA_DIR: dir, PAYMENT_SERVICE_ADDR: '127.0.0.1:0', METRICS_ADDR: 'off' });
    const { code, stderr } = await proc.exit;
    assert.equal(code, 1);
    assert.match(
      stderr,
      /payment: cannot start mutual TLS \(tls_material_incomplete\): no payment identity: .*tls\/payment does not exist; issue the identities with `sagas certs`/,
    );
    assert.equal(fs.existsSync(path.join(dir, 'tls')), false, 'nothing made');
  });

  test('a participant given an old one-folder TLS_DIR refuses to start, saying how to move it', async () => {
    const { dir: tls } = await oldLayout();
    const proc = startMain('payment', {
      DATA_DIR: tempDir('mtls-old'),
      TLS_DIR: tls,
      PAYMENT_SERVICE_ADDR: '127.0.0.1:0',
      METRICS_ADDR: 'off',
    });
    const { code, stderr } = await proc.exit;
    assert.equal(code, 1);
    assert.match(stderr, /payment: cannot start mutual TLS \(tls_old_layout\): .*`sagas certs` moves it/);
  });

  test('a whole system with nothing but node on its PATH (no openssl): the supervisor issues the identities on first start, keeps no CA key, and the data is private', async () => {
    const dataDir = path.join(tempDir('mtls-node-only'), 'data');
    // A folder with the node binary alone: whatever else sits beside node on this machine, no openssl.
    const bin = tempDir('node-only-bin');
    fs.symlinkSync(process.execPath, path.join(bin, path.basename(process.execPath)));
    const tlsDir = path.join(dataDir, 'tls');
    const said: string[] = [];
    const sys = await startSystem({
      dataDir,
      ports: 'ephemeral',
      env: {
        PATH: bin,
        LOG_LEVEL: 'warn',
        REDIS_KEY_PREFIX: `test-${path.basename(path.dirname(dataDir))}`,
        ADMIN_ADDR: 'off',
        TLS_DIR: tlsDir,
      },
      readyTimeoutMs: 60_000,
      onLine: (name, line) => {
        if (name === 'sagas') said.push(line);
      },
    });
    try {
      const r = await http(
        sys.url,
        'POST',
        '/orders',
        { customer_id: 'cust_node_only', items: [{ product_id: 'prod_1', quantity: 1, price: 10 }] },
        { Prefer: 'wait=5' },
      );
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.equal(r.body.status, 'CONFIRMED', JSON.stringify(r.body));
      // N11: the data folder and every database file (with its -wal and -shm) private, under this test's umask.
      assert.equal(mode(dataDir), 0o700, 'DATA_DIR');
      const dbFiles = fs.readdirSync(dataDir).filter((f) => /\.db(-wal|-shm)?$/.test(f));
      for (const db of ['order', 'inventory', 'payment', 'saga'])
        for (const ext of ['.db', '.db-wal', '.db-shm'])
          assert.ok(dbFiles.includes(`${db}${ext}`), `${db}${ext} exists`);
      for (const f of dbFiles) assert.equal(mode(path.join(dataDir, f)), 0o600, f);
    } finally {
      await sys.stop();
    }
    assertLayout(tlsDir);
    assert.equal(said.length, 1, said.join('\n'));
    assert.match(
      JSON.parse(said[0] as string).msg,
      /issued the mutual-TLS identities gateway, order, inventory, payment in .*; the CA's key was used for this only and not kept/,
    );
  });

  test('refuses to start with a certificate that is not its own, saying why', async () => {
    const ours = mtlsDir(await testTls());
    const dir = tempDir('mtls-bad');
    const tls = path.join(dir, 'certs');
    fs.cpSync(ours, tls, { recursive: true });
    fs.copyFileSync(
      path.join(identityDir(ours, 'order'), 'order.crt'),
      path.join(identityDir(tls, 'payment'), 'payment.crt'),
    );
    const proc = startMain('payment', {
      DATA_DIR: dir,
      TLS_DIR: tls,
      PAYMENT_SERVICE_ADDR: '127.0.0.1:0',
      METRICS_ADDR: 'off',
    });
    const { code, stderr } = await proc.exit;
    assert.equal(code, 1);
    assert.match(stderr, /payment: cannot start mutual TLS \(tls_material_invalid\): .*payment\.crt names CN=order/);
    assert.doesNotMatch(stderr, /\n\s+at /, 'a clear line, not a stack trace');
  });

  test('GRPC_INSECURE=1 serves plaintext, with a warning at start, and makes no certificates', async () => {
    const dir = tempDir('mtls-insecure');
    const proc = startMain('payment', {
      DATA_DIR: dir,
      GRPC_INSECURE: '1',
      PAYMENT_SERVICE_ADDR: '127.0.0.1:0',
      METRICS_ADDR: 'off',
      LOG_LEVEL: 'warn',
      LOG_FORMAT: 'json',
    });
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
    assert.ok(
      proc.stdout().some((l) => /GRPC_INSECURE=1/.test(l)),
      'the warning is logged',
    );
  });

  test('the gateway refuses to start with a certificate of another CA, saying why', async () => {
    const ours = mtlsDir(await testTls());
    const theirs = mtlsDir(await foreignTls());
    const dir = tempDir('mtls-gateway');
    const tls = path.join(dir, 'tls');
    fs.cpSync(ours, tls, { recursive: true });
    for (const f of ['gateway.crt', 'gateway.key'])
      fs.copyFileSync(path.join(identityDir(theirs, 'gateway'), f), path.join(identityDir(tls, 'gateway'), f));
    const err = await spawnService('gateway', {
      env: { PATH: process.env.PATH ?? '', DATA_DIR: dir, HTTP_ADDR: '127.0.0.1:0', LOG_FORMAT: 'json', REDIS_URL: '' },
      readyTimeoutMs: 30_000,
    }).then(
      () => assert.fail('the gateway should not start'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ServiceStartError, String(err));
    const fatal = err.output
      .map((l) => JSON.parse(l) as { level?: number | string; code?: string; msg?: string })
      .find((l) => l.code !== undefined);
    assert.equal(fatal?.code, 'tls_material_invalid');
    assert.match(fatal?.msg ?? '', /cannot start mutual TLS: .*gateway\.crt was not issued by/);
  });
});
