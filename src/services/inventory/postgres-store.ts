/**
 * The inventory service's store on PostgreSQL, for replicas sharing one database. Never an
 * oversell, whichever replica reserves: a write takes its order's lock (lockOrder), then the rows
 * of the products it changes, `SELECT … ORDER BY product_id FOR UPDATE` — always in id order, so
 * that two multi-product reservations cannot deadlock — and decides with the domain's rules on the
 * stock it holds locked. The stock UPDATE is conditional too (`WHERE available >= n`), and the
 * CHECKs of the table are the last line: a bug costs an aborted transaction, never negative stock.
 */
import { postgresInboxRecords } from '../../platform/storage/pg-inbox.js';
import { run, type PgClient, type PgDatabase, type Sql } from '../../platform/storage/pg.js';
import {
  catalogProduct,
  decideCommit,
  decideRelease,
  decideReserve,
  type Catalog,
  type ReservationStatus,
  type StockLine,
} from './domain.js';
import type {
  CommitResult,
  InventoryStorePort,
  InventoryWrites,
  ProductStock,
  ReleaseResult,
  Reservation,
  ReserveResult,
} from './store-port.js';
import { RELEASE_TOMBSTONE_REASON } from './store.js';
import {
  lockOrder,
  openParticipantDatabase,
  orderLock,
  pgDatabaseId,
  pgPageIdsSql,
  PG_IDENTITY_TABLE,
  PG_INBOX_TABLE,
  PG_TOMBSTONES_TABLE,
  underStartLock,
  type PostgresStoreOptions,
} from '../shared/postgres.js';

