import { KeyObject, X509Certificate, createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { PeerCertificate } from 'node:tls';
import { setTimeout as delay } from 'node:timers/promises';
import type * as X509 from '@peculiar/x509';
import { AppError } from './errors.js';

/**
 * The deployment's certificates for mutual TLS between the gateway and the participants: one CA,
 * and one key and certificate per process identity, as PEM files in one folder (TLS_DIR):
 *
 *   ca.crt  ca.key  gateway.crt gateway.key  order.crt order.key  inventory.… payment.…
 *
 * A missing piece is made in-process (WebCrypto keys, @peculiar/x509 certificates), so a start
 * needs nothing but Node: no `openssl` CLI, whose flags differ between OpenSSL versions and
 * LibreSSL and which a slim image or Windows may lack. An existing file is never overwritten, so
 * an operator may bring the CA (ca.crt + ca.key) or every file.
 */

export const TLS_IDENTITIES = ['gateway', 'order', 'inventory', 'payment'] as const;
export type TlsIdentity = (typeof TLS_IDENTITIES)[number];

/** A TLS failure at start; `code` says which (the message names the file and what to do). */
export class TlsError extends AppError {
  constructor(code: 'tls_material_invalid' | 'tls_material_incomplete' | 'tls_generation_failed' | 'tls_init_timeout', message: string) {
    super(code, message);
    this.name = 'TlsError';
  }
}

export interface TlsMaterial {
  identity: TlsIdentity;
  ca: Buffer;
  key: Buffer;
  cert: Buffer;
}

/** How a process's gRPC traffic is protected: mutual TLS from `dir`, or plaintext (GRPC_INSECURE=1). */
export type GrpcSecurity = { kind: 'mtls'; dir: string } | { kind: 'insecure' };

const CA_DAYS = 3650;
const LEAF_DAYS = 825;
const DAY_MS = 86_400_000;
const LOCK = '.init.lock';
/** A lock older than this was left by a process that died while it generated. */
const STALE_LOCK_MS = 60_000;
const INIT_WAIT_MS = 30_000;

/** Every key this module makes: ECDSA on P-256, as the openssl CLI made them before. */
const LEAF_KEY = { name: 'ECDSA', namedCurve: 'P-256' } as const;
/** SHA-256 whatever the CA key: the digest openssl used by default for EC and RSA keys. */
const SIGN_EC = { name: 'ECDSA', hash: 'SHA-256' } as const;

const file = (dir: string, name: string) => path.join(dir, name);
const pieces = (identity: TlsIdentity) => [`${identity}.crt`, `${identity}.key`];

function complete(dir: string): boolean {
  return existsSync(file(dir, 'ca.crt')) && TLS_IDENTITIES.every((id) => pieces(id).every((p) => existsSync(file(dir, p))));
}

type X509Lib = typeof X509;
let x509Lib: Promise<X509Lib> | undefined;

/**
 * @peculiar/x509, loaded on first use: importing it took 0.1–0.3 s on this project's machine,
 * which a start that finds every file in place should not pay. Its dependency tsyringe needs a Reflect metadata polyfill
 * installed before it loads (its README says so), hence reflect-metadata first.
 */
function x509(): Promise<X509Lib> {
  x509Lib ??= (async () => {
    await import('reflect-metadata');
    return import('@peculiar/x509');
  })();
  return x509Lib;
}

/**
 * WebCrypto as the library's Crypto. Node's `webcrypto` is that interface; its declared type
 * (node:crypto's) and the DOM lib's `Crypto` the library is typed with differ only in typing.
 */
const crypto = webcrypto as unknown as Crypto;

/** A positive serial of 20 random bytes (RFC 5280's maximum), as openssl makes them. */
function serialNumber(): string {
  const bytes = randomBytes(20);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return bytes.toString('hex');
}

/** Validity from now, to the second (X.509 times have no fractions), for `days` days. */
function validity(days: number): { notBefore: Date; notAfter: Date } {
  const notBefore = new Date(Math.floor(Date.now() / 1000) * 1000);
  return { notBefore, notAfter: new Date(notBefore.getTime() + days * DAY_MS) };
}

/** A common name as a UTF8String, the encoding openssl gives it (a name is compared as encoded by some verifiers). */
function commonNameOf(lib: X509Lib, cn: string): X509.Name {
  return new lib.Name([{ CN: [{ utf8String: cn }] }]);
}

async function newKeyPair(): Promise<CryptoKeyPair> {
  return (await crypto.subtle.generateKey(LEAF_KEY, true, ['sign', 'verify'])) as CryptoKeyPair;
}

/** The private key as unencrypted PKCS#8 PEM ("BEGIN PRIVATE KEY"), as `openssl req -nodes` wrote it. */
function privateKeyPem(key: CryptoKey): string {
  return KeyObject.from(key).export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** Writes `name` into `dir` through a file made in `work`, atomically, private (0600) when it is a key. */
function place(work: string, dir: string, name: string, pem: string): void {
  const key = name.endsWith('.key');
  writeFileSync(file(work, name), pem, { mode: key ? 0o600 : 0o644, flag: 'wx' });
  // The mode above is filtered by the umask; a key is 0600 whatever the umask says.
  if (key) chmodSync(file(work, name), 0o600);
  renameSync(file(work, name), file(dir, name));
}

/** Turns an unexpected failure while making `what` into a TlsError; a TlsError passes as it is. */
async function generating<T>(what: string, make: () => Promise<T>): Promise<T> {
  try {
    return await make();
  } catch (err) {
    if (err instanceof TlsError) throw err;
    throw new TlsError('tls_generation_failed', `cannot create ${what}: ${(err as Error).message}`);
  }
}

async function makeCa(work: string, dir: string): Promise<void> {
  const lib = await x509();
  const keys = await newKeyPair();
  const cert = await lib.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serialNumber(),
      // A name of its own: two deployments' CAs are told apart in an error message.
      name: commonNameOf(lib, `ecommerce-sagas local CA ${randomBytes(4).toString('hex')}`),
      ...validity(CA_DAYS),
      signingAlgorithm: SIGN_EC,
      keys,
      extensions: [
        await lib.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
        await lib.AuthorityKeyIdentifierExtension.create(keys.publicKey, false, crypto),
        new lib.BasicConstraintsExtension(true, 0, true),
        new lib.KeyUsagesExtension(lib.KeyUsageFlags.keyCertSign | lib.KeyUsageFlags.cRLSign, true),
      ],
    },
    crypto,
  );
  place(work, dir, 'ca.key', privateKeyPem(keys.privateKey));
  place(work, dir, 'ca.crt', cert.toString('pem'));
}

