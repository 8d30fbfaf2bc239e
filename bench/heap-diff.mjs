// Compares two V8 heap snapshots (e.g. from `npm run bench -- --memory --heap-snapshots <dir>`):
// the live objects of each, grouped by kind and constructor name, and what grew between them,
// biggest growth first. Usage: node bench/heap-diff.mjs <before.heapsnapshot> <after.heapsnapshot> [rows]
import fs from 'node:fs';

function summarize(file) {
  const snap = JSON.parse(fs.readFileSync(file, 'utf8'));
  const meta = snap.snapshot.meta;
  const fields = meta.node_fields;
  const types = meta.node_types[0];
  const width = fields.length;
  const iType = fields.indexOf('type');
  const iName = fields.indexOf('name');
  const iSize = fields.indexOf('self_size');
  const nodes = snap.nodes;
  const strings = snap.strings;
  const groups = new Map();
  let total = 0;
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + iType]];
    let name =
      type === 'string' || type === 'concatenated string' || type === 'sliced string'
        ? '(string)'
        : strings[nodes[i + iName]];
    if (type === 'code') name = '(code)';
    if (type === 'number') name = '(heap number)';
    if (name.length > 80) name = `${name.slice(0, 77)}...`;
    const key = `${type}\t${name}`;
    const g = groups.get(key) ?? { count: 0, size: 0 };
    g.count++;
    g.size += nodes[i + iSize];
    total += nodes[i + iSize];
    groups.set(key, g);
  }
  return { groups, total, nodes: nodes.length / width };
}

const [a, b, rowsArg] = process.argv.slice(2);
if (!a || !b) {
  process.stderr.write('usage: node bench/heap-diff.mjs <before.heapsnapshot> <after.heapsnapshot> [rows]\n');
  process.exit(2);
}
const before = summarize(a);
const after = summarize(b);
const mb = (n) => (n / 1024 / 1024).toFixed(2);
process.stdout.write(
  `before: ${before.nodes} objects, ${mb(before.total)} MiB; after: ${after.nodes} objects, ${mb(after.total)} MiB\n`,
);
const rows = [];
for (const [key, g] of after.groups) {
  const o = before.groups.get(key) ?? { count: 0, size: 0 };
  rows.push({ key, dCount: g.count - o.count, dSize: g.size - o.size, count: g.count, size: g.size });
}
for (const [key, o] of before.groups)
  if (!after.groups.has(key)) rows.push({ key, dCount: -o.count, dSize: -o.size, count: 0, size: 0 });
rows.sort((x, y) => y.dSize - x.dSize);
process.stdout.write('Δ MiB\tΔ count\tMiB after\tcount after\tkind\tname\n');
for (const r of rows.slice(0, Number(rowsArg ?? 40)))
  process.stdout.write(`${mb(r.dSize)}\t${r.dCount}\t${mb(r.size)}\t${r.count}\t${r.key}\n`);
