/**
 * No secret in a log line (issue 11, part 9). The whole system runs with secrets in every place a
 * process reads one: a Redis that requires a password (with `@` and `:` in it), reached through
 * a different REDIS_URL form by each process; an OTLP endpoint with user info; OTLP headers. An
 * order is placed, Redis then dies (the fallback warning names the Redis URL), the system
 * stops; every line any process wrote, stdout and stderr, debug level, is searched for every
 * secret, in every spelling. A process refused for a bad configuration is searched too.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import {
  startSystem,
  spawnService,
  ServiceStartError,
  type RunningSystem,
  type ServiceName,
} from '../../src/supervisor/supervisor.js';
import { eventually, freePort, http } from '../helpers/system.js';
import { OtlpReceiver } from '../helpers/otlp-receiver.js';

const REDIS_PASSWORD = 'S3cr3t@Redis:pw';
const ENCODED = encodeURIComponent(REDIS_PASSWORD); // S3cr3t%40Redis%3Apw
const OTLP_USER = 'otlpUs3r';
const OTLP_PASSWORD = '0tlpS3cret';
const HEADER_TOKEN = 'h3aderT0ken';
const HEADER_KEY = 'k3yT0ken';
const ADMIN_OPERATOR = 'adm1nOperat0rT0ken';
const ADMIN_VIEWER = 'adm1nView3rT0ken00';
const ADMIN_TOKENS = `ops:operator:${ADMIN_OPERATOR},watch:viewer:${ADMIN_VIEWER}`;
/** Every spelling a secret could be logged in; a fragment is enough to fail. */
const SECRETS = [
  'S3cr3t',
  REDIS_PASSWORD,
  ENCODED,
  'Redis:pw',
  'Redis%3Apw',
  OTLP_PASSWORD,
  HEADER_TOKEN,
  HEADER_KEY,
  ADMIN_OPERATOR,
  ADMIN_VIEWER,
  'adm1n',
];

const lines: { name: string; line: string }[] = [];
const collect = (name: string, line: string) => {
  lines.push({ name, line });
  if (process.env.E2E_LOGS) console.error(`[${name}] ${line}`);
};

let redisPort: number;
let redisProc: ChildProcess | undefined;
let receiver: OtlpReceiver;
let sys: RunningSystem | undefined;
let dataDir: string;

/** A private redis-server that requires REDIS_PASSWORD; nothing on disk. */
async function startRedis(): Promise<void> {
  redisPort = await freePort();
  const proc = spawn(
    'redis-server',
    [
      '--port',
      String(redisPort),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--requirepass',
      REDIS_PASSWORD,
    ],
    { stdio: 'ignore' },
  );
  redisProc = proc;
  const failed = new Promise<never>((_, reject) =>
    proc.once('exit', (code) => reject(new Error(`redis-server exited with ${code}; is it installed?`))),
  );
  const c = new Redis({
    port: redisPort,
    host: '127.0.0.1',
    password: REDIS_PASSWORD,
    maxRetriesPerRequest: 0,
    retryStrategy: () => 50,
  });
  c.on('error', () => {}); // refused until it listens
  try {
    await eventually(
      'the private Redis to answer',
      async () => (await Promise.race([c.ping(), failed])) === 'PONG' || undefined,
    );
  } finally {
    c.disconnect();
  }
  // It really requires the password.
  const anon = new Redis({ port: redisPort, host: '127.0.0.1', maxRetriesPerRequest: 0, retryStrategy: () => 50 });
  anon.on('error', () => {});
  try {
    await eventually('Redis to refuse a client without the password', async () => {
      try {
        await anon.ping();
        return undefined;
      } catch (err) {
        return /NOAUTH/.test(String(err)) || undefined;
      }
    });
  } finally {
    anon.disconnect();
  }
}

async function killRedis(): Promise<void> {
  const p = redisProc;
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise((r) => p.once('exit', r));
  p.kill('SIGKILL');
  await gone;
}

