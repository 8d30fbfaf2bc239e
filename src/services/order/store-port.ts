import type { OrderLine, OrderRecord, OrderStatus, Tombstone, ValidCreate } from './domain.js';
import type { Awaitable, ParticipantStore } from '../shared/store-port.js';

/** `order` is the stored order, except on a conflict: a contradicting caller is not shown it. */
export type CreateResult =
  { outcome: 'created' | 'cancelled'; order: OrderRecord } | { outcome: 'conflict'; order: undefined };
export interface ConfirmResult {
  outcome: 'confirmed' | 'not_pending' | 'not_found';
  order: OrderRecord | undefined;
}
export interface CancelResult {
  outcome: 'cancelled' | 'not_pending' | 'tombstoned';
  order: OrderRecord | undefined;
}

export interface OrderEntry {
  orderId: string;
  order: OrderRecord | undefined;
  tombstoned: boolean;
}

/**
 * The order service's writes, each one transition decided by the domain's rules (domain.ts) on
 * what the database holds. Given to a write RPC's effect bound to its inbox record's transaction:
 * SQLite's return at once, PostgreSQL's a promise.
 */
export interface OrderWrites {
  create(input: ValidCreate): Awaitable<CreateResult>;
  confirm(orderId: string): Awaitable<ConfirmResult>;
  cancel(orderId: string, reason: string): Awaitable<CancelResult>;
}

/** The order service's store port: SQLite (store.ts) or PostgreSQL (postgres-store.ts). */
export interface OrderStorePort extends ParticipantStore<OrderWrites> {
  get(orderId: string): Promise<OrderRecord | undefined>;
  tombstone(orderId: string): Promise<Tombstone | undefined>;
  /**
   * The books for reconciliation: what is held for each order id after `after`, in id order, at
   * most `limit` ids (an order, a tombstone, or both when a late create was born cancelled).
   */
  list(after: string, limit: number): Promise<OrderEntry[]>;
  /** The writes, each in a transaction of its own without an inbox record (tools and tests). */
  create(input: ValidCreate): Promise<CreateResult>;
  confirm(orderId: string): Promise<ConfirmResult>;
  cancel(orderId: string, reason: string): Promise<CancelResult>;
}

/** A row of the orders table, the same in both stores (items as JSON text). */
export interface OrderRow {
  id: string;
  customer_id: string;
  items: string;
  status: OrderStatus;
  total_cents: number;
  reason: string;
  created_at_ms: number;
  updated_at_ms: number;
}

export function fromRow(row: OrderRow): OrderRecord {
  return {
    id: row.id,
    customerId: row.customer_id,
    items: JSON.parse(row.items) as OrderLine[],
    status: row.status,
    totalCents: row.total_cents,
    reason: row.reason,
    createdAtMs: row.created_at_ms,
    updatedAtMs: row.updated_at_ms,
  };
}