/** Ordered schema steps (inventory_schema_migrations); the tables mirror the SQLite store's as it is now. */
export const INVENTORY_PG_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE products (
    product_id  text COLLATE "C" PRIMARY KEY,
    available   bigint NOT NULL CHECK (available >= 0),
    reserved    bigint NOT NULL CHECK (reserved >= 0),
    sold        bigint NOT NULL CHECK (sold >= 0),
    total       bigint NOT NULL CHECK (total >= 0),
    price_cents bigint CHECK (price_cents IS NULL OR price_cents > 0),
    CHECK (available + reserved + sold = total)
  );
  CREATE TABLE reservations (
    order_id   text COLLATE "C" PRIMARY KEY,
    status     text NOT NULL CHECK (status IN ('HELD', 'RELEASED', 'COMMITTED')),
    items      text NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL
  );
  CREATE TABLE meta (
    key   text PRIMARY KEY,
    value text NOT NULL
  );
  ${PG_TOMBSTONES_TABLE}
  ${PG_INBOX_TABLE}
  ${PG_IDENTITY_TABLE}
  `,
];

const LOCK = orderLock('inventory');
const PRODUCT_COLUMNS = 'product_id AS "productId", available, reserved, sold, total, price_cents AS "priceCents"';
type ProductRow = Omit<ProductStock, 'priceCents'> & { priceCents: number | null };
const productOf = ({ priceCents, ...stock }: ProductRow): ProductStock =>
  priceCents === null ? stock : { ...stock, priceCents };

/** A reservation and whether its order is tombstoned, in one read. */
const STATE: Sql = {
  name: 'inventory_state',
  text: `SELECT r.status, r.items, (t.order_id IS NOT NULL) AS tombstoned
         FROM (SELECT $1::text AS id) k
         LEFT JOIN reservations r ON r.order_id = k.id LEFT JOIN tombstones t ON t.order_id = k.id`,
};
/** The rows of the products a write changes, locked in id order (the same order in every write). */
const LOCK_PRODUCTS: Sql = {
  name: 'inventory_lock_products',
  text: 'SELECT product_id AS "productId", available FROM products WHERE product_id = ANY($1::text[]) ORDER BY product_id FOR UPDATE',
};
// Each moves n units between two counters of one product: $1 product ids, $2 quantities (one per line).
const HOLD: Sql = {
  name: 'inventory_hold',
  text: `UPDATE products p SET available = p.available - l.n, reserved = p.reserved + l.n
         FROM unnest($1::text[], $2::bigint[]) AS l(id, n)
         WHERE p.product_id = l.id AND p.available >= l.n`,
};
const GIVE_BACK: Sql = {
  name: 'inventory_give_back',
  text: `UPDATE products p SET available = p.available + l.n, reserved = p.reserved - l.n
         FROM unnest($1::text[], $2::bigint[]) AS l(id, n)
         WHERE p.product_id = l.id AND p.reserved >= l.n`,
};
const SELL: Sql = {
  name: 'inventory_sell',
  text: `UPDATE products p SET reserved = p.reserved - l.n, sold = p.sold + l.n
         FROM unnest($1::text[], $2::bigint[]) AS l(id, n)
         WHERE p.product_id = l.id AND p.reserved >= l.n`,
};
const INSERT_RESERVATION: Sql = {
  name: 'inventory_reservation_insert',
  text: "INSERT INTO reservations (order_id, status, items, created_at, updated_at) VALUES ($1, 'HELD', $2, $3, $3)",
};
const SET_STATUS: Sql = {
  name: 'inventory_reservation_status',
  text: 'UPDATE reservations SET status = $2, updated_at = $3 WHERE order_id = $1',
};
const INSERT_TOMBSTONE: Sql = {
  name: 'inventory_tombstone_insert',
  text: 'INSERT INTO tombstones (order_id, reason, created_at) VALUES ($1, $2, $3) ON CONFLICT (order_id) DO NOTHING',
};
const RESERVATION: Sql = {
  name: 'inventory_reservation',
  text: 'SELECT status, items FROM reservations WHERE order_id = $1',
};
const TOMBSTONED: Sql = { name: 'inventory_tombstoned', text: 'SELECT 1 AS one FROM tombstones WHERE order_id = $1' };
const PRODUCTS: Sql = {
  name: 'inventory_products',
  text: `SELECT ${PRODUCT_COLUMNS} FROM products WHERE cardinality($1::text[]) = 0 OR product_id = ANY($1::text[]) ORDER BY product_id`,
};
// One statement, so a page is one consistent read even while stock is being reserved.
const PAGE: Sql = {
  name: 'inventory_page',
  text: `WITH ids AS (${pgPageIdsSql('reservations', 'order_id')})
         SELECT ids.order_id AS entry_id, r.status, r.items, (t.order_id IS NOT NULL) AS tombstoned
         FROM ids LEFT JOIN reservations r ON r.order_id = ids.order_id LEFT JOIN tombstones t ON t.order_id = ids.order_id
         ORDER BY ids.order_id`,
};

type StateRow = { status: ReservationStatus | null; items: string | null; tombstoned: boolean };

const linesOf = (items: string | null): StockLine[] => JSON.parse(items ?? '[]') as StockLine[];
const columns = (lines: readonly StockLine[]) => [lines.map((l) => l.productId), lines.map((l) => l.quantity)];

/** Moves stock of every line, all or nothing: a line whose row refused the move is a bug, and aborts the write. */
async function move(c: PgClient, sql: Sql, lines: readonly StockLine[], what: string): Promise<void> {
  const { rowCount } = await c.query({ ...sql, values: columns(lines) });
  if (rowCount !== lines.length)
    throw new Error(`inventory: ${what} moved ${rowCount ?? 0} of ${lines.length} lines: the stock does not hold them`);
}

/** The writes on one transaction's connection. */
function writesOn(c: PgClient, now: () => number): InventoryWrites {
  const state = async (orderId: string) => {
    await lockOrder(c, LOCK, orderId);
    const [row] = await run<StateRow>(c, STATE, [orderId]);
    return {
      tombstoned: row?.tombstoned ?? false,
      status: row?.status ?? undefined,
      lines: linesOf(row?.items ?? null),
    };
  };
  /** Locks the lines' product rows (id order) and answers their available stock; an unknown product has no entry. */
  const lockStock = async (lines: readonly StockLine[]) => {
    const rows = await run<{ productId: string; available: number }>(c, LOCK_PRODUCTS, [lines.map((l) => l.productId)]);
    return new Map(rows.map((r) => [r.productId, r.available]));
  };
  return {
    async reserve({ orderId, lines }): Promise<ReserveResult> {
      const held = await state(orderId);
      // Stock matters only to an order that holds nothing yet (decideReserve reads it then only).
      const fresh = !held.tombstoned && held.status === undefined;
      const decision = decideReserve(held, lines, fresh ? await lockStock(lines) : new Map<string, number>());
      if (decision.outcome === 'unknown_product' || decision.outcome === 'insufficient_stock') return decision;
      if (decision.outcome === 'reserved' && decision.hold) {
        await move(c, HOLD, lines, 'reserve');
        await run(c, INSERT_RESERVATION, [orderId, JSON.stringify(lines), now()]);
      }
      return { outcome: decision.outcome, productIds: [] };
    },
    async release(orderId): Promise<ReleaseResult> {
      const held = await state(orderId);
      const decision = decideRelease(held.status);
      if (decision.outcome === 'released' && decision.giveBack) {
        await lockStock(held.lines);
        await move(c, GIVE_BACK, held.lines, 'release');
        await run(c, SET_STATUS, [orderId, 'RELEASED', now()]);
      }
      if (decision.outcome === 'nothing_reserved')
        await run(c, INSERT_TOMBSTONE, [orderId, RELEASE_TOMBSTONE_REASON, now()]);
      return { outcome: decision.outcome };
    },
    async commit(orderId): Promise<CommitResult> {
      const held = await state(orderId);
      const decision = decideCommit(held.status);
      if (decision.outcome === 'committed' && decision.sell) {
        await lockStock(held.lines);
        await move(c, SELL, held.lines, 'commit');
        await run(c, SET_STATUS, [orderId, 'COMMITTED', now()]);
      }
      return { outcome: decision.outcome };
    },
  };
}

export interface PostgresInventoryStoreOptions extends PostgresStoreOptions {
  /**
   * Stock to seed on the very first open of the database (later opens never reseed: the stock has
   * moved since), and the prices, set on every open.
   */
  catalog: Catalog;
}

/**
 * Opens the inventory service's PostgreSQL store: the schema migrated, the catalog seeded once and
 * its prices applied — under the service's start lock, so replicas starting together seed once.
 */
export async function openPostgresInventoryStore(opts: PostgresInventoryStoreOptions): Promise<InventoryStorePort> {
  const now = opts.now ?? Date.now;
  const db = await openParticipantDatabase('inventory', INVENTORY_PG_MIGRATIONS, opts);
  try {
    await underStartLock(db, 'inventory', async (c) => {
      const [seeded] = await run(c, "SELECT value FROM meta WHERE key = 'seeded_at'");
      if (!seeded) {
        for (const [productId, entry] of Object.entries(opts.catalog)) {
          const { stock } = catalogProduct(entry);
          await run(
            c,
            'INSERT INTO products (product_id, available, reserved, sold, total) VALUES ($1, $2, 0, 0, $2)',
            [productId, stock],
          );
        }
        await run(c, "INSERT INTO meta (key, value) VALUES ('seeded_at', $1)", [String(now())]);
      }
      // The catalog the service starts with is its price list (see applyCatalogPrices).
      await run(c, 'UPDATE products SET price_cents = NULL WHERE price_cents IS NOT NULL');
      for (const [productId, entry] of Object.entries(opts.catalog)) {
        const { priceCents } = catalogProduct(entry);
        if (priceCents !== undefined)
          await run(c, 'UPDATE products SET price_cents = $1 WHERE product_id = $2', [priceCents, productId]);
      }
    });
  } catch (err) {
    await db.close().catch(() => undefined);
    throw err;
  }
  return postgresInventoryStore(db, now);
}

function postgresInventoryStore(db: PgDatabase, now: () => number): InventoryStorePort {
  const on = (c: PgClient) => writesOn(c, now);
  const reservationOf = (orderId: string, row: { status: ReservationStatus | null; items: string | null }) =>
    row.status === null
      ? undefined
      : ({ orderId, status: row.status, lines: linesOf(row.items) } satisfies Reservation);
  return {
    kind: 'postgres',
    where: db.where,
    inbox: postgresInboxRecords(db, on, now),
    async listProducts(productIds = []) {
      return (await db.query<ProductRow>(PRODUCTS, [productIds])).map(productOf);
    },
    async reservation(orderId) {
      const [row] = await db.query<{ status: ReservationStatus; items: string }>(RESERVATION, [orderId]);
      return row && reservationOf(orderId, row);
    },
    isTombstoned: async (orderId) => (await db.query(TOMBSTONED, [orderId])).length > 0,
    async listReservations(after, limit) {
      const rows = await db.query<StateRow & { entry_id: string }>(PAGE, [after, limit]);
      return rows.map((r) => ({
        orderId: r.entry_id,
        reservation: reservationOf(r.entry_id, r),
        tombstoned: r.tombstoned,
      }));
    },
    reserve: (input) => db.transaction(async (c) => on(c).reserve(input)),
    release: (orderId) => db.transaction(async (c) => on(c).release(orderId)),
    commit: (orderId) => db.transaction(async (c) => on(c).commit(orderId)),
    databaseId: () => pgDatabaseId(db),
    check: () => db.check(),
    close: () => db.close(),
  };
}