/** The Redis URL each process gets: every form the password can take in it. */
function redisUrls(): Record<ServiceName, string> {
  const at = `127.0.0.1:${redisPort}`;
  return {
    gateway: `redis://:${REDIS_PASSWORD}@${at}`, // `@` and `:` as typed
    order: `redis://:${ENCODED}@${at}`, // percent-encoded
    inventory: `redis://${at}?password=${ENCODED}`, // the query form ioredis also reads
    payment: `redis://default:${ENCODED}@${at}/0`, // user and password (Redis 6 ACL's default user)
  };
}

before(async () => {
  await startRedis();
  receiver = new OtlpReceiver();
  const endpoint = new URL(await receiver.start());
  endpoint.username = OTLP_USER;
  endpoint.password = OTLP_PASSWORD;
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sagas-secrets-'));
  const urls = redisUrls();
  sys = await startSystem({
    dataDir,
    ports: 'ephemeral',
    env: {
      LOG_LEVEL: 'trace', // every line a process can write
      REDIS_URL: urls.gateway,
      // The participants use Redis only with their fast path on: on, so their REDIS_URLs are used.
      INBOX_FAST_PATH: 'redis',
      REDIS_KEY_PREFIX: `test-${path.basename(dataDir)}`,
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint.toString().replace(/\/$/, ''),
      OTEL_EXPORTER_OTLP_HEADERS: `authorization=Bearer%20${HEADER_TOKEN},x-api-key=${HEADER_KEY}`,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '100',
      OTEL_METRIC_EXPORT_INTERVAL: '300',
      ADMIN_TOKENS,
    },
    onLine: collect,
  });
  // One form per process: the participants start again with theirs (the gateway keeps the first).
  const running = sys;
  await Promise.all(
    (['order', 'inventory', 'payment'] as const).map((name) => running.restart(name, { REDIS_URL: urls[name] })),
  );
});

