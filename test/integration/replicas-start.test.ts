// Starting replicas of the participants: the supervisor (with fake services) starts N of each,
// hands every gateway the list of their addresses, kills and restarts one on its address; `sagas
// start --replicas 2` names them, keeps the system up when one replica dies while its twin
// serves, and says what to do when there is no PostgreSQL for them; the participants' databases
// are made on a server once (a private PostgreSQL cluster of this test).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { PARTICIPANT_NAMES, SERVICE_NAMES, startSystem, type ServiceName } from '../../src/supervisor/supervisor.js';
import {
  PARTICIPANT_DATABASES,
  ParticipantDatabaseError,
  prepareParticipantDatabases,
} from '../../src/supervisor/participant-databases.js';
import { freePort } from '../helpers/system.js';
import { TestPostgres } from '../helpers/postgres.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const FAKE = fileURLToPath(new URL('../fixtures/fake-service.ts', import.meta.url));
const WITH_FAKES = path.join(root, 'test/fixtures/cli-with-fakes.ts');
const fakeEntries = Object.fromEntries(SERVICE_NAMES.map((n) => [n, { entry: FAKE, args: [n] }])) as Record<
  ServiceName,
  { entry: string; args: string[] }
>;
// Never dialled: the fake services only carry them.
const DBS = {
  ORDER_DB_URL: 'postgres://sagas:s3cret@127.0.0.1:5432/fake_order',
  INVENTORY_DB_URL: 'postgres://sagas@127.0.0.1:5432/fake_inventory',
  PAYMENT_DB_URL: 'postgres://sagas@127.0.0.1:5432/fake_payment',
};

