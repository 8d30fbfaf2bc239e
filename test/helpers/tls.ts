import path from 'node:path';
import type { ChannelCredentials, ChannelOptions } from '@grpc/grpc-js';
import { channelCredentials, channelOptions } from '../../src/platform/grpc.js';
import { ensureTlsMaterial, type GrpcSecurity, type TlsIdentity } from '../../src/platform/tls.js';
import { tempDir } from './participants.js';

let shared: Promise<GrpcSecurity> | undefined;

/**
 * One deployment's CA and its four identities for this test process, made once by the product's
 * own code: tests run over mutual TLS as the product does.
 */
export function testTls(): Promise<GrpcSecurity> {
  shared ??= (async () => {
    const dir = tempDir('tls');
    await ensureTlsMaterial(dir);
    return { kind: 'mtls', dir } as const;
  })();
  return shared;
}

/** Another deployment's CA and identities: what a stranger holds. */
export async function foreignTls(): Promise<GrpcSecurity> {
  const dir = tempDir('foreign-tls');
  await ensureTlsMaterial(dir);
  return { kind: 'mtls', dir };
}

/** The security of a process started with DATA_DIR=`dataDir` (it makes its certificates there). */
export function tlsUnder(dataDir: string): GrpcSecurity {
  return { kind: 'mtls', dir: path.join(dataDir, 'tls') };
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
