/**
 * `sagas reconcile`'s rules, free of I/O: the saga log and the participants' own books in, every
 * disagreement between them out, in business words (DESIGN §6: the invariants are checked against
 * what the participants charged, reserved, sold and confirmed, never against the gateway's view).
 *
 * What is judged:
 * - every order id that a saga or a participant knows, except those of a saga still in flight
 *   (RUNNING, COMPENSATING: its books are in motion; `settled` makes the saga itself a
 *   disagreement) and of a RESOLVED one (closed by an operator after a repair by hand: counted,
 *   not judged);
 * - a COMPLETED saga must have its order CONFIRMED, charged exactly its total and its stock sold;
 *   a COMPENSATED one its order CANCELLED (or never created), nothing charged net, nothing held
 *   or sold; records no saga placed must hold no order, no charge and no stock;
 * - a PARKED saga's books must fit one of its two ways out (DESIGN §6.7): forward (`retry`: the
 *   order PENDING or CONFIRMED, nothing or exactly the total charged and never refunded, the
 *   stock held or sold and never released, CONFIRMED only with the charge and the stock) or
 *   backward (`compensate`: the order not CONFIRMED, the stock not sold; any payment);
 * - whatever the saga: never a refund, a missing charge, another amount or unsold stock on a
 *   CONFIRMED order, never sold stock for an order that is not CONFIRMED;
 * - every product: available + reserved + sold = the stock ever supplied, and, when the books were
 *   read as of one moment, reserved = Σ held reservations and sold = Σ committed ones.
 */
import { uuidv7Time } from '../platform/ids.js';
import { type SagaStatus, SAGA_STATUSES } from '../saga/index.js';
import {
  summedLines,
  type Books,
  type OrderBook,
  type PaymentBook,
  type ReservationBook,
  type SagaBook,
  type SagaOrder,
  type StockLine,
} from './books.js';
import { sameContent } from '../services/order/domain.js';

/** Every kind of disagreement, most serious first (money, then stock, then the records' agreement). */
export const DISAGREEMENT_KINDS = [
  'charge_without_confirmed_order',
  'confirmed_without_charge',
  'charge_amount_mismatch',
  'refund_on_confirmed_order',
  'sold_without_confirmed_order',
  'confirmed_without_sold_stock',
  'reservation_without_saga',
  'stock_not_conserved',
  'order_status_mismatch',
  'order_without_saga',
  'order_content_mismatch',
  'reservation_lines_mismatch',
  'parked_books_inconsistent',
  'saga_unreadable',
  'saga_in_flight',
] as const;

export type DisagreementKind = (typeof DISAGREEMENT_KINDS)[number];

/** Each kind in words, for the headings of `sagas reconcile`. */
export const DISAGREEMENT_TITLES: Readonly<Record<DisagreementKind, string>> = {
  charge_without_confirmed_order: 'money charged for an order that is not confirmed',
  confirmed_without_charge: 'a confirmed order that was not charged',
  charge_amount_mismatch: 'a confirmed order charged another amount than its total',
  refund_on_confirmed_order: 'a confirmed order whose payment was refunded',
  sold_without_confirmed_order: 'stock sold for an order that is not confirmed',
  confirmed_without_sold_stock: 'a confirmed order whose stock was not sold',
  reservation_without_saga: 'stock held for an order no live saga needs',
  stock_not_conserved: "a product's stock does not add up",
  order_status_mismatch: "an order whose status does not match its saga's end",
  order_without_saga: 'an order no saga placed',
  order_content_mismatch: "an order whose content is not its saga's",
  reservation_lines_mismatch: "a reservation whose lines are not its order's",
  parked_books_inconsistent: 'a PARKED saga that neither retry nor compensate can finish',
  saga_unreadable: 'a saga whose order cannot be read',
  saga_in_flight: 'a saga still in flight',
};

export interface Disagreement {
  kind: DisagreementKind;
  saga_id?: string;
  order_id?: string;
  product_id?: string;
  message: string;
}

export interface JudgeOptions {
  /** Every saga should have ended: one in flight is a disagreement (tests, chaos runs, the soak). */
  settled: boolean;
  /**
   * The books were read as of one moment (the saga log did not move while they were read): only
   * then are a product's reserved and sold stock compared with the sums of its reservations, which
   * were read page by page.
   */
  stable: boolean;
  /**
   * Sagas that ended before this time (epoch ms) may have been pruned from the log by retention
   * (docs/retention.md): an order made before it (its id is a UUIDv7, stamped when it was made)
   * with no saga is counted as pruned, not as an order no saga placed. Its records are still
   * judged against each other. Unset: retention is off, every order must have its saga.
   */
  prunedBefore?: number;
}

