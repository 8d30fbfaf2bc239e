// Replicas of the participants, the parts that need no process: the gateway's address lists
// (ORDER_SERVICE_ADDR=host:port,host:port), where `sagas start --replicas N` puts each replica,
// and the command lines of `sagas start` and the bench.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { hostPortListOf, MAX_ADDRESSES } from '../../src/platform/config/config-schema.js';
import { gatewayConfig } from '../../src/gateway/config.js';
import { orderConfig } from '../../src/services/order/config.js';
import { ConfigError } from '../../src/platform/errors.js';
import { MAX_REPLICAS, parseReplicaCount, planReplicas, replicaName } from '../../src/supervisor/supervisor.js';
import { parseStartArgs, START_USAGE } from '../../src/cli/commands/start.js';
import { UsageError } from '../../src/cli/command.js';
import { parseBenchArgs, UsageError as BenchUsageError, BENCH_USAGE } from '../../bench/src/args.js';

const DBS = {
  ORDER_DB_URL: 'postgres://sagas:secret@127.0.0.1:5432/o',
  INVENTORY_DB_URL: 'postgres://sagas@127.0.0.1:5432/i',
  PAYMENT_DB_URL: 'postgres://sagas@127.0.0.1:5432/p',
};

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a ConfigError');
}

describe('address lists', () => {
  it('one address, or several separated by commas (spaces allowed), IPv6 in brackets', () => {
    assert.deepEqual(hostPortListOf('a:1'), [{ host: 'a', port: 1 }]);
    assert.deepEqual(hostPortListOf('a:1,b:2'), [
      { host: 'a', port: 1 },
      { host: 'b', port: 2 },
    ]);
    assert.deepEqual(hostPortListOf(' 10.0.0.1:9090 , [::1]:9093 '), [
      { host: '10.0.0.1', port: 9090 },
      { host: '::1', port: 9093 },
    ]);
  });

  it('refuses an empty entry, a bad one, the same address twice, or too many', () => {
    for (const bad of ['', 'a:1,', ',a:1', 'a:1,,b:2', 'a:1,b', 'a:1,b:70000', 'a:1,A:1', 'a:1, a:1'])
      assert.equal(hostPortListOf(bad), undefined, JSON.stringify(bad));
    const many = Array.from({ length: MAX_ADDRESSES + 1 }, (_, i) => `h:${1000 + i}`).join(',');
    assert.equal(hostPortListOf(many), undefined);
    assert.equal(hostPortListOf(many.slice(0, many.lastIndexOf(',')))?.length, MAX_ADDRESSES);
  });

  it("the gateway reads each participant's variable as a list; a participant still listens on one address", () => {
    const c = gatewayConfig({
      ORDER_SERVICE_ADDR: '127.0.0.1:9090,127.0.0.1:9093',
      PAYMENT_SERVICE_ADDR: 'pay-1:7000, pay-2:7000',
      INVENTORY_SERVICE_ADDR: '[::1]:9092',
    });
    assert.deepEqual(c.participants, {
      order: ['127.0.0.1:9090', '127.0.0.1:9093'],
      payment: ['pay-1:7000', 'pay-2:7000'],
      inventory: ['[::1]:9092'],
    });
    const err = configError(() => gatewayConfig({ ORDER_SERVICE_ADDR: '127.0.0.1:9090,', PAYMENT_SERVICE_ADDR: 'x' }));
    assert.deepEqual(
      err.details.variables.map((v) => v.variable),
      ['ORDER_SERVICE_ADDR', 'PAYMENT_SERVICE_ADDR'],
    );
    assert.match(
      err.message,
      /ORDER_SERVICE_ADDR: expected host:port, or several separated by commas \(host:port,host:port; each once/,
    );
    assert.match(err.message, /got "127\.0\.0\.1:9090,"/);
    // Where a service listens is one address: a list there is refused, naming the variable.
    assert.deepEqual(
      configError(() => orderConfig({ ORDER_SERVICE_ADDR: '127.0.0.1:9090,127.0.0.1:9093' })).details.variables.map(
        (v) => v.variable,
      ),
      ['ORDER_SERVICE_ADDR'],
    );
  });
});

describe('planReplicas', () => {
  it('one replica listens where its variable says; several on default ports step over the three participants', () => {
    assert.deepEqual(planReplicas(1, {}), { order: [undefined], inventory: [undefined], payment: [undefined] });
    assert.deepEqual(planReplicas(2, DBS), {
      order: ['127.0.0.1:9090', '127.0.0.1:9093'],
      inventory: ['127.0.0.1:9092', '127.0.0.1:9095'],
      payment: ['127.0.0.1:9091', '127.0.0.1:9094'],
    });
    assert.deepEqual(
      planReplicas(3, { ...DBS, ORDER_SERVICE_ADDR: '0.0.0.0:7000', INVENTORY_SERVICE_ADDR: ':7010' }),
      {
        order: ['0.0.0.0:7000', '0.0.0.0:9092', '0.0.0.0:11184'],
        inventory: ['0.0.0.0:7010', '0.0.0.0:9102', '0.0.0.0:11194'],
        payment: ['127.0.0.1:9091', '127.0.0.1:11183', '127.0.0.1:13275'],
      },
      'the stride spans every participant port (7000..9091): each replica of all three in a block of its own',
    );
    assert.deepEqual(
      planReplicas(2, {
        ...DBS,
        ORDER_SERVICE_ADDR: '127.0.0.1:0',
        INVENTORY_SERVICE_ADDR: '127.0.0.1:0',
        PAYMENT_SERVICE_ADDR: '127.0.0.1:0',
      }).order,
      ['127.0.0.1:0', '127.0.0.1:0'],
      'port 0: the OS picks each',
    );
    assert.deepEqual(planReplicas(2, DBS, 'ephemeral').payment, ['127.0.0.1:0', '127.0.0.1:0']);
  });

  it("several replicas need each participant's database on PostgreSQL; bad counts and ports past 65535 are refused", () => {
    const err = configError(() => planReplicas(2, { ORDER_DB_URL: DBS.ORDER_DB_URL, PAYMENT_DB_URL: '/tmp/p.db' }));
    assert.deepEqual(
      err.details.variables.map((v) => v.variable),
      ['INVENTORY_DB_URL', 'PAYMENT_DB_URL'],
    );
    assert.match(err.message, /2 replicas of inventory share one database/);
    assert.match(err.message, /sagas start --replicas 2/);
    assert.doesNotThrow(() => planReplicas(1, {}), 'one replica keeps its SQLite file');
    for (const n of [0, -1, 1.5, MAX_REPLICAS + 1]) assert.throws(() => planReplicas(n, DBS), RangeError, String(n));
    const high = configError(() => planReplicas(2, { ...DBS, PAYMENT_SERVICE_ADDR: '127.0.0.1:65534' }));
    assert.equal(high.details.variable, 'INVENTORY_SERVICE_ADDR');
    assert.match(high.message, /past 65535/);
  });

  it('names: the participant alone, order-1, order-2… when several; counts as typed', () => {
    assert.equal(replicaName('order', 0, 1), 'order');
    assert.equal(replicaName('payment', 1, 2), 'payment-2');
    assert.equal(parseReplicaCount('2'), 2);
    assert.equal(parseReplicaCount(String(MAX_REPLICAS)), MAX_REPLICAS);
    for (const bad of ['0', '', ' ', '1.5', '1e1', String(MAX_REPLICAS + 1), 'two'])
      assert.throws(() => parseReplicaCount(bad), RangeError, JSON.stringify(bad));
  });
});

describe('sagas start --replicas', () => {
  it('reads --replicas N and --participants-db URL for the whole system', () => {
    assert.deepEqual(parseStartArgs(['--replicas', '2']), {
      target: undefined,
      json: false,
      gateways: undefined,
      replicas: 2,
    });
    assert.deepEqual(parseStartArgs(['--gateways=2', '--replicas=3', '--participants-db', 'postgres://u:p@db:5432']), {
      target: undefined,
      json: false,
      gateways: 2,
      replicas: 3,
      participantsDb: 'postgres://u:p@db:5432',
    });
    for (const bad of [
      ['--replicas', '0'],
      ['--replicas', String(MAX_REPLICAS + 1)],
      ['--replicas'],
      ['--participants-db', 'mysql://db/x'],
      ['--participants-db', '/var/lib/sagas'],
      ['order', '--replicas', '2'],
      ['gateway', '--participants-db', 'postgres://db'],
    ])
      assert.throws(() => parseStartArgs(bad), UsageError, bad.join(' '));
    assert.throws(
      () => parseStartArgs(['--participants-db', 'mysql://u:topsecret@db/x']),
      (e: unknown) => e instanceof UsageError && !e.message.includes('topsecret'),
    );
  });

  it('--help shows the flags a newcomer looks for', () => {
    assert.match(START_USAGE, /--replicas N/);
    assert.match(START_USAGE, /--participants-db URL/);
    assert.match(START_USAGE, /sagas_order, sagas_inventory and\s+sagas_payment/);
  });
});

describe('npm run bench -- --replicas', () => {
  const now = new Date('2026-12-06T12:00:00Z');
  it('--replicas N puts the participants on PostgreSQL; --participants postgres with one replica too', () => {
    const r = parseBenchArgs(['--gateways', '2', '--saga-log', 'postgres', '--replicas', '2'], now);
    assert.ok(r !== 'help');
    assert.equal(r.replicas, 2);
    assert.equal(r.participants, 'postgres');
    assert.match(r.out, /closed-c64-pg-g2-r2\.json$/);
    const one = parseBenchArgs(['--participants', 'postgres'], now);
    assert.ok(one !== 'help');
    assert.deepEqual([one.replicas, one.participants], [1, 'postgres']);
    assert.match(one.out, /closed-c64-normal-ppg\.json$/);
    const plain = parseBenchArgs([], now);
    assert.ok(plain !== 'help');
    assert.deepEqual([plain.replicas, plain.participants], [1, 'sqlite']);
    for (const bad of [
      ['--replicas', '0'],
      ['--replicas', '2', '--participants', 'sqlite'],
      ['--participants', 'mysql'],
    ])
      assert.throws(() => parseBenchArgs(bad, now), BenchUsageError, bad.join(' '));
    assert.match(BENCH_USAGE, /--replicas <n>/);
  });
});
