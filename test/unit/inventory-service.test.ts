import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../../src/platform/errors.js';
import { createInbox } from '../../src/platform/storage/inbox.js';
import { CommitOutcome, ReleaseOutcome, ReserveOutcome } from '../../src/gen/inventory/v1/inventory.js';
import {
  DEFAULT_CATALOG,
  decideCommit,
  decideRelease,
  decideReserve,
  catalogProduct,
  parseCatalog,
  sameLines,
  sumLines,
  validateReserve,
  type Catalog,
  type ReserveInput,
  type StockLine,
} from '../../src/services/inventory/domain.js';
import { readCatalog } from '../../src/services/inventory/catalog.js';
import {
  createInventoryStore,
  INVENTORY_MIGRATIONS,
  openInventoryDatabase,
  type InventoryStore,
} from '../../src/services/inventory/store.js';
import { openDatabase } from '../../src/platform/storage/db.js';
import { createInventoryService } from '../../src/services/inventory/server.js';
import {
  captureLogger,
  codeOf,
  errorCode,
  invoke,
  silentLogger,
  tempDir,
  tempDatabase,
} from '../helpers/participants.js';

const CATALOG: Catalog = { apple: 10, banana: 5, cherry: 0 };

const openTemp = (file?: string) => tempDatabase(openInventoryDatabase, 'inventory', file);

function tempStore(catalog: Catalog = CATALOG): InventoryStore {
  return createInventoryStore(openTemp(), { catalog });
}

function stock(store: InventoryStore): Record<string, [number, number, number]> {
  return Object.fromEntries(store.listProducts().map((p) => [p.productId, [p.available, p.reserved, p.sold]]));
}

function reserve(store: InventoryStore, orderId: string, items: ReserveInput['items']) {
  return store.reserve(validateReserve({ orderId, items }));
}

