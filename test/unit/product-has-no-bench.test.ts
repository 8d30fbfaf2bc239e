/**
 * The benchmark is a tool of the repository, not part of the product: the image and
 * `npm ci --omit=dev` carry only bin/ and src/, so nothing under src/ may need bench/.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SRC = path.join(ROOT, 'src');
const BENCH = path.join(ROOT, 'bench');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return /\.(ts|mts|js|mjs)$/.test(e.name) ? [p] : [];
  });
}

// Static and dynamic imports, and re-exports: `from '…'`, `import '…'`, `import('…')`.
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(?\s*)['"]([^'"]+)['"]/g;

describe('the product has no bench', () => {
  it('no file under src/ imports from bench/', () => {
    const offenders: string[] = [];
    for (const file of sourceFiles(SRC)) {
      for (const [, spec] of fs.readFileSync(file, 'utf8').matchAll(SPECIFIER)) {
        if (!spec?.startsWith('.')) continue;
        const target = path.resolve(path.dirname(file), spec);
        if (target === BENCH || target.startsWith(BENCH + path.sep))
          offenders.push(`${path.relative(ROOT, file)} → ${spec}`);
      }
    }
    assert.deepEqual(offenders, []);
  });

  it('no bench*.ts under src/', () => {
    const found = sourceFiles(SRC)
      .filter((f) => path.basename(f).startsWith('bench'))
      .map((f) => path.relative(ROOT, f));
    assert.deepEqual(found, []);
  });

  it('the bench has its own entry, outside src/', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    assert.equal(pkg.scripts.bench, 'node --import tsx bench/src/main.ts');
    assert.ok(fs.existsSync(path.join(BENCH, 'src', 'main.ts')));
  });
});