export interface Judgement {
  disagreements: Disagreement[];
  /** Records read: sagas, and each participant's records (tombstones alone not counted). */
  checked: { sagas: number; orders: number; payments: number; reservations: number; products: number };
  byStatus: Record<SagaStatus, number>;
  /** Sagas whose books were not judged: in flight, RESOLVED by an operator, of another definition. */
  notJudged: { in_flight: number; resolved: number; other_definition: number; pruned: number };
  /** Whether reserved and sold stock were compared with the reservations (see JudgeOptions.stable). */
  stockSumsCompared: boolean;
}

const LIVE: ReadonlySet<SagaStatus> = new Set(['RUNNING', 'COMPENSATING']);

export function isLive(status: SagaStatus): boolean {
  return LIVE.has(status);
}

const money = (cents: number) => `$${(cents / 100).toFixed(2)}`;
const linesText = (lines: readonly StockLine[]) =>
  lines.map((l) => `${l.quantity} × ${l.productId}`).join(', ') || 'nothing';
const sameLines = (a: readonly StockLine[], b: readonly StockLine[]) =>
  a.length === b.length && a.every((l, i) => l.productId === b[i]?.productId && l.quantity === b[i]?.quantity);
const stepText = (s: SagaBook) => (s.currentStep ? ` at ${s.currentStep}` : '');

function orderText(o: OrderBook | undefined): string {
  if (!o?.status) return o?.tombstoned ? 'cancelled before it was created' : 'not at the order service';
  return o.status === 'CANCELLED' && o.reason ? `CANCELLED (${o.reason})` : o.status;
}

function paymentText(p: PaymentBook | undefined): string {
  switch (p?.status) {
    case 'CHARGED':
      return `charged ${money(p.amountCents)}`;
    case 'REFUNDED':
      return `${money(p.amountCents)} charged and refunded`;
    case 'DECLINED':
      return `a charge of ${money(p.amountCents)} declined`;
    default:
      return p?.tombstoned ? 'nothing charged, a refund tombstone refuses a charge' : 'nothing charged';
  }
}

function reservationText(r: ReservationBook | undefined): string {
  switch (r?.status) {
    case 'HELD':
      return `held (${linesText(r.lines)})`;
    case 'COMMITTED':
      return `sold (${linesText(r.lines)})`;
    case 'RELEASED':
      return `released (${linesText(r.lines)})`;
    default:
      return r?.tombstoned ? 'never reserved, a release tombstone refuses it' : 'never reserved';
  }
}

/** Why `retry` could not finish a PARKED saga with these books (empty: it could). */
function forwardMisfits(
  order: SagaOrder,
  o: OrderBook | undefined,
  p: PaymentBook | undefined,
  r: ReservationBook | undefined,
): string[] {
  const why: string[] = [];
  const confirmed = o?.status === 'CONFIRMED';
  if (o?.status !== 'PENDING' && !confirmed) why.push(`the order is ${orderText(o)}`);
  const chargedTotal = p?.status === 'CHARGED' && p.amountCents === order.totalCents;
  const nothingCharged = p?.status === undefined && !p?.tombstoned;
  if (!chargedTotal && !(nothingCharged && !confirmed)) {
    why.push(
      confirmed && nothingCharged
        ? 'the order is CONFIRMED with nothing charged'
        : `the payment is ${paymentText(p)}${p?.status === 'CHARGED' ? `, not the total ${money(order.totalCents)}` : ''}`,
    );
  }
  if (r?.status !== 'HELD' && r?.status !== 'COMMITTED') why.push(`the stock was ${reservationText(r)}`);
  if (r?.status === 'COMMITTED' && !confirmed) why.push('the stock was sold before the order was confirmed');
  return why;
}

/** Why `compensate` could not finish a PARKED saga with these books (empty: it could). */
function backwardMisfits(o: OrderBook | undefined, r: ReservationBook | undefined): string[] {
  const why: string[] = [];
  if (o?.status === 'CONFIRMED') why.push('the order is CONFIRMED');
  if (r?.status === 'COMMITTED') why.push(`the stock was sold (${linesText(r.lines)})`);
  return why;
}

/** The order service's order is the one its saga placed: the order service's own rule (sameContent). */
function sameOrder(o: OrderBook, order: SagaOrder): boolean {
  return sameContent(
    { customerId: o.customerId, totalCents: o.totalCents, items: o.lines },
    { customerId: order.customerId, totalCents: order.totalCents, items: order.lines },
  );
}

