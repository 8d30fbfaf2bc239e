// A node:test reporter (`--test-reporter=./test/reporters/file-times.mjs`) that writes, once the
// run is over, how long each test file took, slowest first. `npm test` sends it to
// test-output/file-times.txt beside the spec reporter on stdout; .ci/run prints that file.
//
// A file's time is the wall time of its own process (the runner reports it as a test named
// after the file, at nesting 0, when the process ends): loading, hooks and tests. Were that event
// missing (no process per file), the file's top-level tests' durations are summed instead
// (marked "~").
import path from 'node:path';

/** @param {AsyncIterable<{ type: string, data: any }>} source */
export default async function* fileTimes(source) {
  /** @type {Map<string, { wallMs?: number, testsMs: number, tests?: number, failed: number, loadFailed: boolean }>} */
  const files = new Map();
  const of = (file) => {
    const key = path.relative(process.cwd(), file) || file;
    let f = files.get(key);
    if (!f) {
      f = { testsMs: 0, failed: 0, loadFailed: false };
      files.set(key, f);
    }
    return [key, f];
  };

  for await (const { type, data } of source) {
    if (!data?.file) continue;
    const [key, f] = of(data.file);
    const isFile = data.nesting === 0 && (data.name === key || data.name === data.file);
    if (type === 'test:complete' && isFile) {
      f.wallMs = data.details?.duration_ms;
    } else if (type === 'test:fail' && isFile) {
      f.loadFailed = true;
    } else if ((type === 'test:pass' || type === 'test:fail') && data.nesting === 0 && !isFile) {
      f.testsMs += data.details?.duration_ms ?? 0;
    } else if (type === 'test:summary') {
      f.tests = data.counts?.tests;
      f.failed = data.counts?.failed ?? 0;
    }
  }

  // A test declared in a helper (a shared suite) names the helper as its file: with each test
  // file's own process time known, only the test files are listed.
  const timed = [...files].filter(([, f]) => f.wallMs !== undefined || f.loadFailed);
  const rows = (timed.length > 0 ? timed : [...files]).map(([file, f]) => ({
    file,
    ms: f.wallMs ?? f.testsMs,
    estimated: f.wallMs === undefined,
    f,
  }));
  rows.sort((a, b) => b.ms - a.ms || a.file.localeCompare(b.file));
  const totalMs = rows.reduce((s, r) => s + r.ms, 0);
  const secs = (ms) => (ms / 1000).toFixed(1);
  const width = Math.max(0, ...rows.map((r) => secs(r.ms).length));
  let out = `Time per test file, slowest first (${rows.length} files, ${secs(totalMs)} s in all; files run side by side):\n`;
  for (const r of rows) {
    const what = [];
    if (r.f.tests !== undefined) what.push(`${r.f.tests} test${r.f.tests === 1 ? '' : 's'}`);
    if (r.f.failed > 0) what.push(`${r.f.failed} failed`);
    if (r.f.loadFailed && r.f.failed === 0) what.push('the file failed');
    out += `${(r.estimated ? '~' : ' ') + secs(r.ms).padStart(width)} s  ${r.file}${what.length ? `  (${what.join(', ')})` : ''}\n`;
  }
  yield out;
}
