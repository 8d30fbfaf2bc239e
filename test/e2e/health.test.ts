// `sagas health` (the image's HEALTHCHECK) against a real system: each process's GET /readyz where
// the environment says it listens, and what a dead participant does to the answers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { freshSystem } from '../helpers/system.js';

const SAGAS = path.resolve(import.meta.dirname, '../../bin/sagas.js');

let sys: Awaited<ReturnType<typeof freshSystem>>;

before(async () => {
  sys = await freshSystem();
});

after(async () => {
  await sys?.stop();
});

/** Runs bin/sagas.js health (the compiled CLI, as the image runs it) with only these variables set. */
function health(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [SAGAS, 'health', ...args],
      { env: { PATH: process.env.PATH ?? '', ...env } },
      (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
      },
    );
  });
}

const hostPort = (a: string | undefined) => {
  assert.ok(a, 'the process reported its address');
  return a.replace(/^https?:\/\//, '');
};

test('ready processes answer 0; a dead participant makes the gateway not ready and itself silent (exit 1); bad usage exits 2', async () => {
  const gateway = { HTTP_ADDR: hostPort(sys.url) };
  const order = { METRICS_ADDR: hostPort(sys.procs.order.metricsAddress) };
  const payment = { METRICS_ADDR: hostPort(sys.procs.payment.metricsAddress) };

  let r = await health(['gateway'], gateway);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^gateway: ready {2}http:\/\/127\.0\.0\.1:\d+\/readyz$/m);
  r = await health(['order'], order);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^order: ready/m);
  // No name: what answers must be ready (here the gateway and, on one METRICS_ADDR, the payment service).
  r = await health([], { ...gateway, ...payment });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^order\/inventory\/payment: ready/m);

  await sys.procs.order.kill();
  r = await health(['gateway'], gateway);
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stdout, /^gateway: not ready \(HTTP 503\)/m);
  r = await health(['order'], order);
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stdout, /^order: no answer \(ECONNREFUSED\)/m);
  r = await health([], { ...gateway, ...payment });
  assert.equal(r.code, 1, 'one answering process is not ready');
  // Nothing answers anywhere: not healthy either.
  r = await health([], { ...order, HTTP_ADDR: hostPort(sys.procs.order.metricsAddress) });
  assert.equal(r.code, 1, r.stdout);

  r = await health(['billing'], gateway);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown process "billing"/);
  r = await health(['gateway', '--timeout', '0'], gateway);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--timeout must be/);
});
