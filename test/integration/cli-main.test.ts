// The `sagas` command as a user runs it: as a process, signalled like a terminal would.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const BIN = path.join(root, 'bin/sagas.js');
const WITH_FAKES = path.join(root, 'test/fixtures/cli-with-fakes.ts');

interface Run {
  child: ChildProcess;
  lines: string[];
  /** Resolves with the first line (already seen or future) matching `re`. */
  waitFor(re: RegExp): Promise<string>;
  exit: Promise<number | null>;
}

/** Children still running when the file ends (a failed assertion left them): killed, so the file ends. */
const running = new Set<ChildProcess>();
after(() => {
  for (const c of running) c.kill('SIGKILL');
});

function run(args: string[], env: NodeJS.ProcessEnv = {}): Run {
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: { ...process.env, NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  const lines: string[] = [];
  const waiters: Array<{ re: RegExp; resolve: (l: string) => void }> = [];
  const closed: Promise<void>[] = [];
  for (const s of [child.stdout, child.stderr]) {
    const rl = createInterface({ input: s });
    rl.on('line', (l) => {
      lines.push(l);
      for (const w of [...waiters]) {
        if (w.re.test(l)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(l);
        }
      }
    });
    closed.push(new Promise((r) => rl.once('close', r)));
  }
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code))).then(
    async (code) => {
      await Promise.all(closed);
      for (const w of waiters) w.resolve(`<exited before a line matched ${w.re}>\n${lines.join('\n')}`);
      return code;
    },
  );
  return {
    child,
    lines,
    exit,
    waitFor(re) {
      const seen = lines.find((l) => re.test(l));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve) => waiters.push({ re, resolve }));
    },
  };
}

const tmp = mkdtempSync(path.join(os.tmpdir(), 'sagas-cli-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const fakes = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  run(['--import', 'tsx', WITH_FAKES, ...args], {
    DATA_DIR: tmp,
    ORDER_SERVICE_ADDR: '127.0.0.1:0',
    INVENTORY_SERVICE_ADDR: '127.0.0.1:0',
    PAYMENT_SERVICE_ADDR: '127.0.0.1:0',
    HTTP_ADDR: '127.0.0.1:0',
    ...env,
  });

const pidOf = (line: string) => Number(/\(pid (\d+)\)/.exec(line)?.[1]);
const tagged = (lines: string[], name: string, re: RegExp) =>
  lines.filter((l) => l.startsWith(`[${name.padEnd(9)}]`) && re.test(l));

