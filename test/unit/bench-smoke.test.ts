/**
 * `sagas bench` end to end: a real subprocess starts its own system, places a handful of orders
 * through HTTP, measures the floor over gRPC, writes the JSON and the SVG, and stops everything.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = path.join(ROOT, 'bin/sagas.js');

function run(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
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

describe('sagas bench', () => {
  it('runs 5 orders and the floor, and writes the JSON and the SVG', { timeout: 30_000 }, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sagas-bench-test-'));
    try {
      const out = path.join(dir, 'result.json');
      const r = await run(['bench', '--count', '5', '--concurrency', '2', '--quiet', '--out', out], 25_000);
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

  it('refuses bad options with exit 2', async () => {
    const r = await run(['bench', '--count', '5', '--duration', '3'], 10_000);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--duration or --count/);
  });
});
