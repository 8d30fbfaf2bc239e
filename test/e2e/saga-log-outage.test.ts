import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnService, ServiceStartError } from '../../src/supervisor/supervisor.js';
import { crashSystem, CATALOG, ORDERS } from '../helpers/crash.js';
import { checkInvariants } from '../helpers/invariants.js';
import { TestPostgres } from '../helpers/postgres.js';
import { eventually, freePort } from '../helpers/system.js';

// The gateway's saga log on a private PostgreSQL server that the test stops and starts again.

let pgServer: TestPostgres;
let sys: Awaited<ReturnType<typeof crashSystem>>;

before(async () => {
  pgServer = await TestPostgres.start();
  sys = await crashSystem({ SAGA_LOG_URL: pgServer.url, SAGA_LOG_POOL_SIZE: '4' });
});
after(async () => {
  await sys?.stop();
  await pgServer?.destroy();
});

test('a gateway whose saga log cannot be reached at start says so, without the password, and exits non-zero', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sagas-nolog-'));
  try {
    const url = `postgres://postgres:s3cret-pw@127.0.0.1:${await freePort()}/sagas`;
    const env = { ...process.env, DATA_DIR: dataDir, HTTP_ADDR: '127.0.0.1:0', SAGA_LOG_URL: url, LOG_FORMAT: 'json' };
    const err = await spawnService('gateway', { env, readyTimeoutMs: 20_000 }).then(
      () => assert.fail('the gateway started without its saga log'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ServiceStartError);
    assert.equal(err.status?.code, 1);
    const out = err.output.join('\n');
    assert.match(out, /cannot open the saga log (at )?postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/sagas/);
    assert.doesNotMatch(out, /s3cret-pw/);
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('the saga log lost mid-run: /readyz 503, POST 503 saga_log_unavailable with nothing stored; sagas go on when it is back', async () => {
  const first = await sys.api('POST', '/orders', ORDERS.happy, { Prefer: 'wait=10' });
  assert.equal(first.status, 201);
  assert.equal(first.body.status, 'CONFIRMED');

  // A saga in flight through the outage: payment dies as the charge reaches it, so the saga
  // retries its charge (an uncertain outcome) until payment is back.
  const armed = await sys.restart('payment', { CRASH_AT: 'payment.charge.before_commit', SAGAS_TEST_HOOKS: '1' });
  const inFlight = await sys.api('POST', '/orders', ORDERS.happy, { 'X-Idempotency-Key': 'outage-in-flight' });
  assert.equal(inFlight.status, 201);
  const inFlightId: string = inFlight.body.id;
  assert.equal((await armed.exited).signal, 'SIGKILL');

  await pgServer.stop();
  const ready = await eventually('readyz to report the saga log down', async () => {
    const r = await sys.api('GET', '/readyz');
    return r.status === 503 && r.body.checks.saga_log === 'unavailable' ? r : undefined;
  });
  assert.equal(ready.body.status, 'not_ready');
  const refused = await eventually('POST to be refused', async () => {
    const r = await sys.api('POST', '/orders', ORDERS.happy, { 'X-Idempotency-Key': 'outage-refused' });
    return r.status === 503 ? r : undefined;
  });
  assert.equal(refused.body.error, 'saga_log_unavailable');
  assert.equal(refused.headers.get('retry-after'), '1');
  const read = await sys.api('GET', `/orders/${first.body.id}`);
  assert.equal(read.status, 503);
  assert.equal(read.body.error, 'saga_log_unavailable');

  await pgServer.restart();
  await sys.restart('payment');
  await eventually('readyz to recover', async () =>
    (await sys.api('GET', '/readyz')).status === 200 ? true : undefined,
  );
  const s = await eventually(
    'the saga in flight through the outage to end',
    async () => {
      const r = await sys.api('GET', `/orders/${inFlightId}`);
      return r.status === 200 && r.body.saga_status === 'COMPLETED' ? r : undefined;
    },
    20_000,
  );
  assert.equal(s.body.status, 'CONFIRMED');
  // The refused request stored nothing: its key is free, and a retry makes one new order.
  const retried = await sys.api('POST', '/orders', ORDERS.happy, {
    'X-Idempotency-Key': 'outage-refused',
    Prefer: 'wait=10',
  });
  assert.equal(retried.status, 201);
  assert.equal(retried.headers.get('idempotent-replayed'), null);
  assert.equal(retried.body.status, 'CONFIRMED');
  const report = await checkInvariants(sys, CATALOG);
  assert.equal(report.sagas, 3, `sagas: ${JSON.stringify(report.byStatus)}`);
});
