/**
 * `npm run bench:grpc`: the CPU one unary gRPC call costs the calling process, by client —
 * grpc-js's, the gateway's (src/platform/grpc/grpc-client.ts) on one address and on two (a
 * participant's replicas, src/platform/grpc/grpc-balancer.ts), and a bare node:http2 request with
 * no error handling (the least any client can do) — against real payment service processes (their
 * health check: next to no server work), plaintext and under mutual TLS. 20,000 calls per
 * client, 32 in flight, after 2,000 to warm up; each client twice, alternating.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  HealthClient,
  HealthCheckRequest,
  HealthCheckResponse,
  HealthService,
} from '../../src/gen/health/v1/health.js';
import { spawnService } from '../../src/supervisor/supervisor.js';
import { callUnary, CLIENT_CHANNEL_OPTIONS, channelCredentials, channelOptions } from '../../src/platform/grpc/grpc.js';
import { dialerAs, UnaryChannel, unaryClient } from '../../src/platform/grpc/grpc-client.js';
import { BalancedChannel } from '../../src/platform/grpc/grpc-balancer.js';
import { issueIdentities, type GrpcSecurity } from '../../src/platform/grpc/tls.js';

const CALLS = 20_000;
const IN_FLIGHT = 32;

async function measure(call: () => Promise<unknown>): Promise<{ cpuUs: number; perSecond: number }> {
  for (let i = 0; i < 2_000; i++) await call();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let left = CALLS;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (left-- > 0) await call();
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  return { cpuUs: (cpu.user + cpu.system) / CALLS, perSecond: CALLS / ((performance.now() - t0) / 1000) };
}

async function clients(
  address: string,
  second: string,
  security: GrpcSecurity,
): Promise<Array<[string, () => Promise<unknown>, () => void]>> {
  const grpcJs = new HealthClient(address, channelCredentials(security, 'gateway', 'payment'), {
    ...CLIENT_CHANNEL_OPTIONS,
    ...channelOptions(security, 'payment'),
  });
  const channel = new UnaryChannel(address, dialerAs(security, 'gateway')('payment'));
  const lean = unaryClient<HealthClient>(HealthService, channel);
  const both = unaryClient<HealthClient>(
    HealthService,
    new BalancedChannel([address, second], dialerAs(security, 'gateway')('payment')),
  );
  const raw = dialerAs(security, 'gateway')('payment')(address);
  const body = Buffer.from(HealthCheckRequest.encode({ service: '' }).finish());
  const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, body.length]), body]);
  const bare = () =>
    new Promise((resolve, reject) => {
      const s = raw.request({
        ':method': 'POST',
        ':path': '/grpc.health.v1.Health/Check',
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      const chunks: Buffer[] = [];
      s.on('data', (d: Buffer) => chunks.push(d));
      s.on('end', () => resolve(HealthCheckResponse.decode(Buffer.concat(chunks).subarray(5))));
      s.on('error', reject);
      s.end(frame);
    });
  return [
    [
      'grpc-js client',
      () => callUnary(grpcJs.check.bind(grpcJs), { service: '' }, { timeoutMs: 5_000 }),
      () => grpcJs.close(),
    ],
    [
      'gateway client (grpc-client.ts)',
      () => callUnary(lean.check.bind(lean), { service: '' }, { timeoutMs: 5_000 }),
      () => lean.close(),
    ],
    [
      'gateway client, two addresses',
      () => callUnary(both.check.bind(both), { service: '' }, { timeoutMs: 5_000 }),
      () => both.close(),
    ],
    ['bare node:http2 request', bare, () => raw.close()],
  ];
}

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-grpc-'));
try {
  for (const security of [{ kind: 'insecure' }, { kind: 'mtls', dir: path.join(dataDir, 'tls') }] as GrpcSecurity[]) {
    // A participant issues nothing: its identity comes first, as from `sagas certs`.
    if (security.kind === 'mtls') await issueIdentities(security.dir);
    // Two payment processes, each with its own data folder: a participant's two replicas.
    const env = (replica: string) => ({
      ...process.env,
      DATA_DIR: path.join(dataDir, replica),
      PAYMENT_SERVICE_ADDR: '127.0.0.1:0',
      PAYMENT_DB_URL: '',
      METRICS_ADDR: 'off',
      LOG_LEVEL: 'warn',
      ...(security.kind === 'insecure' ? { GRPC_INSECURE: '1' } : { GRPC_INSECURE: '0', TLS_DIR: security.dir }),
    });
    const [payment, twin] = await Promise.all([
      spawnService('payment', { env: env('a') }),
      spawnService('payment', { env: env('b') }),
    ]);
    try {
      const list = await clients(payment.address, twin.address, security);
      const rows: Record<string, string[]> = {};
      for (let round = 0; round < 2; round++) {
        for (const [name, call] of list) {
          const r = await measure(call);
          (rows[name] ??= []).push(`${r.cpuUs.toFixed(1)} µs CPU/call (${Math.round(r.perSecond)} calls/s)`);
        }
      }
      process.stdout.write(
        `${security.kind === 'insecure' ? 'plaintext' : 'mutual TLS'}, ${CALLS} health checks, ${IN_FLIGHT} in flight, Node ${process.version}\n`,
      );
      for (const [name, figures] of Object.entries(rows))
        process.stdout.write(`  ${name.padEnd(34)} ${figures.join('; ')}\n`);
      for (const [, , close] of list) close();
    } finally {
      await Promise.all([payment.stop(), twin.stop()]);
    }
  }
} finally {
  fs.rmSync(dataDir, { recursive: true, force: true });
}