/** The CA that issues the missing leaves: its certificate, and its key as WebCrypto signs with it. */
interface Issuer {
  cert: X509.X509Certificate;
  signingKey: CryptoKey;
  signingAlgorithm: Algorithm | EcdsaParams;
}

/** node:crypto's names of the curves WebCrypto signs on, and WebCrypto's. */
const WEBCRYPTO_CURVES: Readonly<Record<string, string>> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };

/**
 * How WebCrypto signs with a CA key of this type. The CA this module makes is P-256; one an
 * operator brings may be any type the openssl CLI took, but WebCrypto signs with these only.
 */
function signingFor(key: KeyObject): { importAs: Algorithm | EcKeyImportParams | RsaHashedImportParams; sign: Algorithm | EcdsaParams } | undefined {
  switch (key.asymmetricKeyType) {
    case 'ec': {
      const namedCurve = WEBCRYPTO_CURVES[key.asymmetricKeyDetails?.namedCurve ?? ''];
      return namedCurve ? { importAs: { name: 'ECDSA', namedCurve }, sign: SIGN_EC } : undefined;
    }
    case 'rsa':
      return { importAs: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, sign: { name: 'RSASSA-PKCS1-v1_5' } };
    case 'ed25519':
      return { importAs: { name: 'Ed25519' }, sign: { name: 'Ed25519' } };
    default:
      return undefined;
  }
}

/**
 * Reads the CA from `dir` for issuing, checked first so that a wrong ca.key is named as such
 * instead of yielding certificates that every process then refuses.
 */
