import {
  checkIntInRange,
  checkItemCount,
  checkCustomerId,
  checkOrderId,
  checkStockLine,
  invalid,
  LIMITS,
} from '../shared/validate.js';
import { isReasonCode } from '../../contracts/ids.js';

/** The order's rules, free of I/O: validation, totals and the PENDING → CONFIRMED | CANCELLED machine. */

export type OrderStatus = 'PENDING' | 'CONFIRMED' | 'CANCELLED';

export interface OrderLine {
  productId: string;
  quantity: number;
  unitPriceCents: number;
}

export interface OrderRecord {
  id: string;
  customerId: string;
  items: OrderLine[];
  status: OrderStatus;
  totalCents: number;
  /** Why it was cancelled; '' otherwise. */
  reason: string;
  createdAtMs: number;
  updatedAtMs: number;
}

export interface Tombstone {
  reason: string;
  createdAt: number;
}

export interface CreateInput {
  orderId: string;
  customerId: string;
  items: readonly OrderLine[];
  /** 0 means "now". */
  createdAtMs: number;
}

export interface ValidCreate {
  orderId: string;
  customerId: string;
  items: OrderLine[];
  totalCents: number;
  createdAtMs: number;
}

export function validateCreate(input: CreateInput, now: number): ValidCreate {
  const orderId = checkOrderId(input.orderId);
  const customerId = checkCustomerId(input.customerId);
  checkItemCount(input.items.length);
  const items = input.items.map((item, i) => {
    checkStockLine(item, `items[${i}]`);
    checkIntInRange(item.unitPriceCents, 1, LIMITS.unitPriceMaxCents, `items[${i}].unit_price_cents`);
    // Copy only the known fields so that nothing unexpected is stored as JSON.
    return { productId: item.productId, quantity: item.quantity, unitPriceCents: item.unitPriceCents };
  });
  checkIntInRange(input.createdAtMs, 0, Number.MAX_SAFE_INTEGER, 'created_at_ms');
  return { orderId, customerId, items, totalCents: totalCents(items), createdAtMs: input.createdAtMs || now };
}

/** Σ quantity × unit price, in cents. Refuses a total that would lose precision as a JS number. */
export function totalCents(items: readonly OrderLine[]): number {
  let total = 0;
  for (const item of items) {
    total += item.quantity * item.unitPriceCents;
    if (total > LIMITS.orderTotalMaxCents)
      throw invalid('items', `total must be at most ${LIMITS.orderTotalMaxCents} cents`);
  }
  return total;
}

export function validateReason(reason: string): string {
  if (!isReasonCode(reason)) {
    throw invalid('reason', `must be 1-${LIMITS.reasonMax} characters of a-z 0-9 _ (e.g. payment_declined)`);
  }
  return reason;
}

/**
 * The next updated_at of a transition. It always moves forward, even when the clock did not (same
 * millisecond) or stepped back, so that a changed order never looks unchanged.
 */
export function nextUpdatedAt(previous: number, now: number): number {
  return Math.max(now, previous + 1);
}

export type CreateDecision =
  | { action: 'insert_pending' }
  /** A compensation overtook this create: the order is born cancelled, with the compensation's reason. */
  | { action: 'insert_cancelled'; reason: string }
  | { action: 'none'; outcome: 'created' | 'cancelled' }
  /**
   * The order exists with another customer, lines or total: answering CREATED would let a saga go
   * on for an order the database does not hold, so the contradiction is refused.
   */
  | { action: 'none'; outcome: 'conflict' };

/** What makes two creates the same order. created_at is not part of it: 0 means "now" on each try. */
export type OrderContent = Pick<OrderRecord, 'customerId' | 'items' | 'totalCents'>;

export function sameContent(a: OrderContent, b: OrderContent): boolean {
  return (
    a.customerId === b.customerId &&
    a.totalCents === b.totalCents &&
    a.items.length === b.items.length &&
    a.items.every((l, i) => {
      const o = b.items[i];
      return (
        o !== undefined &&
        l.productId === o.productId &&
        l.quantity === o.quantity &&
        l.unitPriceCents === o.unitPriceCents
      );
    })
  );
}

/**
 * An existing order wins over a tombstone: the tombstone was consumed when that order was created
 * from it. A create of other content is a conflict whatever the order's state.
 */
export function decideCreate(
  existing: OrderRecord | undefined,
  tombstone: Tombstone | undefined,
  input: OrderContent,
): CreateDecision {
  if (existing && !sameContent(existing, input)) return { action: 'none', outcome: 'conflict' };
  if (existing) return { action: 'none', outcome: existing.status === 'CANCELLED' ? 'cancelled' : 'created' };
  if (tombstone) return { action: 'insert_cancelled', reason: tombstone.reason };
  return { action: 'insert_pending' };
}

export type ConfirmDecision =
  { outcome: 'confirmed'; transition: boolean } | { outcome: 'not_pending' | 'not_found'; transition: false };

export function decideConfirm(existing: OrderRecord | undefined): ConfirmDecision {
  if (!existing) return { outcome: 'not_found', transition: false };
  switch (existing.status) {
    case 'PENDING':
      return { outcome: 'confirmed', transition: true };
    case 'CONFIRMED':
      return { outcome: 'confirmed', transition: false };
    case 'CANCELLED':
      return { outcome: 'not_pending', transition: false };
  }
}

export type CancelDecision =
  | { outcome: 'cancelled'; action: 'cancel' | 'none' }
  | { outcome: 'not_pending'; action: 'none' }
  /** Nothing to cancel: leave a tombstone so that a late create is refused. */
  | { outcome: 'tombstoned'; action: 'tombstone' };

export function decideCancel(existing: OrderRecord | undefined): CancelDecision {
  if (!existing) return { outcome: 'tombstoned', action: 'tombstone' };
  switch (existing.status) {
    case 'PENDING':
      return { outcome: 'cancelled', action: 'cancel' };
    case 'CANCELLED':
      // The first reason is the true one; a repeat must not rewrite history.
      return { outcome: 'cancelled', action: 'none' };
    case 'CONFIRMED':
      return { outcome: 'not_pending', action: 'none' };
  }
}
