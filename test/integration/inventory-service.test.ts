/**
 * The inventory service over a real gRPC server and as its own process (main.ts); the domain, the
 * store and the handlers in-process are in test/unit/inventory-service.test.ts.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { callUnary, serverCredentials, startGrpcServer } from '../../src/platform/grpc/grpc.js';
import {
  InventoryServiceClient,
  InventoryServiceService,
  ReleaseOutcome,
  ReserveOutcome,
} from '../../src/gen/inventory/v1/inventory.js';
import { DEFAULT_CATALOG } from '../../src/services/inventory/domain.js';
import { openInventoryDatabase } from '../../src/services/inventory/store.js';
import { createInventoryService } from '../../src/services/inventory/server.js';
import { silentLogger, startMain, tempDir, tempDatabase } from '../helpers/participants.js';
import { asGateway, issuedUnder, testTls, tlsUnder } from '../helpers/tls.js';

const openTemp = (file?: string) => tempDatabase(openInventoryDatabase, 'inventory', file);

describe('inventory gRPC', () => {
  test('round trip over a real server with an idempotency key', async () => {
    const db = openTemp();
    const implementation = createInventoryService({ db, logger: silentLogger, catalog: DEFAULT_CATALOG });
    const server = await startGrpcServer(
      { host: '127.0.0.1', port: 0 },
      [{ definition: InventoryServiceService, implementation }],
      serverCredentials(await testTls(), 'inventory'),
    );
    const client = await asGateway(InventoryServiceClient, server.address, 'inventory');
    try {
      const req = {
        orderId: 'rt-1',
        items: [
          { productId: 'prod_2', quantity: 6 },
          { productId: 'prod_2', quantity: 4 },
        ],
      };
      const opts = { idempotencyKey: 'rt-1:reserve_stock', timeoutMs: 5_000 };
      const first = await callUnary(client.reserve.bind(client), req, opts);
      assert.equal(first.outcome, ReserveOutcome.RESERVE_OUTCOME_RESERVED);
      const replay = await callUnary(client.reserve.bind(client), req, opts);
      assert.deepEqual(replay, first);
      const list = await callUnary(client.listProducts.bind(client), { productIds: [] }, { timeoutMs: 5_000 });
      assert.deepEqual(
        list.products.find((p) => p.productId === 'prod_2'),
        { productId: 'prod_2', available: 0, reserved: 10, sold: 0, total: 10, priceCents: undefined },
      );
      const release = await callUnary(
        client.release.bind(client),
        { orderId: 'rt-1' },
        { idempotencyKey: 'rt-1:reserve_stock:undo', timeoutMs: 5_000 },
      );
      assert.equal(release.outcome, ReleaseOutcome.RELEASE_OUTCOME_RELEASED);
    } finally {
      client.close();
      await server.shutdown();
    }
  });
});

describe('inventory main', () => {
  test('seeds from INVENTORY_CATALOG, reports ready, and stops cleanly on SIGTERM', async () => {
    const dir = tempDir('inventory-main');
    await issuedUnder(dir);
    const catalogFile = path.join(dir, 'catalog.json');
    fs.writeFileSync(catalogFile, '{"gadget": 3, "widget": {"stock": 2, "price": 12.50}}');
    const proc = startMain('inventory', {
      DATA_DIR: dir,
      INVENTORY_SERVICE_ADDR: '127.0.0.1:0',
      INVENTORY_CATALOG: catalogFile,
    });
    const ready = await proc.ready;
    assert.equal(ready.service, 'inventory');
    const client = await asGateway(InventoryServiceClient, ready.address, 'inventory', tlsUnder(dir));
    const list = await callUnary(client.listProducts.bind(client), { productIds: [] }, { timeoutMs: 5_000 });
    assert.deepEqual(list.products, [
      { productId: 'gadget', available: 3, reserved: 0, sold: 0, total: 3, priceCents: undefined },
      { productId: 'widget', available: 2, reserved: 0, sold: 0, total: 2, priceCents: 1250 },
    ]);
    const one = await callUnary(
      client.listProducts.bind(client),
      { productIds: ['widget', 'nothing'] },
      { timeoutMs: 5_000 },
    );
    assert.deepEqual(
      one.products.map((p) => p.productId),
      ['widget'],
      'only the products asked for; unknown ids are left out',
    );
    client.close();
    proc.stop();
    assert.equal((await proc.exit).code, 0);
    assert.ok(fs.existsSync(path.join(dir, 'inventory.db')));
  });

  test('an invalid INVENTORY_CATALOG prints a clear message and exits 1', async () => {
    const dir = tempDir('inventory-main');
    const catalogFile = path.join(dir, 'catalog.json');
    fs.writeFileSync(catalogFile, JSON.stringify({ gadget: -3 }));
    const proc = startMain('inventory', {
      DATA_DIR: dir,
      INVENTORY_SERVICE_ADDR: '127.0.0.1:0',
      INVENTORY_CATALOG: catalogFile,
    });
    const { code, stderr } = await proc.exit;
    assert.equal(code, 1);
    assert.match(stderr, /INVENTORY_CATALOG/);
    assert.match(stderr, /gadget/);
    assert.equal(fs.existsSync(path.join(dir, 'inventory.db')), false, 'nothing is created on a config error');
  });

  test('a bad price in INVENTORY_CATALOG is refused at start, naming the product', async () => {
    const dir = tempDir('inventory-main');
    const catalogFile = path.join(dir, 'catalog.json');
    fs.writeFileSync(catalogFile, '{"gadget": 3, "widget": {"stock": 2, "price": 12.505}}');
    const proc = startMain('inventory', {
      DATA_DIR: dir,
      INVENTORY_SERVICE_ADDR: '127.0.0.1:0',
      INVENTORY_CATALOG: catalogFile,
    });
    const { code, stderr } = await proc.exit;
    assert.equal(code, 1);
    assert.match(
      stderr,
      /INVENTORY_CATALOG: .*price of "widget" must be a number of dollars with at most two decimals/,
    );
    assert.equal(fs.existsSync(path.join(dir, 'inventory.db')), false, 'nothing is created on a config error');
  });
});
