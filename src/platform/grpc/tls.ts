import { KeyObject, X509Certificate, createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import type { PeerCertificate } from 'node:tls';
import { setTimeout as delay } from 'node:timers/promises';
import type * as X509 from '@peculiar/x509';
import { AppError } from '../errors.js';

/**
 * The deployment's certificates for mutual TLS between the gateway and the participants. TLS_DIR
 * holds one folder per process identity, and each folder is all that process needs and all it
 * is given — the CA's certificate, its own key and its own certificate:
 *
 *   gateway/   ca.crt gateway.crt gateway.key
 *   order/     ca.crt order.crt order.key        (inventory/, payment/ alike)
 *
 * The CA's key is in none of them. It is used once, by whoever issues (`sagas certs`, or
 * `sagas start` on a first start), and by default never written at all: a process that is broken
 * into holds its own identity, not the power to mint the gateway's. An operator who wants to
 * issue again later keeps a CA of their own off the running hosts (`sagas certs --ca DIR`).
 *
 * Certificates are made in-process (WebCrypto keys, @peculiar/x509): issuing needs nothing but
 * Node — no `openssl` CLI, whose flags differ between OpenSSL versions and LibreSSL and which a
 * slim image or Windows may lack.
 */

export const TLS_IDENTITIES = ['gateway', 'order', 'inventory', 'payment'] as const;
export type TlsIdentity = (typeof TLS_IDENTITIES)[number];

export type TlsErrorCode =
  | 'tls_material_invalid'
  | 'tls_material_incomplete'
  | 'tls_generation_failed'
  | 'tls_init_timeout'
  /** TLS_DIR still has the one-folder layout of before (every key and ca.key together). */
  | 'tls_old_layout';

/** A TLS failure at start or while issuing; `code` says which (the message names the file and what to do). */
export class TlsError extends AppError {
  constructor(code: TlsErrorCode, message: string) {
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

/** How a process's gRPC traffic is protected: mutual TLS from `dir` (TLS_DIR), or plaintext (GRPC_INSECURE=1). */
export type GrpcSecurity = { kind: 'mtls'; dir: string } | { kind: 'insecure' };

const CA_DAYS = 3650;
const LEAF_DAYS = 825;
const DAY_MS = 86_400_000;
/**
 * The issuers' lock, in the gateway's folder rather than in TLS_DIR itself: under docker-compose
 * TLS_DIR is a folder of the image's read-only file system, and only the identity folders below
 * it are (writable) volumes.
 */
const LOCK = '.issue.lock';
/** A lock older than this was left by a process that died while it issued. */
const STALE_LOCK_MS = 60_000;
const INIT_WAIT_MS = 30_000;
/** Where moving an old one-folder TLS_DIR puts its CA (ca.crt, ca.key): a folder no process is pointed at. */
export const MIGRATED_CA_FOLDER = 'ca';

/** Every key this module makes: ECDSA on P-256, as the openssl CLI made them before. */
const LEAF_KEY = { name: 'ECDSA', namedCurve: 'P-256' } as const;
/** SHA-256 whatever the CA key: the digest openssl used by default for EC and RSA keys. */
const SIGN_EC = { name: 'ECDSA', hash: 'SHA-256' } as const;

/** The folder of `identity` under TLS_DIR: what that process reads, and under docker-compose all it mounts. */
export function identityDir(tlsDir: string, identity: TlsIdentity): string {
  return path.join(tlsDir, identity);
}

const identityFiles = (identity: TlsIdentity) => ['ca.crt', `${identity}.crt`, `${identity}.key`] as const;
/** The files of the layout before this one, all in TLS_DIR itself. */
const OLD_LAYOUT_FILES = ['ca.crt', 'ca.key', ...TLS_IDENTITIES.flatMap((id) => [`${id}.crt`, `${id}.key`])];

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
  return await crypto.subtle.generateKey(LEAF_KEY, true, ['sign', 'verify']);
}

/** The private key as unencrypted PKCS#8 PEM ("BEGIN PRIVATE KEY"), as `openssl req -nodes` wrote it. */
function privateKeyPem(key: CryptoKey): string {
  return KeyObject.from(key).export({ type: 'pkcs8', format: 'pem' }).toString();
}

/**
 * A folder of our own, private (0700): made so, or tightened when this user owns it (an operator
 * may have copied an identity in with a looser mode). One of another user's is left as it is —
 * under docker-compose the image makes the identity folders, 0700 already.
 */
function privateFolder(dir: string): void {
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // The mode above is filtered by the umask; the folder is 0700 whatever the umask says.
    chmodSync(dir, 0o700);
    return;
  }
  const st = statSync(dir);
  if ((st.mode & 0o077) !== 0 && st.uid === process.getuid?.()) chmodSync(dir, 0o700);
}

/**
 * Writes `name` into `dir` atomically (a temporary file in the same folder, renamed: a reader
 * never sees half a key), private (0600) when it is a key. Replaces a file of that name.
 */
function place(dir: string, name: string, content: string | Buffer): void {
  const key = name.endsWith('.key');
  const tmp = path.join(dir, `.${name}.${randomBytes(4).toString('hex')}.tmp`);
  writeFileSync(tmp, content, { mode: key ? 0o600 : 0o644, flag: 'wx' });
  // The mode above is filtered by the umask; a key is 0600 whatever the umask says.
  if (key) chmodSync(tmp, 0o600);
  renameSync(tmp, path.join(dir, name));
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

/** A CA that issues: its certificate (as PEM, what every identity's ca.crt holds) and its key as WebCrypto signs with it. */
interface Issuer {
  cert: X509.X509Certificate;
  certPem: string;
  signingKey: CryptoKey;
  signingAlgorithm: Algorithm | EcdsaParams;
}

/** A new CA, in memory; `keyPem` is its key for whoever wants to keep it (`--ca` with an empty folder). */
async function makeCa(): Promise<{ issuer: Issuer; keyPem: string }> {
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
  return {
    issuer: { cert, certPem: cert.toString('pem'), signingKey: keys.privateKey, signingAlgorithm: SIGN_EC },
    keyPem: privateKeyPem(keys.privateKey),
  };
}

/** node:crypto's names of the curves WebCrypto signs on, and WebCrypto's. */
const WEBCRYPTO_CURVES: Readonly<Record<string, string>> = {
  prime256v1: 'P-256',
  secp384r1: 'P-384',
  secp521r1: 'P-521',
};

/**
 * How WebCrypto signs with a CA key of this type. The CA this module makes is P-256; one an
 * operator brings may be any type the openssl CLI took, but WebCrypto signs with these only.
 */
function signingFor(
  key: KeyObject,
): { importAs: Algorithm | EcKeyImportParams | RsaHashedImportParams; sign: Algorithm | EcdsaParams } | undefined {
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

function readPem(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new TlsError('tls_material_incomplete', `cannot read ${file}: ${(err as Error).message}`);
  }
}

/**
 * Reads the CA in `dir` (ca.crt, ca.key) for issuing, checked first so that a wrong ca.key is
 * named as such instead of yielding certificates that every process then refuses.
 */
async function readIssuer(dir: string): Promise<Issuer> {
  const lib = await x509();
  const crtFile = path.join(dir, 'ca.crt');
  const keyFile = path.join(dir, 'ca.key');
  const certPem = readPem(crtFile);
  const keyPem = readPem(keyFile);
  let nodeCert: X509Certificate;
  try {
    nodeCert = new X509Certificate(certPem);
  } catch (err) {
    throw new TlsError('tls_material_invalid', `${crtFile} is not a PEM certificate (${(err as Error).message})`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw new TlsError(
      'tls_material_invalid',
      `${keyFile} is not an unencrypted PEM private key (${(err as Error).message})`,
    );
  }
  if (!nodeCert.checkPrivateKey(key))
    throw new TlsError('tls_material_invalid', `${keyFile} is not the key of ${crtFile}`);
  const signing = signingFor(key);
  if (!signing) {
    const type =
      key.asymmetricKeyType === 'ec'
        ? `EC ${key.asymmetricKeyDetails?.namedCurve ?? '?'}`
        : String(key.asymmetricKeyType);
    throw new TlsError(
      'tls_material_invalid',
      `${keyFile} is a key of type ${type}: certificates are issued with WebCrypto, which signs with EC P-256/P-384/P-521, RSA or Ed25519 CA keys; issue the certificates yourself, or bring a CA with such a key`,
    );
  }
  const der = key.export({ type: 'pkcs8', format: 'der' });
  return {
    // The certificate node read (the first, should the file hold a chain), copied out of its Buffer.
    cert: new lib.X509Certificate(new Uint8Array(nodeCert.raw)),
    // The file as it is: a chain stays a chain in every identity's ca.crt.
    certPem: certPem.toString(),
    signingKey: await crypto.subtle.importKey('pkcs8', der, signing.importAs, false, ['sign']),
    signingAlgorithm: signing.sign,
  };
}

/** What a certificate may be used for: calling (the gateway) or serving (a participant). */
export type CertificateUsage = 'clientAuth' | 'serverAuth';

/**
 * A leaf named `commonName`, signed by the CA: its common name and a DNS name are the identity (a
 * peer checks it). `clientAuth` may only dial, `serverAuth` may only serve: the TLS handshake
 * itself then refuses a participant's certificate as a caller.
 */
async function makeLeaf(
  issuer: Issuer,
  commonName: string,
  usage: CertificateUsage,
): Promise<{ keyPem: string; certPem: string }> {
  const lib = await x509();
  const keys = await newKeyPair();
  // The CA's own key identifier when it states one (a CA an operator brings may use another method than SHA-1 of the key).
  const caKeyId = issuer.cert.getExtension(lib.SubjectKeyIdentifierExtension)?.keyId;
  const cert = await lib.X509CertificateGenerator.create(
    {
      serialNumber: serialNumber(),
      subject: commonNameOf(lib, commonName),
      // The CA's subject as it is encoded, so that a name compared byte for byte still matches.
      issuer: issuer.cert.subjectName,
      ...validity(LEAF_DAYS),
      publicKey: keys.publicKey,
      signingKey: issuer.signingKey,
      signingAlgorithm: issuer.signingAlgorithm,
      extensions: [
        await lib.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
        caKeyId
          ? new lib.AuthorityKeyIdentifierExtension(caKeyId)
          : await lib.AuthorityKeyIdentifierExtension.create(issuer.cert.publicKey, false, crypto),
        new lib.BasicConstraintsExtension(false, undefined, true),
        new lib.KeyUsagesExtension(lib.KeyUsageFlags.digitalSignature, true),
        new lib.ExtendedKeyUsageExtension([
          usage === 'clientAuth' ? lib.ExtendedKeyUsage.clientAuth : lib.ExtendedKeyUsage.serverAuth,
        ]),
        new lib.SubjectAlternativeNameExtension([
          { type: 'dns', value: commonName },
          { type: 'dns', value: 'localhost' },
          { type: 'ip', value: '127.0.0.1' },
          { type: 'ip', value: '::1' },
        ]),
      ],
    },
    crypto,
  );
  return { keyPem: privateKeyPem(keys.privateKey), certPem: cert.toString('pem') };
}

const usageOf = (identity: TlsIdentity): CertificateUsage => (identity === 'gateway' ? 'clientAuth' : 'serverAuth');

/**
 * A certificate and key named `commonName`, issued by the CA in `caDir` (ca.crt, ca.key), as this
 * module issues the identities. For an operator's own tooling and for tests that need a
 * certificate of the deployment's CA under a name that is not one of the four.
 */
export async function issueCertificate(
  caDir: string,
  commonName: string,
  usage: CertificateUsage,
): Promise<{ key: Buffer; cert: Buffer }> {
  const issuer = await generating(`a certificate with the CA in ${caDir}`, () => readIssuer(caDir));
  const leaf = await generating(`a certificate for CN=${commonName}`, () => makeLeaf(issuer, commonName, usage));
  return { key: Buffer.from(leaf.keyPem), cert: Buffer.from(leaf.certPem) };
}

type IdentityState = { kind: 'complete' } | { kind: 'absent' } | { kind: 'partial'; present: string[] };

function stateOf(tlsDir: string, identity: TlsIdentity): IdentityState {
  const dir = identityDir(tlsDir, identity);
  const present = identityFiles(identity).filter((f) => existsSync(path.join(dir, f)));
  if (present.length === 3) return { kind: 'complete' };
  return present.length === 0 ? { kind: 'absent' } : { kind: 'partial', present };
}

function hasOldLayout(tlsDir: string): boolean {
  return OLD_LAYOUT_FILES.some((f) => existsSync(path.join(tlsDir, f)));
}

/** What moving an old one-folder TLS_DIR did. */
export interface Migration {
  /** The identities moved into their own folders. */
  identities: TlsIdentity[];
  /** Where the CA key that every process could read was moved, when there was one. */
  caKeyMovedTo: string | undefined;
}

/**
 * Moves the layout of before (ca.crt, ca.key and every identity's key and certificate in TLS_DIR
 * itself, a folder every process read) to one folder per identity. The CA's key goes to
 * TLS_DIR/ca/, which no process is pointed at; the caller tells the operator to take it off the
 * machine. Keys are renamed, never copied, so no second copy of a key is left behind.
 */
function migrateOldLayout(tlsDir: string): Migration | undefined {
  if (!hasOldLayout(tlsDir)) return undefined;
  const top = (name: string) => path.join(tlsDir, name);
  const caCrt = existsSync(top('ca.crt')) ? readPem(top('ca.crt')) : undefined;
  // Checked before anything moves: a refused migration leaves the folder as it found it.
  const toMove = TLS_IDENTITIES.filter((id) => existsSync(top(`${id}.crt`)) || existsSync(top(`${id}.key`)));
  for (const id of toMove) {
    const missing = [`${id}.crt`, `${id}.key`, ...(caCrt ? [] : ['ca.crt'])].filter((f) => !existsSync(top(f)));
    if (missing.length > 0) {
      throw new TlsError(
        'tls_material_incomplete',
        `${tlsDir} has the old one-folder layout, with ${id}'s files but no ${missing.join(' or ')}: add them, or remove ${id}.crt and ${id}.key`,
      );
    }
    if (stateOf(tlsDir, id).kind !== 'absent') {
      throw new TlsError(
        'tls_material_incomplete',
        `${tlsDir} holds ${id} twice: ${id}.crt and ${id}.key of the old one-folder layout, and the folder ${id}/: remove one of them`,
      );
    }
  }
  const caFolder = top(MIGRATED_CA_FOLDER);
  if (existsSync(top('ca.key')) && existsSync(path.join(caFolder, 'ca.key'))) {
    throw new TlsError(
      'tls_material_incomplete',
      `${tlsDir} has a ca.key of the old one-folder layout and another in ${caFolder}: remove one of them`,
    );
  }
  for (const id of toMove) {
    const dir = identityDir(tlsDir, id);
    privateFolder(dir);
    place(dir, 'ca.crt', caCrt as Buffer);
    renameSync(top(`${id}.key`), path.join(dir, `${id}.key`));
    renameSync(top(`${id}.crt`), path.join(dir, `${id}.crt`));
  }
  let caKeyMovedTo: string | undefined;
  if (existsSync(top('ca.key'))) {
    privateFolder(caFolder);
    if (caCrt) place(caFolder, 'ca.crt', caCrt);
    caKeyMovedTo = path.join(caFolder, 'ca.key');
    renameSync(top('ca.key'), caKeyMovedTo);
  }
  rmSync(top('ca.crt'), { force: true });
  // The lock of the layout of before, which a process killed while issuing may have left.
  rmSync(top('.init.lock'), { force: true });
  return { identities: toMove, caKeyMovedTo };
}

/** Temporary files a process killed while it wrote left in the identity folders. */
function removeLeftovers(tlsDir: string): void {
  for (const id of TLS_IDENTITIES) {
    const dir = identityDir(tlsDir, id);
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir)) if (/^\..+\.tmp$/.test(f)) rmSync(path.join(dir, f), { force: true });
  }
}

/** The CA of `caDir` (`--ca`): the one there, or a new one made there (its key kept, 0600) when the folder has neither file. */
async function caFrom(caDir: string): Promise<{ issuer: Issuer; made: boolean }> {
  const crt = existsSync(path.join(caDir, 'ca.crt'));
  const key = existsSync(path.join(caDir, 'ca.key'));
  if (crt && key)
    return { issuer: await generating(`certificates with the CA in ${caDir}`, () => readIssuer(caDir)), made: false };
  if (crt || key) {
    throw new TlsError(
      'tls_material_incomplete',
      `${caDir} has ${crt ? 'ca.crt but no ca.key' : 'ca.key but no ca.crt'}: a CA to issue with needs both (a folder with neither gets a new CA)`,
    );
  }
  const { issuer, keyPem } = await generating(`a CA in ${caDir}`, makeCa);
  privateFolder(caDir);
  place(caDir, 'ca.key', keyPem);
  place(caDir, 'ca.crt', issuer.certPem);
  return { issuer, made: true };
}

function sameCertificate(a: Buffer, b: string | Buffer): boolean {
  try {
    return new X509Certificate(a).fingerprint256 === new X509Certificate(b).fingerprint256;
  } catch {
    return false;
  }
}

/**
 * Checks the four identities as their processes will: each complete and valid (loadTlsMaterial),
 * all of one CA — so that `sagas start` says what is wrong once, before any process starts.
 */
function checkIdentities(tlsDir: string): void {
  const [first, ...rest] = TLS_IDENTITIES.map((id) => loadTlsMaterial(tlsDir, id));
  for (const m of rest) {
    if (first && !sameCertificate(first.ca, m.ca)) {
      throw new TlsError(
        'tls_material_invalid',
        `${identityDir(tlsDir, m.identity)}/ca.crt is not the CA of ${identityDir(tlsDir, first.identity)}/ca.crt: the identities come from different CAs, so they refuse each other; \`sagas certs --renew\` issues all four again from one`,
      );
    }
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

/** Runs `fn` holding the issuers' lock of `tlsDir`: issuers that start together take turns. */
async function withIssueLock<T>(tlsDir: string, fn: () => Promise<T>): Promise<T> {
  const lock = path.join(identityDir(tlsDir, 'gateway'), LOCK);
  const deadline = Date.now() + INIT_WAIT_MS;
  while (Date.now() < deadline) {
    const fd = tryLock(lock);
    if (fd === undefined) {
      await delay(50);
      continue;
    }
    try {
      return await fn();
    } finally {
      closeSync(fd);
      rmSync(lock, { force: true });
    }
  }
  throw new TlsError(
    'tls_init_timeout',
    `another process has held ${lock} for ${INIT_WAIT_MS / 1000} s while issuing certificates; remove it if no process is issuing`,
  );
}

export interface IssueOptions {
  /**
   * A folder with the CA to issue with (ca.crt and ca.key, e.g. on a removable disk), or an empty
   * one in which to make a CA and keep its key. Without it, a CA is made for this issue alone and
   * its key is never written.
   */
  ca?: string;
  /** Issue all four again, replacing those there (and, without `ca`, from a new CA). */
  renew?: boolean;
}

export interface IssueReport {
  /** The identities issued now (none when all four were in place). */
  issued: TlsIdentity[];
  /** A CA was made for this issue (kept in `ca` when one was given; otherwise gone with this process). */
  newCa: boolean;
  /** Set when TLS_DIR had the one-folder layout of before and was moved to this one. */
  migrated: Migration | undefined;
}

/**
 * Makes TLS_DIR hold the four identities, one folder each: what `sagas certs` and a first
 * `sagas start` do, and the only code that ever holds a CA key. An old one-folder TLS_DIR is
 * moved to this layout first. The identities there are kept; missing ones are issued:
 * - all four missing (a first start): from a new CA, whose key is dropped once they are signed —
 *   or from `ca`;
 * - some missing: only from `ca`, the CA of those present (the default CA's key is gone);
 *   otherwise `renew` replaces all four.
 * Ends by checking the four as their processes will (loadTlsMaterial), so a bad one is named here.
 */
export async function issueIdentities(tlsDir: string, opts: IssueOptions = {}): Promise<IssueReport> {
  // Nothing to do, the common case of every start: no lock, no write, no @peculiar/x509.
  if (!opts.renew && !hasOldLayout(tlsDir) && TLS_IDENTITIES.every((id) => stateOf(tlsDir, id).kind === 'complete')) {
    checkIdentities(tlsDir);
    return { issued: [], newCa: false, migrated: undefined };
  }
  privateFolder(tlsDir);
  for (const id of TLS_IDENTITIES) privateFolder(identityDir(tlsDir, id));
  const report = await withIssueLock(tlsDir, async (): Promise<IssueReport> => {
    removeLeftovers(tlsDir);
    const migrated = migrateOldLayout(tlsDir);
    const states = new Map(TLS_IDENTITIES.map((id) => [id, stateOf(tlsDir, id)]));
    const present = TLS_IDENTITIES.filter((id) => states.get(id)?.kind === 'complete');
    const targets = opts.renew ? [...TLS_IDENTITIES] : TLS_IDENTITIES.filter((id) => states.get(id)?.kind === 'absent');
    if (!opts.renew) {
      for (const [id, s] of states) {
        if (s.kind !== 'partial') continue;
        const missing = identityFiles(id).filter((f) => !s.present.includes(f));
        throw new TlsError(
          'tls_material_incomplete',
          `${identityDir(tlsDir, id)} has ${s.present.join(' and ')} but no ${missing.join(' or ')}: add them, or \`sagas certs --renew\` to issue all four identities again`,
        );
      }
    }
    if (targets.length === 0) return { issued: [], newCa: false, migrated };
    const keptCa = opts.ca;
    if (!keptCa && !opts.renew && present.length > 0) {
      const hint = migrated?.caKeyMovedTo
        ? `\`sagas certs --ca ${path.dirname(migrated.caKeyMovedTo)}\` (the CA this folder had)`
        : '`sagas certs --ca DIR` with the CA that issued them';
      throw new TlsError(
        'tls_material_incomplete',
        `${tlsDir} has ${present.join(', ')} but not ${targets.join(', ')}, and the key of the CA that issued them is not kept here (by design): ${hint}, or \`sagas certs --renew\` to issue all four from a new CA (then restart every process)`,
      );
    }
    const { issuer, made } = keptCa
      ? await caFrom(keptCa)
      : { issuer: (await generating(`a CA for ${tlsDir}`, makeCa)).issuer, made: true };
    if (!opts.renew) {
      for (const id of present) {
        const ca = readPem(path.join(identityDir(tlsDir, id), 'ca.crt'));
        if (!sameCertificate(ca, issuer.certPem)) {
          throw new TlsError(
            'tls_material_invalid',
            `${identityDir(tlsDir, id)} was issued by another CA than ${keptCa ?? 'the one given'}: give the CA that issued it, or \`--renew\` to issue all four from this one`,
          );
        }
      }
    }
    const leaves = await Promise.all(
      targets.map((id) => generating(`the ${id} identity in ${tlsDir}`, () => makeLeaf(issuer, id, usageOf(id)))),
    );
    targets.forEach((id, i) => {
      const dir = identityDir(tlsDir, id);
      const leaf = leaves[i] as { keyPem: string; certPem: string };
      // The key first and ca.crt last: an identity is complete only once all three are there.
      place(dir, `${id}.key`, leaf.keyPem);
      place(dir, `${id}.crt`, leaf.certPem);
      place(dir, 'ca.crt', issuer.certPem);
    });
    return { issued: targets, newCa: made, migrated };
  });
  checkIdentities(tlsDir);
  return report;
}

/**
 * The CA certificate, key and certificate of `identity`, from its folder under `tlsDir` (nothing
 * else there is read), checked now so that a process with a wrong, expired or mismatched
 * certificate refuses to start with the reason, instead of every call failing its handshake later.
 */
export function loadTlsMaterial(tlsDir: string, identity: TlsIdentity, now = new Date()): TlsMaterial {
  const dir = identityDir(tlsDir, identity);
  if (!existsSync(dir)) {
    if (hasOldLayout(tlsDir)) {
      throw new TlsError(
        'tls_old_layout',
        `${tlsDir} has the old one-folder layout (every identity's key and the CA key side by side, readable by every process): \`sagas certs\` moves it to one folder per identity (\`sagas start\` does it on its next start)`,
      );
    }
    throw new TlsError(
      'tls_material_incomplete',
      `no ${identity} identity: ${dir} does not exist; issue the identities with \`sagas certs\` (a first \`sagas start\` does it)`,
    );
  }
  const file = (name: string) => path.join(dir, name);
  const ca = readPem(file('ca.crt'));
  const cert = readPem(file(`${identity}.crt`));
  const key = readPem(file(`${identity}.key`));
  let caCert: X509Certificate;
  let leaf: X509Certificate;
  try {
    caCert = new X509Certificate(ca);
    leaf = new X509Certificate(cert);
  } catch (err) {
    throw new TlsError(
      'tls_material_invalid',
      `${dir}: ca.crt or ${identity}.crt is not a PEM certificate (${(err as Error).message})`,
    );
  }
  const invalid = (why: string) => new TlsError('tls_material_invalid', `${file(`${identity}.crt`)} ${why}`);
  if (!leaf.verify(caCert.publicKey))
    throw invalid(`was not issued by ${file('ca.crt')} (${caCert.subject.replace(/\n/g, ', ')})`);
  if (new Date(leaf.validTo) < now)
    throw invalid(`expired on ${leaf.validTo}: \`sagas certs --renew\` issues new identities`);
  if (new Date(leaf.validFrom) > now) throw invalid(`is not valid before ${leaf.validFrom}`);
  if (commonName(leaf.subject) !== identity)
    throw invalid(`names ${leaf.subject.replace(/\n/g, ', ')}, not CN=${identity}`);
  try {
    if (!leaf.checkPrivateKey(createPrivateKey(key))) throw invalid(`does not match ${identity}.key`);
  } catch (err) {
    if (err instanceof TlsError) throw err;
    throw new TlsError(
      'tls_material_invalid',
      `${file(`${identity}.key`)} is not a PEM private key (${(err as Error).message})`,
    );
  }
  return { identity, ca, key, cert };
}

function commonName(subject: string): string | undefined {
  return subject
    .split('\n')
    .find((l) => l.startsWith('CN='))
    ?.slice(3);
}

/**
 * A process's first step with its gRPC security. In plaintext, a warning — once, at start, where
 * an operator looks. Under mutual TLS a process issues nothing (it never holds a CA key): given
 * its `identity`, it reads and checks its own material now, so a missing or wrong one stops it
 * with the reason before it opens anything.
 */
export async function prepareGrpcSecurity(
  security: GrpcSecurity,
  logger: { warn(o: object, msg: string): void; info(o: object, msg: string): void },
  identity?: TlsIdentity,
): Promise<void> {
  if (security.kind === 'insecure') {
    logger.warn(
      { GRPC_INSECURE: '1' },
      'gRPC between the services is plaintext and unauthenticated (GRPC_INSECURE=1): anyone who reaches a participant can call it',
    );
    return;
  }
  if (identity) loadTlsMaterial(security.dir, identity);
}

/** The common name a peer's certificate states, when it states exactly one. */
export function peerName(cert: PeerCertificate | undefined): string | undefined {
  const cn: unknown = cert?.subject?.CN;
  // Node gives an array when a subject repeats CN: such a certificate names no one identity.
  return typeof cn === 'string' ? cn : undefined;
}

/**
 * A TLS client's server check that pins the peer by identity: the certificate (already verified
 * against the deployment's CA) must name `peer` as its CN, whatever host name the address has.
 */
export function pinnedPeer(peer: TlsIdentity): (host: string, cert: PeerCertificate) => Error | undefined {
  return (_host, cert) =>
    peerName(cert) === peer
      ? undefined
      : new Error(`the server at this address presented CN=${String(cert.subject?.CN)}, not CN=${peer}`);
}