/** The records of one order id, judged against its saga (undefined: none placed it). */
function judgeOrder(
  id: string,
  saga: (SagaBook & { order: SagaOrder }) | undefined,
  o: OrderBook | undefined,
  p: PaymentBook | undefined,
  r: ReservationBook | undefined,
  out: Disagreement[],
  /** No saga because retention pruned it (JudgeOptions.prunedBefore): not a disagreement by itself. */
  pruned = false,
): void {
  const push = (kind: DisagreementKind, message: string) =>
    out.push({ kind, ...(saga ? { saga_id: saga.id } : {}), order_id: id, message });
  const confirmed = o?.status === 'CONFIRMED';
  const total = saga?.order.totalCents ?? o?.totalCents;
  const sagaText = saga ? `its saga ${saga.status}` : 'no saga placed it';

  // Whatever the saga: what a confirmed order must have, and what only a confirmed order may have.
  if (confirmed && p?.status === 'REFUNDED')
    push(
      'refund_on_confirmed_order',
      `order ${id} is CONFIRMED but its payment of ${money(p.amountCents)} was refunded`,
    );
  if (confirmed && p?.status !== 'CHARGED' && p?.status !== 'REFUNDED')
    push('confirmed_without_charge', `order ${id} is CONFIRMED but has ${paymentText(p)}`);
  if (confirmed && p?.status === 'CHARGED' && total !== undefined && p.amountCents !== total) {
    push(
      'charge_amount_mismatch',
      `order ${id} is CONFIRMED for ${money(total)} but was charged ${money(p.amountCents)}`,
    );
  }
  if (r?.status === 'COMMITTED' && !confirmed)
    push(
      'sold_without_confirmed_order',
      `${linesText(r.lines)} sold for order ${id}, which is ${orderText(o)} (${sagaText})`,
    );
  // A PARKED saga past its pivot may still have to commit its stock (retry does it).
  if (confirmed && r?.status !== 'COMMITTED' && !(saga?.status === 'PARKED' && r?.status === 'HELD')) {
    push('confirmed_without_sold_stock', `order ${id} is CONFIRMED but its stock was ${reservationText(r)}, not sold`);
  }

  if (saga?.status === 'PARKED') {
    const forward = forwardMisfits(saga.order, o, p, r);
    const backward = backwardMisfits(o, r);
    if (forward.length > 0 && backward.length > 0) {
      push(
        'parked_books_inconsistent',
        `saga ${saga.id} is PARKED${stepText(saga)} and neither way out fits its books: retry cannot finish it (${forward.join('; ')}), compensate cannot (${backward.join('; ')})`,
      );
    }
  } else {
    // An ended saga, or none: no money and no held stock for an order that is not confirmed.
    if (p?.status === 'CHARGED' && !confirmed)
      push(
        'charge_without_confirmed_order',
        `${money(p.amountCents)} is charged for order ${id}, which is ${orderText(o)} (${sagaText})`,
      );
    if (r?.status === 'HELD' && !confirmed)
      push(
        'reservation_without_saga',
        `${linesText(r.lines)} held for order ${id}, which is ${orderText(o)}, but ${sagaText}`,
      );
  }

  if (!saga) {
    if (o?.status && !pruned)
      push(
        'order_without_saga',
        `the order service holds order ${id} (${orderText(o)}, ${money(o.totalCents)}) but no saga placed it`,
      );
    return;
  }
  if (saga.status === 'COMPLETED' && !confirmed)
    push('order_status_mismatch', `saga ${saga.id} COMPLETED but its order is ${orderText(o)}, not CONFIRMED`);
  if (saga.status === 'COMPENSATED' && (o?.status === 'PENDING' || confirmed)) {
    push('order_status_mismatch', `saga ${saga.id} COMPENSATED but its order is ${orderText(o)}, not CANCELLED`);
  }
  if (o?.status && !sameOrder(o, saga.order)) {
    push(
      'order_content_mismatch',
      `the order service's order ${id} (customer ${o.customerId}, ${money(o.totalCents)}: ${linesText(o.lines)}) is not the one its saga placed (customer ${saga.order.customerId}, ${money(saga.order.totalCents)}: ${linesText(saga.order.lines)})`,
    );
  }
  const wanted = summedLines(saga.order.lines);
  if ((r?.status === 'HELD' || r?.status === 'COMMITTED') && !sameLines(r.lines, wanted)) {
    push(
      'reservation_lines_mismatch',
      `the stock ${reservationText(r)} for order ${id} is not its order's ${linesText(wanted)}`,
    );
  }
}

function byId<T extends { orderId: string }>(records: readonly T[]): Map<string, T> {
  return new Map(records.map((r) => [r.orderId, r]));
}

const kindRank = new Map<DisagreementKind, number>(DISAGREEMENT_KINDS.map((k, i) => [k, i]));

/** Most serious kind first, then by order id, product id and message: the same books, the same list. */
export function sortDisagreements(list: Disagreement[]): Disagreement[] {
  const key = (d: Disagreement) => `${d.order_id ?? ''}\u0000${d.product_id ?? ''}\u0000${d.message}`;
  return list.sort(
    (a, b) =>
      (kindRank.get(a.kind) ?? 0) - (kindRank.get(b.kind) ?? 0) || (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0),
  );
}

