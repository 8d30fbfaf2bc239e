/**
 * The books `sagas reconcile` compares, as plain records: the saga log's sagas, and what each
 * participant holds by its own account (orders, payments, reservations, products). Built from the
 * saga log (sagaBookOf) and the participants' List RPCs (participant-books.ts); judged by rules.ts.
 */
import type { Json, SagaRecord, SagaStatus } from '../saga/index.js';
import { PLACE_ORDER } from '../contracts/place-order.js';

export interface StockLine {
  productId: string;
  quantity: number;
}

/** What a place-order saga was asked to do, read from its input. */
export interface SagaOrder {
  orderId: string;
  customerId: string;
  totalCents: number;
  /** The order's lines as the customer sent them (duplicates kept), with unit prices. */
  lines: Array<StockLine & { unitPriceCents: number }>;
}

export interface SagaBook {
  id: string;
  definition: string;
  status: SagaStatus;
  /** The step it is at (RUNNING, COMPENSATING) or stuck on (PARKED); null otherwise. */
  currentStep: string | null;
  /** When its row last changed: a saga read again with another is one that moved meanwhile. */
  updatedAt: number;
  /** Whether it is a place-order saga: its input must be an order. */
  placesOrder: boolean;
  /** Its order; undefined when its input cannot be read as one (or it is of another definition). */
  order: SagaOrder | undefined;
}

export type OrderStatus = 'PENDING' | 'CONFIRMED' | 'CANCELLED';

/** The order service's record of an order id: an order, a tombstone, or both. */
export interface OrderBook {
  orderId: string;
  /** undefined: no order (a tombstone alone). */
  status: OrderStatus | undefined;
  customerId: string;
  totalCents: number;
  lines: Array<StockLine & { unitPriceCents: number }>;
  reason: string;
  /** A cancel found no order and left a tombstone. */
  tombstoned: boolean;
}

export type PaymentStatus = 'CHARGED' | 'REFUNDED' | 'DECLINED';

/** The payment service's record of an order id. */
export interface PaymentBook {
  orderId: string;
  /** undefined: no payment (a tombstone alone). */
  status: PaymentStatus | undefined;
  /** Charged (CHARGED, REFUNDED) or asked for and declined (DECLINED). */
  amountCents: number;
  refundedCents: number;
  /** A refund found nothing charged and left a tombstone. */
  tombstoned: boolean;
}

export type ReservationStatus = 'HELD' | 'COMMITTED' | 'RELEASED';

/** The inventory's record of an order id. */
export interface ReservationBook {
  orderId: string;
  /** undefined: no reservation (a tombstone alone). */
  status: ReservationStatus | undefined;
  /** One line per product, sorted by product id. */
  lines: StockLine[];
  /** A release found nothing reserved and left a tombstone. */
  tombstoned: boolean;
}

export interface ProductBook {
  productId: string;
  available: number;
  reserved: number;
  sold: number;
  /** The stock ever supplied. */
  total: number;
}

export interface Books {
  sagas: readonly SagaBook[];
  orders: readonly OrderBook[];
  payments: readonly PaymentBook[];
  reservations: readonly ReservationBook[];
  products: readonly ProductBook[];
}

const isObject = (v: Json | undefined): v is { [key: string]: Json } =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: Json | undefined): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** The order a place-order saga's input describes, or undefined when it does not describe one. */
export function sagaOrderOf(input: Json): SagaOrder | undefined {
  if (!isObject(input)) return undefined;
  const { order_id: orderId, customer_id: customerId, total_cents: totalCents, items } = input;
  if (typeof orderId !== 'string' || typeof customerId !== 'string' || !isCount(totalCents) || !Array.isArray(items))
    return undefined;
  const lines: SagaOrder['lines'] = [];
  for (const item of items) {
    if (!isObject(item)) return undefined;
    const { product_id: productId, quantity, unit_price_cents: unitPriceCents } = item;
    if (typeof productId !== 'string' || !isCount(quantity) || !isCount(unitPriceCents)) return undefined;
    lines.push({ productId, quantity, unitPriceCents });
  }
  return { orderId, customerId, totalCents, lines };
}

/** A saga as the rules read it. Only place-order sagas carry an order. */
export function sagaBookOf(s: SagaRecord): SagaBook {
  return {
    id: s.id,
    definition: s.definition,
    status: s.status,
    currentStep: s.currentStep,
    updatedAt: s.updatedAt,
    placesOrder: s.definition === PLACE_ORDER,
    order: s.definition === PLACE_ORDER ? sagaOrderOf(s.input) : undefined,
  };
}

/** One line per product, quantities summed, sorted by product id: how the inventory keeps a reservation. */
export function summedLines(lines: readonly StockLine[]): StockLine[] {
  const sums = new Map<string, number>();
  for (const { productId, quantity } of lines) sums.set(productId, (sums.get(productId) ?? 0) + quantity);
  return [...sums.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([productId, quantity]) => ({ productId, quantity }));
}
