import { execFile } from 'node:child_process';
import { X509Certificate, createPrivateKey, randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { PeerCertificate } from 'node:tls';
import { setTimeout as delay } from 'node:timers/promises';
import { AppError } from './errors.js';

/**
 * The deployment's certificates for mutual TLS between the gateway and the participants: one CA,
 * and one key and certificate per process identity, as PEM files in one folder (TLS_DIR):
 *
 *   ca.crt  ca.key  gateway.crt gateway.key  order.crt order.key  inventory.… payment.…
 *
 * A missing piece is made with the `openssl` CLI (Debian's, in the image too); an existing file is
 * never overwritten, so an operator may bring the CA (ca.crt + ca.key) or every file.
 */

export const TLS_IDENTITIES = ['gateway', 'order', 'inventory', 'payment'] as const;
export type TlsIdentity = (typeof TLS_IDENTITIES)[number];

/** A TLS failure at start; `code` says which (the message names the file and what to do). */
export class TlsError extends AppError {
  constructor(code: 'tls_material_invalid' | 'tls_material_incomplete' | 'tls_openssl_failed' | 'tls_init_timeout', message: string) {
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
const LOCK = '.init.lock';
/** A lock older than this was left by a process that died while it generated. */
const STALE_LOCK_MS = 60_000;
const INIT_WAIT_MS = 30_000;

const run = promisify(execFile);

const file = (dir: string, name: string) => path.join(dir, name);
const pieces = (identity: TlsIdentity) => [`${identity}.crt`, `${identity}.key`];

function complete(dir: string): boolean {
  return existsSync(file(dir, 'ca.crt')) && TLS_IDENTITIES.every((id) => pieces(id).every((p) => existsSync(file(dir, p))));
}

async function openssl(args: string[]): Promise<void> {
  try {
    await run('openssl', args, { timeout: 30_000 });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    const why = e.code === 'ENOENT' ? 'the openssl command is not installed' : (e.stderr?.trim() || e.message);
    throw new TlsError('tls_openssl_failed', `cannot create TLS certificates with openssl: ${why}`);
  }
}

/** Writes `name` into `dir` from a file made in `work`, atomically, private when it is a key. */
function place(work: string, dir: string, name: string): void {
  if (name.endsWith('.key')) chmodSync(file(work, name), 0o600);
  renameSync(file(work, name), file(dir, name));
}

async function makeCa(work: string, dir: string): Promise<void> {
  await openssl([
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', file(work, 'ca.key'), '-out', file(work, 'ca.crt'), '-days', String(CA_DAYS),
    // A name of its own: two deployments' CAs are told apart in an error message.
    '-subj', `/CN=ecommerce-sagas local CA ${randomBytes(4).toString('hex')}`,
    '-addext', 'basicConstraints=critical,CA:TRUE,pathlen:0',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  place(work, dir, 'ca.key');
  place(work, dir, 'ca.crt');
}

/**
 * A leaf for `identity`, signed by the CA in one openssl run: its common name and a DNS name are
 * the identity (a peer checks it). The gateway's may only dial (clientAuth), a participant's may
 * only serve (serverAuth): the TLS handshake itself then refuses a participant's certificate as
 * a caller, so only the gateway calls the participants, at no cost per call.
 */
async function makeLeaf(work: string, dir: string, identity: TlsIdentity): Promise<void> {
  await openssl([
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', file(work, `${identity}.key`), '-out', file(work, `${identity}.crt`), '-days', String(LEAF_DAYS),
    '-subj', `/CN=${identity}`, '-CA', file(dir, 'ca.crt'), '-CAkey', file(dir, 'ca.key'),
    '-addext', 'basicConstraints=critical,CA:FALSE',
    '-addext', 'keyUsage=critical,digitalSignature',
    '-addext', `extendedKeyUsage=${identity === 'gateway' ? 'clientAuth' : 'serverAuth'}`,
    '-addext', `subjectAltName=DNS:${identity},DNS:localhost,IP:127.0.0.1,IP:::1`,
  ]);
  place(work, dir, `${identity}.key`);
  place(work, dir, `${identity}.crt`);
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
      await makeCa(work, dir);
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
    await Promise.all(missing.map((id) => makeLeaf(work, dir, id)));
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
