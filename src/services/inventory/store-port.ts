import type { ReservationStatus, ReserveDecision, StockLine, ValidReserve } from './domain.js';
import type { Awaitable, ParticipantStore } from '../shared/store-port.js';

export interface ProductStock {
  productId: string;
  available: number;
  reserved: number;
  sold: number;
  /** The stock ever supplied: available + reserved + sold always equals it. */
  total: number;
  /** The catalog's unit price in cents; undefined when the catalog gives none. */
  priceCents?: number;
}

export interface Reservation {
  orderId: string;
  status: ReservationStatus;
  lines: StockLine[];
}

export interface ReserveResult {
  outcome: ReserveDecision['outcome'];
  /** The products behind an unknown_product or insufficient_stock outcome; empty otherwise. */
  productIds: string[];
}
export interface ReleaseResult {
  outcome: 'released' | 'already_committed' | 'nothing_reserved';
}
export interface CommitResult {
  outcome: 'committed' | 'not_reserved';
}

export interface ReservationEntry {
  orderId: string;
  reservation: Reservation | undefined;
  tombstoned: boolean;
}

/**
 * The inventory service's writes, each decided by the domain's rules (domain.ts) on what the
 * database holds. Given to a write RPC's effect bound to its inbox record's transaction: SQLite's
 * return at once, PostgreSQL's a promise.
 */
export interface InventoryWrites {
  reserve(input: ValidReserve): Awaitable<ReserveResult>;
  release(orderId: string): Awaitable<ReleaseResult>;
  commit(orderId: string): Awaitable<CommitResult>;
}

/**
 * The inventory service's store port: SQLite (store.ts) or PostgreSQL (postgres-store.ts). Opening
 * one seeds the catalog's stock on a database never seeded, and sets its prices.
 */
export interface InventoryStorePort extends ParticipantStore<InventoryWrites> {
  /** Every product, or only those of `productIds` (unknown ones left out), sorted by id. */
  listProducts(productIds?: readonly string[]): Promise<ProductStock[]>;
  reservation(orderId: string): Promise<Reservation | undefined>;
  isTombstoned(orderId: string): Promise<boolean>;
  /**
   * The books for reconciliation: what is held for each order id after `after`, in id order, at
   * most `limit` ids (a reservation, a tombstone, or both).
   */
  listReservations(after: string, limit: number): Promise<ReservationEntry[]>;
  /** The writes, each in a transaction of its own without an inbox record (tools and tests). */
  reserve(input: ValidReserve): Promise<ReserveResult>;
  release(orderId: string): Promise<ReleaseResult>;
  commit(orderId: string): Promise<CommitResult>;
}
