/**
 * `--compiled`: the system's processes run from dist/ as `npm start` runs them (plain JavaScript
 * with source maps, no tsx loader in each process), from a private copy, so that a rebuild of
 * dist/ during a long run (others share the tree) cannot change or remove the files under it.
 * The copy sits under node_modules/.cache/ so that its imports resolve to the repository's
 * node_modules. It is taken under a shared lock of /tmp/build.lock, as the tests that use dist/.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT, compiledEntriesIn, type ServiceName } from '../../src/supervisor/supervisor.js';

export interface CompiledCopy {
  dir: string;
  entries: Record<ServiceName, { entry: string }>;
  remove(): void;
}

export function compiledEntries(runId: string): CompiledCopy {
  const dist = path.join(REPO_ROOT, 'dist');
  const dir = path.join(REPO_ROOT, 'node_modules', '.cache', `sagas-bench-${runId}`);
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  // Waits for a build in progress (it holds the lock exclusively), then copies what it made.
  execFileSync('flock', ['-s', '/tmp/build.lock', 'cp', '-r', dist, dir], { stdio: 'inherit' });
  if (!fs.existsSync(path.join(dir, 'gateway', 'main.js'))) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error('--compiled: dist/ has no gateway/main.js: run `npm run build` first');
  }
  return {
    dir,
    entries: compiledEntriesIn(dir),
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
