/**
 * A model of the place-order saga's three participants, for the model checker
 * (test/helpers/saga-explorer.ts, test/unit/saga-model-check.test.ts): their books, their
 * idempotency inboxes and their tombstones, as pure functions over plain JSON values.
 *
 * Faithful by construction where it can be: every business decision is the services' own pure
 * rule (decideCreate, decideConfirm, decideCancel, decideReserve, decideRelease, decideCommit,
 * decideCharge, decideRefund from src/services/<service>/domain.ts). What each store does with a
 * decision (src/services/<service>/store.ts) and what the inbox does with a key
 * (src/platform/storage/inbox.ts: one stored answer per key, a replay of the same request gets it back and
 * repeats no effect, the same key with another request is refused with idempotency_key_reused,
 * i.e. gRPC FAILED_PRECONDITION, a DefiniteError) is restated here in a line or two each. How a
 * step maps a participant's answer to a StepOutcome is restated from src/gateway/place-order.ts.
 *
 * One order of one line (one product): enough for every decision above, and small.
 */
import type { Json, SagaFailure } from '../../src/saga/definition.js';
import type { AttemptOutcome } from '../../src/saga/transitions.js';
import { isReasonCode } from '../../src/contracts/ids.js';
import { FENCE_CANCEL_REASON } from '../../src/gateway/place-order.js';
import {
  decideCancel,
  decideConfirm,
  decideCreate,
  type OrderContent,
  type OrderRecord,
  type OrderStatus,
} from '../../src/services/order/domain.js';
import {
  decideCommit,
  decideRelease,
  decideReserve,
  type ReservationStatus,
  type StockLine,
} from '../../src/services/inventory/domain.js';
import {
  decideCharge,
  decideRefund,
  type PaymentRecord,
  type PaymentStatus,
} from '../../src/services/payment/domain.js';

/** The world a saga runs in: one order line, the product's stock, the card's limit. */
export interface Scenario {
  name: string;
  orderId: string;
  customerId: string;
  productId: string;
  quantity: number;
  unitPriceCents: number;
  initialStock: number;
  /** Charges strictly above this are declined (the payment service's CHARGE_LIMIT_CENTS). */
  chargeLimitCents: number;
}

export const totalOf = (sc: Scenario): number => sc.quantity * sc.unitPriceCents;

export type ParticipantName = 'order' | 'inventory' | 'payment';
export type Method =
  'CreateOrder' | 'ConfirmOrder' | 'CancelOrder' | 'Reserve' | 'Release' | 'Commit' | 'Charge' | 'Refund';

/** One write RPC: where it goes, its idempotency key, and the request (what the inbox fingerprints). */
export interface Request {
  participant: ParticipantName;
  method: Method;
  key: string;
  body: { [k: string]: Json };
}

/** An inbox row: the request's method and fingerprint, and the outcome it was answered with. */
export interface InboxEntry {
  method: Method;
  fingerprint: string;
  outcome: string;
}

/** The participants' own records, which the invariants are checked against (never the saga's row). */
export interface Books {
  order: {
    status: OrderStatus | null;
    reason: string;
    /** A cancel that found no order leaves one (its reason); a late create is then born cancelled. */
    tombstone: string | null;
  };
  stock: {
    available: number;
    reserved: number;
    sold: number;
    reservation: ReservationStatus | null;
    /** A release that found no reservation leaves one; a late reserve is then refused. */
    tombstoned: boolean;
  };
  payment: {
    status: PaymentStatus | null;
    amountCents: number;
    /** A refund that found no charge leaves one; a late charge is then refused. */
    tombstoned: boolean;
    /** How many times money was taken, and given back: what "charged exactly once" is checked on. */
    charges: number;
    refunds: number;
  };
  inbox: Record<ParticipantName, Record<string, InboxEntry>>;
}

export function initialBooks(sc: Scenario): Books {
  return {
    order: { status: null, reason: '', tombstone: null },
    stock: { available: sc.initialStock, reserved: 0, sold: 0, reservation: null, tombstoned: false },
    payment: { status: null, amountCents: 0, tombstoned: false, charges: 0, refunds: 0 },
    inbox: { order: {}, inventory: {}, payment: {} },
  };
}

/** What a participant answered: a response's outcome, or a refusal it raised (a gRPC status). */
export type Answer = { kind: 'response'; outcome: string } | { kind: 'raised'; code: string; message: string };

const content = (sc: Scenario): OrderContent => ({
  customerId: sc.customerId,
  items: [{ productId: sc.productId, quantity: sc.quantity, unitPriceCents: sc.unitPriceCents }],
  totalCents: totalOf(sc),
});

function orderRecord(b: Books, sc: Scenario): OrderRecord | undefined {
  if (b.order.status === null) return undefined;
  return {
    id: sc.orderId,
    ...content(sc),
    status: b.order.status,
    reason: b.order.reason,
    createdAtMs: 0,
    updatedAtMs: 0,
  };
}

