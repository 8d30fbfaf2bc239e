// No orphans (issue 11 part 11): when `sagas start` dies, even by SIGKILL, its children exit
// within 2 s; `npm start` stopped with SIGTERM stops every process gracefully; and a service whose
// log pipe is gone still stops gracefully on SIGTERM.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { spawnService, type ManagedProcess } from '../../src/supervisor/supervisor.js';
import { issuedUnder } from '../helpers/tls.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const BIN = path.join(root, 'bin/sagas.js');

const tmp = mkdtempSync(path.join(os.tmpdir(), 'sagas-orphans-'));
const pidsToReap = new Set<number>();
after(() => {
  // A failed assertion must not leave processes behind for the next test file.
  for (const pid of pidsToReap) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  rmSync(tmp, { recursive: true, force: true });
});

/**
 * Whether `pid` has exited. A child of a dead supervisor is re-parented to whatever reaps
 * orphans here, which may be slow to reap: a zombie (state Z) has exited all the same.
 */
function gone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The state follows the command name in parentheses, which may itself hold spaces.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    try {
      process.kill(pid, 0);
      return false;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ESRCH';
    }
  }
}

/** Polls `cond` until it holds; fails naming `what` once `deadlineMs` from now has passed. */
async function until(what: string, cond: () => boolean, deadlineMs: number): Promise<number> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > deadlineMs) assert.fail(`${what} within ${deadlineMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return Date.now() - start;
}

/** Lines of a child's stdout and stderr, and a wait for the first line matching a pattern. */
function watchLines(child: ChildProcess): { lines: string[]; waitFor(re: RegExp, timeoutMs: number): Promise<string> } {
  const lines: string[] = [];
  const waiters: Array<{ re: RegExp; resolve: (l: string) => void }> = [];
  for (const s of [child.stdout, child.stderr]) {
    if (!s) continue;
    createInterface({ input: s }).on('line', (l) => {
      lines.push(l);
      for (const w of [...waiters])
        if (w.re.test(l)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(l);
        }
    });
  }
  return {
    lines,
    waitFor(re, timeoutMs) {
      const seen = lines.find((l) => re.test(l));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no line matching ${re} within ${timeoutMs} ms:\n${lines.join('\n')}`)),
          timeoutMs,
        );
        waiters.push({ re, resolve: (l) => (clearTimeout(timer), resolve(l)) });
        void once(child, 'exit').then(
          () => (clearTimeout(timer), reject(new Error(`exited before a line matched ${re}:\n${lines.join('\n')}`))),
        );
      });
    },
  };
}

/** `sagas start` (or `npm start`) on ephemeral ports and its own data folder, once all four processes are up. */
async function startSystem(name: string, command: string, args: string[]) {
  const supervisor = spawn(command, args, {
    cwd: root,
    env: {
      ...process.env,
      NO_COLOR: '1',
      DATA_DIR: path.join(tmp, name),
      // Ephemeral ports, so this runs beside anything else (the real ports may be taken).
      HTTP_ADDR: '127.0.0.1:0',
      ORDER_SERVICE_ADDR: '127.0.0.1:0',
      INVENTORY_SERVICE_ADDR: '127.0.0.1:0',
      PAYMENT_SERVICE_ADDR: '127.0.0.1:0',
      METRICS_ADDR: '127.0.0.1:0',
      REDIS_KEY_PREFIX: `test-${path.basename(tmp)}-${name}`,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  pidsToReap.add(supervisor.pid as number);
  const out = watchLines(supervisor);
  await out.waitFor(/Ctrl-C stops everything/, 60_000);
  // `sagas start` lists each process with its pid once all are up.
  const pids = out.lines.map((l) => Number(/\(pid (\d+)\)/.exec(l)?.[1])).filter((n) => n > 0);
  assert.equal(pids.length, 4, `four processes listed:\n${out.lines.join('\n')}`);
  for (const pid of pids) pidsToReap.add(pid);
  assert.ok(
    pids.every((pid) => !gone(pid)),
    'all running before the stop',
  );
  return { supervisor, out, pids };
}

describe('no orphans', () => {
  it("SIGTERM to `npm start` (the README's command): every process stops gracefully, exit code 0", async () => {
    // npm runs the script through `sh -c`; the script execs node, so npm's SIGTERM reaches the supervisor.
    const { supervisor, out, pids } = await startSystem('npm-start', 'npm', ['start', '--silent']);
    supervisor.kill('SIGTERM');
    const line = await out.waitFor(/stopped: /, 20_000);
    for (const name of ['order', 'inventory', 'payment', 'gateway'])
      assert.match(line, new RegExp(`${name} exited with code 0`), line);
    await until('every process of `npm start` has exited', () => pids.every(gone), 5_000);
  });

  it('kill -9 of `sagas start`: every child exits within 2 s', async () => {
    const { supervisor, pids } = await startSystem('system', process.execPath, [BIN, 'start']);

    supervisor.kill('SIGKILL');
    await once(supervisor, 'exit');
    const took = await until('every child of the killed supervisor has exited', () => pids.every(gone), 2_000);
    assert.ok(took <= 2_000);
  });

  it('a service whose stdout and stderr pipes are gone stops gracefully on SIGTERM (exit 0 within its grace)', async () => {
    let p: ManagedProcess | undefined;
    // Its identity, as `sagas certs` issues it before a process started on its own.
    await issuedUnder(path.join(tmp, 'payment'));
    try {
      p = await spawnService('payment', {
        env: {
          ...process.env,
          DATA_DIR: path.join(tmp, 'payment'),
          PAYMENT_SERVICE_ADDR: '127.0.0.1:0',
          METRICS_ADDR: '127.0.0.1:0',
          LOG_LEVEL: 'debug',
        },
      });
      pidsToReap.add(p.pid);
      // The reader of its log goes away, as when a supervisor dies: its next write meets EPIPE.
      p.child.stdout?.destroy();
      p.child.stderr?.destroy();
      const exit = once(p.child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
      p.child.kill('SIGTERM');
      // The participants' grace is 10 s (lifecycle.onShutdown); past it the process would exit 1.
      let timer: NodeJS.Timeout | undefined;
      const result = await Promise.race([
        exit,
        new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), 10_000))),
      ]);
      clearTimeout(timer);
      assert.notEqual(result, 'timeout', 'it ignored SIGTERM');
      assert.deepEqual(result, [0, null], 'a graceful stop: exit code 0');
    } finally {
      await p?.kill();
    }
  });
});