describe('inventory domain', () => {
  test('duplicate lines are summed per product and sorted', () => {
    assert.deepEqual(
      sumLines([
        { productId: 'b', quantity: 6 },
        { productId: 'a', quantity: 1 },
        { productId: 'b', quantity: 6 },
      ]),
      [
        { productId: 'a', quantity: 1 },
        { productId: 'b', quantity: 12 },
      ],
    );
  });

  const fresh = { tombstoned: false, status: undefined, lines: [] };
  const lines = [
    { productId: 'a', quantity: 2 },
    { productId: 'b', quantity: 3 },
  ];

  test('reserve: enough of everything → hold', () => {
    assert.deepEqual(
      decideReserve(
        fresh,
        lines,
        new Map([
          ['a', 2],
          ['b', 3],
        ]),
      ),
      { outcome: 'reserved', hold: true },
    );
  });

  test('reserve: unknown products are reported before shortages, sorted', () => {
    const d = decideReserve(
      fresh,
      [{ productId: 'z', quantity: 1 }, ...lines, { productId: 'y', quantity: 1 }],
      new Map([['a', 0]]),
    );
    assert.deepEqual(d, { outcome: 'unknown_product', productIds: ['b', 'y', 'z'] });
  });

  test('reserve: every short product is named', () => {
    assert.deepEqual(
      decideReserve(
        fresh,
        lines,
        new Map([
          ['a', 1],
          ['b', 2],
        ]),
      ),
      {
        outcome: 'insufficient_stock',
        productIds: ['a', 'b'],
      },
    );
  });

  test('reserve: a tombstone or a released reservation refuses; held or committed is idempotent', () => {
    const stocked = new Map([
      ['a', 99],
      ['b', 99],
    ]);
    assert.deepEqual(decideReserve({ tombstoned: true, status: undefined, lines: [] }, lines, stocked), {
      outcome: 'released',
    });
    assert.deepEqual(decideReserve({ tombstoned: false, status: 'RELEASED', lines }, lines, stocked), {
      outcome: 'released',
    });
    assert.deepEqual(decideReserve({ tombstoned: false, status: 'HELD', lines }, lines, new Map()), {
      outcome: 'reserved',
      hold: false,
    });
    assert.deepEqual(decideReserve({ tombstoned: false, status: 'COMMITTED', lines }, lines, new Map()), {
      outcome: 'reserved',
      hold: false,
    });
  });

  test('reserve: other items or quantities for an order that holds (or sold) a reservation is a conflict', () => {
    const stocked = new Map([
      ['a', 99],
      ['b', 99],
      ['c', 99],
    ]);
    const others: StockLine[][] = [
      [{ productId: 'a', quantity: 2 }],
      [
        { productId: 'a', quantity: 2 },
        { productId: 'b', quantity: 4 },
      ],
      [...lines, { productId: 'c', quantity: 1 }],
      [
        { productId: 'a', quantity: 2 },
        { productId: 'c', quantity: 3 },
      ],
    ];
    for (const status of ['HELD', 'COMMITTED'] as const) {
      for (const other of others) {
        assert.deepEqual(
          decideReserve({ tombstoned: false, status, lines }, other, stocked),
          { outcome: 'conflict' },
          `${status} ${JSON.stringify(other)}`,
        );
      }
    }
    assert.equal(sameLines(lines, [...lines]), true);
  });

  test('release and commit decisions', () => {
    assert.deepEqual(decideRelease('HELD'), { outcome: 'released', giveBack: true });
    assert.deepEqual(decideRelease('RELEASED'), { outcome: 'released', giveBack: false });
    assert.deepEqual(decideRelease('COMMITTED'), { outcome: 'already_committed' });
    assert.deepEqual(decideRelease(undefined), { outcome: 'nothing_reserved' });
    assert.deepEqual(decideCommit('HELD'), { outcome: 'committed', sell: true });
    assert.deepEqual(decideCommit('COMMITTED'), { outcome: 'committed', sell: false });
    assert.deepEqual(decideCommit('RELEASED'), { outcome: 'not_reserved' });
    assert.deepEqual(decideCommit(undefined), { outcome: 'not_reserved' });
  });

  const invalid: Array<[string, ReserveInput]> = [
    ['a bad order id', { orderId: 'a b', items: [{ productId: 'a', quantity: 1 }] }],
    ['no items', { orderId: 'o', items: [] }],
    ['101 items', { orderId: 'o', items: Array.from({ length: 101 }, () => ({ productId: 'a', quantity: 1 })) }],
    ['a blank product', { orderId: 'o', items: [{ productId: '  ', quantity: 1 }] }],
    ['quantity 0', { orderId: 'o', items: [{ productId: 'a', quantity: 0 }] }],
    ['quantity 10001', { orderId: 'o', items: [{ productId: 'a', quantity: 10_001 }] }],
    ['a negative quantity', { orderId: 'o', items: [{ productId: 'a', quantity: -3 }] }],
  ];
  for (const [name, input] of invalid) {
    test(`refuses ${name} as invalid_argument`, () => {
      assert.equal(
        codeOf(() => validateReserve(input)),
        'invalid_argument',
      );
    });
  }

  test('catalog validation', () => {
    assert.deepEqual(parseCatalog({ a: 0, b: 1_000_000_000 }, 'f.json'), { a: 0, b: 1_000_000_000 });
    const bad: unknown[] = [
      [],
      null,
      'x',
      3,
      {},
      { a: -1 },
      { a: 1.5 },
      { a: '3' },
      { a: 1_000_000_001 },
      { '': 1 },
      { ['p'.repeat(65)]: 1 },
    ];
    for (const value of bad) {
      assert.throws(() => parseCatalog(value, 'f.json'), ConfigError, JSON.stringify(value));
    }
  });

  test('catalog prices: {"stock", "price"} beside the plain form, price in exact cents', () => {
    const parsed = parseCatalog(
      JSON.parse(
        '{"a": 3, "b": {"stock": 2, "price": 12.50}, "c": {"stock": 0}, "d": {"stock": 1, "price": 0.29}, "e": {"stock": 1, "price": 1000000}}',
      ),
      'f.json',
    );
    assert.deepEqual(parsed, {
      a: 3,
      b: { stock: 2, priceCents: 1250 },
      c: { stock: 0 },
      d: { stock: 1, priceCents: 29 },
      e: { stock: 1, priceCents: 100_000_000 },
    });
    assert.deepEqual(Object.values(parsed).map(catalogProduct), [
      { stock: 3, priceCents: undefined },
      { stock: 2, priceCents: 1250 },
      { stock: 0, priceCents: undefined },
      { stock: 1, priceCents: 29 },
      { stock: 1, priceCents: 100_000_000 },
    ]);
    // Each refusal names the file and the product, and says what is expected.
    const bad: Array<[unknown, RegExp]> = [
      [{ w: { stock: -1, price: 1 } }, /^INVENTORY_CATALOG: f\.json: stock of "w" must be an integer from 0/],
      [{ w: { price: 1 } }, /^INVENTORY_CATALOG: f\.json: "w" has no "stock"/],
      [
        { w: { stock: 1, price: 0 } },
        /price of "w" must be a number of dollars with at most two decimals, from 0\.01 to 1000000, got 0$/,
      ],
      [{ w: { stock: 1, price: -5 } }, /price of "w" .* got -5$/],
      [{ w: { stock: 1, price: 10.001 } }, /price of "w" .* got 10\.001$/],
      [{ w: { stock: 1, price: 1e-9 } }, /price of "w" .* got 1e-9$/],
      [{ w: { stock: 1, price: 1_000_000.01 } }, /price of "w" .* got 1000000\.01$/],
      [{ w: { stock: 1, price: '12.50' } }, /price of "w" .* got "12\.50"$/],
      [{ w: { stock: 1, price: null } }, /price of "w" .* got null$/],
      [
        { w: { stock: 1, prcie: 2 } },
        /^INVENTORY_CATALOG: f\.json: "w" has unknown field\(s\) "prcie"; expected "stock" and "price"$/,
      ],
      [{ w: [1] }, /stock of "w" must be an integer/],
    ];
    for (const [value, message] of bad) {
      try {
        parseCatalog(value, 'f.json');
        assert.fail(`expected a ConfigError for ${JSON.stringify(value)}`);
      } catch (err) {
        assert.ok(err instanceof ConfigError, String(err));
        assert.equal(err.details?.variable, 'INVENTORY_CATALOG');
        assert.match(err.message, message);
      }
    }
  });

  test('readCatalog: the default, a file, and clear ConfigErrors', () => {
    assert.deepEqual(readCatalog({}), { prod_1: 15, prod_2: 10, prod_3: 0 });
    assert.equal(readCatalog({ INVENTORY_CATALOG: '' }), DEFAULT_CATALOG);
    const dir = tempDir('catalog');
    const good = path.join(dir, 'good.json');
    fs.writeFileSync(good, '{"widget": 7}');
    assert.deepEqual(readCatalog({ INVENTORY_CATALOG: good }), { widget: 7 });
    const notJson = path.join(dir, 'bad.json');
    fs.writeFileSync(notJson, '{widget: 7');
    for (const file of [notJson, path.join(dir, 'missing.json')]) {
      try {
        readCatalog({ INVENTORY_CATALOG: file });
        assert.fail('expected a ConfigError');
      } catch (err) {
        assert.ok(err instanceof ConfigError);
        assert.equal(err.code, 'invalid_config');
        assert.equal(err.details?.variable, 'INVENTORY_CATALOG');
      }
    }
  });
});