const lines = (sc: Scenario): StockLine[] => [{ productId: sc.productId, quantity: sc.quantity }];

function paymentRecord(b: Books): PaymentRecord | undefined {
  return b.payment.status === null
    ? undefined
    : { status: b.payment.status, amountCents: b.payment.amountCents, declineReason: '' };
}

/** The effect of a request the inbox has not seen: the store's transaction, decided by the domain's rule. */
function effect(b: Books, sc: Scenario, req: Request): { books: Books; outcome: string } {
  const q = sc.quantity;
  switch (req.method) {
    case 'CreateOrder': {
      const tomb = b.order.tombstone === null ? undefined : { reason: b.order.tombstone, createdAt: 0 };
      const d = decideCreate(orderRecord(b, sc), tomb, content(sc));
      if (d.action === 'none') return { books: b, outcome: d.outcome };
      if (d.action === 'insert_pending')
        return { books: { ...b, order: { ...b.order, status: 'PENDING' } }, outcome: 'created' };
      return { books: { ...b, order: { ...b.order, status: 'CANCELLED', reason: d.reason } }, outcome: 'cancelled' };
    }
    case 'ConfirmOrder': {
      const d = decideConfirm(orderRecord(b, sc));
      return {
        books: d.transition ? { ...b, order: { ...b.order, status: 'CONFIRMED', reason: '' } } : b,
        outcome: d.outcome,
      };
    }
    case 'CancelOrder': {
      // proto3: an absent string field reads as ''.
      const reason = typeof req.body.reason === 'string' ? req.body.reason : '';
      const d = decideCancel(orderRecord(b, sc));
      if (d.action === 'cancel')
        return { books: { ...b, order: { ...b.order, status: 'CANCELLED', reason } }, outcome: d.outcome };
      // INSERT OR IGNORE: a repeated cancel of an unknown order keeps the first reason.
      if (d.action === 'tombstone')
        return { books: { ...b, order: { ...b.order, tombstone: b.order.tombstone ?? reason } }, outcome: d.outcome };
      return { books: b, outcome: d.outcome };
    }
    case 'Reserve': {
      const s = b.stock;
      const state = {
        tombstoned: s.tombstoned,
        status: s.reservation ?? undefined,
        lines: s.reservation === null ? [] : lines(sc),
      };
      const d = decideReserve(state, lines(sc), new Map([[sc.productId, s.available]]));
      if (d.outcome === 'reserved' && d.hold) {
        return {
          books: { ...b, stock: { ...s, available: s.available - q, reserved: s.reserved + q, reservation: 'HELD' } },
          outcome: d.outcome,
        };
      }
      return { books: b, outcome: d.outcome };
    }
    case 'Release': {
      const s = b.stock;
      const d = decideRelease(s.reservation ?? undefined);
      if (d.outcome === 'released' && d.giveBack) {
        return {
          books: {
            ...b,
            stock: { ...s, available: s.available + q, reserved: s.reserved - q, reservation: 'RELEASED' },
          },
          outcome: d.outcome,
        };
      }
      if (d.outcome === 'nothing_reserved')
        return { books: { ...b, stock: { ...s, tombstoned: true } }, outcome: d.outcome };
      return { books: b, outcome: d.outcome };
    }
    case 'Commit': {
      const s = b.stock;
      const d = decideCommit(s.reservation ?? undefined);
      if (d.outcome === 'committed' && d.sell) {
        return {
          books: { ...b, stock: { ...s, reserved: s.reserved - q, sold: s.sold + q, reservation: 'COMMITTED' } },
          outcome: d.outcome,
        };
      }
      return { books: b, outcome: d.outcome };
    }
    case 'Charge': {
      const p = b.payment;
      const amount = Number(req.body.amount_cents);
      const d = decideCharge({ tombstoned: p.tombstoned, payment: paymentRecord(b) }, amount, sc.chargeLimitCents);
      // One row per order: a charge or a decline overwrites an earlier decline.
      if (d.action === 'charge')
        return {
          books: { ...b, payment: { ...p, status: 'CHARGED', amountCents: amount, charges: p.charges + 1 } },
          outcome: d.outcome,
        };
      if (d.action === 'decline')
        return { books: { ...b, payment: { ...p, status: 'DECLINED', amountCents: amount } }, outcome: d.outcome };
      return { books: b, outcome: d.outcome };
    }
    case 'Refund': {
      const p = b.payment;
      const d = decideRefund(paymentRecord(b));
      if (d.action === 'refund')
        return { books: { ...b, payment: { ...p, status: 'REFUNDED', refunds: p.refunds + 1 } }, outcome: d.outcome };
      if (d.action === 'tombstone') return { books: { ...b, payment: { ...p, tombstoned: true } }, outcome: d.outcome };
      return { books: b, outcome: d.outcome };
    }
  }
}

