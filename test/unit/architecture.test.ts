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
