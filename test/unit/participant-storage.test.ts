// Where a participant keeps its state: <SERVICE>_DB_URL read and checked (no password in any
// message), the SQLite inbox refusing an effect that is not synchronous, and /readyz showing the
// database's check.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ConfigError } from '../../src/platform/errors.js';
import { resolveVariables } from '../../src/platform/config/config-schema.js';
import { orderConfig, ORDER_VARIABLES } from '../../src/services/order/config.js';
import { paymentConfig } from '../../src/services/payment/config.js';
import { inventoryConfig } from '../../src/services/inventory/config.js';
import { inboxOver } from '../../src/platform/storage/inbox.js';
import { openPaymentDatabase, sqlitePaymentStore } from '../../src/services/payment/store.js';
import { validateCharge } from '../../src/services/payment/domain.js';
import { startMetricsServer, type Telemetry } from '../../src/platform/telemetry/telemetry.js';
import { tempDatabase } from '../helpers/participants.js';

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err;
  }
  throw new Error('expected a ConfigError');
}

describe('<SERVICE>_DB_URL', () => {
  test('unset: the SQLite file under DATA_DIR, as before', () => {
    assert.deepEqual(orderConfig({ DATA_DIR: '/srv/d', SERVICE_DB_SYNC: 'full' }).storage, {
      kind: 'sqlite',
      file: path.join('/srv/d', 'order.db'),
      synchronous: 'full',
    });
    assert.equal(inventoryConfig({}).storage.kind, 'sqlite');
  });

  test('a postgres:// URL: PostgreSQL, with SERVICE_DB_POOL_SIZE connections (10 by default); each service reads its own', () => {
    assert.deepEqual(orderConfig({ ORDER_DB_URL: 'postgres://app:pw@db:5432/orders' }).storage, {
      kind: 'postgres',
      url: 'postgres://app:pw@db:5432/orders',
      poolSize: 10,
    });
    assert.deepEqual(paymentConfig({ PAYMENT_DB_URL: 'postgresql://db/payments', SERVICE_DB_POOL_SIZE: '3' }).storage, {
      kind: 'postgres',
      url: 'postgresql://db/payments',
      poolSize: 3,
    });
    assert.equal(paymentConfig({ ORDER_DB_URL: 'postgres://db/orders' }).storage.kind, 'sqlite');
    assert.equal(inventoryConfig({ INVENTORY_DB_URL: 'postgres://db/inv' }).storage.kind, 'postgres');
  });

  test('a URL that is not PostgreSQL is refused naming the variable, its password masked', () => {
    const err = configError(() => paymentConfig({ PAYMENT_DB_URL: 'mysql://app:topsecret@db/payments' }));
    assert.equal(err.details.variable, 'PAYMENT_DB_URL');
    assert.match(err.message, /PAYMENT_DB_URL: expected postgres:\/\/user\[:password\]@host/);
    assert.doesNotMatch(err.message, /topsecret/);
    assert.match(err.message, /\*\*\*/);
    assert.equal(configError(() => orderConfig({ ORDER_DB_URL: 'postgres://' })).details.variable, 'ORDER_DB_URL');
    assert.equal(
      configError(() => inventoryConfig({ SERVICE_DB_POOL_SIZE: '0' })).details.variable,
      'SERVICE_DB_POOL_SIZE',
    );
  });

  test('`sagas config order` shows it, its password masked', () => {
    const r = resolveVariables(ORDER_VARIABLES, { ORDER_DB_URL: 'postgres://app:topsecret@db/orders' });
    const shown = r.settings.find((s) => s.variable === 'ORDER_DB_URL');
    assert.equal(shown?.value, 'postgres://app:***@db/orders');
    assert.equal(shown?.secret, true);
    assert.ok(r.settings.some((s) => s.variable === 'SERVICE_DB_POOL_SIZE'));
  });
});

describe('the SQLite inbox', () => {
  test('refuses an effect that is not synchronous (awaiting it would commit before its writes), and keeps nothing', async () => {
    const db = tempDatabase(openPaymentDatabase, 'payment');
    const store = sqlitePaymentStore(db, { chargeLimitCents: 50_000 });
    const inbox = inboxOver(store.inbox);
    const req = validateCharge({ orderId: 'o1', amountCents: 100 });
    await assert.rejects(
      inbox.run('k1', 'Charge', req, async (tx) => tx.charge(req)),
      (err: Error) => err instanceof TypeError && /must be synchronous/.test(err.message),
    );
    assert.equal(await store.get('o1'), undefined);
    const ok = await inbox.run('k1', 'Charge', req, (tx) => tx.charge(req));
    assert.deepEqual(ok, { response: { outcome: 'charged', declineReason: '' }, replayed: false });
  });
});

describe('/readyz of a participant', () => {
  test("answers the database's check: 200 with it ok, 503 with it unavailable", async () => {
    const telemetry = { serveMetrics: () => undefined } as unknown as Telemetry;
    let database = true;
    const server = await startMetricsServer(telemetry, { host: '127.0.0.1', port: 0 }, async () => ({
      ready: database,
      checks: { database: database ? 'ok' : 'unavailable' },
    }));
    assert.ok(server);
    try {
      const up = await fetch(`http://${server.address}/readyz`);
      assert.equal(up.status, 200);
      assert.deepEqual(await up.json(), { status: 'ready', checks: { database: 'ok' } });
      database = false;
      const down = await fetch(`http://${server.address}/readyz`);
      assert.equal(down.status, 503);
      assert.deepEqual(await down.json(), { status: 'not_ready', checks: { database: 'unavailable' } });
    } finally {
      await server.close();
    }
  });
});