const tmp = mkdtempSync(path.join(os.tmpdir(), 'sagas-replicas-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function environOf(pid: number): Record<string, string> {
  const pairs = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean);
  return Object.fromEntries(pairs.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
}

describe('startSystem with replicas (fake services)', () => {
  it('starts two of each participant, gives the gateway every address, kills and restarts one replica on its address', async () => {
    const sys = await startSystem({
      dataDir: path.join(tmp, 'sys'),
      ports: 'ephemeral',
      replicas: 2,
      env: DBS,
      entries: fakeEntries,
    });
    try {
      for (const n of PARTICIPANT_NAMES) {
        assert.deepEqual(
          sys.replicas[n].map((p) => p.name),
          [`${n}-1`, `${n}-2`],
        );
        assert.equal(sys.procs[n], sys.replicas[n][0]);
        assert.equal(sys.addresses[n], sys.replicas[n][0]?.address);
        for (const p of sys.replicas[n])
          assert.equal(
            environOf(p.pid)[`${n.toUpperCase()}_DB_URL`],
            DBS[`${n.toUpperCase()}_DB_URL` as keyof typeof DBS],
          );
      }
      const told = (await (await fetch(sys.url)).json()) as Record<string, string>;
      const lists = Object.fromEntries(
        PARTICIPANT_NAMES.map((n) => [
          `${n.toUpperCase()}_SERVICE_ADDR`,
          sys.replicas[n].map((p) => p.address).join(','),
        ]),
      );
      assert.deepEqual(told, { ...lists, DATA_DIR: path.join(tmp, 'sys') });

      const second = sys.replicas.payment[1];
      assert.ok(second);
      assert.deepEqual(await sys.killReplica('payment', 1), { code: null, signal: 'SIGKILL' });
      assert.equal(second.running, false);
      assert.equal(sys.replicas.payment[0]?.running, true);
      const again = await sys.restartReplica('payment', 1, { FAKE_MARK: 'payment-again' });
      assert.equal(sys.replicas.payment[1], again);
      assert.equal(again.name, 'payment-2');
      assert.equal(again.address, second.address, 'on the address the gateway dials');
      assert.ok(again.output().some((l) => l.includes('"mark":"payment-again"')));
      await assert.rejects(sys.killReplica('order', 2), RangeError);
      await assert.rejects(sys.restartReplica('order', -1), RangeError);
    } finally {
      await sys.stop();
    }
    for (const p of [...PARTICIPANT_NAMES.flatMap((n) => sys.replicas[n]), ...sys.gateways])
      assert.deepEqual(p.exitStatus, { code: 0, signal: null }, p.name);
  });

  it('refuses several replicas without a PostgreSQL database for each participant, before starting anything', async () => {
    await assert.rejects(
      startSystem({ dataDir: path.join(tmp, 'none'), ports: 'ephemeral', replicas: 2, entries: fakeEntries }),
      /ORDER_DB_URL: expected a postgres:\/\/.*2 replicas of order share one database/,
    );
  });
});

/** `sagas start …` with fake services, as a process; its lines, and a way to wait for one. */
function sagasStart(args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', WITH_FAKES, 'start', ...args], {
    cwd: root,
    env: {
      ...process.env,
      NO_COLOR: '1',
      DATA_DIR: path.join(tmp, `cli-${args.join('')}`.replace(/[^\w-]/g, '')),
      ORDER_SERVICE_ADDR: '127.0.0.1:0',
      INVENTORY_SERVICE_ADDR: '127.0.0.1:0',
      PAYMENT_SERVICE_ADDR: '127.0.0.1:0',
      HTTP_ADDR: '127.0.0.1:0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const waiters: Array<{ re: RegExp; resolve: (l: string) => void }> = [];
  for (const s of [child.stdout, child.stderr])
    createInterface({ input: s }).on('line', (l) => {
      lines.push(l);
      for (const w of [...waiters])
        if (w.re.test(l)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(l);
        }
    });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  void exit.then(() => {
    for (const w of waiters) w.resolve(`<exited>\n${lines.join('\n')}`);
  });
  return {
    child,
    lines,
    exit,
    waitFor: (re: RegExp) =>
      lines.find((l) => re.test(l)) !== undefined
        ? Promise.resolve(lines.find((l) => re.test(l)) as string)
        : new Promise<string>((resolve) => waiters.push({ re, resolve })),
  };
}

describe('sagas start --replicas (fake services)', () => {
  it('starts order-1, order-2…, keeps running when one replica dies while its twin serves, stops on Ctrl-C', async () => {
    const r = sagasStart(['--replicas', '2'], DBS);
    try {
      await r.waitFor(/Ctrl-C stops everything|<exited>/);
      const text = r.lines.join('\n');
      assert.ok(!text.includes('s3cret'), 'no password printed');
      assert.match(text, /starting 2 each of order, inventory, payment, then the gateway/);
      assert.match(
        text,
        /participants on PostgreSQL, 2 replicas each: order postgres:\/\/sagas:\*\*\*@127\.0\.0\.1:5432\/fake_order \(ORDER_DB_URL\)/,
      );
      const pids: Record<string, number> = {};
      for (const name of ['order-1', 'order-2', 'inventory-1', 'inventory-2', 'payment-1', 'payment-2', 'gateway']) {
        const line = r.lines.find((l) => new RegExp(`^\\[sagas\\s*\\]\\s+${name}\\s+\\S+\\s+\\(pid \\d+\\)$`).test(l));
        assert.ok(line, `${name} in the banner:\n${text}`);
        pids[name] = Number(/\(pid (\d+)\)/.exec(line)?.[1]);
      }
      assert.match(text, /2 replicas of each participant share its database; the gateway spreads calls over them/);

      process.kill(pids['order-1'] as number, 'SIGKILL');
      const said = await r.waitFor(/order-1 \(pid \d+\) was killed by SIGKILL unexpectedly|<exited>/);
      assert.match(said, /order-2 still serves\. Nothing is restarted\./);
      const gateway = pids.gateway as number;
      assert.equal(process.kill(gateway, 0), true, 'the gateway is still running');

      process.kill(pids['order-2'] as number, 'SIGKILL');
      await r.waitFor(/stopping the other processes|<exited>/);
      assert.equal(await r.exit, 1, 'the last replica of a participant gone: everything stops');
    } finally {
      r.child.kill('SIGKILL');
    }
  });

  it('without a PostgreSQL server for the participants: exit 1 and what to do, nothing started', async () => {
    const port = await freePort();
    const r = sagasStart(['--replicas', '2', '--participants-db', `postgres://postgres:pw@127.0.0.1:${port}`], {
      ORDER_DB_URL: '',
      INVENTORY_DB_URL: '',
      PAYMENT_DB_URL: '',
    });
    assert.equal(await r.exit, 1);
    const text = r.lines.join('\n');
    assert.match(
      text,
      new RegExp(`the server at postgres://postgres:\\*\\*\\*@127\\.0\\.0\\.1:${port} cannot be reached`),
    );
    assert.match(
      text,
      /--participants-db postgres:\/\/user:password@host:5432, or set ORDER_DB_URL, INVENTORY_DB_URL and PAYMENT_DB_URL/,
    );
    assert.ok(!text.includes(':pw@'), 'no password printed');
    assert.ok(!/order-1|listening/.test(text), text);
  });
});

describe('the participants databases on a server', () => {
  let server: TestPostgres;
  before(async () => {
    server = await TestPostgres.start();
  });
  after(async () => {
    await server?.destroy();
  });

  it('made once each when missing, kept when there; a participant with its own *_DB_URL keeps it', async () => {
    const first = await prepareParticipantDatabases(server.url, {});
    assert.deepEqual(first.created.sort(), Object.values(PARTICIPANT_DATABASES).sort());
    assert.deepEqual(first.env, {
      ORDER_DB_URL: server.urlOf('sagas_order'),
      INVENTORY_DB_URL: server.urlOf('sagas_inventory'),
      PAYMENT_DB_URL: server.urlOf('sagas_payment'),
    });
    const c = new pg.Client({ connectionString: server.urlOf('sagas_payment') });
    await c.connect();
    await c.end();

    const again = await prepareParticipantDatabases(server.url.replace(/\/postgres$/, ''), {
      ORDER_DB_URL: 'postgres://elsewhere:5432/orders',
    });
    assert.deepEqual(again.created, []);
    assert.deepEqual(again.fromEnv, ['order']);
    assert.equal(again.env.ORDER_DB_URL, 'postgres://elsewhere:5432/orders');
    assert.equal(again.env.PAYMENT_DB_URL, server.urlOf('sagas_payment'));

    await assert.rejects(
      prepareParticipantDatabases(server.url, { PAYMENT_DB_URL: '/var/lib/payment.db' }),
      (e: unknown) =>
        e instanceof ParticipantDatabaseError && /PAYMENT_DB_URL must be a postgres:\/\/ URL/.test(e.message),
    );
  });
});
