import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { freshSystem, eventually, freePort } from '../helpers/system.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

let sys: Awaited<ReturnType<typeof freshSystem>>;
let prometheus: ChildProcess | undefined;
let promUrl = '';
let tmp = '';

before(async () => {
  sys = await freshSystem();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'prom-'));
  const target = (a: string | undefined) => {
    assert.ok(a, 'every participant reports its metrics address');
    return a.replace(/^https?:\/\//, '');
  };
  const jobs = {
    gateway: target(sys.url),
    order: target(sys.procs.order.metricsAddress),
    inventory: target(sys.procs.inventory.metricsAddress),
    payment: target(sys.procs.payment.metricsAddress),
  };
  const config = {
    global: { scrape_interval: '1s', evaluation_interval: '1s' },
    scrape_configs: Object.entries(jobs).map(([job, t]) => ({ job_name: job, static_configs: [{ targets: [t] }] })),
  };
  fs.writeFileSync(path.join(tmp, 'prometheus.yml'), JSON.stringify(config)); // JSON is YAML
  const port = await freePort();
  promUrl = `http://127.0.0.1:${port}`;
  prometheus = spawn(
    'prometheus',
    [
      `--config.file=${path.join(tmp, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(tmp, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { stdio: 'ignore' },
  );
  prometheus.once('error', (err) =>
    assert.fail(`prometheus could not start (.ci/run installs Debian's prometheus): ${err.message}`),
  );
});

after(async () => {
  if (prometheus && prometheus.exitCode === null) {
    const gone = new Promise((r) => prometheus!.once('exit', r));
    prometheus.kill('SIGTERM');
    await gone;
  }
  await sys?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

async function query(expr: string): Promise<{ status: string; data?: { result: unknown[] }; error?: string }> {
  const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
  return (await res.json()) as { status: string; data?: { result: unknown[] }; error?: string };
}

test("Debian's Prometheus scrapes the saga, HTTP and gRPC metrics of all four processes", async () => {
  const r = await sys.api(
    'POST',
    '/orders',
    { customer_id: 'prom', items: [{ product_id: 'prod_1', quantity: 1, price: 5 }] },
    { Prefer: 'wait=10' },
  );
  assert.equal(r.body.status, 'CONFIRMED');
  const finished = await eventually(
    'saga_finished_total in Prometheus',
    async () => {
      const q = await query('saga_finished_total{outcome="completed"}');
      return q.status === 'success' && (q.data?.result.length ?? 0) > 0 ? q.data!.result : undefined;
    },
    30_000,
  );
  assert.equal(finished.length, 1);
  for (const expr of [
    'up{job="order"} == 1',
    'rpc_server_duration_count{job="payment"}',
    'http_server_request_duration_count{http_route="/orders"}',
    'saga_inflight',
    'idempotency_fallback_active',
  ]) {
    const q = await eventually(
      expr,
      async () => {
        const res = await query(expr);
        return res.status === 'success' && (res.data?.result.length ?? 0) > 0 ? res : undefined;
      },
      10_000,
    );
    assert.equal(q.status, 'success');
  }
});

test('every PromQL expression of the dashboards and alert rules is accepted by Prometheus', async () => {
  const exprs: string[] = [];
  const dashDir = path.join(ROOT, 'observability/grafana/dashboards');
  for (const f of fs.readdirSync(dashDir).filter((n) => n.endsWith('.json'))) {
    const dash = JSON.parse(fs.readFileSync(path.join(dashDir, f), 'utf8')) as {
      panels?: Array<{ targets?: Array<{ expr?: string }> }>;
    };
    for (const p of dash.panels ?? [])
      for (const t of p.targets ?? []) if (t.expr) exprs.push(t.expr.replaceAll('$__rate_interval', '1m'));
  }
  const alerts = parseYaml(fs.readFileSync(path.join(ROOT, 'observability/prometheus/alerts.yml'), 'utf8')) as {
    groups: Array<{ rules: Array<{ expr: string }> }>;
  };
  for (const g of alerts.groups) for (const rule of g.rules) exprs.push(String(rule.expr));
  assert.ok(exprs.length >= 15, `found ${exprs.length} expressions`);
  for (const expr of exprs) {
    const q = await query(expr);
    assert.equal(q.status, 'success', `${expr}: ${q.error ?? ''}`);
  }
});
