import { LIMITS, checkIntInRange, checkOrderId } from '../shared/validate.js';

/** Payment rules, free of I/O: one charge per order, a limit, and refunds that leave tombstones. */

export type PaymentStatus = 'CHARGED' | 'REFUNDED' | 'DECLINED';

export interface PaymentRecord {
  status: PaymentStatus;
  amountCents: number;
  declineReason: string;
}

/** A charge is at most an order's total. */
export const MAX_AMOUNT_CENTS = LIMITS.orderTotalMaxCents;
export const DEFAULT_CHARGE_LIMIT_CENTS = 50_000;
export const DECLINE_OVER_LIMIT = 'amount_over_limit';

export interface ValidCharge {
  orderId: string;
  amountCents: number;
}

export function validateCharge(input: { orderId: string; amountCents: number }): ValidCharge {
  return {
    orderId: checkOrderId(input.orderId),
    amountCents: checkIntInRange(input.amountCents, 1, MAX_AMOUNT_CENTS, 'amount_cents'),
  };
}

export interface PaymentState {
  tombstoned: boolean;
  payment: PaymentRecord | undefined;
}

export type ChargeDecision =
  /** Refunded (or tombstoned) before this charge arrived: a late action, refused. */
  | { outcome: 'refunded'; action: 'none' }
  | { outcome: 'charged'; action: 'charge' | 'none' }
  | { outcome: 'declined'; action: 'decline'; declineReason: string }
  /**
   * Already charged another amount: answering CHARGED would confirm an order as paid for an
   * amount nobody paid, so the contradiction is refused and the first charge stays as it was.
   */
  | { outcome: 'conflict'; action: 'none' };

export function decideCharge(state: PaymentState, amountCents: number, limitCents: number): ChargeDecision {
  if (state.tombstoned || state.payment?.status === 'REFUNDED') return { outcome: 'refunded', action: 'none' };
  // Never charge twice: the same amount again is the same charge; another amount contradicts it.
  if (state.payment?.status === 'CHARGED') {
    return state.payment.amountCents === amountCents
      ? { outcome: 'charged', action: 'none' }
      : { outcome: 'conflict', action: 'none' };
  }
  // A decline is judged again on each new request (a new key), as a card network would.
  if (amountCents > limitCents) return { outcome: 'declined', action: 'decline', declineReason: DECLINE_OVER_LIMIT };
  return { outcome: 'charged', action: 'charge' };
}

export type RefundDecision =
  | { outcome: 'refunded'; action: 'refund' | 'none'; amountCents: number }
  /** Nothing was charged: a tombstone must refuse a late charge. */
  | { outcome: 'nothing_charged'; action: 'tombstone'; amountCents: 0 };

export function decideRefund(payment: PaymentRecord | undefined): RefundDecision {
  switch (payment?.status) {
    case 'CHARGED':
      return { outcome: 'refunded', action: 'refund', amountCents: payment.amountCents };
    case 'REFUNDED':
      return { outcome: 'refunded', action: 'none', amountCents: payment.amountCents };
    default:
      return { outcome: 'nothing_charged', action: 'tombstone', amountCents: 0 };
  }
}