describe('inventory store', () => {
  test('seeds the catalog once: a reopen keeps the stock as it was, not as the catalog says', () => {
    const file = path.join(tempDir('inventory'), 'inventory.db');
    const db1 = openInventoryDatabase(file);
    const first = createInventoryStore(db1, { catalog: CATALOG });
    assert.deepEqual(stock(first), { apple: [10, 0, 0], banana: [5, 0, 0], cherry: [0, 0, 0] });
    reserve(first, 'o1', [{ productId: 'apple', quantity: 4 }]);
    db1.close();
    const db2 = openTemp(file);
    const reopened = createInventoryStore(db2, { catalog: { apple: 999, durian: 1 } });
    assert.deepEqual(stock(reopened), { apple: [6, 4, 0], banana: [5, 0, 0], cherry: [0, 0, 0] });
  });

  test('catalog prices: seeded with the stock, listed, set again on every open; stock seeded once', () => {
    const file = path.join(tempDir('inventory'), 'inventory.db');
    const db1 = openInventoryDatabase(file);
    const first = createInventoryStore(db1, {
      catalog: { apple: { stock: 10, priceCents: 250 }, banana: 5, cherry: { stock: 0, priceCents: 99 } },
    });
    assert.deepEqual(first.listProducts(), [
      { productId: 'apple', available: 10, reserved: 0, sold: 0, total: 10, priceCents: 250 },
      { productId: 'banana', available: 5, reserved: 0, sold: 0, total: 5 },
      { productId: 'cherry', available: 0, reserved: 0, sold: 0, total: 0, priceCents: 99 },
    ]);
    assert.deepEqual(
      first.listProducts(['cherry', 'apple', 'durian']).map((p) => p.productId),
      ['apple', 'cherry'],
      'only those asked for, sorted',
    );
    reserve(first, 'o1', [{ productId: 'apple', quantity: 4 }]);
    db1.close();
    // A restart with another catalog: its prices replace the old ones (a product it does not price has none), the stock stays.
    const reopened = createInventoryStore(openTemp(file), {
      catalog: {
        apple: { stock: 999, priceCents: 300 },
        banana: { stock: 1, priceCents: 120 },
        cherry: 0,
        durian: { stock: 1, priceCents: 1 },
      },
    });
    assert.deepEqual(reopened.listProducts(), [
      { productId: 'apple', available: 6, reserved: 4, sold: 0, total: 10, priceCents: 300 },
      { productId: 'banana', available: 5, reserved: 0, sold: 0, total: 5, priceCents: 120 },
      { productId: 'cherry', available: 0, reserved: 0, sold: 0, total: 0 },
    ]);
  });

  test('a database from before prices gains the column, without prices', () => {
    const file = path.join(tempDir('inventory'), 'inventory.db');
    const old = openDatabase(file, { migrations: INVENTORY_MIGRATIONS.slice(0, 2) });
    old.exec(
      "INSERT INTO products (product_id, available, reserved, sold) VALUES ('apple', 7, 0, 0); INSERT INTO meta (key, value) VALUES ('seeded_at', '1')",
    );
    old.close();
    const store = createInventoryStore(openTemp(file), { catalog: { apple: 1 } });
    assert.deepEqual(store.listProducts(), [{ productId: 'apple', available: 7, reserved: 0, sold: 0, total: 7 }]);
  });

  test('seeding the default catalog', () => {
    assert.deepEqual(stock(tempStore(DEFAULT_CATALOG)), { prod_1: [15, 0, 0], prod_2: [10, 0, 0], prod_3: [0, 0, 0] });
  });

  test('reserve moves available to reserved and records a HELD reservation with summed lines', () => {
    const store = tempStore();
    const r = reserve(store, 'o1', [
      { productId: 'banana', quantity: 2 },
      { productId: 'apple', quantity: 3 },
      { productId: 'banana', quantity: 1 },
    ]);
    assert.deepEqual(r, { outcome: 'reserved', productIds: [] });
    assert.deepEqual(stock(store), { apple: [7, 3, 0], banana: [2, 3, 0], cherry: [0, 0, 0] });
    assert.deepEqual(store.reservation('o1'), {
      orderId: 'o1',
      status: 'HELD',
      lines: [
        { productId: 'apple', quantity: 3 },
        { productId: 'banana', quantity: 3 },
      ],
    });
  });

  test('duplicate lines are judged summed: 6 + 6 against 10 is refused (the original went to -2)', () => {
    const store = tempStore({ prod_2: 10 });
    const r = reserve(store, 'o1', [
      { productId: 'prod_2', quantity: 6 },
      { productId: 'prod_2', quantity: 6 },
    ]);
    assert.deepEqual(r, { outcome: 'insufficient_stock', productIds: ['prod_2'] });
    assert.deepEqual(stock(store), { prod_2: [10, 0, 0] });
  });

  test('all-or-nothing: one short line leaves every product untouched', () => {
    const store = tempStore();
    const r = reserve(store, 'o1', [
      { productId: 'apple', quantity: 1 },
      { productId: 'banana', quantity: 6 },
    ]);
    assert.deepEqual(r, { outcome: 'insufficient_stock', productIds: ['banana'] });
    assert.deepEqual(stock(store), { apple: [10, 0, 0], banana: [5, 0, 0], cherry: [0, 0, 0] });
    assert.equal(store.reservation('o1'), undefined);
  });

  test('unknown and insufficient are distinct; unknown wins when both apply', () => {
    const store = tempStore();
    assert.deepEqual(
      reserve(store, 'o1', [
        { productId: 'zucchini', quantity: 1 },
        { productId: 'apple', quantity: 1 },
      ]),
      {
        outcome: 'unknown_product',
        productIds: ['zucchini'],
      },
    );
    assert.deepEqual(reserve(store, 'o2', [{ productId: 'cherry', quantity: 1 }]), {
      outcome: 'insufficient_stock',
      productIds: ['cherry'],
    });
    assert.deepEqual(
      reserve(store, 'o3', [
        { productId: 'cherry', quantity: 1 },
        { productId: 'yam', quantity: 1 },
      ]),
      {
        outcome: 'unknown_product',
        productIds: ['yam'],
      },
    );
    assert.deepEqual(stock(store), { apple: [10, 0, 0], banana: [5, 0, 0], cherry: [0, 0, 0] });
  });

  test('exactly the available stock can be reserved', () => {
    const store = tempStore();
    assert.equal(reserve(store, 'o1', [{ productId: 'banana', quantity: 5 }]).outcome, 'reserved');
    assert.deepEqual(reserve(store, 'o2', [{ productId: 'banana', quantity: 1 }]), {
      outcome: 'insufficient_stock',
      productIds: ['banana'],
    });
  });

  test('reserve is idempotent by order: a second reserve for a held order changes nothing', () => {
    const store = tempStore();
    reserve(store, 'o1', [{ productId: 'apple', quantity: 4 }]);
    assert.equal(reserve(store, 'o1', [{ productId: 'apple', quantity: 4 }]).outcome, 'reserved');
    assert.deepEqual(stock(store).apple, [6, 4, 0]);
  });

  test('release gives a HELD reservation back; repeats are RELEASED; a late reserve is refused', () => {
    const store = tempStore();
    reserve(store, 'o1', [
      { productId: 'apple', quantity: 4 },
      { productId: 'banana', quantity: 5 },
    ]);
    assert.deepEqual(store.release('o1'), { outcome: 'released' });
    assert.deepEqual(stock(store), { apple: [10, 0, 0], banana: [5, 0, 0], cherry: [0, 0, 0] });
    assert.deepEqual(store.release('o1'), { outcome: 'released' });
    assert.deepEqual(stock(store), { apple: [10, 0, 0], banana: [5, 0, 0], cherry: [0, 0, 0] });
    assert.equal(reserve(store, 'o1', [{ productId: 'apple', quantity: 1 }]).outcome, 'released');
    assert.equal(store.commit('o1').outcome, 'not_reserved');
    assert.deepEqual(stock(store).apple, [10, 0, 0]);
  });

  test('release with nothing reserved leaves a tombstone, and the late reserve is refused', () => {
    const store = tempStore();
    assert.deepEqual(store.release('o1'), { outcome: 'nothing_reserved' });
    assert.equal(store.isTombstoned('o1'), true);
    assert.deepEqual(store.release('o1'), { outcome: 'nothing_reserved' });
    assert.deepEqual(reserve(store, 'o1', [{ productId: 'apple', quantity: 1 }]), {
      outcome: 'released',
      productIds: [],
    });
    assert.deepEqual(stock(store).apple, [10, 0, 0]);
    assert.equal(store.reservation('o1'), undefined);
  });

  test('commit turns reserved into sold; release after commit is ALREADY_COMMITTED and changes nothing', () => {
    const store = tempStore();
    reserve(store, 'o1', [{ productId: 'apple', quantity: 4 }]);
    assert.deepEqual(store.commit('o1'), { outcome: 'committed' });
    assert.deepEqual(stock(store).apple, [6, 0, 4]);
    assert.deepEqual(store.commit('o1'), { outcome: 'committed' });
    assert.deepEqual(stock(store).apple, [6, 0, 4]);
    assert.deepEqual(store.release('o1'), { outcome: 'already_committed' });
    assert.deepEqual(stock(store).apple, [6, 0, 4]);
    assert.equal(store.isTombstoned('o1'), false);
    assert.equal(store.commit('never').outcome, 'not_reserved');
  });

  test('a reserve of other lines for an order that holds or sold some is CONFLICT and moves no stock; the same lines are RESERVED', () => {
    const store = tempStore();
    reserve(store, 'o1', [
      { productId: 'apple', quantity: 2 },
      { productId: 'banana', quantity: 1 },
    ]);
    const conflict = { outcome: 'conflict', productIds: [] };
    assert.deepEqual(reserve(store, 'o1', [{ productId: 'apple', quantity: 9 }]), conflict);
    assert.deepEqual(reserve(store, 'o1', [{ productId: 'apple', quantity: 2 }]), conflict);
    // The same lines in another order, or split, are the same reservation.
    assert.deepEqual(
      reserve(store, 'o1', [
        { productId: 'banana', quantity: 1 },
        { productId: 'apple', quantity: 1 },
        { productId: 'apple', quantity: 1 },
      ]),
      { outcome: 'reserved', productIds: [] },
    );
    assert.deepEqual(stock(store), { apple: [8, 2, 0], banana: [4, 1, 0], cherry: [0, 0, 0] });
    store.commit('o1');
    assert.deepEqual(reserve(store, 'o1', [{ productId: 'banana', quantity: 1 }]), conflict);
    assert.deepEqual(stock(store), { apple: [8, 0, 2], banana: [4, 0, 1], cherry: [0, 0, 0] });
    assert.deepEqual(store.reservation('o1')?.lines, [
      { productId: 'apple', quantity: 2 },
      { productId: 'banana', quantity: 1 },
    ]);
  });

  test('stock is conserved across a mix of orders', () => {
    const store = tempStore();
    reserve(store, 'a', [{ productId: 'apple', quantity: 3 }]);
    reserve(store, 'b', [
      { productId: 'apple', quantity: 2 },
      { productId: 'banana', quantity: 5 },
    ]);
    reserve(store, 'c', [{ productId: 'apple', quantity: 6 }]); // short: 5 left
    store.commit('a');
    store.release('b');
    store.release('c');
    const { apple, banana } = stock(store);
    assert.deepEqual(apple, [7, 0, 3]);
    assert.deepEqual(banana, [5, 0, 0]);
  });
});

