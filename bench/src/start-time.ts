/**
 * `npm run bench:start`: how long the system takes to start, as a user meets it.
 * - whole system: from spawning `node bin/sagas.js start` (what `npm start` runs) to the first
 *   `GET /readyz` answered 200, on a fresh DATA_DIR and free ports (the first start also makes
 *   the mutual-TLS material, so it is reported apart from the later starts on the same folder);
 * - one process: from fork to its `ready` message (supervisor's spawnService), the order service,
 *   compiled (dist/, as `npm start` runs it) and as TypeScript through tsx (as the tests run it).
 * RUNS times each (default 5, `--runs N`); medians and every figure are printed, as JSON with `--json`.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT, spawnService } from '../../src/supervisor/supervisor.js';
import { freePort } from '../../src/platform/json-client.js';
import { issueIdentities } from '../../src/platform/grpc/tls.js';

const argRuns = process.argv.indexOf('--runs');
const RUNS = argRuns > 0 ? Number(process.argv[argRuns + 1]) : 5;
const JSON_OUT = process.argv.includes('--json');
if (!Number.isInteger(RUNS) || RUNS < 1) throw new RangeError('--runs must be a whole number >= 1');

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

async function readyz(port: number, deadline: number): Promise<void> {
  for (;;) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/readyz`);
      await r.body?.cancel();
      if (r.status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error('the system was not ready within 60 s');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** One `sagas start` on `dataDir` until /readyz is 200, then SIGTERM and wait for its exit. */
async function startSystemOnce(dataDir: string): Promise<number> {
  const [http, admin, order, inventory, payment] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  const env = {
    ...process.env,
    DATA_DIR: dataDir,
    HTTP_ADDR: `127.0.0.1:${http}`,
    ADMIN_ADDR: `127.0.0.1:${admin}`,
    ORDER_SERVICE_ADDR: `127.0.0.1:${order}`,
    INVENTORY_SERVICE_ADDR: `127.0.0.1:${inventory}`,
    PAYMENT_SERVICE_ADDR: `127.0.0.1:${payment}`,
    METRICS_ADDR: 'off',
    LOG_LEVEL: 'warn',
    REDIS_KEY_PREFIX: `bench-start-${path.basename(dataDir)}`,
  };
  const t0 = performance.now();
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin/sagas.js'), 'start'], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await Promise.race([
      readyz(http, Date.now() + 60_000),
      exited.then(() => Promise.reject(new Error(`sagas start exited: ${err.slice(-500)}`))),
    ]);
    return performance.now() - t0;
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

const ENTRIES = {
  compiled: path.join(REPO_ROOT, 'dist/services/order/main.js'),
  typescript: path.join(REPO_ROOT, 'src/services/order/main.ts'),
};

async function processOnce(dataDir: string, entry: string): Promise<number> {
  // A participant issues nothing (issue 23): its identity is there before it starts, as after `sagas certs`.
  await issueIdentities(path.join(dataDir, 'tls'));
  const t0 = performance.now();
  const p = await spawnService('order', {
    entry,
    env: {
      ...process.env,
      DATA_DIR: dataDir,
      ORDER_SERVICE_ADDR: '127.0.0.1:0',
      METRICS_ADDR: 'off',
      LOG_LEVEL: 'warn',
      TLS_DIR: path.join(dataDir, 'tls'),
    },
  });
  const ms = performance.now() - t0;
  await p.stop('SIGTERM', 5_000);
  return ms;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-start-'));
try {
  const first: number[] = [];
  const again: number[] = [];
  const compiled: number[] = [];
  const typescript: number[] = [];
  // Without dist/ (a checkout from before the build existed), only the TypeScript start is measured.
  const hasDist = fs.existsSync(ENTRIES.compiled);
  for (let i = 0; i < RUNS; i++) {
    const data = path.join(dir, `run-${i}`);
    first.push(await startSystemOnce(data));
    again.push(await startSystemOnce(data));
    if (hasDist) compiled.push(await processOnce(data, ENTRIES.compiled));
    typescript.push(await processOnce(data, ENTRIES.typescript));
  }
  const result = {
    node: process.version,
    runs: RUNS,
    system_first_start_ms: { median: Math.round(median(first)), all: first.map(Math.round) },
    system_start_ms: { median: Math.round(median(again)), all: again.map(Math.round) },
    order_process_start_ms: hasDist ? { median: Math.round(median(compiled)), all: compiled.map(Math.round) } : null,
    order_process_start_tsx_ms: { median: Math.round(median(typescript)), all: typescript.map(Math.round) },
  };
  if (JSON_OUT) console.log(JSON.stringify(result, null, 2));
  else {
    console.log(`node ${result.node}, ${RUNS} run(s); medians (every run in brackets)`);
    console.log(
      `  npm start → first /readyz 200, first start (TLS material made): ${result.system_first_start_ms.median} ms [${result.system_first_start_ms.all.join(', ')}]`,
    );
    console.log(
      `  npm start → first /readyz 200, later starts:                     ${result.system_start_ms.median} ms [${result.system_start_ms.all.join(', ')}]`,
    );
    const c = result.order_process_start_ms;
    console.log(
      `  one process (order service), fork → ready, compiled:            ${c ? `${c.median} ms [${c.all.join(', ')}]` : 'no dist/'}`,
    );
    console.log(
      `  one process (order service), fork → ready, TypeScript via tsx:  ${result.order_process_start_tsx_ms.median} ms [${result.order_process_start_tsx_ms.all.join(', ')}]`,
    );
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
