/**
 * The payment service's store on PostgreSQL, for replicas sharing one database: the same domain
 * rules as the SQLite store (domain.ts), each write taking its order's lock first (lockOrder), so
 * that a charge and a refund of one order on two replicas run one after the other — never a
 * charge slipping past the tombstone of a refund it raced.
 */
import { postgresInboxRecords } from '../../platform/storage/pg-inbox.js';
import { run, type PgClient, type PgDatabase, type Sql } from '../../platform/storage/pg.js';
import { decideCharge, decideRefund, type PaymentRecord, type PaymentStatus } from './domain.js';
import type { ChargeResult, PaymentStorePort, PaymentWrites, RefundResult } from './store-port.js';
import { REFUND_TOMBSTONE_REASON } from './store.js';
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

/** Ordered schema steps (payment_schema_migrations); the tables mirror the SQLite store's. */
export const PAYMENT_PG_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE payments (
    order_id       text COLLATE "C" PRIMARY KEY,
    status         text NOT NULL CHECK (status IN ('CHARGED', 'REFUNDED', 'DECLINED')),
    amount_cents   bigint NOT NULL CHECK (amount_cents > 0),
    decline_reason text NOT NULL DEFAULT '',
    created_at     bigint NOT NULL,
    updated_at     bigint NOT NULL
  );
  ${PG_TOMBSTONES_TABLE}
  ${PG_INBOX_TABLE}
  ${PG_IDENTITY_TABLE}
  `,
];

const LOCK = orderLock('payment');
const RECORD = 'status, amount_cents AS "amountCents", decline_reason AS "declineReason"';
/** A payment and whether its order is tombstoned, in one read. */
const STATE: Sql = {
  name: 'payment_state',
  text: `SELECT p.status, p.amount_cents AS "amountCents", p.decline_reason AS "declineReason",
                (t.order_id IS NOT NULL) AS tombstoned
         FROM (SELECT $1::text AS id) k
         LEFT JOIN payments p ON p.order_id = k.id LEFT JOIN tombstones t ON t.order_id = k.id`,
};
const SELECT: Sql = { name: 'payment_get', text: `SELECT ${RECORD} FROM payments WHERE order_id = $1` };
const TOMBSTONED: Sql = { name: 'payment_tombstoned', text: 'SELECT 1 AS one FROM tombstones WHERE order_id = $1' };
// One row per order: a later attempt overwrites an earlier decline, keeping created_at.
const UPSERT: Sql = {
  name: 'payment_upsert',
  text: `INSERT INTO payments (order_id, status, amount_cents, decline_reason, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $5)
         ON CONFLICT (order_id) DO UPDATE SET
           status = excluded.status, amount_cents = excluded.amount_cents,
           decline_reason = excluded.decline_reason, updated_at = excluded.updated_at`,
};
const MARK_REFUNDED: Sql = {
  name: 'payment_refunded',
  text: "UPDATE payments SET status = 'REFUNDED', updated_at = $2 WHERE order_id = $1 AND status = 'CHARGED'",
};
const INSERT_TOMBSTONE: Sql = {
  name: 'payment_tombstone_insert',
  text: 'INSERT INTO tombstones (order_id, reason, created_at) VALUES ($1, $2, $3) ON CONFLICT (order_id) DO NOTHING',
};
// One statement, so a page is one consistent read even while payments are being written.
const PAGE: Sql = {
  name: 'payment_page',
  text: `WITH ids AS (${pgPageIdsSql('payments', 'order_id')})
         SELECT ids.order_id AS entry_id, p.status, p.amount_cents AS "amountCents", p.decline_reason AS "declineReason",
                (t.order_id IS NOT NULL) AS tombstoned
         FROM ids LEFT JOIN payments p ON p.order_id = ids.order_id LEFT JOIN tombstones t ON t.order_id = ids.order_id
         ORDER BY ids.order_id`,
};

type StateRow = {
  status: PaymentStatus | null;
  amountCents: number | null;
  declineReason: string | null;
  tombstoned: boolean;
};

const recordOf = (r: StateRow): PaymentRecord | undefined =>
  r.status === null
    ? undefined
    : { status: r.status, amountCents: r.amountCents ?? 0, declineReason: r.declineReason ?? '' };

/** The writes on one transaction's connection. */
function writesOn(c: PgClient, chargeLimitCents: number, now: () => number): PaymentWrites {
  const state = async (orderId: string) => {
    await lockOrder(c, LOCK, orderId);
    const [row] = await run<StateRow>(c, STATE, [orderId]);
    return { tombstoned: row?.tombstoned ?? false, payment: row && recordOf(row) };
  };
  return {
    async charge({ orderId, amountCents }): Promise<ChargeResult> {
      const decision = decideCharge(await state(orderId), amountCents, chargeLimitCents);
      const declineReason = decision.outcome === 'declined' ? decision.declineReason : '';
      if (decision.action === 'charge' || decision.action === 'decline') {
        const status: PaymentStatus = decision.action === 'charge' ? 'CHARGED' : 'DECLINED';
        await run(c, UPSERT, [orderId, status, amountCents, declineReason, now()]);
      }
      return { outcome: decision.outcome, declineReason };
    },
    async refund(orderId): Promise<RefundResult> {
      const decision = decideRefund((await state(orderId)).payment);
      if (decision.action === 'refund') await run(c, MARK_REFUNDED, [orderId, now()]);
      if (decision.action === 'tombstone') await run(c, INSERT_TOMBSTONE, [orderId, REFUND_TOMBSTONE_REASON, now()]);
      return { outcome: decision.outcome, amountCents: decision.amountCents };
    },
  };
}

export interface PostgresPaymentStoreOptions extends PostgresStoreOptions {
  /** Charges strictly above this many cents are declined. */
  chargeLimitCents: number;
}

/** Opens the payment service's PostgreSQL store, its schema migrated. */
export async function openPostgresPaymentStore(opts: PostgresPaymentStoreOptions): Promise<PaymentStorePort> {
  const db = await openParticipantDatabase('payment', PAYMENT_PG_MIGRATIONS, opts);
  return postgresPaymentStore(db, opts.chargeLimitCents, opts.now ?? Date.now);
}

function postgresPaymentStore(db: PgDatabase, chargeLimitCents: number, now: () => number): PaymentStorePort {
  const on = (c: PgClient) => writesOn(c, chargeLimitCents, now);
  return {
    kind: 'postgres',
    where: db.where,
    inbox: postgresInboxRecords(db, on, now),
    async get(orderId) {
      const [row] = await db.query<PaymentRecord>(SELECT, [orderId]);
      return row && { status: row.status, amountCents: row.amountCents, declineReason: row.declineReason };
    },
    isTombstoned: async (orderId) => (await db.query(TOMBSTONED, [orderId])).length > 0,
    async list(after, limit) {
      const rows = await db.query<StateRow & { entry_id: string }>(PAGE, [after, limit]);
      return rows.map((r) => ({ orderId: r.entry_id, payment: recordOf(r), tombstoned: r.tombstoned }));
    },
    charge: (input) => db.transaction(async (c) => on(c).charge(input)),
    refund: (orderId) => db.transaction(async (c) => on(c).refund(orderId)),
    databaseId: () => pgDatabaseId(db),
    check: () => db.check(),
    close: () => db.close(),
  };
}