describe('inventory store + inbox', () => {
  test('the same key twice reserves once and replays the stored response', () => {
    const db = openTemp();
    const store = createInventoryStore(db, { catalog: CATALOG });
    const inbox = createInbox(db);
    const req = { orderId: 'o1', items: [{ productId: 'apple', quantity: 4 }] };
    let effects = 0;
    const run = () =>
      inbox.once('saga-1:reserve_stock', 'Reserve', req, () => {
        effects++;
        return reserve(store, req.orderId, req.items);
      });
    const first = run();
    store.release('o1');
    const second = run();
    assert.equal(effects, 1);
    assert.equal(second.replayed, true);
    assert.deepEqual(second.response, first.response);
    assert.deepEqual(stock(store).apple, [10, 0, 0]);
  });

  test('the same key for a different request is idempotency_key_reused, and nothing changes', () => {
    const db = openTemp();
    const store = createInventoryStore(db, { catalog: CATALOG });
    const inbox = createInbox(db);
    inbox.once('k', 'Reserve', { orderId: 'o1', items: [{ productId: 'apple', quantity: 1 }] }, () =>
      reserve(store, 'o1', [{ productId: 'apple', quantity: 1 }]),
    );
    const other = { orderId: 'o2', items: [{ productId: 'apple', quantity: 2 }] };
    assert.equal(
      codeOf(() => inbox.once('k', 'Reserve', other, () => reserve(store, 'o2', other.items))),
      'idempotency_key_reused',
    );
    assert.deepEqual(stock(store).apple, [9, 1, 0]);
  });
});