/**
 * A request reaching its participant (src/platform/storage/inbox.ts + the service's write RPC): the first
 * request under a key has its effect and its answer stored, in one transaction; the same request
 * again gets the stored answer and repeats nothing; another request under the key is refused.
 */
export function serve(b: Books, sc: Scenario, req: Request): { books: Books; answer: Answer } {
  const box = b.inbox[req.participant];
  const fingerprint = JSON.stringify(req.body);
  const seen = box[req.key];
  if (seen) {
    if (seen.method === req.method && seen.fingerprint === fingerprint)
      return { books: b, answer: { kind: 'response', outcome: seen.outcome } };
    // AppError idempotency_key_reused → gRPC FAILED_PRECONDITION → a DefiniteError at the gateway.
    return {
      books: b,
      answer: {
        kind: 'raised',
        code: 'grpc_failed_precondition',
        message: `idempotency key ${req.key} was used for a different request`,
      },
    };
  }
  const done = effect(b, sc, req);
  const entry: InboxEntry = { method: req.method, fingerprint, outcome: done.outcome };
  return {
    books: { ...done.books, inbox: { ...done.books.inbox, [req.participant]: { ...box, [req.key]: entry } } },
    answer: { kind: 'response', outcome: done.outcome },
  };
}

/**
 * What an attempt came to, as the engine records it: AttemptOutcome, plus `took_effect` (what a
 * fence attempt returns when it found the pivot had taken effect; the newer rules only).
 */
export type ModelOutcome = AttemptOutcome | { kind: 'took_effect'; result: Json };

/** Which of a step's functions an attempt runs. */
export type CallRole = 'action' | 'compensation' | 'fence';

interface CallModel {
  participant: ParticipantName;
  method: Method;
  body(sc: Scenario, failure: SagaFailure | null): { [k: string]: Json };
  /** The step's reading of the answer, as src/gateway/place-order.ts reads it. */
  read(outcome: string, sc: Scenario): ModelOutcome;
}

const OK: ModelOutcome = { kind: 'ok', result: null };
const failed = (code: string, message: string): ModelOutcome => ({ kind: 'failed', code, message });
/** place-order.ts throws UnexpectedOutcome for an outcome it does not know: the engine takes it as uncertain. */
const unexpected = (method: Method, outcome: string): ModelOutcome => ({
  kind: 'uncertain',
  error: `${method} answered outcome ${outcome}`,
});

/** place-order.ts's cancelReason: the code of what made the saga compensate, when it is a valid reason. */
export function cancelReason(failure: SagaFailure | null): string {
  const code = failure?.code ?? 'cancelled';
  return isReasonCode(code) ? code : 'cancelled';
}

const cancelOrder = (read: CallModel['read']): CallModel => ({
  participant: 'order',
  method: 'CancelOrder',
  body: (sc, failure) => ({ orderId: sc.orderId, reason: cancelReason(failure) }),
  read,
});

/** The pivot's fence: a CancelOrder with place-order's fixed reason (the same request on every attempt). */
const fenceCancel = (read: CallModel['read']): CallModel => ({
  participant: 'order',
  method: 'CancelOrder',
  body: (sc) => ({ orderId: sc.orderId, reason: FENCE_CANCEL_REASON }),
  read,
});

