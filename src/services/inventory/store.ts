import { databaseId, openDatabase, type Db } from '../../platform/storage/db.js';
import type { SyncLevel } from '../../platform/config/config.js';
import { INBOX_MIGRATION, sqliteInboxRecords } from '../../platform/storage/inbox.js';
import {
  catalogProduct,
  decideCommit,
  decideRelease,
  decideReserve,
  type Catalog,
  type ReservationStatus,
  type StockLine,
  type ValidReserve,
} from './domain.js';
import { TOMBSTONES_TABLE } from '../shared/tombstones.js';
import { pageIdsSql } from '../shared/paging.js';
import type {
  CommitResult,
  InventoryStorePort,
  ProductStock,
  ReleaseResult,
  Reservation,
  ReservationEntry,
  ReserveResult,
} from './store-port.js';

/**
 * The inventory service's store on SQLite: synchronous inside (each method one transaction, a
 * savepoint inside the inbox's group commit), and sqliteInventoryStore, the same behind the async
 * store port.
 */

export type { ProductStock, Reservation, ReservationEntry, ReserveResult };

// CHECKs are a last line of defence: a bug that would drive a counter negative aborts the
// transaction instead of corrupting the stock.
export const INVENTORY_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE products (
    product_id TEXT PRIMARY KEY,
    available  INTEGER NOT NULL CHECK (available >= 0),
    reserved   INTEGER NOT NULL CHECK (reserved >= 0),
    sold       INTEGER NOT NULL CHECK (sold >= 0)
  ) WITHOUT ROWID;
  CREATE TABLE reservations (
    order_id   TEXT PRIMARY KEY,
    status     TEXT NOT NULL CHECK (status IN ('HELD', 'RELEASED', 'COMMITTED')),
    items      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  ${TOMBSTONES_TABLE}
  CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) WITHOUT ROWID;
  `,
  INBOX_MIGRATION,
  // The unit price INVENTORY_CATALOG gives a product (cents); NULL when it gives none.
  `ALTER TABLE products ADD COLUMN price_cents INTEGER CHECK (price_cents IS NULL OR price_cents > 0);`,
  // The stock ever supplied (the catalog's initial stock), so that conservation, available +
  // reserved + sold = total, can be checked against the inventory's own records. A database from
  // before it never recorded its initial stock: what it holds now is the best it knows.
  `ALTER TABLE products ADD COLUMN total INTEGER NOT NULL DEFAULT 0 CHECK (total >= 0);
   UPDATE products SET total = available + reserved + sold;`,
];

export const RELEASE_TOMBSTONE_REASON = 'released_before_reserved';

export function openInventoryDatabase(file: string, synchronous: SyncLevel = 'normal'): Db {
  return openDatabase(file, { synchronous, migrations: INVENTORY_MIGRATIONS });
}

/** The synchronous SQLite store: InventoryStorePort's methods, answering at once. */
export interface InventoryStore {
  reserve(input: ValidReserve): ReserveResult;
  release(orderId: string): ReleaseResult;
  commit(orderId: string): CommitResult;
  listProducts(productIds?: readonly string[]): ProductStock[];
  reservation(orderId: string): Reservation | undefined;
  isTombstoned(orderId: string): boolean;
  listReservations: (after: string, limit: number) => ReservationEntry[];
}

export interface InventoryStoreOptions {
  /**
   * Stock to seed on the very first open (later opens never reseed: the stock has moved since),
   * and the prices, set on every open: the catalog the service starts with is its price list.
   */
  catalog: Catalog;
  now?: () => number;
}

const PRODUCT_COLUMNS = 'product_id AS productId, available, reserved, sold, total, price_cents AS priceCents';
type ProductRow = Omit<ProductStock, 'priceCents'> & { priceCents: number | null };

const productOf = ({ priceCents, ...stock }: ProductRow): ProductStock =>
  priceCents === null ? stock : { ...stock, priceCents };

interface ReservationRow {
  status: ReservationStatus;
  items: string;
}

export function createInventoryStore(db: Db, { catalog, now = Date.now }: InventoryStoreOptions): InventoryStore {
  seedOnce(db, catalog, now);
  applyCatalogPrices(db, catalog);

  const selectReservation = db.prepare<[string], ReservationRow>(
    'SELECT status, items FROM reservations WHERE order_id = ?',
  );
  const selectTombstone = db.prepare<[string], { one: 1 }>('SELECT 1 AS one FROM tombstones WHERE order_id = ?');
  const selectAvailable = db.prepare<[string], { available: number }>(
    'SELECT available FROM products WHERE product_id = ?',
  );
  const selectProducts = db.prepare<[], ProductRow>(`SELECT ${PRODUCT_COLUMNS} FROM products ORDER BY product_id`);
  const selectSomeProducts = db.prepare<[string], ProductRow>(
    `SELECT ${PRODUCT_COLUMNS} FROM products WHERE product_id IN (SELECT value FROM json_each(?)) ORDER BY product_id`,
  );
  // One statement, so a page is one consistent read even while stock is being reserved.
  const selectReservationPage = db.prepare<
    [{ after: string; limit: number }],
    { entry_id: string; status: ReservationStatus | null; items: string | null; tombstoned: 0 | 1 }
  >(
    `WITH ids AS (${pageIdsSql('reservations', 'order_id')})
     SELECT ids.order_id AS entry_id, r.status, r.items, (t.order_id IS NOT NULL) AS tombstoned
     FROM ids LEFT JOIN reservations r ON r.order_id = ids.order_id LEFT JOIN tombstones t ON t.order_id = ids.order_id
     ORDER BY ids.order_id`,
  );
  const insertReservation = db.prepare<[string, string, number, number]>(
    "INSERT INTO reservations (order_id, status, items, created_at, updated_at) VALUES (?, 'HELD', ?, ?, ?)",
  );
  const setReservationStatus = db.prepare<[ReservationStatus, number, string]>(
    'UPDATE reservations SET status = ?, updated_at = ? WHERE order_id = ?',
  );
  const insertTombstone = db.prepare<[string, string, number]>(
    'INSERT OR IGNORE INTO tombstones (order_id, reason, created_at) VALUES (?, ?, ?)',
  );
  const hold = db.prepare<[number, number, string]>(
    'UPDATE products SET available = available - ?, reserved = reserved + ? WHERE product_id = ?',
  );
  const giveBack = db.prepare<[number, number, string]>(
    'UPDATE products SET available = available + ?, reserved = reserved - ? WHERE product_id = ?',
  );
  const sell = db.prepare<[number, number, string]>(
    'UPDATE products SET reserved = reserved - ?, sold = sold + ? WHERE product_id = ?',
  );

  const reservation = (orderId: string): Reservation | undefined => {
    const row = selectReservation.get(orderId);
    return row && { orderId, status: row.status, lines: JSON.parse(row.items) as StockLine[] };
  };
  const isTombstoned = (orderId: string) => selectTombstone.get(orderId) !== undefined;

  return {
    reservation,
    isTombstoned,
    listReservations: (after, limit) =>
      selectReservationPage.all({ after, limit }).map((r) => ({
        orderId: r.entry_id,
        reservation:
          r.status === null
            ? undefined
            : { orderId: r.entry_id, status: r.status, lines: JSON.parse(r.items ?? '[]') as StockLine[] },
        tombstoned: r.tombstoned === 1,
      })),
    listProducts: (productIds = []) =>
      (productIds.length === 0 ? selectProducts.all() : selectSomeProducts.all(JSON.stringify(productIds))).map(
        productOf,
      ),

    reserve: db.transaction(({ orderId, lines }: ValidReserve): ReserveResult => {
      const available = new Map<string, number>();
      for (const { productId } of lines) {
        const row = selectAvailable.get(productId);
        if (row) available.set(productId, row.available);
      }
      const held = reservation(orderId);
      const state = { tombstoned: isTombstoned(orderId), status: held?.status, lines: held?.lines ?? [] };
      const decision = decideReserve(state, lines, available);
      if (decision.outcome === 'unknown_product' || decision.outcome === 'insufficient_stock') return decision;
      if (decision.outcome === 'reserved' && decision.hold) {
        for (const { productId, quantity } of lines) hold.run(quantity, quantity, productId);
        insertReservation.run(orderId, JSON.stringify(lines), now(), now());
      }
      return { outcome: decision.outcome, productIds: [] };
    }),

    release: db.transaction((orderId: string) => {
      const held = reservation(orderId);
      const decision = decideRelease(held?.status);
      if (decision.outcome === 'released' && decision.giveBack && held) {
        for (const { productId, quantity } of held.lines) giveBack.run(quantity, quantity, productId);
        setReservationStatus.run('RELEASED', now(), orderId);
      }
      if (decision.outcome === 'nothing_reserved') insertTombstone.run(orderId, RELEASE_TOMBSTONE_REASON, now());
      return { outcome: decision.outcome };
    }),

    commit: db.transaction((orderId: string) => {
      const held = reservation(orderId);
      const decision = decideCommit(held?.status);
      if (decision.outcome === 'committed' && decision.sell && held) {
        for (const { productId, quantity } of held.lines) sell.run(quantity, quantity, productId);
        setReservationStatus.run('COMMITTED', now(), orderId);
      }
      return { outcome: decision.outcome };
    }),
  };
}

/** Seeds the catalog in the same transaction as the marker that says it was done, so it happens once. */
function seedOnce(db: Db, catalog: Catalog, now: () => number): void {
  const seeded = db.prepare<[], { value: string }>("SELECT value FROM meta WHERE key = 'seeded_at'");
  const insertProduct = db.prepare<[string, number, number]>(
    'INSERT INTO products (product_id, available, reserved, sold, total) VALUES (?, ?, 0, 0, ?)',
  );
  const mark = db.prepare<[string]>("INSERT INTO meta (key, value) VALUES ('seeded_at', ?)");
  db.transaction(() => {
    if (seeded.get()) return;
    for (const [productId, entry] of Object.entries(catalog)) {
      const { stock } = catalogProduct(entry);
      insertProduct.run(productId, stock, stock);
    }
    mark.run(String(now()));
  }).immediate();
}

/**
 * Makes the catalog's prices the products' prices: a product the catalog prices gets that price,
 * every other one none. Run on every open, so a changed price takes effect when the service
 * restarts; the stock is not touched. A product the database does not have is not added (the
 * stock is seeded once).
 */
export function applyCatalogPrices(db: Db, catalog: Catalog): void {
  const clear = db.prepare('UPDATE products SET price_cents = NULL WHERE price_cents IS NOT NULL');
  const setPrice = db.prepare<[number, string]>('UPDATE products SET price_cents = ? WHERE product_id = ?');
  db.transaction(() => {
    clear.run();
    for (const [productId, entry] of Object.entries(catalog)) {
      const { priceCents } = catalogProduct(entry);
      if (priceCents !== undefined) setPrice.run(priceCents, productId);
    }
  }).immediate();
}

/**
 * The SQLite store behind the store port: the synchronous store wrapped (its answers are already
 * there), and the inbox's records in the same database, group-committed.
 */
export function sqliteInventoryStore(db: Db, opts: InventoryStoreOptions & { where?: string }): InventoryStorePort {
  const { now = Date.now, where = 'sqlite' } = opts;
  const sync = createInventoryStore(db, opts);
  return {
    kind: 'sqlite',
    where,
    inbox: sqliteInboxRecords(db, sync, now),
    listProducts: async (productIds) => sync.listProducts(productIds),
    reservation: async (orderId) => sync.reservation(orderId),
    isTombstoned: async (orderId) => sync.isTombstoned(orderId),
    listReservations: async (after, limit) => sync.listReservations(after, limit),
    reserve: async (input) => sync.reserve(input),
    release: async (orderId) => sync.release(orderId),
    commit: async (orderId) => sync.commit(orderId),
    databaseId: async () => databaseId(db),
    check: async () => db.open,
    close: async () => {
      if (db.open) db.close();
    },
  };
}
