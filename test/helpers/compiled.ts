/**
 * The compiled product (dist/) for tests that start many processes: a crash test starts a process
 * for every kill, and each start through the tsx loader costs about half as much CPU again as the
 * same JavaScript compiled (a gateway's start: 3.1 against 2.1 s of CPU, medians of 6 alternated
 * starts on a loaded 2-core machine). `npm test` builds dist/ before any test.
 *
 * What runs is a private copy of dist/, taken under a shared lock of /tmp/build.lock (a build holds
 * it exclusively: the copy waits for a build under way), so that a rebuild during the run (others
 * share the tree) cannot change or remove the files under its processes; it sits under
 * node_modules/.cache/ so that its imports resolve to the repository's node_modules, and is removed
 * when this process exits. The copy is used only when it is the current source: dist/ is built
 * with inlined sources (tsconfig.build.json), so every src/ module must have a map in the copy
 * holding exactly its text, and every other src/ file (the console's) the same bytes. Otherwise
 * (dist/ older than an edit, missing, no `flock`) the processes run the TypeScript through tsx as
 * before, and `compiledProduct` says why: a stale dist/ costs time, never the test's meaning.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT, compiledEntriesIn, type ServiceName } from '../../src/supervisor/supervisor.js';

export type Entries = Record<ServiceName, { entry: string }>;

export type CompiledProduct = { entries: Entries; dir: string } | { entries?: undefined; why: string };

const SRC = path.join(REPO_ROOT, 'src');
const DIST = path.join(REPO_ROOT, 'dist');
const CACHE = path.join(REPO_ROOT, 'node_modules', '.cache');
const PREFIX = 'sagas-test-dist-';

let once: CompiledProduct | undefined;

/** The entries of a current compiled copy, or why there is none; one copy per test process. */
export function compiledProduct(): CompiledProduct {
  once ??= copyAndCheck();
  return once;
}

let said = false;

/**
 * The entries of a current compiled copy for `freshSystem`/`startSystem`, or undefined (the
 * processes then run through tsx) after saying once on stderr why.
 */
export function compiledEntries(): Entries | undefined {
  const product = compiledProduct();
  if (!product.entries && !said) {
    said = true;
    process.stderr.write(`the system's processes run through tsx (slower): ${product.why}\n`);
  }
  return product.entries;
}

function copyAndCheck(): CompiledProduct {
  removeLeftovers();
  const dir = path.join(CACHE, `${PREFIX}${process.pid}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(CACHE, { recursive: true });
  try {
    execFileSync('flock', ['-s', '/tmp/build.lock', 'cp', '-r', DIST, dir], { stdio: 'pipe' });
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    return { why: `no copy of dist/ (${(err as Error).message.split('\n')[0]})` };
  }
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  const stale = differenceFromSource(dir);
  if (stale) return { why: `dist/ is not the current source (${stale}): npm run build` };
  return { dir, entries: compiledEntriesIn(dir) };
}

/** The first difference between `copy` and src/ that matters to what runs, or undefined. */
function differenceFromSource(copy: string): string | undefined {
  const modules = new Set<string>();
  for (const rel of fs.readdirSync(SRC, { recursive: true, encoding: 'utf8' })) {
    const file = path.join(SRC, rel);
    if (!fs.statSync(file).isFile()) continue;
    if (rel.endsWith('.ts')) {
      const js = rel.replace(/\.ts$/, '.js');
      modules.add(js);
      const map = path.join(copy, `${js}.map`);
      if (!fs.existsSync(map)) return `no ${js}`;
      const { sourcesContent } = JSON.parse(fs.readFileSync(map, 'utf8')) as { sourcesContent?: string[] };
      if (sourcesContent?.[0] !== fs.readFileSync(file, 'utf8')) return `src/${rel} changed since`;
    } else {
      const built = path.join(copy, rel);
      if (!fs.existsSync(built) || !fs.readFileSync(built).equals(fs.readFileSync(file))) return `src/${rel} differs`;
    }
  }
  // A module of a source since deleted would still be there to import.
  for (const rel of fs.readdirSync(copy, { recursive: true, encoding: 'utf8' }))
    if (rel.endsWith('.js') && !modules.has(rel) && !fs.existsSync(path.join(SRC, rel)))
      return `dist/${rel} has no source`;
  return undefined;
}

/** Copies whose test process is gone (killed before its exit handler ran). */
function removeLeftovers(): void {
  let names: string[];
  try {
    names = fs.readdirSync(CACHE);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(PREFIX)) continue;
    const pid = Number(name.slice(PREFIX.length));
    if (Number.isInteger(pid) && pid !== process.pid && alive(pid)) continue;
    fs.rmSync(path.join(CACHE, name), { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
