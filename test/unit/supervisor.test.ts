import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  SERVICE_ENTRIES,
  SERVICE_NAMES,
  ServiceStartError,
  dialableAddr,
  spawnService,
  startSystem,
  type ManagedProcess,
  type ServiceName,
} from '../../src/cli/supervisor.js';

const fixture = (f: string) => fileURLToPath(new URL(`../fixtures/${f}`, import.meta.url));
const READY_CHILD = fixture('ready-child.ts');
const EXIT_EARLY = fixture('exit-early.ts');
const FAKE = fixture('fake-service.ts');
const fakeEntries = Object.fromEntries(SERVICE_NAMES.map((n) => [n, { entry: FAKE, args: [n] }])) as Record<ServiceName, { entry: string; args: string[] }>;

const tmp = mkdtempSync(path.join(os.tmpdir(), 'sagas-supervisor-'));
const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  await Promise.all(cleanups.map((c) => c()));
  rmSync(tmp, { recursive: true, force: true });
});

function connects(address: string): Promise<boolean> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  return new Promise((resolve) => {
    const s = net.connect({ host, port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function spawnFixture(entry: string, env: NodeJS.ProcessEnv = {}, onLine?: (line: string) => void): Promise<ManagedProcess> {
  const p = await spawnService('fixture', { entry, env: { ...process.env, ...env }, onLine: onLine && ((_n, l) => onLine(l)) });
  cleanups.push(() => p.kill());
  return p;
}

describe('spawnService', () => {
  it('knows the entry file of each service', () => {
    assert.deepEqual(Object.keys(SERVICE_ENTRIES), ['order', 'inventory', 'payment', 'gateway']);
    assert.match(SERVICE_ENTRIES.order, /src\/services\/order\/main\.ts$/);
    assert.match(SERVICE_ENTRIES.gateway, /src\/gateway\/main\.ts$/);
  });

  it('resolves with the address from the ready message, and stop() ends the child with code 0', async () => {
    const lines: string[] = [];
    const p = await spawnFixture(READY_CHILD, {}, (l) => lines.push(l));
    assert.match(p.address, /^127\.0\.0\.1:\d+$/);
    assert.notEqual(p.address, '127.0.0.1:0');
    assert.equal(p.name, 'fixture');
    assert.equal(p.pid, p.child.pid);
    assert.equal(p.running, true);
    assert.equal(await connects(p.address), true);
    assert.ok(p.output().some((l) => l.includes('"msg":"listening"')));
    assert.ok(p.output().includes('a line on stderr'));

    const status = await p.stop();
    assert.deepEqual(status, { code: 0, signal: null });
    assert.deepEqual(await p.exited, status);
    assert.deepEqual(p.exitStatus, status);
    assert.equal(p.running, false);
    assert.ok(lines.some((l) => l.includes('"msg":"bye"')), 'output after the signal is drained before exited resolves');
    assert.equal(await connects(p.address), false);
    assert.deepEqual(await p.stop(), status, 'stop() again is harmless');
  });

  it('rejects with the exit code and the output when the child exits before it is ready', async () => {
    const err = await spawnService('fixture', { entry: EXIT_EARLY, env: process.env }).then(
      () => assert.fail('should not be ready'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ServiceStartError);
    assert.equal(err.service, 'fixture');
    assert.deepEqual(err.status, { code: 3, signal: null });
    assert.equal(err.aborted, false);
    assert.match(err.message, /fixture exited with code 3 before it was ready/);
    assert.match(err.message, /EADDRINUSE/);
    assert.match(err.message, /fixture: giving up/);
    assert.ok(err.output.includes('starting up'));
  });

  it('kill() ends the child with SIGKILL', async () => {
    const p = await spawnFixture(READY_CHILD);
    assert.deepEqual(await p.kill(), { code: null, signal: 'SIGKILL' });
    assert.equal(isAlive(p.pid), false);
  });

  it('stop() escalates to SIGKILL when the child ignores SIGTERM', async () => {
    const p = await spawnFixture(READY_CHILD, { FIXTURE_IGNORE_SIGTERM: '1' });
    assert.deepEqual(await p.stop('SIGTERM', 300), { code: null, signal: 'SIGKILL' });
    assert.ok(p.output().some((l) => l.includes('ignoring SIGTERM')));
  });

  it('stops the child and rejects when it is not ready in time', async () => {
    const pids: number[] = [];
    const err = await spawnService('payment', {
      entry: FAKE,
      args: ['payment'],
      env: { ...process.env, PAYMENT_SERVICE_ADDR: '127.0.0.1:0', FAKE_NO_READY: 'payment' },
      readyTimeoutMs: 1_000,
      onLine: (_n, l) => {
        const m = /"pid":(\d+)/.exec(l);
        if (m) pids.push(Number(m[1]));
      },
    }).then(
      () => assert.fail('should not be ready'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ServiceStartError);
    assert.match(err.message, /payment was not ready within 1000 ms and was stopped \(exited with code 0\)/);
    assert.ok(err.output.some((l) => l.includes('"msg":"listening"')));
    assert.equal(pids.length, 1);
    assert.equal(isAlive(pids[0] as number), false);
  });

  it('rejects at once for a name with no entry file', async () => {
    await assert.rejects(spawnService('nope', { env: process.env }), /no entry file for "nope"/);
  });
});

describe('dialableAddr', () => {
  it('turns unspecified hosts into loopback', () => {
    assert.equal(dialableAddr('0.0.0.0:9090'), '127.0.0.1:9090');
    assert.equal(dialableAddr('[::]:9090'), '[::1]:9090');
    assert.equal(dialableAddr('http://0.0.0.0:8080'), '127.0.0.1:8080');
    assert.equal(dialableAddr('127.0.0.1:9091'), '127.0.0.1:9091');
  });
});

describe('startSystem (with fake services)', () => {
  it('starts the services, then the gateway pointed at their real addresses; restarts on the same address; stops the gateway first', async () => {
    const lines: Array<[string, string]> = [];
    const sys = await startSystem({
      dataDir: path.join(tmp, 'sys1'),
      ports: 'ephemeral',
      entries: fakeEntries,
      onLine: (name, line) => lines.push([name, line]),
    });
    cleanups.push(() => sys.stop());

    for (const s of ['order', 'inventory', 'payment'] as const) {
      assert.match(sys.addresses[s], /^127\.0\.0\.1:\d+$/);
      assert.notEqual(sys.addresses[s], '127.0.0.1:0');
    }
    assert.match(sys.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const seen = (await (await fetch(sys.url)).json()) as Record<string, string>;
    assert.deepEqual(seen, {
      ORDER_SERVICE_ADDR: sys.addresses.order,
      INVENTORY_SERVICE_ADDR: sys.addresses.inventory,
      PAYMENT_SERVICE_ADDR: sys.addresses.payment,
      DATA_DIR: path.join(tmp, 'sys1'),
    });

    // kill -9 one service, restart it with extra env: same address, new pid.
    const oldPayment = sys.procs.payment;
    const paymentAddr = sys.addresses.payment;
    assert.deepEqual(await sys.kill('payment'), { code: null, signal: 'SIGKILL' });
    const p = await sys.restart('payment', { FAKE_MARK: 'crash-test' });
    assert.equal(p.address, paymentAddr);
    assert.equal(sys.addresses.payment, paymentAddr);
    assert.equal(sys.procs.payment, p);
    assert.notEqual(p.pid, oldPayment.pid);
    assert.ok(p.output().some((l) => l.includes('"mark":"crash-test"')));
    assert.equal(await connects(paymentAddr), true);

    // The gateway too: same URL, still given the services' addresses.
    const url = sys.url;
    await sys.kill('gateway');
    await sys.restart('gateway');
    assert.equal(sys.url, url);
    assert.deepEqual(await (await fetch(sys.url)).json(), seen);

    // A running one is stopped first.
    const order = sys.procs.order;
    await sys.restart('order');
    assert.deepEqual(order.exitStatus, { code: 0, signal: null });
    assert.equal(await connects(sys.addresses.order), true);

    lines.length = 0;
    await sys.stop();
    for (const n of SERVICE_NAMES) assert.deepEqual(sys.procs[n].exitStatus, { code: 0, signal: null }, n);
    const byes = lines.filter(([, l]) => l.includes('"msg":"bye"')).map(([n]) => n);
    assert.equal(byes.length, 4);
    assert.equal(byes[0], 'gateway');
  });

  it('on a failure during start, rejects with that service’s error and stops the others', async () => {
    const pids = new Map<string, number>();
    const err = await startSystem({
      dataDir: path.join(tmp, 'sys2'),
      ports: 'ephemeral',
      entries: fakeEntries,
      env: { FAKE_FAIL: 'inventory' },
      onLine: (name, line) => {
        const m = /"pid":(\d+)/.exec(line);
        if (m) pids.set(name, Number(m[1]));
      },
    }).then(
      () => assert.fail('should fail'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ServiceStartError);
    assert.equal(err.service, 'inventory');
    assert.equal(err.aborted, false);
    assert.deepEqual(err.status, { code: 3, signal: null });
    assert.match(err.message, /EADDRINUSE/);
    assert.ok(pids.has('inventory'));
    assert.ok(!pids.has('gateway'), 'the gateway is not started');
    for (const [name, pid] of pids) assert.equal(isAlive(pid), false, `${name} still alive`);
  });

  it('on a gateway failure, stops the services', async () => {
    const pids = new Map<string, number>();
    await assert.rejects(
      startSystem({
        dataDir: path.join(tmp, 'sys3'),
        ports: 'ephemeral',
        entries: fakeEntries,
        env: { FAKE_FAIL: 'gateway' },
        onLine: (name, line) => {
          const m = /"pid":(\d+)/.exec(line);
          if (m) pids.set(name, Number(m[1]));
        },
      }),
      (e: unknown) => e instanceof ServiceStartError && e.service === 'gateway',
    );
    assert.equal(pids.size, 4);
    for (const [name, pid] of pids) assert.equal(isAlive(pid), false, `${name} still alive`);
  });

  it('an abort signal cancels the startup', async () => {
    const abort = new AbortController();
    const pids = new Map<string, number>();
    const starting = startSystem({
      dataDir: path.join(tmp, 'sys4'),
      ports: 'ephemeral',
      entries: fakeEntries,
      env: { FAKE_NO_READY: 'order' },
      signal: abort.signal,
      onLine: (name, line) => {
        const m = /"pid":(\d+)/.exec(line);
        if (m) pids.set(name, Number(m[1]));
        if (name === 'order' && line.includes('"msg":"listening"')) abort.abort();
      },
    });
    await assert.rejects(starting, (e: unknown) => e instanceof ServiceStartError && e.aborted);
    assert.ok(pids.has('order'));
    for (const [name, pid] of pids) assert.equal(isAlive(pid), false, `${name} still alive`);
  });
});
