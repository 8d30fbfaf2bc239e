#!/usr/bin/env node
// Prints the Results table rows of bench/README.md from result JSON files:
//   node bench/table.mjs bench/results/*.json
import fs from 'node:fs';
import path from 'node:path';

const files = process.argv.slice(2).filter((f) => f.endsWith('.json'));
if (files.length === 0) {
  console.error('usage: node bench/table.mjs <result.json>...');
  process.exit(2);
}
const f = (v, d = 0) => (v === null || v === undefined ? '–' : Number(v).toFixed(d));
console.log(
  '| date (UTC) | command | machine | settings | sagas/s | p50 ms | p95 ms | p99 ms | floor sagas/s (p50/p99 ms) | ratio | CPU/saga | others | file |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const file of files) {
  const r = JSON.parse(fs.readFileSync(file, 'utf8'));
  const s = r.summary;
  const o = r.options;
  const m = r.machine;
  const settings = [
    o.loop === 'open' ? `open ${o.rate}/s` : `closed c=${o.concurrency}`,
    o.duration_s !== null ? `${o.duration_s} s` : `${o.count} orders`,
    o.url
      ? 'url'
      : o.saga_log === 'postgres'
        ? `postgres ×${o.gateways ?? 1}`
        : `sqlite sync ${o.saga_log_sync}${o.gateways > 1 ? ` ×${o.gateways}` : ''}`,
    ...(o.replicas > 1
      ? [`participants PostgreSQL ×${o.replicas}`]
      : o.participants === 'postgres'
        ? ['participants PostgreSQL']
        : []),
    `mix ${o.mix}`,
  ].join(', ');
  const floor =
    s.floor_sagas_per_s !== null ? `${f(s.floor_sagas_per_s)} (${f(s.floor_p50_ms)}/${f(s.floor_p99_ms)})` : '–';
  const cmd = '`' + r.command.replace(/^sagas bench/, 'npm run bench --').replace(/ --out \S+/, '') + '`';
  console.log(
    `| ${r.started_at.slice(0, 16).replace('T', ' ')} | ${cmd} | ${m.cpu_model} ×${m.nproc}, ${m.total_memory_gib} GiB, Node ${m.node} | ${settings} | ${f(s.sagas_per_s)} | ${f(s.p50_ms)} | ${f(s.p95_ms)} | ${f(s.p99_ms)} | ${floor} | ${f(s.ratio_system_to_floor, 2)} | ${f(s.cpu_ms_per_saga, 1)} ms | ${f(s.other_processes_pct_of_core)} % | ${path.basename(file)} |`,
  );
}