async function readIssuer(dir: string): Promise<Issuer> {
  const lib = await x509();
  const certPem = readPem(dir, 'ca.crt');
  const keyPem = readPem(dir, 'ca.key');
  let nodeCert: X509Certificate;
  try {
    nodeCert = new X509Certificate(certPem);
  } catch (err) {
    throw new TlsError('tls_material_invalid', `${file(dir, 'ca.crt')} is not a PEM certificate (${(err as Error).message})`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw new TlsError('tls_material_invalid', `${file(dir, 'ca.key')} is not an unencrypted PEM private key (${(err as Error).message})`);
  }
  if (!nodeCert.checkPrivateKey(key)) throw new TlsError('tls_material_invalid', `${file(dir, 'ca.key')} is not the key of ${file(dir, 'ca.crt')}`);
  const signing = signingFor(key);
  if (!signing) {
    const type = key.asymmetricKeyType === 'ec' ? `EC ${key.asymmetricKeyDetails?.namedCurve ?? '?'}` : String(key.asymmetricKeyType);
    throw new TlsError('tls_material_invalid', `${file(dir, 'ca.key')} is a key of type ${type}: certificates are issued with WebCrypto, which signs with EC P-256/P-384/P-521, RSA or Ed25519 CA keys; issue the certificates yourself, or bring a CA with such a key`);
  }
  const der = key.export({ type: 'pkcs8', format: 'der' });
  return {
    // The certificate node read (the first, should the file hold a chain), copied out of its Buffer.
    cert: new lib.X509Certificate(new Uint8Array(nodeCert.raw)),
    signingKey: await crypto.subtle.importKey('pkcs8', der, signing.importAs, false, ['sign']),
    signingAlgorithm: signing.sign,
  };
}

/**
 * A leaf for `identity`, signed by the CA: its common name and a DNS name are the identity (a
 * peer checks it). The gateway's may only dial (clientAuth), a participant's may only serve
 * (serverAuth): the TLS handshake itself then refuses a participant's certificate as a caller, so
 * only the gateway calls the participants, at no cost per call.
 */
async function makeLeaf(work: string, dir: string, issuer: Issuer, identity: TlsIdentity): Promise<void> {
  const lib = await x509();
  const keys = await newKeyPair();
  // The CA's own key identifier when it states one (a CA an operator brings may use another method than SHA-1 of the key).
  const caKeyId = issuer.cert.getExtension(lib.SubjectKeyIdentifierExtension)?.keyId;
  const cert = await lib.X509CertificateGenerator.create(
    {
      serialNumber: serialNumber(),
      subject: commonNameOf(lib, identity),
      // The CA's subject as it is encoded, so that a name compared byte for byte still matches.
      issuer: issuer.cert.subjectName,
      ...validity(LEAF_DAYS),
      publicKey: keys.publicKey,
      signingKey: issuer.signingKey,
      signingAlgorithm: issuer.signingAlgorithm,
      extensions: [
        await lib.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
        caKeyId ? new lib.AuthorityKeyIdentifierExtension(caKeyId) : await lib.AuthorityKeyIdentifierExtension.create(issuer.cert.publicKey, false, crypto),
        new lib.BasicConstraintsExtension(false, undefined, true),
        new lib.KeyUsagesExtension(lib.KeyUsageFlags.digitalSignature, true),
        new lib.ExtendedKeyUsageExtension([identity === 'gateway' ? lib.ExtendedKeyUsage.clientAuth : lib.ExtendedKeyUsage.serverAuth]),
        new lib.SubjectAlternativeNameExtension([
          { type: 'dns', value: identity },
          { type: 'dns', value: 'localhost' },
          { type: 'ip', value: '127.0.0.1' },
          { type: 'ip', value: '::1' },
        ]),
      ],
    },
    crypto,
  );
  place(work, dir, `${identity}.key`, privateKeyPem(keys.privateKey));
  place(work, dir, `${identity}.crt`, cert.toString('pem'));
}

async function generateMissing(dir: string): Promise<TlsIdentity[]> {
  const work = file(dir, `.work-${process.pid}-${randomBytes(4).toString('hex')}`);
  mkdirSync(work, { mode: 0o700 });
  try {
    if (!existsSync(file(dir, 'ca.crt'))) {
      const leaves = TLS_IDENTITIES.filter((id) => pieces(id).some((p) => existsSync(file(dir, p))));
      if (leaves.length > 0) {
        throw new TlsError('tls_material_incomplete', `${dir} has certificates (${leaves.join(', ')}) but no ca.crt: add the CA that issued them, or empty the folder to start over`);
      }
      await generating(`a CA in ${dir}`, () => makeCa(work, dir));
    }
    const missing = TLS_IDENTITIES.filter((id) => {
      const [crt = '', key = ''] = pieces(id);
      if (existsSync(file(dir, crt)) && existsSync(file(dir, key))) return false;
      if (existsSync(file(dir, crt)) || existsSync(file(dir, key))) {
        throw new TlsError('tls_material_incomplete', `${dir} has only one of ${crt} and ${key}: add the other, or remove both to have them made`);
      }
      if (!existsSync(file(dir, 'ca.key'))) {
        throw new TlsError('tls_material_incomplete', `${dir} has no ${crt}, and no ca.key to issue it: add ${crt} and ${key}`);
      }
      return true;
    });
    if (missing.length > 0) {
      const issuer = await generating(`certificates in ${dir}`, () => readIssuer(dir));
      await Promise.all(missing.map((id) => generating(`${id}.crt in ${dir}`, () => makeLeaf(work, dir, issuer, id))));
    }
    return missing;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function tryLock(lock: string): number | undefined {
  try {
    return openSync(lock, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    try {
      if (Date.now() - statSync(lock).mtimeMs > STALE_LOCK_MS) unlinkSync(lock);
    } catch {
      // Gone meanwhile: the next try takes it.
    }
    return undefined;
  }
}

/**
 * Makes whatever of the CA and the four identities `dir` lacks. Processes that start together
 * (the supervisor's, or containers sharing a volume) take turns through a lock file; the ones
 * that wait find the work done. Returns the identities it issued (none when all were there).
 */
export async function ensureTlsMaterial(dir: string): Promise<TlsIdentity[]> {
  if (complete(dir)) return [];
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const lock = file(dir, LOCK);
  const deadline = Date.now() + INIT_WAIT_MS;
  while (Date.now() < deadline) {
    const fd = tryLock(lock);
    if (fd === undefined) {
      if (complete(dir)) return [];
      await delay(50);
      continue;
    }
    try {
      return await generateMissing(dir);
    } finally {
      closeSync(fd);
      rmSync(lock, { force: true });
    }
  }
  throw new TlsError('tls_init_timeout', `another process has held ${lock} for ${INIT_WAIT_MS / 1000} s while making certificates; remove it if no process is starting`);
}

function readPem(dir: string, name: string): Buffer {
  try {
    return readFileSync(file(dir, name));
  } catch (err) {
    throw new TlsError('tls_material_incomplete', `cannot read ${file(dir, name)}: ${(err as Error).message}`);
  }
}

/**
 * The CA, key and certificate of `identity` from `dir`, checked now so that a process with a
 * wrong, expired or mismatched certificate refuses to start with the reason, instead of every
 * call failing its handshake later.
 */
export function loadTlsMaterial(dir: string, identity: TlsIdentity, now = new Date()): TlsMaterial {
  const ca = readPem(dir, 'ca.crt');
  const cert = readPem(dir, `${identity}.crt`);
  const key = readPem(dir, `${identity}.key`);
  let caCert: X509Certificate;
  let leaf: X509Certificate;
  try {
    caCert = new X509Certificate(ca);
    leaf = new X509Certificate(cert);
  } catch (err) {
    throw new TlsError('tls_material_invalid', `${dir}: ca.crt or ${identity}.crt is not a PEM certificate (${(err as Error).message})`);
  }
  const invalid = (why: string) => new TlsError('tls_material_invalid', `${file(dir, `${identity}.crt`)} ${why}`);
  if (!leaf.verify(caCert.publicKey)) throw invalid(`was not issued by ${file(dir, 'ca.crt')} (${caCert.subject.replace(/\n/g, ', ')})`);
  if (new Date(leaf.validTo) < now) throw invalid(`expired on ${leaf.validTo}`);
  if (new Date(leaf.validFrom) > now) throw invalid(`is not valid before ${leaf.validFrom}`);
  if (commonName(leaf.subject) !== identity) throw invalid(`names ${leaf.subject.replace(/\n/g, ', ')}, not CN=${identity}`);
  try {
    if (!leaf.checkPrivateKey(createPrivateKey(key))) throw invalid(`does not match ${identity}.key`);
  } catch (err) {
    if (err instanceof TlsError) throw err;
    throw new TlsError('tls_material_invalid', `${file(dir, `${identity}.key`)} is not a PEM private key (${(err as Error).message})`);
  }
  return { identity, ca, key, cert };
}

function commonName(subject: string): string | undefined {
  return subject.split('\n').find((l) => l.startsWith('CN='))?.slice(3);
}

/**
 * A process's first step with its gRPC security: under mutual TLS, make whatever certificates
 * are missing (and say so); in plaintext, warn — once, at start, where an operator looks.
 */
export async function prepareGrpcSecurity(security: GrpcSecurity, logger: { warn(o: object, msg: string): void; info(o: object, msg: string): void }): Promise<void> {
  if (security.kind === 'insecure') {
    logger.warn({ GRPC_INSECURE: '1' }, 'gRPC between the services is plaintext and unauthenticated (GRPC_INSECURE=1): anyone who reaches a participant can call it');
    return;
  }
  const made = await ensureTlsMaterial(security.dir);
  if (made.length > 0) logger.info({ tls_dir: security.dir, issued: made }, 'made TLS certificates for mutual TLS between the services');
}

/**
 * A TLS client's server check that pins the peer by identity: the certificate (already verified
 * against the deployment's CA) must name `peer` as its CN, whatever host name the address has.
 */
export function pinnedPeer(peer: TlsIdentity): (host: string, cert: PeerCertificate) => Error | undefined {
  return (_host, cert) => (cert.subject?.CN === peer ? undefined : new Error(`the server at this address presented CN=${String(cert.subject?.CN)}, not CN=${peer}`));
}
