// The supervisor's plans, computed without starting anything: where each gateway and admin
// listener goes, and the loopback address a child's unspecified one is dialled on. Starting
// processes (spawnService, startSystem): test/integration/supervisor.test.ts.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  MAX_GATEWAYS,
  dialableAddr,
  gatewayName,
  planAdmins,
  planGateways,
  serviceV8Flags,
} from '../../src/supervisor/supervisor.js';
import { ConfigError } from '../../src/platform/errors.js';

const PG_URL = 'postgres://sagas@127.0.0.1:5432/never_dialled_by_fakes';

describe('dialableAddr', () => {
  it('turns unspecified hosts into loopback', () => {
    assert.equal(dialableAddr('0.0.0.0:9090'), '127.0.0.1:9090');
    assert.equal(dialableAddr('[::]:9090'), '[::1]:9090');
    assert.equal(dialableAddr('http://0.0.0.0:8080'), '127.0.0.1:8080');
    assert.equal(dialableAddr('127.0.0.1:9091'), '127.0.0.1:9091');
  });
});

describe('serviceV8Flags', () => {
  it("gives gateways and participants their own heap sizing; V8_FLAGS_* replace a group's flags, empty included", () => {
    const gw = serviceV8Flags('gateway-2', {});
    const order = serviceV8Flags('order-1', {});
    assert.ok(gw.includes('--max-semi-space-size=16') && order.includes('--max-semi-space-size=8'));
    const env = { V8_FLAGS_GATEWAY: ' --max-semi-space-size=4  --trace-gc ', V8_FLAGS_PARTICIPANTS: '' };
    assert.deepEqual(serviceV8Flags('gateway', env), ['--max-semi-space-size=4', '--trace-gc']);
    assert.deepEqual(serviceV8Flags('payment', env), []);
    assert.deepEqual(serviceV8Flags('inventory', { V8_FLAGS_GATEWAY: '' }), serviceV8Flags('inventory', {}));
  });
});

describe('planAdmins', () => {
  it('one gateway: where ADMIN_ADDR says; ephemeral: 127.0.0.1:0 unless ADMIN_ADDR is set; several: its port + i, past the HTTP ports', () => {
    assert.deepEqual(planAdmins(1, {}), [undefined]);
    assert.deepEqual(planAdmins(2, {}, 'ephemeral'), ['127.0.0.1:0', '127.0.0.1:0']);
    assert.deepEqual(planAdmins(1, { ADMIN_ADDR: 'off' }, 'ephemeral'), [undefined]);
    // Default HTTP 8080..8082 and admin 8081: the admin listeners move to 8083..8085.
    assert.deepEqual(planAdmins(3, {}), ['127.0.0.1:8083', '127.0.0.1:8084', '127.0.0.1:8085']);
    assert.deepEqual(planAdmins(2, { ADMIN_ADDR: '127.0.0.1:9100' }), ['127.0.0.1:9100', '127.0.0.1:9101']);
    assert.deepEqual(planAdmins(2, { ADMIN_ADDR: 'off' }), [undefined, undefined]);
    assert.deepEqual(planAdmins(2, { ADMIN_ADDR: '127.0.0.1:0' }), ['127.0.0.1:0', '127.0.0.1:0']);
    assert.throws(
      () => planAdmins(3, { ADMIN_ADDR: ':65534' }),
      (e: unknown) => e instanceof ConfigError && e.details?.variable === 'ADMIN_ADDR',
    );
    assert.throws(
      () => planAdmins(2, { ADMIN_ADDR: 'nowhere' }),
      (e: unknown) => e instanceof ConfigError && e.details?.variable === 'ADMIN_ADDR',
    );
  });
});

describe('planGateways', () => {
  const pg = { SAGA_LOG_URL: PG_URL };
  it('one gateway listens where HTTP_ADDR says; several on its port, port + 1, …', () => {
    assert.deepEqual(planGateways(1, {}), [undefined]);
    assert.deepEqual(planGateways(3, pg), ['0.0.0.0:8080', '0.0.0.0:8081', '0.0.0.0:8082']);
    assert.deepEqual(planGateways(2, { ...pg, HTTP_ADDR: '127.0.0.1:9000' }), ['127.0.0.1:9000', '127.0.0.1:9001']);
    assert.deepEqual(planGateways(2, { ...pg, HTTP_ADDR: '[::1]:9000' }), ['[::1]:9000', '[::1]:9001']);
    assert.deepEqual(
      planGateways(2, { ...pg, HTTP_ADDR: '127.0.0.1:0' }),
      ['127.0.0.1:0', '127.0.0.1:0'],
      'port 0: the OS picks each',
    );
    assert.deepEqual(planGateways(2, pg, 'ephemeral'), ['127.0.0.1:0', '127.0.0.1:0']);
  });

  it('several gateways need a PostgreSQL SAGA_LOG_URL; a count out of 1..16 and ports past 65535 are refused', () => {
    for (const env of [
      {},
      { SAGA_LOG_URL: '' },
      { SAGA_LOG_URL: '/data/saga.db' },
      { SAGA_LOG_URL: 'mysql://u:secret@h/db' },
    ]) {
      assert.throws(
        () => planGateways(2, env),
        (e: unknown) =>
          e instanceof ConfigError &&
          e.details?.variable === 'SAGA_LOG_URL' &&
          /set SAGA_LOG_URL=postgres:\/\//.test(e.message) &&
          !e.message.includes('secret'),
        JSON.stringify(env),
      );
    }
    assert.deepEqual(planGateways(2, { SAGA_LOG_URL: 'postgresql://u@h/db' }, 'ephemeral').length, 2);
    for (const n of [0, -1, 1.5, Number.NaN, MAX_GATEWAYS + 1])
      assert.throws(() => planGateways(n, { SAGA_LOG_URL: PG_URL }), RangeError, String(n));
    assert.equal(planGateways(MAX_GATEWAYS, { SAGA_LOG_URL: PG_URL }).length, 16);
    assert.throws(
      () => planGateways(3, { SAGA_LOG_URL: PG_URL, HTTP_ADDR: ':65534' }),
      (e: unknown) => e instanceof ConfigError && e.details?.variable === 'HTTP_ADDR',
    );
  });

  it('names gateways "gateway" alone, gateway-1, gateway-2… when several', () => {
    assert.equal(gatewayName(0, 1), 'gateway');
    assert.deepEqual(
      [0, 1, 2].map((i) => gatewayName(i, 3)),
      ['gateway-1', 'gateway-2', 'gateway-3'],
    );
  });
});
