/**
 * The bench (`npm run bench`, bench/src/main.ts) end to end: a real subprocess starts its own
 * system, places a handful of orders through HTTP, measures the floor over gRPC, writes the JSON
 * and the SVG, and stops everything.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { MACHINE_POSTGRES_URL } from '../helpers/postgres.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
// What `npm run bench --` runs.
const BENCH = ['--import', 'tsx', path.join(ROOT, 'bench/src/main.ts')];

function run(
  args: string[],
  timeoutMs: number,
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...BENCH, ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGINT');
      reject(new Error(`bench did not finish within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('bench', () => {
  it('runs 5 orders and the floor, and writes the JSON and the SVG', { timeout: 30_000 }, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sagas-bench-test-'));
    try {
      const out = path.join(dir, 'result.json');
      const r = await run(['--count', '5', '--concurrency', '2', '--quiet', '--out', out], 25_000);
      assert.equal(r.code, 0, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
      assert.equal(r.stderr, '', '--quiet writes nothing on stderr');
      assert.match(r.stdout, /sagas\/s/);

      const result = JSON.parse(fs.readFileSync(out, 'utf8'));
      assert.equal(result.completed, 5);
      assert.ok(result.sagas_per_s > 0, `sagas_per_s ${result.sagas_per_s}`);
      assert.equal(result.system.errors.total, 0);
      assert.deepEqual(result.system.outcomes, { CONFIRMED: 5 });
      assert.ok(result.system.latency_ms.p50 > 0);
      assert.ok(result.system.series.length >= 1);
      assert.ok(result.system.cpu.processes.gateway.total_s >= 0, 'CPU of the gateway is measured');
      assert.equal(result.options.saga_log, 'sqlite');
      assert.equal(result.options.gateways, 1);
      assert.equal(result.options.saga_log_database, null);
      assert.deepEqual(result.system.requests_per_gateway, { gateway: 5 });
      assert.equal(result.system.cpu.postgres, null);
      assert.equal(result.floor.completed, 5);
      assert.ok(result.floor.sagas_per_s > 0);
      assert.ok(result.ratio_system_to_floor > 0);

      const svg = fs.readFileSync(path.join(dir, 'result.svg'), 'utf8');
      assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
      assert.match(svg, /<\/svg>\s*$/);
      assert.match(svg, /<path d="M/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it(
    '--memory: RSS and V8 heap of each process at idle, every N sagas and at the end, printed and written as CSV and JSON; no floor',
    { timeout: 40_000 },
    async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sagas-bench-test-'));
      try {
        const out = path.join(dir, 'result.json');
        const r = await run(
          ['--memory', '--memory-every', '3', '--count', '7', '--concurrency', '1', '--quiet', '--out', out],
          35_000,
        );
        assert.equal(r.code, 0, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
        assert.equal(r.stderr, '', '--quiet writes nothing on stderr');
        assert.match(r.stdout, /Memory \(MiB\)/);
        const result = JSON.parse(fs.readFileSync(out, 'utf8'));
        assert.equal(result.floor, null, '--memory implies --no-floor');
        const memory = JSON.parse(fs.readFileSync(path.join(dir, 'memory-result.json'), 'utf8'));
        const labels = memory.samples.map((s: { label: string }) => s.label);
        // Every 3 sagas, as the count passes a multiple of 3 (a fast pass may take two at once).
        assert.equal(labels[0], 'idle');
        assert.equal(labels.at(-1), 'end');
        assert.ok(labels.length >= 3, labels.join(', '));
        for (const l of labels.slice(1, -1)) assert.match(l, /^[36] sagas$/);
        for (const s of memory.samples) {
          assert.deepEqual(
            s.processes.map((p: { name: string }) => p.name),
            ['order', 'inventory', 'payment', 'gateway'],
          );
          for (const p of s.processes) {
            // RSS from /proc, the heap from the process itself (the memory probe, a test hook).
            assert.ok(p.rss > 20, `${s.label} ${p.name} rss ${p.rss}`);
            assert.ok(
              p.heap_used > 1 && p.heap_total >= p.heap_used,
              `${s.label} ${p.name} heap ${p.heap_used}/${p.heap_total}`,
            );
          }
        }
        const csv = fs.readFileSync(path.join(dir, 'memory-result.csv'), 'utf8').trim().split('\n');
        assert.match(csv[0] as string, /^label,sagas,at_s,process,pid,rss_mib,/);
        assert.equal(csv.length, 1 + 4 * labels.length);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  it(
    '--saga-log postgres --gateways 2: a fresh database shared by both gateways, orders in turn, CPU of each and of PostgreSQL; the database is dropped',
    { timeout: 60_000 },
    async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sagas-bench-test-'));
      try {
        const out = path.join(dir, 'result.json');
        // SAGA_LOG_URL names the server the bench creates its database on.
        const r = await run(
          [
            '--saga-log',
            'postgres',
            '--gateways',
            '2',
            '--count',
            '6',
            '--concurrency',
            '2',
            '--no-floor',
            '--quiet',
            '--out',
            out,
          ],
          55_000,
          {
            SAGA_LOG_URL: MACHINE_POSTGRES_URL,
          },
        );
        assert.equal(r.code, 0, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
        assert.equal(r.stderr, '', '--quiet writes nothing on stderr');
        assert.match(r.stdout, /saga log PostgreSQL, 2 gateways/);
        assert.match(r.stdout, /gateways \(sum\)/);

        const result = JSON.parse(fs.readFileSync(out, 'utf8'));
        assert.equal(result.options.saga_log, 'postgres');
        assert.equal(result.options.gateways, 2);
        assert.equal(result.options.saga_log_sync, null);
        const name = result.options.saga_log_database.name as string;
        assert.match(name, /^sagas_bench_\d{8}_\d{6}_[0-9a-f]{4}$/);
        assert.equal(result.completed, 6);
        assert.deepEqual(result.system.outcomes, { CONFIRMED: 6 });
        assert.equal(result.system.errors.total, 0);
        assert.deepEqual(result.system.requests_per_gateway, { 'gateway-1': 3, 'gateway-2': 3 });

        const cpu = result.system.cpu;
        const g1 = cpu.processes['gateway-1'].total_s as number;
        const g2 = cpu.processes['gateway-2'].total_s as number;
        assert.ok(
          Math.abs(cpu.processes.gateways.total_s - (g1 + g2)) <= 0.002,
          `gateways ${cpu.processes.gateways.total_s} = ${g1} + ${g2}`,
        );
        assert.equal(cpu.processes.gateway, undefined);
        // The gateways really used the database: the server has backends for it.
        assert.equal(cpu.postgres.measured, true, JSON.stringify(cpu.postgres));
        assert.ok(cpu.postgres.backends > 0);
        assert.ok(cpu.processes.postgres.total_s >= 0);
        const parts = ['order', 'inventory', 'payment', 'gateway-1', 'gateway-2', 'postgres', 'bench'].reduce(
          (t, n) => t + (cpu.processes[n].total_s as number),
          0,
        );
        assert.ok(
          Math.abs(cpu.total.total_s - parts) <= 0.01,
          `the total counts the gateways once: ${cpu.total.total_s} vs ${parts}`,
        );
        assert.equal(result.floor, null);

        const admin = new pg.Client({ connectionString: MACHINE_POSTGRES_URL });
        await admin.connect();
        try {
          const left = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
          assert.equal(left.rowCount, 0, `database ${name} was dropped`);
        } finally {
          await admin.end();
        }
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  it('refuses bad options with exit 2', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--count', '5', '--duration', '3'], /--duration or --count/],
      [['--gateways', '2'], /--gateways 2 needs --saga-log postgres/],
      [['--saga-log', 'mysql'], /--saga-log must be sqlite or postgres, got "mysql"/],
      [['--saga-log', 'postgres', '--gateways', '0'], /--gateways must be a whole number from 1 to 16, got "0"/],
      [['--saga-log', 'postgres', '--gateways', '17'], /--gateways must be a whole number from 1 to 16, got "17"/],
      [['--bogus'], /^bench: Unknown option '--bogus'/],
      [['bench'], /^bench: Unexpected argument 'bench'/],
    ];
    const runs = await Promise.all(cases.map(([args]) => run(args, 15_000)));
    runs.forEach((r, i) => {
      const [args, re] = cases[i] as [string[], RegExp];
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, re);
      assert.match(r.stderr, /Usage: npm run bench -- \[options\]/);
    });
  });

  it('--help prints the usage on stdout and exits 0', async () => {
    const r = await run(['--help'], 15_000);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^Usage: npm run bench -- \[options\]/);
    for (const option of [
      '--url',
      '--saga-log',
      '--gateways',
      '--sync',
      '--log-level',
      '--concurrency',
      '--rate',
      '--duration',
      '--count',
      '--warmup',
      '--mix',
      '--no-floor',
      '--out',
      '--quiet',
      '--profile',
    ]) {
      assert.ok(r.stdout.includes(option), option);
    }
    assert.equal(r.stderr, '');
  });
});
