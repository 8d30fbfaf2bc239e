// The rooms' doors, read from the code: outside `src/saga`, the engine is reached through
// `src/saga/index.ts` only (the composition roots may also open a store through
// `src/saga/stores/open.ts`). A new import of an engine file from elsewhere fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

const SRC = path.resolve(import.meta.dirname, '../../src');
const SAGA = path.join(SRC, 'saga');
const DOOR = path.join(SAGA, 'index.ts');
const STORE_FACTORY = path.join(SAGA, 'stores', 'open.ts');
/** Where a process is put together: they choose the saga log's store. */
const COMPOSITION_ROOTS = [path.join(SRC, 'gateway', 'main.ts'), path.join(SRC, 'cli', 'commands', 'inspect.ts')];

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return p === path.join(SRC, 'gen') ? [] : sourceFiles(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

/** The relative module specifiers of a file's static and dynamic imports and re-exports, resolved to .ts paths. */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|\bimport\s+)'(\.{1,2}\/[^']+)'/g)].map(
    (m) => m[1] as string,
  );
  return specs.map((s) => path.resolve(path.dirname(file), s).replace(/\.js$/, '.ts'));
}

test('outside src/saga, nothing imports an engine file but its door (and the composition roots the store factory)', () => {
  const files = sourceFiles(SRC).filter((f) => !f.startsWith(SAGA + path.sep));
  assert.ok(files.length > 50, `read ${files.length} files`);
  const breaches: string[] = [];
  let throughTheDoor = 0;
  for (const file of files) {
    for (const target of importsOf(file)) {
      if (!target.startsWith(SAGA + path.sep)) continue;
      if (target === DOOR) {
        throughTheDoor++;
        continue;
      }
      if (target === STORE_FACTORY && COMPOSITION_ROOTS.includes(file)) continue;
      breaches.push(`${path.relative(SRC, file)} → ${path.relative(SRC, target)}`);
    }
  }
  assert.deepEqual(breaches, [], 'import from src/saga/index.ts instead');
  assert.ok(throughTheDoor >= 15, `${throughTheDoor} imports go through the door: the scan sees them`);
});

test('the engine imports no gateway, service, CLI or HTTP code (nothing runs upward)', () => {
  const upward = ['gateway', 'services', 'cli', 'chaos', 'reconcile'].map((d) => path.join(SRC, d) + path.sep);
  const breaches = sourceFiles(SAGA).flatMap((file) =>
    importsOf(file)
      .filter((t) => upward.some((u) => t.startsWith(u)))
      .map((t) => `${path.relative(SRC, file)} → ${path.relative(SRC, t)}`),
  );
  assert.deepEqual(breaches, []);
});

test('the fault switchboard is one room: neither the engine nor the platform imports src/faults', () => {
  const faults = path.join(SRC, 'faults') + path.sep;
  const breaches = [...sourceFiles(SAGA), ...sourceFiles(path.join(SRC, 'platform'))].flatMap((file) =>
    importsOf(file)
      .filter((t) => t.startsWith(faults))
      .map((t) => `${path.relative(SRC, file)} → ${path.relative(SRC, t)}`),
  );
  assert.deepEqual(
    breaches,
    [],
    'the composition roots plug the switchboard in (src/gateway/main.ts, src/services/shared/run.ts)',
  );
});

test('reconcile reads the books from below the gateway: it imports no gateway, CLI or chaos code', () => {
  const above = ['gateway', 'cli', 'chaos'].map((d) => path.join(SRC, d) + path.sep);
  const breaches = sourceFiles(path.join(SRC, 'reconcile')).flatMap((file) =>
    importsOf(file)
      .filter((t) => above.some((u) => t.startsWith(u)))
      .map((t) => `${path.relative(SRC, file)} → ${path.relative(SRC, t)}`),
  );
  assert.deepEqual(breaches, [], 'what reconcile shares with the gateway belongs in src/contracts');
});

/**
 * The rooms of src/ in layers, bottom first (docs/architecture.md's picture): a file imports its
 * own room and the rooms of its layer and the layers below, never a room of a layer above.
 */
const LAYERS: ReadonlyArray<readonly string[]> = [
  ['contracts', 'gen', 'platform'],
  ['saga', 'services', 'supervisor'],
  ['gateway', 'reconcile', 'faults'],
  ['chaos', 'cli'],
];
/** Composition roots that plug a room of a higher layer in: the participants' main plugs the fault switchboard in. */
const UPWARD_ROOTS = [path.join(SRC, 'services', 'shared', 'run.ts')];

test('no import runs upward: each room imports its own layer and the layers below (composition roots aside)', () => {
  const layerOf = new Map(LAYERS.flatMap((rooms, i) => rooms.map((r) => [r, i] as const)));
  const rooms = fs
    .readdirSync(SRC, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name);
  assert.deepEqual(
    rooms.filter((r) => !layerOf.has(r)),
    [],
    'a new room of src/ takes its place in LAYERS',
  );
  const roomOf = (file: string) => path.relative(SRC, file).split(path.sep)[0] as string;
  const breaches: string[] = [];
  for (const file of sourceFiles(SRC)) {
    if (UPWARD_ROOTS.includes(file)) continue;
    const from = layerOf.get(roomOf(file)) ?? -1;
    for (const target of importsOf(file)) {
      if ((layerOf.get(roomOf(target)) ?? -1) > from)
        breaches.push(`${path.relative(SRC, file)} → ${path.relative(SRC, target)}`);
    }
  }
  assert.deepEqual(breaches, []);
});

/** Where a process is put together (left out of the picture: they may plug any room in). */
function isCompositionRoot(file: string): boolean {
  const r = path.relative(SRC, file).split(path.sep).join('/');
  return /(^|\/)main\.ts$/.test(r) || r.startsWith('cli/commands/') || r === 'services/shared/run.ts';
}

/** The bottom layer: every room may use it, so the picture leaves arrows into it out. */
const FOUNDATIONS = new Set(['contracts', 'gen', 'platform']);

test("docs/architecture.md's picture of the rooms is the code's: every arrow drawn exists, and every one that exists is drawn", () => {
  const roomOf = (file: string) => path.relative(SRC, file).split(path.sep)[0] as string;
  const inCode = new Set<string>();
  for (const file of sourceFiles(SRC)) {
    if (isCompositionRoot(file)) continue;
    for (const target of importsOf(file)) {
      const [from, to] = [roomOf(file), roomOf(target)];
      if (from !== to && !FOUNDATIONS.has(to)) inCode.add(`${from} --> ${to}`);
    }
  }
  const doc = fs.readFileSync(path.resolve(SRC, '../docs/architecture.md'), 'utf8');
  const block = /<!-- rooms:begin -->\s*```mermaid\n([\s\S]*?)```\s*<!-- rooms:end -->/.exec(doc)?.[1];
  assert.ok(block, 'docs/architecture.md holds the picture between <!-- rooms:begin --> and <!-- rooms:end -->');
  const drawn = new Set<string>();
  for (const line of block.split('\n')) {
    const m = /^\s*([\w &]+?)\s*-->\s*([\w &]+?)\s*$/.exec(line);
    if (!m) continue;
    const side = (x: string) => x.split('&').map((r) => r.trim());
    for (const from of side(m[1] as string)) for (const to of side(m[2] as string)) drawn.add(`${from} --> ${to}`);
  }
  assert.deepEqual([...drawn].sort(), [...inCode].sort());
});
