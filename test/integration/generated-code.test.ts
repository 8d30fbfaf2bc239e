import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function files(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => fs.statSync(path.join(dir, f)).isFile())
    .sort();
}

test('the generated gRPC code matches proto/ (run `npm run generate` after editing a .proto)', () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'gen-'));
  execFileSync(path.join(root, 'node_modules/.bin/buf'), ['generate', '-o', out], { cwd: root, stdio: 'pipe' });
  const fresh = path.join(out, 'src/gen');
  const committed = path.join(root, 'src/gen');
  assert.deepEqual(files(committed), files(fresh), 'the set of generated files differs');
  try {
    for (const f of files(fresh)) {
      assert.equal(
        fs.readFileSync(path.join(committed, f), 'utf8'),
        fs.readFileSync(path.join(fresh, f), 'utf8'),
        `src/gen/${f} is stale`,
      );
    }
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test('the protos pass buf lint', () => {
  execFileSync(path.join(root, 'node_modules/.bin/buf'), ['lint'], { cwd: root, stdio: 'pipe' });
});
