import fs from 'node:fs';
import path from 'node:path';
import { credentials, type ChannelCredentials, type ChannelOptions } from '@grpc/grpc-js';
import { channelCredentials, channelOptions } from '../../src/platform/grpc/grpc.js';
import {
  issueCertificate,
  issueIdentities,
  loadTlsMaterial,
  TLS_IDENTITIES,
  type CertificateUsage,
  type GrpcSecurity,
  type TlsIdentity,
} from '../../src/platform/grpc/tls.js';
import { tempDir } from './participants.js';

interface TestDeployment {
  security: GrpcSecurity;
  /** The folder of its CA (ca.crt, ca.key), kept so that tests can mint certificates of that CA. */
  caDir: string;
}

let shared: Promise<TestDeployment> | undefined;

/**
 * One deployment's CA and its four identities for this test process, issued once by the
 * product's own code (`sagas certs --ca DIR`): tests run over mutual TLS as the product does.
 * Unlike a deployment's default, its CA key is kept (outside TLS_DIR), for `mintCertificate`.
 */
function testDeployment(): Promise<TestDeployment> {
  shared ??= (async () => {
    const dir = tempDir('tls');
    const caDir = tempDir('tls-ca');
    await issueIdentities(dir, { ca: caDir });
    return { security: { kind: 'mtls', dir } as const, caDir };
  })();
  return shared;
}

export async function testTls(): Promise<GrpcSecurity> {
  return (await testDeployment()).security;
}

/** The folder of `testTls()`'s CA (ca.crt, ca.key). */
export async function testCaDir(): Promise<string> {
  return (await testDeployment()).caDir;
}

/** Another deployment's CA and identities: what a stranger holds (its CA key not kept, as by default). */
export async function foreignTls(): Promise<GrpcSecurity> {
  const dir = tempDir('foreign-tls');
  await issueIdentities(dir);
  return { kind: 'mtls', dir };
}

/** The security of a process started with DATA_DIR=`dataDir` and no TLS_DIR. */
export function tlsUnder(dataDir: string): GrpcSecurity {
  return { kind: 'mtls', dir: path.join(dataDir, 'tls') };
}

/**
 * Issues the identities into DATA_DIR/tls, as `sagas certs` does before a process started on its
 * own (a participant issues nothing): for a test that starts one with DATA_DIR=`dataDir`.
 */
export async function issuedUnder(dataDir: string): Promise<GrpcSecurity> {
  const security = tlsUnder(dataDir);
  await issueIdentities(mtlsDir(security));
  return security;
}

/** A key and certificate named `commonName`, issued by `testTls()`'s own CA: an insider's certificate. */
export async function mintCertificate(
  commonName: string,
  usage: CertificateUsage = 'clientAuth',
): Promise<{ key: Buffer; cert: Buffer }> {
  return issueCertificate(await testCaDir(), commonName, usage);
}

/**
 * Client credentials presenting `client` (a key and certificate) that trust `testTls()`'s CA and
 * accept any server name: only who the caller is differs from the gateway's own.
 */
export async function callerCredentials(client: { key: Buffer; cert: Buffer }): Promise<ChannelCredentials> {
  const { ca } = loadTlsMaterial(mtlsDir(await testTls()), 'gateway');
  return credentials.createSsl(ca, client.key, client.cert, { checkServerIdentity: () => undefined });
}

/** A client of the participant `peer` at `address`, dialling as the gateway does (its certificate, its options). */
export async function asGateway<C>(
  Client: new (address: string, creds: ChannelCredentials, options: ChannelOptions) => C,
  address: string,
  peer: TlsIdentity,
  security?: GrpcSecurity,
): Promise<C> {
  const sec = security ?? (await testTls());
  return new Client(address, channelCredentials(sec, 'gateway', peer), channelOptions(sec, peer));
}

/** The folder of an mTLS security (for TLS_DIR of a process a test starts). */
export function mtlsDir(security: GrpcSecurity): string {
  if (security.kind !== 'mtls') throw new Error('mtlsDir: plaintext has no folder');
  return security.dir;
}

/** Every file below `dir`, relative to it, sorted. */
export const filesUnder = (dir: string): string[] =>
  (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(dir, f)).isFile()).sort();

/** What a TLS_DIR holds once issued: a folder per identity with ca.crt and its own key and certificate. */
export const IDENTITY_LAYOUT = TLS_IDENTITIES.flatMap((id) => [
  `${id}/ca.crt`,
  `${id}/${id}.crt`,
  `${id}/${id}.key`,
]).sort();