describe('inventory service (in-process)', () => {
  const service = () => createInventoryService({ db: openTemp(), logger: silentLogger, catalog: DEFAULT_CATALOG });

  test('reserve → commit, then list products', async () => {
    const svc = service();
    const r = await invoke(
      svc.reserve,
      { orderId: 's1', items: [{ productId: 'prod_1', quantity: 5 }] },
      's1:reserve_stock',
    );
    assert.deepEqual(r, { outcome: ReserveOutcome.RESERVE_OUTCOME_RESERVED, productIds: [] });
    const c = await invoke(svc.commit, { orderId: 's1' }, 's1:commit');
    assert.equal(c.outcome, CommitOutcome.COMMIT_OUTCOME_COMMITTED);
    const list = await invoke(svc.listProducts, { productIds: [] });
    assert.deepEqual(list.products, [
      { productId: 'prod_1', available: 10, reserved: 0, sold: 5, total: 15 },
      { productId: 'prod_2', available: 10, reserved: 0, sold: 0, total: 10 },
      { productId: 'prod_3', available: 0, reserved: 0, sold: 0, total: 0 },
    ]);
  });

  test('outcomes map to the proto enums', async () => {
    const svc = service();
    assert.deepEqual(await invoke(svc.reserve, { orderId: 's1', items: [{ productId: 'prod_3', quantity: 1 }] }, 'a'), {
      outcome: ReserveOutcome.RESERVE_OUTCOME_INSUFFICIENT_STOCK,
      productIds: ['prod_3'],
    });
    assert.deepEqual(await invoke(svc.reserve, { orderId: 's2', items: [{ productId: 'prod_9', quantity: 1 }] }, 'b'), {
      outcome: ReserveOutcome.RESERVE_OUTCOME_UNKNOWN_PRODUCT,
      productIds: ['prod_9'],
    });
    const release = await invoke(svc.release, { orderId: 's3' }, 'c');
    assert.equal(release.outcome, ReleaseOutcome.RELEASE_OUTCOME_NOTHING_RESERVED);
    const late = await invoke(svc.reserve, { orderId: 's3', items: [{ productId: 'prod_1', quantity: 1 }] }, 'd');
    assert.equal(late.outcome, ReserveOutcome.RESERVE_OUTCOME_RELEASED);
    assert.equal((await invoke(svc.commit, { orderId: 's3' }, 'e')).outcome, CommitOutcome.COMMIT_OUTCOME_NOT_RESERVED);
  });

  test('logs each effect once at info with order_id, outcome and key; reads only at debug', async () => {
    const { logger, lines } = captureLogger();
    const svc = createInventoryService({ db: openTemp(), logger, catalog: DEFAULT_CATALOG });
    await invoke(svc.release, { orderId: 's1' }, 's1:reserve_stock:undo');
    await invoke(svc.listProducts, { productIds: [] });
    const info = lines.filter((l) => l.level === 'info');
    assert.equal(info.length, 1);
    assert.equal(info[0]?.order_id, 's1');
    assert.equal(info[0]?.outcome, 'RELEASE_OUTCOME_NOTHING_RESERVED');
    assert.equal(info[0]?.idempotency_key, 's1:reserve_stock:undo');
    assert.equal(lines.filter((l) => l.level === 'debug' && l.rpc === 'ListProducts').length, 1);
  });

  test('errors carry stable codes', async () => {
    const svc = service();
    const req = { orderId: 's1', items: [{ productId: 'prod_1', quantity: 1 }] };
    assert.equal(await errorCode(invoke(svc.reserve, req)), 'idempotency_key_required');
    assert.equal(await errorCode(invoke(svc.reserve, { orderId: 's1', items: [] }, 'k')), 'invalid_argument');
    assert.equal(await errorCode(invoke(svc.release, { orderId: '' }, 'k')), 'invalid_argument');
    await invoke(svc.reserve, req, 'k');
    assert.equal(await errorCode(invoke(svc.release, { orderId: 's1' }, 'k')), 'idempotency_key_reused');
  });
});
