/**
 * DESIGN §6 over the participant model's books (test/helpers/saga-model.ts): checked against
 * what the participants recorded (charged, refunded, reserved, sold, confirmed), never against the
 * saga's row. Pure functions; each violation names its invariant.
 */
import { totalOf, type Books, type Scenario } from './saga-model.js';

export interface Violation {
  /** A stable name: counterexamples are grouped by it. */
  invariant: string;
  detail: string;
}

/**
 * What must hold in every state, on the way to any end, PARKED included (DESIGN §6.3, §6.4, §6.7):
 * no refund of a confirmed order, no release of a confirmed order's stock, never two charges,
 * stock conserved, nothing sold that is not confirmed, nothing confirmed that is not paid.
 */
export function alwaysViolations(b: Books, sc: Scenario): Violation[] {
  const v: Violation[] = [];
  const confirmed = b.order.status === 'CONFIRMED';
  if (confirmed && (b.payment.status === 'REFUNDED' || b.payment.refunds > 0)) {
    v.push({ invariant: 'refund of a confirmed order', detail: 'the order is CONFIRMED and its payment was refunded' });
  }
  if (confirmed && b.stock.reservation === 'RELEASED') {
    v.push({
      invariant: "release of a confirmed order's stock",
      detail: 'the order is CONFIRMED and its reservation was released (its unit is back on the shelf)',
    });
  }
  if (b.payment.charges > 1) v.push({ invariant: 'double charge', detail: `charged ${b.payment.charges} times` });
  const s = b.stock;
  if (s.available < 0 || s.reserved < 0 || s.sold < 0 || s.available + s.reserved + s.sold !== sc.initialStock) {
    v.push({
      invariant: 'stock not conserved',
      detail: `available ${s.available} + reserved ${s.reserved} + sold ${s.sold} != initial ${sc.initialStock}`,
    });
  }
  if (s.reservation === 'COMMITTED' && !confirmed) {
    v.push({
      invariant: 'sold without a confirmed order',
      detail: `stock sold while the order is ${b.order.status ?? 'absent'}`,
    });
  }
  // (A refund is the first invariant's; not reported twice.)
  if (
    confirmed &&
    b.payment.refunds === 0 &&
    (b.payment.status !== 'CHARGED' || b.payment.amountCents !== totalOf(sc) || b.payment.charges !== 1)
  ) {
    v.push({
      invariant: 'confirmed without its charge',
      detail: `the order is CONFIRMED, its payment ${b.payment.status ?? 'absent'} ${b.payment.amountCents}c (total ${totalOf(sc)}c)`,
    });
  }
  return v;
}

/**
 * What must hold once the saga has ended (DESIGN §6.2-§6.4): COMPLETED — the order CONFIRMED,
 * charged its total exactly once and never refunded, its stock sold and nothing held; COMPENSATED
 * — the order CANCELLED (or never created), no money kept, nothing held or sold.
 */
export function endViolations(status: 'COMPLETED' | 'COMPENSATED', b: Books, sc: Scenario): Violation[] {
  const v: Violation[] = [];
  const bad = (detail: string) => v.push({ invariant: `${status} with inconsistent books`, detail });
  const s = b.stock;
  const p = b.payment;
  if (status === 'COMPLETED') {
    if (b.order.status !== 'CONFIRMED') bad(`the order is ${b.order.status ?? 'absent'}, not CONFIRMED`);
    if (p.status !== 'CHARGED' || p.amountCents !== totalOf(sc) || p.charges !== 1 || p.refunds !== 0)
      bad(`payment ${p.status ?? 'absent'} ${p.amountCents}c charges=${p.charges} refunds=${p.refunds}`);
    if (s.reservation !== 'COMMITTED' || s.sold !== sc.quantity || s.reserved !== 0)
      bad(`stock not sold: reservation ${s.reservation ?? 'none'}, sold ${s.sold}, reserved ${s.reserved}`);
  } else {
    if (b.order.status !== 'CANCELLED' && b.order.status !== null) bad(`the order is ${b.order.status}, not CANCELLED`);
    if (p.status === 'CHARGED' || p.charges !== p.refunds)
      bad(`money kept: payment ${p.status ?? 'absent'} charges=${p.charges} refunds=${p.refunds}`);
    if (s.reservation === 'HELD' || s.reservation === 'COMMITTED' || s.reserved !== 0 || s.sold !== 0)
      bad(`stock held or sold: reservation ${s.reservation ?? 'none'}, reserved ${s.reserved}, sold ${s.sold}`);
  }
  return v;
}
