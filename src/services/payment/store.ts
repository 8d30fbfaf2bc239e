import { databaseId, openDatabase, type Db } from '../../platform/storage/db.js';
import type { SyncLevel } from '../../platform/config/config.js';
import { INBOX_MIGRATION, sqliteInboxRecords } from '../../platform/storage/inbox.js';
import { decideCharge, decideRefund, type PaymentRecord, type PaymentStatus, type ValidCharge } from './domain.js';
import { TOMBSTONES_TABLE } from '../shared/tombstones.js';
import { pageIdsSql } from '../shared/paging.js';
import type { ChargeResult, PaymentEntry, PaymentStorePort, RefundResult } from './store-port.js';

/**
 * The payment service's store on SQLite: synchronous inside (each method one transaction, a
 * savepoint inside the inbox's group commit), and sqlitePaymentStore, the same behind the async
 * store port.
 */

export type { PaymentEntry };

export const PAYMENT_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE payments (
    order_id       TEXT PRIMARY KEY,
    status         TEXT NOT NULL CHECK (status IN ('CHARGED', 'REFUNDED', 'DECLINED')),
    amount_cents   INTEGER NOT NULL CHECK (amount_cents > 0),
    decline_reason TEXT NOT NULL DEFAULT '',
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
  ) WITHOUT ROWID;
  ${TOMBSTONES_TABLE}
  `,
  INBOX_MIGRATION,
];

export const REFUND_TOMBSTONE_REASON = 'refunded_before_charged';

export function openPaymentDatabase(file: string, synchronous: SyncLevel = 'normal'): Db {
  return openDatabase(file, { synchronous, migrations: PAYMENT_MIGRATIONS });
}

/** The synchronous SQLite store: PaymentStorePort's methods, answering at once. */
export interface PaymentStore {
  charge(input: ValidCharge): ChargeResult;
  refund(orderId: string): RefundResult;
  get(orderId: string): PaymentRecord | undefined;
  isTombstoned(orderId: string): boolean;
  list: (after: string, limit: number) => PaymentEntry[];
}

export interface PaymentStoreOptions {
  /** Charges strictly above this many cents are declined. */
  chargeLimitCents: number;
  now?: () => number;
}

export function createPaymentStore(db: Db, { chargeLimitCents, now = Date.now }: PaymentStoreOptions): PaymentStore {
  const selectPayment = db.prepare<[string], PaymentRecord>(
    'SELECT status, amount_cents AS amountCents, decline_reason AS declineReason FROM payments WHERE order_id = ?',
  );
  const selectTombstone = db.prepare<[string], { one: 1 }>('SELECT 1 AS one FROM tombstones WHERE order_id = ?');
  // One row per order: a later attempt overwrites an earlier decline, keeping created_at.
  const upsertPayment = db.prepare<
    [{ order_id: string; status: PaymentStatus; amount_cents: number; decline_reason: string; now: number }]
  >(
    `INSERT INTO payments (order_id, status, amount_cents, decline_reason, created_at, updated_at)
     VALUES (@order_id, @status, @amount_cents, @decline_reason, @now, @now)
     ON CONFLICT (order_id) DO UPDATE SET
       status = excluded.status, amount_cents = excluded.amount_cents,
       decline_reason = excluded.decline_reason, updated_at = excluded.updated_at`,
  );
  const markRefunded = db.prepare<[number, string]>(
    "UPDATE payments SET status = 'REFUNDED', updated_at = ? WHERE order_id = ? AND status = 'CHARGED'",
  );
  const insertTombstone = db.prepare<[string, string, number]>(
    'INSERT OR IGNORE INTO tombstones (order_id, reason, created_at) VALUES (?, ?, ?)',
  );

  // One statement, so a page is one consistent read even while payments are being written.
  const selectPage = db.prepare<
    [{ after: string; limit: number }],
    {
      entry_id: string;
      status: PaymentStatus | null;
      amountCents: number | null;
      declineReason: string | null;
      tombstoned: 0 | 1;
    }
  >(
    `WITH ids AS (${pageIdsSql('payments', 'order_id')})
     SELECT ids.order_id AS entry_id, p.status, p.amount_cents AS amountCents, p.decline_reason AS declineReason,
            (t.order_id IS NOT NULL) AS tombstoned
     FROM ids LEFT JOIN payments p ON p.order_id = ids.order_id LEFT JOIN tombstones t ON t.order_id = ids.order_id
     ORDER BY ids.order_id`,
  );

  // A record of its own, not the driver's row (which has no prototype).
  const get = (orderId: string): PaymentRecord | undefined => {
    const r = selectPayment.get(orderId);
    return r && { status: r.status, amountCents: r.amountCents, declineReason: r.declineReason };
  };
  const isTombstoned = (orderId: string) => selectTombstone.get(orderId) !== undefined;

  return {
    get,
    isTombstoned,
    list: (after, limit) =>
      selectPage.all({ after, limit }).map((r) => ({
        orderId: r.entry_id,
        payment:
          r.status === null
            ? undefined
            : { status: r.status, amountCents: r.amountCents ?? 0, declineReason: r.declineReason ?? '' },
        tombstoned: r.tombstoned === 1,
      })),

    charge: db.transaction(({ orderId, amountCents }: ValidCharge) => {
      const decision = decideCharge(
        { tombstoned: isTombstoned(orderId), payment: get(orderId) },
        amountCents,
        chargeLimitCents,
      );
      if (decision.action === 'charge' || decision.action === 'decline') {
        upsertPayment.run({
          order_id: orderId,
          status: decision.action === 'charge' ? 'CHARGED' : 'DECLINED',
          amount_cents: amountCents,
          decline_reason: decision.outcome === 'declined' ? decision.declineReason : '',
          now: now(),
        });
      }
      return {
        outcome: decision.outcome,
        declineReason: decision.outcome === 'declined' ? decision.declineReason : '',
      };
    }),

    refund: db.transaction((orderId: string) => {
      const decision = decideRefund(get(orderId));
      if (decision.action === 'refund') markRefunded.run(now(), orderId);
      if (decision.action === 'tombstone') insertTombstone.run(orderId, REFUND_TOMBSTONE_REASON, now());
      return { outcome: decision.outcome, amountCents: decision.amountCents };
    }),
  };
}

/**
 * The SQLite store behind the store port: the synchronous store wrapped (its answers are already
 * there), and the inbox's records in the same database, group-committed.
 */
export function sqlitePaymentStore(db: Db, opts: PaymentStoreOptions & { where?: string }): PaymentStorePort {
  const { now = Date.now, where = 'sqlite' } = opts;
  const sync = createPaymentStore(db, opts);
  return {
    kind: 'sqlite',
    where,
    inbox: sqliteInboxRecords(db, sync, now),
    get: async (orderId) => sync.get(orderId),
    isTombstoned: async (orderId) => sync.isTombstoned(orderId),
    list: async (after, limit) => sync.list(after, limit),
    charge: async (input) => sync.charge(input),
    refund: async (orderId) => sync.refund(orderId),
    databaseId: async () => databaseId(db),
    check: async () => db.open,
    close: async () => {
      if (db.open) db.close();
    },
  };
}
