import { databaseId, openDatabase, type Db } from '../../platform/storage/db.js';
import type { SyncLevel } from '../../platform/config/config.js';
import { INBOX_MIGRATION, sqliteInboxRecords } from '../../platform/storage/inbox.js';
import {
  decideCancel,
  decideConfirm,
  decideCreate,
  nextUpdatedAt,
  type OrderRecord,
  type OrderStatus,
  type Tombstone,
  type ValidCreate,
} from './domain.js';
import { TOMBSTONES_TABLE } from '../shared/tombstones.js';
import { pageIdsSql } from '../shared/paging.js';
import {
  fromRow,
  type CancelResult,
  type ConfirmResult,
  type CreateResult,
  type OrderEntry,
  type OrderRow,
  type OrderStorePort,
} from './store-port.js';

/**
 * The order service's store on SQLite: synchronous inside (each method one transaction, a savepoint
 * inside the inbox's group commit), and sqliteOrderStore, the same behind the async store port.
 */

export type { OrderEntry };

export const ORDER_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE orders (
    id            TEXT PRIMARY KEY,
    customer_id   TEXT NOT NULL,
    items         TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('PENDING', 'CONFIRMED', 'CANCELLED')),
    total_cents   INTEGER NOT NULL CHECK (total_cents > 0),
    reason        TEXT NOT NULL DEFAULT '',
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
  ) WITHOUT ROWID;
  ${TOMBSTONES_TABLE}
  `,
  INBOX_MIGRATION,
];

export function openOrderDatabase(file: string, synchronous: SyncLevel = 'normal'): Db {
  return openDatabase(file, { synchronous, migrations: ORDER_MIGRATIONS });
}

/** The synchronous SQLite store: OrderStorePort's methods, answering at once. */
export interface OrderStore {
  get(orderId: string): OrderRecord | undefined;
  tombstone(orderId: string): Tombstone | undefined;
  create(input: ValidCreate): CreateResult;
  confirm(orderId: string): ConfirmResult;
  cancel(orderId: string, reason: string): CancelResult;
  list: (after: string, limit: number) => OrderEntry[];
}

/**
 * Each method is one transaction (a savepoint when called inside the inbox's transaction), so a
 * transition and its inbox record commit together or not at all.
 */
export function createOrderStore(db: Db, now: () => number = Date.now): OrderStore {
  const selectOrder = db.prepare<[string], OrderRow>('SELECT * FROM orders WHERE id = ?');
  const selectTombstone = db.prepare<[string], Tombstone>(
    'SELECT reason, created_at AS createdAt FROM tombstones WHERE order_id = ?',
  );
  const insertOrder = db.prepare<[OrderRow]>(
    `INSERT INTO orders (id, customer_id, items, status, total_cents, reason, created_at_ms, updated_at_ms)
     VALUES (@id, @customer_id, @items, @status, @total_cents, @reason, @created_at_ms, @updated_at_ms)`,
  );
  const updateStatus = db.prepare<[{ id: string; status: OrderStatus; reason: string; updated_at_ms: number }]>(
    'UPDATE orders SET status = @status, reason = @reason, updated_at_ms = @updated_at_ms WHERE id = @id',
  );
  const insertTombstone = db.prepare<[string, string, number]>(
    // OR IGNORE: a repeated cancel of an unknown order keeps the first reason.
    'INSERT OR IGNORE INTO tombstones (order_id, reason, created_at) VALUES (?, ?, ?)',
  );

  // One statement, so a page is one consistent read even while orders are being written.
  const selectPage = db.prepare<
    [{ after: string; limit: number }],
    { entry_id: string; tombstoned: 0 | 1 } & Partial<OrderRow>
  >(
    `WITH ids AS (${pageIdsSql('orders', 'id')})
     SELECT ids.order_id AS entry_id, o.*, (t.order_id IS NOT NULL) AS tombstoned
     FROM ids LEFT JOIN orders o ON o.id = ids.order_id LEFT JOIN tombstones t ON t.order_id = ids.order_id
     ORDER BY ids.order_id`,
  );

  const get = (orderId: string) => {
    const row = selectOrder.get(orderId);
    return row ? fromRow(row) : undefined;
  };
  const mustGet = (orderId: string): OrderRecord => {
    const order = get(orderId);
    if (!order) throw new Error(`order ${orderId} vanished inside its own transaction`);
    return order;
  };

  const insert = (input: ValidCreate, status: OrderStatus, reason: string, updatedAtMs: number) =>
    insertOrder.run({
      id: input.orderId,
      customer_id: input.customerId,
      items: JSON.stringify(input.items),
      status,
      total_cents: input.totalCents,
      reason,
      created_at_ms: input.createdAtMs,
      updated_at_ms: updatedAtMs,
    });

  const transition = (order: OrderRecord, status: OrderStatus, reason: string) =>
    updateStatus.run({ id: order.id, status, reason, updated_at_ms: nextUpdatedAt(order.updatedAtMs, now()) });

  return {
    get,
    tombstone: (orderId) => selectTombstone.get(orderId),
    list: (after, limit) =>
      selectPage.all({ after, limit }).map(({ entry_id, tombstoned, ...row }) => ({
        orderId: entry_id,
        order: row.id === null || row.id === undefined ? undefined : fromRow(row as OrderRow),
        tombstoned: tombstoned === 1,
      })),

    create: db.transaction((input: ValidCreate) => {
      const decision = decideCreate(get(input.orderId), selectTombstone.get(input.orderId), input);
      switch (decision.action) {
        case 'none':
          if (decision.outcome === 'conflict') return { outcome: 'conflict' as const, order: undefined };
          return { outcome: decision.outcome, order: mustGet(input.orderId) };
        case 'insert_pending':
          insert(input, 'PENDING', '', input.createdAtMs);
          return { outcome: 'created' as const, order: mustGet(input.orderId) };
        case 'insert_cancelled':
          // Born cancelled: created then cancelled in one step, so updated_at is after created_at.
          insert(input, 'CANCELLED', decision.reason, nextUpdatedAt(input.createdAtMs, now()));
          return { outcome: 'cancelled' as const, order: mustGet(input.orderId) };
      }
    }),

    confirm: db.transaction((orderId: string) => {
      const order = get(orderId);
      const decision = decideConfirm(order);
      if (decision.transition && order) transition(order, 'CONFIRMED', '');
      return { outcome: decision.outcome, order: get(orderId) };
    }),

    cancel: db.transaction((orderId: string, reason: string) => {
      const order = get(orderId);
      const decision = decideCancel(order);
      if (decision.action === 'cancel' && order) transition(order, 'CANCELLED', reason);
      if (decision.action === 'tombstone') insertTombstone.run(orderId, reason, now());
      return { outcome: decision.outcome, order: get(orderId) };
    }),
  };
}

/**
 * The SQLite store behind the store port: the synchronous store wrapped (its answers are already
 * there), and the inbox's records in the same database, group-committed.
 */
export function sqliteOrderStore(
  db: Db,
  { now = Date.now, where = 'sqlite' }: { now?: () => number; where?: string } = {},
): OrderStorePort {
  const sync = createOrderStore(db, now);
  return {
    kind: 'sqlite',
    where,
    inbox: sqliteInboxRecords(db, sync, now),
    get: async (orderId) => sync.get(orderId),
    tombstone: async (orderId) => {
      // A record of its own, not the driver's row (which has no prototype).
      const t = sync.tombstone(orderId);
      return t && { reason: t.reason, createdAt: t.createdAt };
    },
    list: async (after, limit) => sync.list(after, limit),
    create: async (input) => sync.create(input),
    confirm: async (orderId) => sync.confirm(orderId),
    cancel: async (orderId, reason) => sync.cancel(orderId, reason),
    databaseId: async () => databaseId(db),
    check: async () => db.open,
    close: async () => {
      if (db.open) db.close();
    },
  };
}