after(async () => {
  await sys?.stop();
  await killRedis();
  await receiver?.close();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

function reached(name: string, message: RegExp): boolean {
  return lines.some((l) => l.name === name && message.test(l.line));
}

function assertNoSecret(where: string): void {
  const leaks = lines.filter((l) => SECRETS.some((s) => l.line.includes(s)));
  assert.deepEqual(
    leaks.map((l) => `[${l.name}] ${l.line}`),
    [],
    `a secret in a log line (${where})`,
  );
}

test('with secrets in REDIS_URL (every form) and in the OTLP endpoint and headers, no log line of any process carries one', async () => {
  assert.ok(sys);
  // Every form authenticates: each process says it uses Redis.
  for (const name of ['gateway', 'order', 'inventory', 'payment']) {
    await eventually(`${name} to reach the password-protected Redis`, async () =>
      reached(name, /redis reachable/) ? true : undefined,
    );
  }
  const order = { customer_id: 'cust_secrets', items: [{ product_id: 'prod_1', quantity: 1, price: 12.5 }] };
  const r = await http(sys.url, 'POST', '/orders', order, { Prefer: 'wait=10', 'X-Idempotency-Key': 'secrets-1' });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.equal(r.body.status, 'CONFIRMED');
  // A replay goes through Redis.
  const again = await http(sys.url, 'POST', '/orders', order, { Prefer: 'wait=10', 'X-Idempotency-Key': 'secrets-1' });
  assert.equal(again.body.id, r.body.id);
  // The endpoint with user info is the one in use: spans arrive.
  await eventually('spans at the OTLP receiver', async () =>
    receiver.spans.some((s) => s.service === 'gateway') ? true : undefined,
  );
  // The redacted URL is what is logged: the user info's user, no password.
  assert.ok(
    lines.some((l) => l.line.includes(`${OTLP_USER}:***@`)),
    'the OTLP endpoint is logged, redacted',
  );
  // What is logged is the redacted URL: the lines that would leak are there, masked.
  const redisLine = (name: string) =>
    lines.filter((l) => l.name === name && /redis reachable/.test(l.line)).at(-1)?.line ?? ''; // the last: after the restart
  assert.match(redisLine('gateway'), /redis:\/\/:\*\*\*@127\.0\.0\.1:/);
  assert.match(redisLine('order'), /redis:\/\/:\*\*\*@127\.0\.0\.1:/);
  assert.match(redisLine('inventory'), /\?password=\*\*\*/);
  assert.match(redisLine('payment'), /redis:\/\/default:\*\*\*@127\.0\.0\.1:/);
  // The admin listener, with every way a token is sent: sign-in, bearer, a wrong one, a viewer acting, an operator's action.
  const admin = sys.adminUrl as string;
  assert.equal((await http(admin, 'POST', '/api/session', { token: ADMIN_OPERATOR })).status, 200);
  assert.equal((await http(admin, 'POST', '/api/session', { token: `${ADMIN_VIEWER}-wrong` })).status, 401);
  assert.equal(
    (await http(admin, 'GET', '/api/sagas', undefined, { authorization: `Bearer ${ADMIN_VIEWER}` })).status,
    200,
  );
  assert.equal(
    (await http(admin, 'GET', '/api/sagas', undefined, { authorization: `Bearer ${ADMIN_OPERATOR}x` })).status,
    401,
  );
  const acting = { action: 'retry', action_id: 'secrets-act-1' };
  assert.equal(
    (await http(admin, 'POST', `/api/sagas/${r.body.id}/actions`, acting, { authorization: `Bearer ${ADMIN_VIEWER}` }))
      .status,
    403,
  );
  assert.equal(
    (
      await http(admin, 'POST', `/api/sagas/${r.body.id}/actions`, acting, {
        authorization: `Bearer ${ADMIN_OPERATOR}`,
      })
    ).status,
    409,
  );
  await eventually('the refused action to be logged', async () =>
    reached('gateway', /operator action refused/) ? true : undefined,
  );
  assertNoSecret('running');

  // Redis dies: every process warns, naming the Redis URL.
  await killRedis();
  await http(
    sys.url,
    'POST',
    '/orders',
    { ...order, customer_id: 'cust_secrets_2' },
    { Prefer: 'wait=10', 'X-Idempotency-Key': 'secrets-2' },
  );
  for (const name of ['gateway', 'order', 'inventory', 'payment']) {
    await eventually(`${name} to notice Redis is gone`, async () =>
      reached(name, /redis unreachable/) ? true : undefined,
    );
  }
  await sys.stop();
  assert.ok(lines.length > 20, `only ${lines.length} log lines: is the output collected?`);
  for (const name of ['gateway', 'order', 'inventory', 'payment'])
    assert.ok(
      lines.some((l) => l.name === name),
      `no line from ${name}`,
    );
  assertNoSecret('after Redis died and the system stopped');
});

test('a process refused for its configuration does not print the secrets either', async () => {
  const before = lines.length;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATA_DIR: dataDir,
    // each invalid, each carrying a secret
    REDIS_URL: `redis://:${REDIS_PASSWORD}@bad host:6379`,
    OTEL_EXPORTER_OTLP_ENDPOINT: `ftp://${OTLP_USER}:${OTLP_PASSWORD}@collector:4318`,
    OTEL_EXPORTER_OTLP_HEADERS: `${HEADER_TOKEN}`,
    ADMIN_TOKENS: `ops:root:${ADMIN_OPERATOR},watch:viewer:${ADMIN_VIEWER}`,
  };
  const err = await spawnService('gateway', { env, onLine: collect, readyTimeoutMs: 20_000 }).then(
    (p) => (p.stop(), assert.fail('the gateway started with an invalid configuration')),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ServiceStartError, String(err));
  const mine = lines.slice(before);
  assert.ok(
    mine.some((l) => /REDIS_URL/.test(l.line)),
    `the refusal names REDIS_URL:\n${mine.map((l) => l.line).join('\n')}`,
  );
  assert.ok(
    mine.some((l) => /ADMIN_TOKENS/.test(l.line)),
    `the refusal names ADMIN_TOKENS:\n${mine.map((l) => l.line).join('\n')}`,
  );
  assert.ok(!SECRETS.some((s) => err.message.includes(s)), err.message);
  assertNoSecret('invalid configuration');
});