describe('sagas (bin/sagas.js)', () => {
  it('help prints the commands and the exit codes, and exits 0', async () => {
    const r = run([BIN, 'help']);
    assert.equal(await r.exit, 0);
    const text = r.lines.join('\n');
    for (const word of ['start', 'inspect', 'help', '--help', 'Exit codes:', 'npm run bench'])
      assert.ok(text.includes(word), word);
    assert.ok(!/^ {2}bench /m.test(text), 'bench is not a command of the product');
  });

  it('start --help tells about --gateways, the exit codes and the environment, with their defaults', async () => {
    const r = run([BIN, 'start', '--help']);
    assert.equal(await r.exit, 0);
    const text = r.lines.join('\n');
    assert.match(text, /start \[--gateways N\]/);
    assert.match(text, /--gateways N +Run N gateways \(1-16, default 1\)/);
    assert.match(text, /^ {2}130 +A second Ctrl-C killed the processes/m);
    for (const word of [
      'HTTP_ADDR',
      'ORDER_SERVICE_ADDR',
      'PAYMENT_SERVICE_ADDR',
      'INVENTORY_SERVICE_ADDR',
      'DATA_DIR',
      'LOG_LEVEL',
    ])
      assert.ok(text.includes(word), word);
    assert.match(text, /SAGA_LOG_URL +PostgreSQL saga log[^]*required for more than one\s+gateway/);
    assert.match(text, /SAGA_LOG_POOL_SIZE .*\(default 10\)/);
    assert.match(text, /SAGA_LEASE_MS [^]*\(default 15000\)/);
    assert.match(text, /SAGA_RECOVERY_INTERVAL_MS [^\n]*\n *\(default lease \/ 6, at least 250\)/);
  });

  it('a bad --gateways is a usage error (exit 2) and starts nothing', async () => {
    const bad = ['0', '-1', 'abc', '17', '2.5'].map((n) => ({
      n,
      r: fakes(['start', '--gateways', n], { SAGA_LOG_URL: 'postgres://u@127.0.0.1/db' }),
    }));
    const missing = fakes(['start', '--gateways'], { SAGA_LOG_URL: 'postgres://u@127.0.0.1/db' });
    const withService = fakes(['start', 'order', '--gateways=2'], { SAGA_LOG_URL: 'postgres://u@127.0.0.1/db' });
    for (const { n, r } of bad) {
      assert.equal(await r.exit, 2, n);
      // A value starting with "-" reads as an option unless written --gateways=-1.
      const said = n.startsWith('-')
        ? `sagas start: --gateways needs a number of gateways, from 1 to 16, got "${n}"`
        : `sagas start: --gateways must be a whole number from 1 to 16, got "${n}"`;
      assert.ok(
        r.lines.some((l) => l === said),
        r.lines.join('\n'),
      );
      assert.ok(
        r.lines.some((l) => l.startsWith('Usage: sagas')),
        n,
      );
      assert.ok(!r.lines.some((l) => l.startsWith('[')), `${n}: nothing started`);
    }
    assert.equal(await missing.exit, 2);
    assert.ok(
      missing.lines.some((l) => l.includes('--gateways needs a number of gateways, from 1 to 16')),
      missing.lines.join('\n'),
    );
    assert.equal(await withService.exit, 2);
    assert.ok(
      withService.lines.some((l) => l.includes('--gateways starts the whole system')),
      withService.lines.join('\n'),
    );
  });

  it('several gateways without a PostgreSQL SAGA_LOG_URL: exit 2, saying how to set it, nothing started', async () => {
    for (const url of ['', 'file:/tmp/saga.db']) {
      const r = fakes(['start', '--gateways', '2'], { SAGA_LOG_URL: url });
      assert.equal(await r.exit, 2);
      const text = r.lines.join('\n');
      assert.match(
        text,
        /^sagas start: SAGA_LOG_URL: 2 gateways need one PostgreSQL saga log to share.*set SAGA_LOG_URL=postgres:\/\/user:password@host:5432\/database/m,
      );
      assert.ok(!r.lines.some((l) => l.startsWith('[')), 'nothing started');
    }
  });

  it('an unknown command prints the usage and exits 2', async () => {
    const r = run([BIN, 'frobnicate']);
    assert.equal(await r.exit, 2);
    assert.ok(r.lines.some((l) => l.includes('unknown command "frobnicate"')));
    assert.ok(r.lines.some((l) => l.startsWith('Usage: sagas')));
    const bench = run([BIN, 'bench']);
    assert.equal(await bench.exit, 2);
    assert.ok(bench.lines.some((l) => l.includes('unknown command "bench"')));
    const bad = run([BIN, 'start', 'shipping']);
    assert.equal(await bad.exit, 2);
    assert.ok(bad.lines.some((l) => l.includes('unknown service "shipping"')));
  });
});

