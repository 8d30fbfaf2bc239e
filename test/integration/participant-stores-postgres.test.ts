// The participants' store ports on PostgreSQL (the machine's server; each test makes its own
// database and drops it; "two replicas" are two pools on it): the conformance suite every store
// implementation passes, then what only PostgreSQL has — replicas starting together, a database
// given to two services, a server out of reach.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { participantStoreConformance, postgresBackend } from '../helpers/participant-store-conformance.js';
import { createTempDatabase } from '../helpers/postgres.js';
import { freePort } from '../helpers/system.js';
import { openPostgresOrderStore, ORDER_PG_MIGRATIONS } from '../../src/services/order/postgres-store.js';
import { openPostgresPaymentStore } from '../../src/services/payment/postgres-store.js';
import { INVENTORY_PG_MIGRATIONS, openPostgresInventoryStore } from '../../src/services/inventory/postgres-store.js';
import { StoreOpenError, StoreUnavailableError } from '../../src/platform/storage/store-errors.js';
import { validateReserve } from '../../src/services/inventory/domain.js';

participantStoreConformance(postgresBackend());

async function count(url: string, sql: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ n: string }>(sql);
    return Number(rows[0]?.n);
  } finally {
    await c.end();
  }
}

describe('participant stores on PostgreSQL: starting, sharing, failing', () => {
  test('replicas starting together migrate once, one at a time, and seed the catalog once', async () => {
    const [orderDb, inventoryDb] = await Promise.all([
      createTempDatabase('participant_store_test'),
      createTempDatabase('participant_store_test'),
    ]);
    const stores: { close(): Promise<void> }[] = [];
    try {
      const catalog = { apple: 10, banana: { stock: 5, priceCents: 250 } };
      const orders = Array.from({ length: 5 }, () => openPostgresOrderStore({ url: orderDb.url, poolSize: 2 }));
      const inventories = Array.from({ length: 5 }, () =>
        openPostgresInventoryStore({ url: inventoryDb.url, poolSize: 2, catalog }),
      );
      const opened = await Promise.all([...orders, ...inventories]);
      stores.push(...opened);
      assert.equal(
        await count(orderDb.url, 'SELECT count(*) AS n FROM order_schema_migrations'),
        ORDER_PG_MIGRATIONS.length,
      );
      assert.equal(
        await count(inventoryDb.url, 'SELECT count(*) AS n FROM inventory_schema_migrations'),
        INVENTORY_PG_MIGRATIONS.length,
      );
      const inventory = await inventories[0]!;
      assert.deepEqual(await inventory.listProducts(), [
        { productId: 'apple', available: 10, reserved: 0, sold: 0, total: 10 },
        { productId: 'banana', available: 5, reserved: 0, sold: 0, total: 5, priceCents: 250 },
      ]);
      // A replica started later finds the schema as it is and the stock as it moved.
      await inventory.reserve(validateReserve({ orderId: 'o1', items: [{ productId: 'apple', quantity: 3 }] }));
      const late = await openPostgresInventoryStore({ url: inventoryDb.url, poolSize: 1, catalog: { apple: 99 } });
      stores.push(late);
      assert.deepEqual((await late.listProducts(['apple']))[0], {
        productId: 'apple',
        available: 7,
        reserved: 3,
        sold: 0,
        total: 10,
      });
      // Every replica writes to the one database.
      const ids = await Promise.all(opened.map((s) => s.databaseId()));
      assert.equal(new Set(ids.slice(0, 5)).size, 1);
      assert.equal(new Set(ids.slice(5)).size, 1);
      assert.notEqual(ids[0], ids[5]);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
      await Promise.all([orderDb.drop(), inventoryDb.drop()]);
    }
  });

  test("a database given to two services is refused, naming the other service and the URL's host, never its password", async () => {
    const shared = await createTempDatabase('participant_store_test');
    try {
      const withPassword = new URL(shared.url);
      withPassword.password = 's3cret-pw';
      const order = await openPostgresOrderStore({ url: withPassword.toString(), poolSize: 1 });
      await order.close();
      const err = await openPostgresPaymentStore({
        url: withPassword.toString(),
        poolSize: 1,
        chargeLimitCents: 100,
      }).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof StoreOpenError, `expected StoreOpenError, got ${String(err)}`);
      assert.match(err.message, /order service's tables/);
      assert.match(err.message, /database of its own/);
      assert.doesNotMatch(err.message, /s3cret-pw/);
      assert.match(err.message, /\*\*\*@127\.0\.0\.1/);
    } finally {
      await shared.drop();
    }
  });

  test('a server out of reach is StoreUnavailableError, naming the URL without its password', async () => {
    const port = await freePort();
    const err = await openPostgresOrderStore({
      url: `postgres://app:hunter2-secret@127.0.0.1:${port}/orders`,
      poolSize: 1,
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof StoreUnavailableError, `expected StoreUnavailableError, got ${String(err)}`);
    assert.equal(err.code, 'store_unavailable');
    assert.match(
      err.message,
      new RegExp(`cannot open the order database at postgres://app:\\*\\*\\*@127\\.0\\.0\\.1:${port}/orders`),
    );
    assert.doesNotMatch(err.message, /hunter2/);
  });
});
