#!/usr/bin/env node
// Summarises .cpuprofile files (from `sagas bench --profile <dir>`): where the CPU went, by
// package / source area and by function (self time).
//
//   node bench/profile-summary.mjs <dir or file>... [--top 25]
import fs from 'node:fs';
import path from 'node:path';

const args = process.argv.slice(2);
const topIdx = args.indexOf('--top');
const top = topIdx >= 0 ? Number(args.splice(topIdx, 2)[1]) : 25;
const files = args.flatMap((a) =>
  fs.statSync(a).isDirectory()
    ? fs
        .readdirSync(a)
        .filter((f) => f.endsWith('.cpuprofile'))
        .map((f) => path.join(a, f))
    : [a],
);
if (files.length === 0) {
  console.error('usage: node bench/profile-summary.mjs <dir or .cpuprofile>... [--top N]');
  process.exit(2);
}

function area(url) {
  if (!url) return '(native / V8)';
  const u = url.replace(/^file:\/\//, '');
  const nm = u.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = u.slice(nm + 'node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  if (u.startsWith('node:')) return 'node:' + u.slice(5).split('/')[0];
  const src = u.indexOf('/src/');
  if (src >= 0)
    return u
      .slice(src + 1)
      .split('/')
      .slice(0, 3)
      .join('/')
      .replace(/\.ts$/, '');
  return u;
}

for (const file of files) {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const deltas = prof.timeDeltas;
  const self = new Map();
  for (let i = 0; i < prof.samples.length; i++) {
    const id = prof.samples[i];
    self.set(id, (self.get(id) ?? 0) + (deltas[i] ?? 0));
  }
  let total = 0;
  const byFn = new Map();
  const byArea = new Map();
  for (const [id, us] of self) {
    const n = byId.get(id);
    const cf = n.callFrame;
    if (cf.functionName === '(idle)' || cf.functionName === '(program)') continue;
    total += us;
    const key = `${cf.functionName || '(anonymous)'}  ${cf.url ? `${cf.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/src\//, 'src/')}:${cf.lineNumber + 1}` : ''}`;
    byFn.set(key, (byFn.get(key) ?? 0) + us);
    const a = cf.functionName === '(garbage collector)' ? '(garbage collector)' : area(cf.url);
    byArea.set(a, (byArea.get(a) ?? 0) + us);
  }
  const pct = (v) => `${((v / total) * 100).toFixed(1).padStart(5)} %`;
  console.log(`\n== ${path.basename(file)}: ${(total / 1e6).toFixed(2)} s of CPU (idle excluded)`);
  console.log('-- by area');
  for (const [k, v] of [...byArea].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`  ${pct(v)}  ${k}`);
  console.log(`-- top ${top} functions (self time)`);
  for (const [k, v] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${pct(v)}  ${k}`);
}
