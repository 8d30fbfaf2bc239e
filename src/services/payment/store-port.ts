import type { ChargeDecision, PaymentRecord, ValidCharge } from './domain.js';
import type { Awaitable, ParticipantStore } from '../shared/store-port.js';

export interface ChargeResult {
  outcome: ChargeDecision['outcome'];
  declineReason: string;
}
export interface RefundResult {
  outcome: 'refunded' | 'nothing_charged';
  amountCents: number;
}

export interface PaymentEntry {
  orderId: string;
  payment: PaymentRecord | undefined;
  tombstoned: boolean;
}

/**
 * The payment service's writes, each decided by the domain's rules (domain.ts) on what the
 * database holds. Given to a write RPC's effect bound to its inbox record's transaction: SQLite's
 * return at once, PostgreSQL's a promise.
 */
export interface PaymentWrites {
  charge(input: ValidCharge): Awaitable<ChargeResult>;
  refund(orderId: string): Awaitable<RefundResult>;
}

/** The payment service's store port: SQLite (store.ts) or PostgreSQL (postgres-store.ts). */
export interface PaymentStorePort extends ParticipantStore<PaymentWrites> {
  get(orderId: string): Promise<PaymentRecord | undefined>;
  isTombstoned(orderId: string): Promise<boolean>;
  /**
   * The books for reconciliation: what is held for each order id after `after`, in id order, at
   * most `limit` ids (a payment, a tombstone, or both: a refund of a declined charge tombstones).
   */
  list(after: string, limit: number): Promise<PaymentEntry[]>;
  /** The writes, each in a transaction of its own without an inbox record (tools and tests). */
  charge(input: ValidCharge): Promise<ChargeResult>;
  refund(orderId: string): Promise<RefundResult>;
}
