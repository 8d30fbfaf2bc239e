// The supervisor starting processes: spawnService with fixture children, startSystem with fake
// services (its plans, computed without starting anything: test/unit/supervisor.test.ts).
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  SERVICE_ENTRIES,
  SERVICE_NAMES,
  ServiceStartError,
  spawnService,
  startSystem,
  type ManagedProcess,
  type ServiceName,
} from '../../src/supervisor/supervisor.js';
import { ConfigError } from '../../src/platform/errors.js';
import {
  identityDir,
  issueIdentities,
  loadTlsMaterial,
  TLS_IDENTITIES,
  TlsError,
} from '../../src/platform/grpc/tls.js';

const fixture = (f: string) => fileURLToPath(new URL(`../fixtures/${f}`, import.meta.url));
const READY_CHILD = fixture('ready-child.ts');
const EXIT_EARLY = fixture('exit-early.ts');
const FAKE = fixture('fake-service.ts');
const fakeEntries = Object.fromEntries(SERVICE_NAMES.map((n) => [n, { entry: FAKE, args: [n] }])) as Record<
  ServiceName,
  { entry: string; args: string[] }
>;

const tmp = mkdtempSync(path.join(os.tmpdir(), 'sagas-supervisor-'));
const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  await Promise.all(cleanups.map((c) => c()));
  rmSync(tmp, { recursive: true, force: true });
});

function connects(address: string): Promise<boolean> {
  const [host, port] = [
    address.slice(0, address.lastIndexOf(':')),
    Number(address.slice(address.lastIndexOf(':') + 1)),
  ];
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

async function spawnFixture(
  entry: string,
  env: NodeJS.ProcessEnv = {},
  onLine?: (line: string) => void,
): Promise<ManagedProcess> {
  const p = await spawnService('fixture', {
    entry,
    env: { ...process.env, ...env },
    onLine: onLine && ((_n, l) => onLine(l)),
  });
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
    assert.ok(
      lines.some((l) => l.includes('"msg":"bye"')),
      'output after the signal is drained before exited resolves',
    );
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
      // Long enough for the fake to start under tsx and install its SIGTERM handler on a loaded
      // machine (1 s was not), so the stop it gets is a graceful one.
      readyTimeoutMs: 3_000,
      onLine: (_n, l) => {
        const m = /"pid":(\d+)/.exec(l);
        if (m) pids.push(Number(m[1]));
      },
    }).then(
      () => assert.fail('should not be ready'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ServiceStartError);
    assert.match(err.message, /payment was not ready within 3000 ms and was stopped \(exited with code 0\)/);
    assert.ok(err.output.some((l) => l.includes('"msg":"listening"')));
    assert.equal(pids.length, 1);
    assert.equal(isAlive(pids[0] as number), false);
  });

  it('rejects at once for a name with no entry file', async () => {
    await assert.rejects(spawnService('nope', { env: process.env }), /no entry file for "nope"/);
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

/** The environment a child was started with, as the kernel has it. */
function environOf(pid: number): Record<string, string> {
  const pairs = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean);
  return Object.fromEntries(pairs.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
}

function listen(port: number): Promise<net.Server | undefined> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(undefined));
    srv.listen(port, '127.0.0.1', () => resolve(srv));
  });
}
const close = (srv: net.Server) => new Promise<void>((r) => srv.close(() => r()));

/** `n` consecutive ports free on 127.0.0.1, held open by the returned servers until closed. */
async function consecutivePorts(n: number): Promise<{ first: number; servers: net.Server[] }> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const head = await listen(0);
    assert.ok(head, 'cannot listen on 127.0.0.1');
    const first = (head.address() as net.AddressInfo).port;
    const servers = [head];
    for (let i = 1; i < n; i++) {
      const s = first + i <= 65535 ? await listen(first + i) : undefined;
      if (!s) break;
      servers.push(s);
    }
    if (servers.length === n) return { first, servers };
    await Promise.all(servers.map(close));
  }
  assert.fail(`no ${n} consecutive free ports found`);
}

const PG_URL = 'postgres://sagas@127.0.0.1:5432/never_dialled_by_fakes';
const pidOfLine = (line: string) => Number(/"pid":(\d+)/.exec(line)?.[1] ?? NaN);