describe('sagas start (with fake services)', () => {
  it('starts all four, prints the URL and the curls, and stops the gateway first on Ctrl-C, exiting 0', async () => {
    const r = fakes(['start']);
    const products = await r.waitFor(/curl -s http:\/\/localhost:\d+\/products$|exited before/);
    const port = /localhost:(\d+)/.exec(products)?.[1];
    assert.ok(port, products);
    const post = r.lines.find((l) => l.includes('-X POST'));
    assert.equal(
      post?.trim(),
      `curl -s -X POST http://localhost:${port}/orders -H 'Content-Type: application/json' -H 'Prefer: wait=5' -d '{"customer_id":"cust_123","items":[{"product_id":"prod_1","quantity":2,"price":50.00},{"product_id":"prod_2","quantity":1,"price":30.00}]}'`,
    );
    // the children's JSON lines are pretty-printed with a tag
    assert.ok(
      tagged(r.lines, 'payment', /^\[payment {2}\] \d\d:\d\d:\d\d\.\d{3} INFO {2}listening address=127\.0\.0\.1:\d+$/)
        .length === 1,
      r.lines.join('\n'),
    );

    r.child.kill('SIGINT');
    assert.equal(await r.exit, 0, r.lines.join('\n'));
    const byes = r.lines.filter((l) => / INFO {2}bye$/.test(l)).map((l) => l.slice(1, l.indexOf(']')).trim());
    assert.equal(byes.length, 4, r.lines.join('\n'));
    assert.equal(byes[0], 'gateway');
    assert.ok(
      r.lines.some((l) =>
        l.includes(
          'stopped: order exited with code 0, inventory exited with code 0, payment exited with code 0, gateway exited with code 0',
        ),
      ),
    );
  });

  it('--gateways 3 starts three gateways on their own ports, lists every URL, tags each, and stops them first', async () => {
    const r = fakes(['start', '--gateways', '3'], { SAGA_LOG_URL: 'postgres://sagas:s3cret@127.0.0.1:5432/sagas' });
    await r.waitFor(/Ctrl-C stops everything|exited before/);
    const text = r.lines.join('\n');
    assert.ok(!text.includes('s3cret'), 'the password is not printed');
    assert.match(text, /saga log postgres:\/\/sagas:\*\*\*@127\.0\.0\.1:5432\/sagas/);
    const urls = [1, 2, 3].map((i) => {
      const line = r.lines.find((l) =>
        new RegExp(`^\\[sagas    \\]\\s+gateway-${i}\\s+http://localhost:\\d+\\s+\\(pid \\d+\\)$`).test(l),
      );
      assert.ok(line, `gateway-${i} in the banner:\n${text}`);
      return /http:\/\/localhost:\d+/.exec(line)?.[0] as string;
    });
    assert.equal(new Set(urls).size, 3);
    assert.ok(
      r.lines.some((l) => l.includes(`any of them answers for any order: ${urls.join(' ')}`)),
      text,
    );
    assert.ok(r.lines.some((l) => l.trim() === `curl -s ${urls[0]}/products`));
    // Each gateway's admin listener, past the HTTP ports (ADMIN_ADDR's default 8081 is gateway-2's HTTP port).
    assert.ok(
      r.lines.some((l) =>
        /the console and admin API \(operators only\): http:\/\/localhost:\d+ http:\/\/localhost:\d+ http:\/\/localhost:\d+ \(one per gateway\)/.test(
          l,
        ),
      ),
      text,
    );
    for (const u of urls) assert.equal((await fetch(u.replace('localhost', '127.0.0.1'))).status, 200, u);
    for (const i of [1, 2, 3])
      assert.equal(
        tagged(r.lines, `gateway-${i}`, / INFO {2}listening address=http:\/\/127\.0\.0\.1:\d+$/).length,
        1,
        text,
      );
    assert.ok(!tagged(r.lines, 'gateway', /./).length, 'no plain [gateway] tag with several');

    r.child.kill('SIGINT');
    assert.equal(await r.exit, 0, r.lines.join('\n'));
    assert.ok(r.lines.some((l) => l.includes('SIGINT: stopping the 3 gateways, then the services')));
    const byes = r.lines.filter((l) => / INFO {2}bye$/.test(l)).map((l) => l.slice(1, l.indexOf(']')).trim());
    assert.deepEqual(byes.slice(0, 3).sort(), ['gateway-1', 'gateway-2', 'gateway-3'], r.lines.join('\n'));
    assert.deepEqual(byes.slice(3).sort(), ['inventory', 'order', 'payment']);
    assert.ok(
      r.lines.some((l) =>
        l.includes(
          'stopped: order exited with code 0, inventory exited with code 0, payment exited with code 0, gateway-1 exited with code 0, gateway-2 exited with code 0, gateway-3 exited with code 0',
        ),
      ),
    );
  });

  it('when one of several gateways dies, says which, stops the others and exits 1', async () => {
    const r = fakes(['start', '--gateways=2'], { SAGA_LOG_URL: 'postgres://u@127.0.0.1/db' });
    const line = await r.waitFor(/^\[sagas {4}\]\s+gateway-2\s+\S+\s+\(pid \d+\)$|exited before/);
    process.kill(pidOf(line), 'SIGKILL');
    assert.equal(await r.exit, 1, r.lines.join('\n'));
    assert.match(r.lines.join('\n'), /✖ gateway-2 \(pid \d+\) was killed by SIGKILL unexpectedly/);
    const byes = r.lines.filter((l) => / INFO {2}bye$/.test(l)).map((l) => l.slice(1, l.indexOf(']')).trim());
    assert.deepEqual(byes.sort(), ['gateway-1', 'inventory', 'order', 'payment']);
  });

  it('--json passes the raw JSON lines with the tag', async () => {
    const r = fakes(['start', '--json']);
    await r.waitFor(/Ctrl-C stops everything|exited before/);
    assert.ok(
      tagged(r.lines, 'order', /^\[order {4}\] \{"level":"info","time":"[^"]+","service":"order","msg":"listening"/)
        .length === 1,
      r.lines.join('\n'),
    );
    r.child.kill('SIGTERM');
    assert.equal(await r.exit, 0);
  });

  it('when a child dies, says so loudly with its last lines, stops the others and exits 1', async () => {
    const r = fakes(['start']);
    const paymentLine = await r.waitFor(/^\[sagas {4}\]\s+payment\s+\S+\s+\(pid \d+\)$|exited before/);
    process.kill(pidOf(paymentLine), 'SIGKILL');
    assert.equal(await r.exit, 1, r.lines.join('\n'));
    const text = r.lines.join('\n');
    assert.match(text, /✖ payment \(pid \d+\) was killed by SIGKILL unexpectedly\. Nothing is restarted\./);
    assert.match(text, /last \d+ lines of payment:/);
    assert.equal(r.lines.filter((l) => / INFO {2}bye$/.test(l)).length, 3, text);
  });

  it('a startup failure shows the child’s error, not a stack, and exits 1', async () => {
    const r = fakes(['start'], { FAKE_FAIL: 'inventory' });
    assert.equal(await r.exit, 1);
    const text = r.lines.join('\n');
    assert.match(text, /✖ inventory failed to start: it exited with code 3 before it was ready/);
    assert.match(text, /\[sagas {4}\] {5}failed to start: listen EADDRINUSE: address already in use/);
    assert.ok(
      !r.lines.some((l) => l.startsWith('[sagas') && /^\s+at /.test(l.slice(12))),
      'no stack frames in the summary',
    );
    assert.ok(!tagged(r.lines, 'gateway', /./).length, 'the gateway was not started');
  });

  it('a second Ctrl-C kills the children and exits 130', async () => {
    const r = fakes(['start'], { FAKE_IGNORE_SIGTERM: 'gateway' });
    await r.waitFor(/Ctrl-C stops everything|exited before/);
    r.child.kill('SIGINT');
    await r.waitFor(/ignoring SIGTERM|exited before/);
    r.child.kill('SIGINT');
    assert.equal(await r.exit, 130, r.lines.join('\n'));
    assert.ok(r.lines.some((l) => l.includes('SIGINT again: killing all processes')));
  });

  it('start <service> runs that one alone and exits with its exit code', async () => {
    const r = fakes(['start', 'payment']);
    const up = await r.waitFor(/payment is up at|exited before/);
    assert.match(up, /payment is up at 127\.0\.0\.1:\d+ \(pid \d+\)/);
    r.child.kill('SIGINT');
    assert.equal(await r.exit, 0);
    assert.ok(
      r.lines.some((l) => l.includes('SIGINT: stopping payment (again to kill)')),
      r.lines.join('\n'),
    );
    assert.ok(r.lines.some((l) => l.includes('payment exited with code 0')));
    assert.ok(!tagged(r.lines, 'order', /./).length);

    const failing = fakes(['start', 'order'], { FAKE_FAIL: 'order' });
    assert.equal(await failing.exit, 3);
    assert.ok(failing.lines.some((l) => l.includes('order failed to start')));
  });

  it('start <service> that dies exits with its code; a second Ctrl-C kills it and exits 130', async () => {
    const r = fakes(['start', 'inventory']);
    const up = await r.waitFor(/inventory is up at|exited before/);
    process.kill(pidOf(up), 'SIGKILL');
    assert.equal(await r.exit, 128 + os.constants.signals.SIGKILL, r.lines.join('\n'));
    assert.match(r.lines.join('\n'), /✖ inventory \(pid \d+\) was killed by SIGKILL unexpectedly/);

    const stubborn = fakes(['start', 'gateway'], { FAKE_IGNORE_SIGTERM: 'gateway' });
    await stubborn.waitFor(/gateway is up at|exited before/);
    assert.match(await stubborn.waitFor(/^ {2}curl -s http:\/\/localhost:\d+\/products$|exited before/), /^ {2}curl/);
    stubborn.child.kill('SIGINT');
    await stubborn.waitFor(/ignoring SIGTERM|exited before/);
    stubborn.child.kill('SIGINT');
    assert.equal(await stubborn.exit, 130, stubborn.lines.join('\n'));
    assert.ok(stubborn.lines.some((l) => l.includes('SIGINT again: killing gateway')));
  });

  it('start <service> --json prints the process lines untagged, as a log collector wants them', async () => {
    const r = fakes(['start', 'order', '--json']);
    await r.waitFor(/order is up at|exited before/);
    assert.ok(
      r.lines.some((l) => /^\{"level":"info","time":"[^"]+","service":"order","msg":"listening"/.test(l)),
      r.lines.join('\n'),
    );
    r.child.kill('SIGTERM');
    assert.equal(await r.exit, 0);
  });
});