/** Each step's calls, by step name and role: the place-order saga's participant calls. */
export const PLACE_ORDER_MODEL: Readonly<Record<string, Partial<Record<CallRole, CallModel>>>> = {
  create_order: {
    action: {
      participant: 'order',
      method: 'CreateOrder',
      body: (sc) => ({
        orderId: sc.orderId,
        customerId: sc.customerId,
        items: [{ productId: sc.productId, quantity: sc.quantity, unitPriceCents: sc.unitPriceCents }],
        createdAtMs: 1,
      }),
      read: (o) =>
        o === 'created'
          ? OK
          : o === 'cancelled'
            ? failed('order_cancelled', 'the order was cancelled before it was created')
            : o === 'conflict'
              ? failed('order_conflict', 'another order exists under this id')
              : unexpected('CreateOrder', o),
    },
    compensation: cancelOrder((o) =>
      o === 'cancelled' || o === 'tombstoned'
        ? OK
        : o === 'not_pending'
          ? failed('order_not_pending', 'the order is no longer pending')
          : unexpected('CancelOrder', o),
    ),
  },
  reserve_stock: {
    action: {
      participant: 'inventory',
      method: 'Reserve',
      body: (sc) => ({ orderId: sc.orderId, items: [{ productId: sc.productId, quantity: sc.quantity }] }),
      read: (o) => {
        switch (o) {
          case 'reserved':
            return OK;
          case 'insufficient_stock':
            return failed('insufficient_stock', 'insufficient stock');
          case 'unknown_product':
            return failed('unknown_product', 'unknown product');
          case 'released':
            return failed('reservation_released', 'the reservation was already released');
          case 'conflict':
            return failed('stock_conflict', 'the order holds a reservation of other items');
          default:
            return unexpected('Reserve', o);
        }
      },
    },
    compensation: {
      participant: 'inventory',
      method: 'Release',
      body: (sc) => ({ orderId: sc.orderId }),
      read: (o) =>
        o === 'released' || o === 'nothing_reserved'
          ? OK
          : o === 'already_committed'
            ? failed('stock_already_committed', 'stock already committed')
            : unexpected('Release', o),
    },
  },
  charge_payment: {
    action: {
      participant: 'payment',
      method: 'Charge',
      body: (sc) => ({ orderId: sc.orderId, amount_cents: totalOf(sc) }),
      read: (o, sc) => {
        switch (o) {
          case 'charged':
            return { kind: 'ok', result: { amount_cents: totalOf(sc) } };
          case 'declined':
            return failed('payment_declined', 'payment declined');
          case 'refunded':
            return failed('payment_refunded', 'refunded before it was charged');
          case 'conflict':
            return failed('payment_conflict', 'already charged another amount');
          default:
            return unexpected('Charge', o);
        }
      },
    },
    compensation: {
      participant: 'payment',
      method: 'Refund',
      body: (sc) => ({ orderId: sc.orderId }),
      read: (o) => (o === 'refunded' || o === 'nothing_charged' ? OK : unexpected('Refund', o)),
    },
  },
  confirm_order: {
    action: {
      participant: 'order',
      method: 'ConfirmOrder',
      body: (sc) => ({ orderId: sc.orderId }),
      read: (o) =>
        o === 'confirmed'
          ? OK
          : o === 'not_pending'
            ? failed('order_not_pending', 'the order is not pending')
            : o === 'not_found'
              ? failed('order_not_found', 'the order does not exist')
              : unexpected('ConfirmOrder', o),
    },
    // The fence: CANCELLED/TOMBSTONED → {fenced: true}, NOT_PENDING (confirmed) → {fenced: false};
    // the engine makes them ok {fenced: true} and took_effect (fromFenceOutcome).
    fence: fenceCancel((o) =>
      o === 'cancelled' || o === 'tombstoned'
        ? { kind: 'ok', result: { fenced: true } }
        : o === 'not_pending'
          ? { kind: 'took_effect', result: null }
          : unexpected('CancelOrder', o),
    ),
  },
  commit_stock: {
    action: {
      participant: 'inventory',
      method: 'Commit',
      body: (sc) => ({ orderId: sc.orderId }),
      read: (o) =>
        o === 'committed'
          ? OK
          : o === 'not_reserved'
            ? failed('stock_not_reserved', 'no reservation to commit')
            : unexpected('Commit', o),
    },
  },
};

/** The request an attempt sends: its participant, method, key (`<saga>:<step>[:undo]`) and body. */
export function requestOf(
  step: string,
  role: CallRole,
  key: string,
  sc: Scenario,
  failure: SagaFailure | null,
): Request {
  const call = PLACE_ORDER_MODEL[step]?.[role];
  if (!call) throw new Error(`the participant model has no ${role} call for step ${step}`);
  return { participant: call.participant, method: call.method, key, body: call.body(sc, failure) };
}

/** How the step, and then the engine, read an answer: a StepOutcome (or FenceOutcome) made an AttemptOutcome. */
export function outcomeOf(step: string, role: CallRole, answer: Answer, sc: Scenario): ModelOutcome {
  if (answer.kind === 'raised') return { kind: 'failed', code: answer.code, message: answer.message, raised: true };
  const call = PLACE_ORDER_MODEL[step]?.[role];
  if (!call) throw new Error(`the participant model has no ${role} call for step ${step}`);
  return call.read(answer.outcome, sc);
}

/** The books in one line, for a counterexample's trace. */
export function formatBooks(b: Books): string {
  const o = b.order;
  const s = b.stock;
  const p = b.payment;
  const order = `${o.status ?? 'none'}${o.reason ? `(${o.reason})` : ''}${o.tombstone !== null ? ` tombstone(${o.tombstone})` : ''}`;
  const stock = `available=${s.available} reserved=${s.reserved} sold=${s.sold} reservation=${s.reservation ?? 'none'}${s.tombstoned ? ' tombstone' : ''}`;
  const pay = `${p.status ?? 'none'}${p.status === null ? '' : ` ${p.amountCents}c`} charges=${p.charges} refunds=${p.refunds}${p.tombstoned ? ' tombstone' : ''}`;
  return `order: ${order} | stock: ${stock} | payment: ${pay}`;
}
