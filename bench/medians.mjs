#!/usr/bin/env node
// Medians of repeated bench runs, one row per group of result files:
//   node bench/medians.mjs bench/results/20261128-issue14-*.json
// Files are grouped by their name without the trailing run number (`…-c64-2.json` → `…-c64`).
// Each figure is the median over the group's runs (the middle run of three), taken per figure.
import fs from 'node:fs';
import path from 'node:path';

const files = process.argv.slice(2).filter((f) => f.endsWith('.json'));
if (files.length === 0) {
  console.error('usage: node bench/medians.mjs <result.json>...');
  process.exit(2);
}
const median = (xs) => {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  return v.length === 0 ? null : v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};
const fmt = (v, d = 0) => (v === null ? '–' : v.toFixed(d));
const groups = new Map();
for (const file of files) {
  const key = path.basename(file, '.json').replace(/-\d+$/, '');
  if (!groups.has(key)) groups.set(key, []);
  groups.get(key).push(JSON.parse(fs.readFileSync(file, 'utf8')));
}
console.log(
  '| runs | command | sagas/s | p50 ms | p99 ms | CPU/saga | gateway ms/saga | floor sagas/s | system/floor | others |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|');
for (const [key, runs] of groups) {
  const perSaga = (r, name) => {
    const p = r.system.cpu?.processes?.[name];
    const done = r.summary.sagas_per_s * (r.system.cpu?.window_s ?? 0);
    return p && done > 0 ? (p.total_s * 1000) / done : null;
  };
  const m = (pick) => median(runs.map(pick));
  const cmd = '`' + runs[0].command.replace(/^sagas bench/, 'npm run bench --').replace(/ --out \S+/, '') + '`';
  console.log(
    `| ${key} ×${runs.length} | ${cmd} | ${fmt(m((r) => r.summary.sagas_per_s))} | ${fmt(
      m((r) => r.summary.p50_ms),
      1,
    )} | ${fmt(
      m((r) => r.summary.p99_ms),
      1,
    )} | ${fmt(
      m((r) => r.summary.cpu_ms_per_saga),
      2,
    )} ms | ${fmt(
      m((r) => perSaga(r, 'gateway')),
      2,
    )} ms | ${fmt(m((r) => r.summary.floor_sagas_per_s))} | ${fmt(
      m((r) => r.summary.ratio_system_to_floor),
      2,
    )} | ${fmt(m((r) => r.summary.other_processes_pct_of_core))} % |`,
  );
}