/** Every disagreement between the saga log and the participants' books. */
export function judge(books: Books, opts: JudgeOptions): Judgement {
  const out: Disagreement[] = [];
  const byStatus = Object.fromEntries(SAGA_STATUSES.map((s) => [s, 0])) as Record<SagaStatus, number>;
  const notJudged = { in_flight: 0, resolved: 0, other_definition: 0, pruned: 0 };
  const prunedAway = (id: string) => {
    const made = opts.prunedBefore === undefined ? undefined : uuidv7Time(id);
    return made !== undefined && opts.prunedBefore !== undefined && made < opts.prunedBefore;
  };
  // Every saga by the order id it is for (its own id when its input cannot be read: the
  // place-order saga's id is its order's), so that no record of it looks like one without a saga.
  const sagaOf = new Map<string, SagaBook>();
  const skipped = new Set<string>();

  for (const s of books.sagas) {
    byStatus[s.status] += 1;
    const orderId = s.order?.orderId ?? s.id;
    sagaOf.set(orderId, s);
    if (isLive(s.status)) {
      notJudged.in_flight += 1;
      skipped.add(orderId);
      if (opts.settled)
        out.push({
          kind: 'saga_in_flight',
          saga_id: s.id,
          order_id: orderId,
          message: `saga ${s.id} is still ${s.status}${stepText(s)}`,
        });
    } else if (s.status === 'RESOLVED') {
      notJudged.resolved += 1;
      skipped.add(orderId);
    } else if (!s.order) {
      skipped.add(orderId);
      if (s.placesOrder) {
        out.push({
          kind: 'saga_unreadable',
          saga_id: s.id,
          message: `saga ${s.id} (${s.status}) has an input that is not an order: its books cannot be judged`,
        });
      } else {
        notJudged.other_definition += 1;
      }
    }
  }

  const orders = byId(books.orders);
  const payments = byId(books.payments);
  const reservations = byId(books.reservations);
  const ids = new Set<string>([...sagaOf.keys(), ...orders.keys(), ...payments.keys(), ...reservations.keys()]);
  for (const id of ids) {
    if (skipped.has(id)) continue;
    const saga = sagaOf.get(id) as (SagaBook & { order: SagaOrder }) | undefined;
    const pruned = !saga && prunedAway(id);
    if (pruned) notJudged.pruned += 1;
    judgeOrder(id, saga, orders.get(id), payments.get(id), reservations.get(id), out, pruned);
  }

  const stockSumsCompared = opts.stable && notJudged.in_flight === 0;
  judgeStock(books, stockSumsCompared, out);

  return {
    disagreements: sortDisagreements(out),
    checked: {
      sagas: books.sagas.length,
      orders: books.orders.filter((o) => o.status !== undefined).length,
      payments: books.payments.filter((p) => p.status !== undefined).length,
      reservations: books.reservations.filter((r) => r.status !== undefined).length,
      products: books.products.length,
    },
    byStatus,
    notJudged,
    stockSumsCompared,
  };
}

/** Each product's stock against the stock ever supplied and, when comparable, the reservations. */
function judgeStock(books: Books, compareSums: boolean, out: Disagreement[]): void {
  const held = new Map<string, number>();
  const sold = new Map<string, number>();
  const known = new Set(books.products.map((p) => p.productId));
  for (const r of books.reservations) {
    const sums = r.status === 'HELD' ? held : r.status === 'COMMITTED' ? sold : undefined;
    if (!sums) continue;
    for (const l of r.lines) {
      sums.set(l.productId, (sums.get(l.productId) ?? 0) + l.quantity);
      if (!known.has(l.productId)) {
        out.push({
          kind: 'stock_not_conserved',
          order_id: r.orderId,
          product_id: l.productId,
          message: `${l.quantity} × ${l.productId} ${r.status === 'HELD' ? 'held' : 'sold'} for order ${r.orderId}, a product the inventory does not have`,
        });
      }
    }
  }
  for (const p of books.products) {
    const push = (message: string) => out.push({ kind: 'stock_not_conserved', product_id: p.productId, message });
    const sum = p.available + p.reserved + p.sold;
    if (sum !== p.total)
      push(
        `${p.productId}: ${p.available} available + ${p.reserved} reserved + ${p.sold} sold = ${sum}, but ${p.total} were ever supplied`,
      );
    if (!compareSums) continue;
    const h = held.get(p.productId) ?? 0;
    const s = sold.get(p.productId) ?? 0;
    if (p.reserved !== h) push(`${p.productId}: ${p.reserved} reserved, but the reservations held add up to ${h}`);
    if (p.sold !== s) push(`${p.productId}: ${p.sold} sold, but the committed reservations add up to ${s}`);
  }
}
