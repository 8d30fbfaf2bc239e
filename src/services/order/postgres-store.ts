/**
 * The order service's store on PostgreSQL, for replicas sharing one database: the same domain
 * rules as the SQLite store (domain.ts), each write taking its order's lock first (lockOrder), so
 * that what it reads is what it decides on, whichever replica wrote last.
 */
import { postgresInboxRecords } from '../../platform/storage/pg-inbox.js';
import { run, type PgClient, type PgDatabase, type Sql } from '../../platform/storage/pg.js';
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
import {
  fromRow,
  type CancelResult,
  type ConfirmResult,
  type CreateResult,
  type OrderRow,
  type OrderStorePort,
  type OrderWrites,
} from './store-port.js';
import {
  lockOrder,
  openParticipantDatabase,
  orderLock,
  pgDatabaseId,
  pgPageIdsSql,
  PG_IDENTITY_TABLE,
  PG_INBOX_TABLE,
  PG_TOMBSTONES_TABLE,
  type PostgresStoreOptions,
} from '../shared/postgres.js';

/** Ordered schema steps (order_schema_migrations); the tables mirror the SQLite store's. */
export const ORDER_PG_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE orders (
    id            text COLLATE "C" PRIMARY KEY,
    customer_id   text NOT NULL,
    items         text NOT NULL,
    status        text NOT NULL CHECK (status IN ('PENDING', 'CONFIRMED', 'CANCELLED')),
    total_cents   bigint NOT NULL CHECK (total_cents > 0),
    reason        text NOT NULL DEFAULT '',
    created_at_ms bigint NOT NULL,
    updated_at_ms bigint NOT NULL
  );
  ${PG_TOMBSTONES_TABLE}
  ${PG_INBOX_TABLE}
  ${PG_IDENTITY_TABLE}
  `,
];

const COLUMNS = 'id, customer_id, items, status, total_cents, reason, created_at_ms, updated_at_ms';
const LOCK = orderLock('order');
/** An order and its tombstone, in one read. */
const STATE: Sql = {
  name: 'order_state',
  text: `SELECT o.id, o.customer_id, o.items, o.status, o.total_cents, o.reason, o.created_at_ms, o.updated_at_ms,
                t.reason AS t_reason, t.created_at AS t_created_at
         FROM (SELECT $1::text AS id) k
         LEFT JOIN orders o ON o.id = k.id LEFT JOIN tombstones t ON t.order_id = k.id`,
};
const SELECT: Sql = { name: 'order_get', text: `SELECT ${COLUMNS} FROM orders WHERE id = $1` };
const TOMBSTONE: Sql = {
  name: 'order_tombstone',
  text: 'SELECT reason, created_at AS "createdAt" FROM tombstones WHERE order_id = $1',
};
const INSERT: Sql = {
  name: 'order_insert',
  text: `INSERT INTO orders (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ${COLUMNS}`,
};
const UPDATE_STATUS: Sql = {
  name: 'order_status',
  text: `UPDATE orders SET status = $2, reason = $3, updated_at_ms = $4 WHERE id = $1 RETURNING ${COLUMNS}`,
};
// ON CONFLICT DO NOTHING: a repeated cancel of an unknown order keeps the first reason.
const INSERT_TOMBSTONE: Sql = {
  name: 'order_tombstone_insert',
  text: 'INSERT INTO tombstones (order_id, reason, created_at) VALUES ($1, $2, $3) ON CONFLICT (order_id) DO NOTHING',
};
// One statement, so a page is one consistent read even while orders are being written.
const PAGE: Sql = {
  name: 'order_page',
  text: `WITH ids AS (${pgPageIdsSql('orders', 'id')})
         SELECT ids.order_id AS entry_id, ${COLUMNS.split(', ')
           .map((c) => `o.${c}`)
           .join(', ')}, (t.order_id IS NOT NULL) AS tombstoned
         FROM ids LEFT JOIN orders o ON o.id = ids.order_id LEFT JOIN tombstones t ON t.order_id = ids.order_id
         ORDER BY ids.order_id`,
};

type StateRow = Partial<OrderRow> & { t_reason: string | null; t_created_at: number | null };

/** The writes on one transaction's connection. */
function writesOn(c: PgClient, now: () => number): OrderWrites {
  const state = async (orderId: string) => {
    await lockOrder(c, LOCK, orderId);
    const [row] = await run<StateRow>(c, STATE, [orderId]);
    const order = row?.id ? fromRow(row as OrderRow) : undefined;
    const tombstone: Tombstone | undefined =
      row?.t_reason != null ? { reason: row.t_reason, createdAt: row.t_created_at ?? 0 } : undefined;
    return { order, tombstone };
  };
  const insert = async (input: ValidCreate, status: OrderStatus, reason: string, updatedAtMs: number) => {
    const [row] = await run<OrderRow>(c, INSERT, [
      input.orderId,
      input.customerId,
      JSON.stringify(input.items),
      status,
      input.totalCents,
      reason,
      input.createdAtMs,
      updatedAtMs,
    ]);
    return fromRow(row as OrderRow);
  };
  const transition = async (order: OrderRecord, status: OrderStatus, reason: string) => {
    const [row] = await run<OrderRow>(c, UPDATE_STATUS, [
      order.id,
      status,
      reason,
      nextUpdatedAt(order.updatedAtMs, now()),
    ]);
    return fromRow(row as OrderRow);
  };

  return {
    async create(input): Promise<CreateResult> {
      const { order, tombstone } = await state(input.orderId);
      const decision = decideCreate(order, tombstone, input);
      switch (decision.action) {
        case 'none':
          if (decision.outcome === 'conflict' || !order) return { outcome: 'conflict', order: undefined };
          return { outcome: decision.outcome, order };
        case 'insert_pending':
          return { outcome: 'created', order: await insert(input, 'PENDING', '', input.createdAtMs) };
        case 'insert_cancelled':
          // Born cancelled: created then cancelled in one step, so updated_at is after created_at.
          return {
            outcome: 'cancelled',
            order: await insert(input, 'CANCELLED', decision.reason, nextUpdatedAt(input.createdAtMs, now())),
          };
      }
    },
    async confirm(orderId): Promise<ConfirmResult> {
      const { order } = await state(orderId);
      const decision = decideConfirm(order);
      if (decision.transition && order)
        return { outcome: decision.outcome, order: await transition(order, 'CONFIRMED', '') };
      return { outcome: decision.outcome, order };
    },
    async cancel(orderId, reason): Promise<CancelResult> {
      const { order } = await state(orderId);
      const decision = decideCancel(order);
      if (decision.action === 'cancel' && order)
        return { outcome: decision.outcome, order: await transition(order, 'CANCELLED', reason) };
      if (decision.action === 'tombstone') await run(c, INSERT_TOMBSTONE, [orderId, reason, now()]);
      return { outcome: decision.outcome, order };
    },
  };
}

/** Opens the order service's PostgreSQL store, its schema migrated. */
export async function openPostgresOrderStore(opts: PostgresStoreOptions): Promise<OrderStorePort> {
  const now = opts.now ?? Date.now;
  const db = await openParticipantDatabase('order', ORDER_PG_MIGRATIONS, opts);
  return postgresOrderStore(db, now);
}

function postgresOrderStore(db: PgDatabase, now: () => number): OrderStorePort {
  const alone = <T>(fn: (w: OrderWrites) => Promise<T>) => db.transaction((c) => fn(writesOn(c, now)));
  return {
    kind: 'postgres',
    where: db.where,
    inbox: postgresInboxRecords(db, (c) => writesOn(c, now), now),
    async get(orderId) {
      const [row] = await db.query<OrderRow>(SELECT, [orderId]);
      return row && fromRow(row);
    },
    async tombstone(orderId) {
      const [row] = await db.query<Tombstone>(TOMBSTONE, [orderId]);
      return row && { reason: row.reason, createdAt: row.createdAt };
    },
    async list(after, limit) {
      const rows = await db.query<{ entry_id: string; tombstoned: boolean } & Partial<OrderRow>>(PAGE, [after, limit]);
      return rows.map(({ entry_id, tombstoned, ...row }) => ({
        orderId: entry_id,
        order: row.id == null ? undefined : fromRow(row as OrderRow),
        tombstoned,
      }));
    },
    create: (input) => alone((w) => Promise.resolve(w.create(input))),
    confirm: (orderId) => alone((w) => Promise.resolve(w.confirm(orderId))),
    cancel: (orderId, reason) => alone((w) => Promise.resolve(w.cancel(orderId, reason))),
    databaseId: () => pgDatabaseId(db),
    check: () => db.check(),
    close: () => db.close(),
  };
}
