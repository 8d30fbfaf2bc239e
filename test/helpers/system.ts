import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { startSystem, type RunningSystem, type StartSystemOptions } from '../../src/supervisor/supervisor.js';
import { mtlsDir, testTls } from './tls.js';

export interface Reply {
  status: number;
  headers: Headers;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON of the API under test, asserted field by field
}

export async function http(
  base: string,
  method: string,
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Reply> {
  const res = await fetch(base + url, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON: keep the text */
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

/** A whole system on ephemeral ports and a fresh data folder; quiet unless E2E_LOGS=1. */
export async function freshSystem(
  env: NodeJS.ProcessEnv = {},
  opts: {
    gateways?: number;
    replicas?: number;
    /** Other entry files for the processes (test/helpers/compiled.ts: the compiled product). */
    entries?: StartSystemOptions['entries'];
  } = {},
): Promise<
  RunningSystem & {
    api: (m: string, u: string, b?: unknown, h?: Record<string, string>) => Promise<Reply>;
    /** The first gateway's admin listener (no ADMIN_TOKENS by default: this test is a loopback operator). */
    admin: (m: string, u: string, b?: unknown, h?: Record<string, string>) => Promise<Reply>;
  }
> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sagas-e2e-'));
  const sys = await startSystem({
    dataDir,
    ports: 'ephemeral',
    gateways: opts.gateways,
    replicas: opts.replicas,
    entries: opts.entries,
    env: {
      LOG_LEVEL: process.env.E2E_LOGS ? 'debug' : 'warn',
      // Each system keeps its own keys in the shared Redis, and not for long.
      REDIS_KEY_PREFIX: `test-${path.basename(dataDir)}`,
      IDEMPOTENCY_TTL: '10m',
      // Tests drive load from one address, faster than a customer: the default limit is off
      // (test/integration/http-limits.test.ts and test/unit/config.test.ts hold the limiter and its default).
      RATE_LIMIT_PER_MINUTE: '0',
      // A test deployment: its tests arm crash points (restart with CRASH_AT), honoured only with this.
      SAGAS_TEST_HOOKS: '1',
      // Mutual TLS with this test process's certificates, made once (test/integration/mtls.test.ts covers
      // a system making its own on first start).
      TLS_DIR: mtlsDir(await testTls()),
      ...env,
    },
    onLine: process.env.E2E_LOGS ? (name, line) => console.error(`[${name}] ${line}`) : undefined,
  });
  const stop = sys.stop.bind(sys);
  return Object.assign(sys, {
    api: (m: string, u: string, b?: unknown, h?: Record<string, string>) => http(sys.url, m, u, b, h),
    admin: (m: string, u: string, b?: unknown, h?: Record<string, string>) => {
      if (!sys.adminUrl) throw new Error('this system runs with ADMIN_ADDR=off');
      return http(sys.adminUrl, m, u, b, h);
    },
    stop: async () => {
      await stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  });
}

/** Polls `probe` until it returns a value; fails with `what` after `timeoutMs`. A condition, not a sleep. */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < until) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const why = last instanceof Error ? String(last) : inspect(last);
  throw new Error(`timed out waiting for ${what}${last ? `: ${why}` : ''}`);
}

export { freePort } from '../../src/platform/json-client.js';
