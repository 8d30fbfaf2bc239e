/**
 * The nemesis (issue 21 items 5 and 6), a short run end to end: `sagas chaos --nemesis` with a
 * fixed seed for a minute against a system it starts (one gateway, SQLite, its own Redis), then
 * the books. Asserts the outcome: no disagreement, every kind of kill the schedule holds ran,
 * fault plans fired, every saga ended, and nothing left behind (processes, Redis, data folder).
 * The long runs (30 min, and 3 gateways on PostgreSQL) are recorded in docs/nemesis.md.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { scheduleFor } from '../../src/chaos/nemesis.js';
import type { NemesisReport } from '../../src/chaos/nemesis-report.js';
import { compiledProduct } from '../helpers/compiled.js';

const SEED = 20261201;
const DURATION_MS = 60_000;
const TERMINAL = new Set(['COMPLETED', 'COMPENSATED', 'PARKED', 'RESOLVED']);

type Main = typeof import('../../src/cli/main.js').main;

/**
 * The `sagas` command in this process: compiled, as `npm run nemesis` runs it (its supervisor then
 * starts the compiled processes: less CPU for each of the run's restarts and the system's start),
 * when dist/ is the current source (test/helpers/compiled.ts); the source through tsx otherwise.
 */
async function sagasMain(): Promise<Main> {
  const product = compiledProduct();
  if (product.entries)
    return ((await import(pathToFileURL(path.join(product.dir, 'cli', 'main.js')).href)) as { main: Main }).main;
  process.stderr.write(`the nemesis runs through tsx (slower): ${product.why}\n`);
  return (await import('../../src/cli/main.js')).main;
}

async function sagas(argv: string[]) {
  const main = await sagasMain();
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (d: Buffer) => (stdout += d.toString()));
  err.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await main(argv, { stdout: out, stderr: err, env: { ...process.env, LOG_LEVEL: 'warn' } });
  return { code, stdout, stderr };
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

test(
  'a one-minute nemesis on one gateway and SQLite: the books agree, and every kind of harm was done',
  { timeout: 240_000 },
  async () => {
    const r = await sagas([
      'chaos',
      '--nemesis',
      '--duration',
      `${DURATION_MS / 1000}s`,
      '--seed',
      String(SEED),
      '--rate',
      '5',
      '--json',
    ]);
    assert.match(r.stderr.split('\n')[0] ?? '', new RegExp(`^nemesis: seed ${SEED}`), 'the seed is printed first');
    let report: NemesisReport;
    try {
      report = JSON.parse(r.stdout) as NemesisReport;
    } catch {
      assert.fail(`no JSON report (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
    }
    const why = `${JSON.stringify({ disagreements: report.disagreements, notes: report.notes }, null, 2)}\n${r.stderr}`;
    assert.deepEqual(report.disagreements, [], why);
    assert.equal(report.ok, true);
    assert.equal(r.code, 0, why);
    assert.equal(report.seed, SEED);

    // Every kind of process the schedule kills was killed at least once.
    const scheduled = new Set(
      scheduleFor(SEED, DURATION_MS, ['gateway', 'order', 'inventory', 'payment', 'redis']).events.flatMap((e) =>
        e.kind === 'kill' ? [e.target] : [],
      ),
    );
    assert.deepEqual(scheduled, new Set(['gateway', 'order', 'inventory', 'payment', 'redis']));
    for (const target of scheduled)
      assert.ok(
        (report.kills.by_target[target] ?? 0) >= 1,
        `${target} was never killed: ${JSON.stringify(report.kills)}`,
      );
    assert.ok(report.kills.long_outages >= 1, 'a participant stayed down past its budget');
    assert.ok(
      report.faults.plans_installed >= 1 && report.faults.fired >= 1,
      `fault plans fired: ${JSON.stringify(report.faults)}`,
    );

    // Load of every kind went through, and every saga ended.
    assert.ok(report.orders.accepted > 100, JSON.stringify(report.orders));
    assert.equal(report.orders.unanswered, 0);
    for (const kind of ['happy', 'declined', 'no_stock', 'duplicate', 'conflict'] as const)
      assert.ok((report.orders.by_kind[kind]?.sent ?? 0) > 0, kind);
    assert.ok(report.repair.settled, 'every saga settled');
    assert.ok(
      Object.keys(report.sagas.by_status).every((s) => TERMINAL.has(s)),
      JSON.stringify(report.sagas),
    );
    assert.equal(
      Object.values(report.sagas.by_status).reduce((a, b) => a + b, 0),
      report.orders.distinct,
      'one saga per accepted order',
    );

    // Nothing left behind: its data folder, its redis-server.
    const dir = /starting a system in (\S+):/.exec(r.stderr)?.[1];
    const redisPort = Number(/redis-server on port (\d+)/.exec(r.stderr)?.[1]);
    assert.ok(dir && redisPort, r.stderr);
    assert.equal(fs.existsSync(dir), false, `${dir} removed`);
    assert.equal(await listening(redisPort), false, 'its redis-server stopped');
  },
);