describe('startSystem with several gateways (fake services)', () => {
  it('starts each gateway pointed at the services, with GATEWAY_INDEX and its own tag; kills and restarts one on its address', async () => {
    const lines: Array<[string, string]> = [];
    const dataDir = path.join(tmp, 'multi1');
    const sys = await startSystem({
      dataDir,
      ports: 'ephemeral',
      gateways: 3,
      entries: fakeEntries,
      env: { SAGA_LOG_URL: PG_URL },
      onLine: (name, line) => lines.push([name, line]),
    });
    cleanups.push(() => sys.stop());

    assert.deepEqual(
      sys.gateways.map((g) => g.name),
      ['gateway-1', 'gateway-2', 'gateway-3'],
    );
    assert.equal(sys.procs.gateway, sys.gateways[0]);
    assert.equal(sys.urls[0], sys.url);
    assert.equal(new Set(sys.urls).size, 3);
    for (const u of sys.urls) assert.match(u, /^http:\/\/127\.0\.0\.1:\d+$/);
    const expected = {
      ORDER_SERVICE_ADDR: sys.addresses.order,
      INVENTORY_SERVICE_ADDR: sys.addresses.inventory,
      PAYMENT_SERVICE_ADDR: sys.addresses.payment,
      DATA_DIR: dataDir,
    };
    for (const u of sys.urls) assert.deepEqual(await (await fetch(u)).json(), expected, u);
    sys.gateways.forEach((g, i) => {
      const env = environOf(g.pid);
      assert.equal(env.GATEWAY_INDEX, String(i), g.name);
      assert.equal(env.SAGA_LOG_URL, PG_URL, g.name);
      // each one's lines carry its own tag
      assert.ok(
        lines.some(([n, l]) => n === g.name && pidOfLine(l) === g.pid),
        `${g.name}'s lines are tagged ${g.name}`,
      );
    });
    assert.ok(!lines.some(([n]) => n === 'gateway'), 'no line is tagged plain "gateway" when there are several');
    for (const s of ['order', 'inventory', 'payment'] as const)
      assert.equal(environOf(sys.procs[s].pid).GATEWAY_INDEX, process.env.GATEWAY_INDEX);

    // kill -9 the second: the others still answer; it comes back on its address with its index.
    const second = sys.gateways[1] as ManagedProcess;
    const secondUrl = sys.urls[1] as string;
    assert.deepEqual(await sys.killGateway(1), { code: null, signal: 'SIGKILL' });
    assert.equal(second.running, false);
    assert.equal((await fetch(sys.urls[0])).status, 200);
    assert.equal((await fetch(sys.urls[2] as string)).status, 200);
    const again = await sys.restartGateway(1, { FAKE_MARK: 'second-again' });
    assert.equal(sys.gateways[1], again);
    assert.equal(again.name, 'gateway-2');
    assert.notEqual(again.pid, second.pid);
    assert.equal(sys.urls[1], secondUrl);
    assert.ok(again.output().some((l) => l.includes('"mark":"second-again"')));
    assert.equal(environOf(again.pid).GATEWAY_INDEX, '1');
    assert.deepEqual(await (await fetch(secondUrl)).json(), expected);

    // restart('gateway') is the first gateway's; a running one is stopped first.
    const first = sys.procs.gateway;
    const p = await sys.restart('gateway');
    assert.deepEqual(first.exitStatus, { code: 0, signal: null });
    assert.equal(sys.procs.gateway, p);
    assert.equal(sys.gateways[0], p);
    assert.equal(environOf(p.pid).GATEWAY_INDEX, '0');
    assert.equal(sys.url, sys.urls[0]);

    await assert.rejects(sys.killGateway(3), RangeError);
    await assert.rejects(sys.restartGateway(-1), RangeError);

    lines.length = 0;
    await sys.stop();
    for (const g of sys.gateways) assert.deepEqual(g.exitStatus, { code: 0, signal: null }, g.name);
    for (const s of ['order', 'inventory', 'payment'] as const)
      assert.deepEqual(sys.procs[s].exitStatus, { code: 0, signal: null }, s);
    const byes = lines.filter(([, l]) => l.includes('"msg":"bye"')).map(([n]) => n);
    assert.equal(byes.length, 6);
    assert.deepEqual(byes.slice(0, 3).sort(), ['gateway-1', 'gateway-2', 'gateway-3'], 'the gateways stop first');
  });

  it('stop() signals every gateway at once, and the services only after the gateways are gone', async () => {
    const events: string[] = [];
    const sys = await startSystem({
      dataDir: path.join(tmp, 'multi2'),
      ports: 'ephemeral',
      gateways: 2,
      entries: fakeEntries,
      stopTimeoutMs: 300,
      env: { SAGA_LOG_URL: PG_URL, FAKE_IGNORE_SIGTERM: 'gateway' },
      onLine: (name, line) => {
        if (line.includes('ignoring SIGTERM')) events.push(`${name} got SIGTERM`);
        if (line.includes('"msg":"bye"')) events.push(`${name} bye`);
      },
    });
    cleanups.push(() => sys.stop());
    for (const g of sys.gateways) void g.exited.then(() => events.push(`${g.name} exited`));
    await sys.stop();
    for (const g of sys.gateways)
      assert.deepEqual(g.exitStatus, { code: null, signal: 'SIGKILL' }, `${g.name} ignored SIGTERM and was killed`);
    // Sequential stops would read "gateway-1 got SIGTERM, gateway-1 exited, gateway-2 got SIGTERM…".
    const firstExit = events.findIndex((e) => e.endsWith('exited'));
    assert.deepEqual(
      events.slice(0, firstExit).sort(),
      ['gateway-1 got SIGTERM', 'gateway-2 got SIGTERM'],
      events.join('; '),
    );
    const lastGatewayExit = events.reduce((last, e, i) => (e.endsWith('exited') ? i : last), -1);
    const byes = events.map((e, i) => [e, i] as const).filter(([e]) => e.endsWith('bye'));
    assert.deepEqual(byes.map(([e]) => e.split(' ')[0]).sort(), ['inventory', 'order', 'payment']);
    for (const [e, i] of byes)
      assert.ok(i > lastGatewayExit, `${e} before the gateways had exited: ${events.join('; ')}`);
  });

  it('with default ports, gateway i listens on HTTP_ADDR’s port + i, and comes back there', async () => {
    const { first, servers } = await consecutivePorts(3);
    await Promise.all(servers.map(close));
    const sys = await startSystem({
      dataDir: path.join(tmp, 'multi3'),
      ports: 'default',
      gateways: 3,
      entries: fakeEntries,
      env: {
        SAGA_LOG_URL: PG_URL,
        HTTP_ADDR: `127.0.0.1:${first}`,
        ORDER_SERVICE_ADDR: '127.0.0.1:0',
        INVENTORY_SERVICE_ADDR: '127.0.0.1:0',
        PAYMENT_SERVICE_ADDR: '127.0.0.1:0',
      },
    });
    cleanups.push(() => sys.stop());
    assert.deepEqual(
      sys.urls,
      [0, 1, 2].map((i) => `http://127.0.0.1:${first + i}`),
    );
    assert.equal(sys.url, `http://127.0.0.1:${first}`);
    await sys.killGateway(2);
    await sys.restartGateway(2);
    assert.equal(sys.urls[2], `http://127.0.0.1:${first + 2}`);
    assert.equal((await fetch(sys.urls[2])).status, 200);
    await sys.stop();
  });

  it('with every port known beforehand, the gateway starts with the participants and is told where they will listen', async () => {
    const { first, servers } = await consecutivePorts(4);
    await Promise.all(servers.map(close));
    const sys = await startSystem({
      dataDir: path.join(tmp, 'together'),
      ports: 'default',
      entries: fakeEntries,
      env: {
        HTTP_ADDR: `127.0.0.1:${first}`,
        // An unspecified host is dialled on loopback; the others as given.
        ORDER_SERVICE_ADDR: `0.0.0.0:${first + 1}`,
        INVENTORY_SERVICE_ADDR: `127.0.0.1:${first + 2}`,
        PAYMENT_SERVICE_ADDR: `127.0.0.1:${first + 3}`,
      },
    });
    cleanups.push(() => sys.stop());
    const told = (await (await fetch(sys.url)).json()) as Record<string, string>;
    assert.deepEqual(
      { order: told.ORDER_SERVICE_ADDR, inventory: told.INVENTORY_SERVICE_ADDR, payment: told.PAYMENT_SERVICE_ADDR },
      { order: `127.0.0.1:${first + 1}`, inventory: `127.0.0.1:${first + 2}`, payment: `127.0.0.1:${first + 3}` },
    );
    await sys.stop();
  });

  it('a gateway that cannot start fails the start, named, and everything started is stopped', async () => {
    const { first, servers } = await consecutivePorts(2);
    await close(servers[0] as net.Server); // the second port stays taken
    try {
      const pids = new Map<string, number>();
      const err = await startSystem({
        dataDir: path.join(tmp, 'multi4'),
        ports: 'default',
        gateways: 2,
        entries: fakeEntries,
        env: {
          SAGA_LOG_URL: PG_URL,
          HTTP_ADDR: `127.0.0.1:${first}`,
          ORDER_SERVICE_ADDR: '127.0.0.1:0',
          INVENTORY_SERVICE_ADDR: '127.0.0.1:0',
          PAYMENT_SERVICE_ADDR: '127.0.0.1:0',
        },
        onLine: (name, line) => {
          const pid = pidOfLine(line);
          if (pid) pids.set(name, pid);
        },
      }).then(
        () => assert.fail('should fail'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof ServiceStartError);
      assert.equal(err.service, 'gateway-2');
      assert.match(err.message, /EADDRINUSE/);
      // gateway-1 may have been stopped (startup aborted) before it printed its first line
      for (const n of ['gateway-2', 'inventory', 'order', 'payment']) assert.ok(pids.has(n), `${n} was started`);
      for (const [name, pid] of pids) assert.equal(isAlive(pid), false, `${name} still alive`);
    } finally {
      await close(servers[1] as net.Server);
    }
  });

  it('more than one gateway without a PostgreSQL SAGA_LOG_URL is refused before anything starts', async () => {
    const dataDir = path.join(tmp, 'multi5');
    const lines: string[] = [];
    await assert.rejects(
      startSystem({
        dataDir,
        ports: 'ephemeral',
        gateways: 2,
        entries: fakeEntries,
        env: { SAGA_LOG_URL: '' },
        onLine: (_n, l) => lines.push(l),
      }),
      (e: unknown) => e instanceof ConfigError && e.details?.variable === 'SAGA_LOG_URL',
    );
    await assert.rejects(startSystem({ dataDir, ports: 'ephemeral', gateways: 0, entries: fakeEntries }), RangeError);
    assert.deepEqual(lines, [], 'no process was started');
    assert.equal(existsSync(dataDir), false, 'not even the data folder was made');
  });
});

describe('startSystem: DATA_DIR and the mutual-TLS identities (fake services)', () => {
  /** The supervisor's own lines ([sagas]), parsed. */
  const said = (lines: Array<[string, string]>) =>
    lines.filter(([n]) => n === 'sagas').map(([, l]) => JSON.parse(l) as { level: string; msg: string });

  it('a first start issues the four identities into TLS_DIR, one folder each, and makes DATA_DIR private; the next start issues nothing; GRPC_INSECURE=1 makes none', async () => {
    const dataDir = path.join(tmp, 'tls-first', 'data');
    const lines: Array<[string, string]> = [];
    let sys = await startSystem({
      dataDir,
      ports: 'ephemeral',
      entries: fakeEntries,
      onLine: (n, l) => lines.push([n, l]),
    });
    await sys.stop();
    assert.equal(statSync(dataDir).mode & 0o777, 0o700, 'DATA_DIR is 0700');
    const tlsDir = path.join(dataDir, 'tls');
    assert.deepEqual(
      readdirSync(tlsDir).sort(),
      [...TLS_IDENTITIES].sort(),
      'one folder per identity, nothing else (no CA key)',
    );
    for (const id of TLS_IDENTITIES) {
      assert.deepEqual(readdirSync(identityDir(tlsDir, id)).sort(), ['ca.crt', `${id}.crt`, `${id}.key`].sort(), id);
      loadTlsMaterial(tlsDir, id);
    }
    const first = said(lines);
    assert.equal(first.length, 1, JSON.stringify(first));
    assert.equal(first[0]?.level, 'info');
    assert.match(
      first[0]?.msg ?? '',
      /^issued the mutual-TLS identities gateway, order, inventory, payment in .*tls, one folder each; the CA's key was used for this only and not kept$/,
    );

    const gatewayCrt = readFileSync(path.join(identityDir(tlsDir, 'gateway'), 'gateway.crt'));
    lines.length = 0;
    sys = await startSystem({
      dataDir,
      ports: 'ephemeral',
      entries: fakeEntries,
      onLine: (n, l) => lines.push([n, l]),
    });
    await sys.stop();
    assert.deepEqual(said(lines), [], 'nothing to say the second time');
    assert.deepEqual(readFileSync(path.join(identityDir(tlsDir, 'gateway'), 'gateway.crt')), gatewayCrt);

    // An existing DATA_DIR of this user made under a looser umask is tightened.
    const loose = path.join(tmp, 'tls-insecure');
    mkdirSync(loose);
    chmodSync(loose, 0o755);
    sys = await startSystem({ dataDir: loose, ports: 'ephemeral', entries: fakeEntries, env: { GRPC_INSECURE: '1' } });
    await sys.stop();
    assert.equal(existsSync(path.join(loose, 'tls')), false, 'plaintext: no certificates');
    assert.equal(statSync(loose).mode & 0o777, 0o700);
  });

  it('a TLS_DIR of the old one-folder layout is moved before any child starts, said once; the CA key moved aside is warned about at every start', async () => {
    const made = path.join(tmp, 'tls-old-src');
    const caDir = path.join(tmp, 'tls-old-ca');
    await issueIdentities(made, { ca: caDir });
    const tlsDir = path.join(tmp, 'tls-old');
    mkdirSync(tlsDir, { mode: 0o700 });
    for (const f of ['ca.crt', 'ca.key']) copyFileSync(path.join(caDir, f), path.join(tlsDir, f));
    for (const id of TLS_IDENTITIES)
      for (const f of [`${id}.crt`, `${id}.key`])
        copyFileSync(path.join(identityDir(made, id), f), path.join(tlsDir, f));

    const lines: Array<[string, string]> = [];
    let sys = await startSystem({
      dataDir: path.join(tmp, 'tls-old-data'),
      ports: 'ephemeral',
      entries: fakeEntries,
      env: { TLS_DIR: tlsDir },
      onLine: (n, l) => lines.push([n, l]),
    });
    await sys.stop();
    const first = said(lines);
    assert.deepEqual(
      first.map((l) => l.level),
      ['warn', 'warn'],
    );
    assert.match(
      first[0]?.msg ?? '',
      /^moved .*tls-old from the old one-folder layout to one folder per identity \(gateway, order, inventory, payment\): each process now reads only its own$/,
    );
    assert.match(first[1]?.msg ?? '', /tls-old\/ca\/ca\.key is the CA's key .*move it off this machine .*or delete it/);
    assert.deepEqual(readdirSync(tlsDir).sort(), ['ca', ...TLS_IDENTITIES].sort());
    for (const id of TLS_IDENTITIES) loadTlsMaterial(tlsDir, id);

    lines.length = 0;
    sys = await startSystem({
      dataDir: path.join(tmp, 'tls-old-data'),
      ports: 'ephemeral',
      entries: fakeEntries,
      env: { TLS_DIR: tlsDir },
      onLine: (n, l) => lines.push([n, l]),
    });
    await sys.stop();
    assert.deepEqual(
      said(lines).map((l) => l.msg.replace(/ .*/, '')),
      [path.join(tlsDir, 'ca', 'ca.key')],
      'the CA key warning again, nothing else',
    );
    rmSync(path.join(tlsDir, 'ca'), { recursive: true });
    lines.length = 0;
    sys = await startSystem({
      dataDir: path.join(tmp, 'tls-old-data'),
      ports: 'ephemeral',
      entries: fakeEntries,
      env: { TLS_DIR: tlsDir },
      onLine: (n, l) => lines.push([n, l]),
    });
    await sys.stop();
    assert.deepEqual(said(lines), [], 'once the key is gone, nothing');
  });

  it('identities that cannot be completed stop the start before any child, with the reason', async () => {
    const tlsDir = path.join(tmp, 'tls-broken');
    await issueIdentities(tlsDir);
    rmSync(identityDir(tlsDir, 'payment'), { recursive: true });
    const lines: Array<[string, string]> = [];
    await assert.rejects(
      startSystem({
        dataDir: path.join(tmp, 'tls-broken-data'),
        ports: 'ephemeral',
        entries: fakeEntries,
        env: { TLS_DIR: tlsDir },
        onLine: (n, l) => lines.push([n, l]),
      }),
      (e: unknown) =>
        e instanceof TlsError && e.code === 'tls_material_incomplete' && /but not payment, .*--renew/.test(e.message),
    );
    assert.deepEqual(lines, [], 'no process was started');
  });
});
