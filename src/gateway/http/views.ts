import type { Order } from '../../gen/order/v1/order.js';
import type { ListProductsResponse } from '../../gen/inventory/v1/inventory.js';
import { OrderStatus } from '../../gen/order/v1/order.js';
import { PaymentStatus } from '../../gen/payment/v1/payment.js';
import { idempotencyKey, type Phase, type SagaEvent, type SagaEventType, type SagaRecord } from '../../saga/index.js';
import { centsToDollars } from '../money.js';
import type { PlaceOrderInput } from '../place-order.js';
import type { OrderView } from './schemas.js';

/** How the API shows records: pure mappings from the saga log and the participants' answers. */

const ORDER_STATUS: Record<OrderStatus, OrderView['status']> = {
  [OrderStatus.ORDER_STATUS_UNSPECIFIED]: 'PENDING',
  [OrderStatus.ORDER_STATUS_PENDING]: 'PENDING',
  [OrderStatus.ORDER_STATUS_CONFIRMED]: 'CONFIRMED',
  [OrderStatus.ORDER_STATUS_CANCELLED]: 'CANCELLED',
  [OrderStatus.UNRECOGNIZED]: 'PENDING',
};

export const PAYMENT_STATUS: Record<PaymentStatus, 'none' | 'charged' | 'refunded' | 'declined'> = {
  [PaymentStatus.PAYMENT_STATUS_UNSPECIFIED]: 'none',
  [PaymentStatus.PAYMENT_STATUS_NONE]: 'none',
  [PaymentStatus.PAYMENT_STATUS_CHARGED]: 'charged',
  [PaymentStatus.PAYMENT_STATUS_REFUNDED]: 'refunded',
  [PaymentStatus.PAYMENT_STATUS_DECLINED]: 'declined',
  [PaymentStatus.UNRECOGNIZED]: 'none',
};

export const iso = (ms: number) => new Date(ms).toISOString();

/**
 * The order as the API shows it. Without the order service's record (not created yet, or not
 * read because the saga's end already says it) the saga decides: an order is CONFIRMED iff its
 * saga completed and CANCELLED iff it compensated.
 */
export function orderView(input: PlaceOrderInput, saga: SagaRecord, order: Order | undefined): OrderView {
  const derived = saga.status === 'COMPLETED' ? 'CONFIRMED' : saga.status === 'COMPENSATED' ? 'CANCELLED' : 'PENDING';
  const status = order ? ORDER_STATUS[order.status] : derived;
  const reason = order ? order.reason : saga.status === 'COMPENSATED' ? saga.failure?.code : undefined;
  const updatedAt = order?.updatedAtMs || (derived === 'PENDING' ? input.created_at_ms : saga.updatedAt);
  return {
    id: input.order_id,
    customer_id: input.customer_id,
    status,
    ...(reason ? { reason } : {}),
    total: centsToDollars(input.total_cents),
    items: input.items.map((i) => ({
      product_id: i.product_id,
      quantity: i.quantity,
      price: centsToDollars(i.unit_price_cents),
    })),
    created_at: iso(order?.createdAtMs || input.created_at_ms),
    updated_at: iso(updatedAt),
    saga_status: saga.status,
  };
}

/**
 * An order whose saga is no longer in the log (pruned by retention, docs/retention.md): the order
 * service's record answers alone, and `saga_status` is null.
 */
export function prunedOrderView(order: Order): OrderView {
  return {
    id: order.id,
    customer_id: order.customerId,
    status: ORDER_STATUS[order.status],
    ...(order.reason ? { reason: order.reason } : {}),
    total: centsToDollars(order.totalCents),
    items: order.items.map((i) => ({
      product_id: i.productId,
      quantity: i.quantity,
      price: centsToDollars(i.unitPriceCents),
    })),
    created_at: iso(order.createdAtMs),
    updated_at: iso(order.updatedAtMs || order.createdAtMs),
    saga_status: null,
  };
}

export function sagaSummary(s: SagaRecord) {
  return {
    id: s.id,
    status: s.status,
    definition: s.definition,
    version: s.version,
    step_index: s.stepIndex,
    attempt: s.attempt,
    failure: s.failure,
    created_at: iso(s.createdAt),
    updated_at: iso(s.updatedAt),
  };
}

/** Failure codes a public answer may show: a definition's own and the engine's. */
export type PublicCodes = ReadonlySet<string>;

/**
 * The code a customer may see for a failure: one of `codes`; another definite failure (a
 * transport's refusal, an injected fault) is `failed`, and one still without an answer is
 * `unavailable`. Never the error's text, which names addresses, rules and operators.
 */
export function publicFailureCode(code: unknown, retryable: boolean | null, codes: PublicCodes): string {
  if (typeof code === 'string' && codes.has(code)) return code;
  return retryable ? 'unavailable' : 'failed';
}

const FAILURE_EVENTS = new Set(['STEP_FAILED', 'COMPENSATION_FAILED', 'SAGA_PARKED']);

/**
 * A saga as the public API shows it (DESIGN §6b): its status and times, and what failed as a
 * step and a code. Operators' names and notes, error text, inputs and trace context stay on the
 * admin API.
 */
export function publicSagaSummary(s: SagaRecord, codes: PublicCodes) {
  return {
    id: s.id,
    status: s.status,
    failure: s.failure ? { step: s.failure.step, code: publicFailureCode(s.failure.code, false, codes) } : null,
    created_at: iso(s.createdAt),
    updated_at: iso(s.updatedAt),
  };
}

/** What every view of an event shows; `displayName` is the step's name for people, when it has one. */
function eventFacts(e: SagaEvent, displayName: string | undefined) {
  return {
    seq: e.seq,
    type: e.type,
    step: e.step,
    ...(displayName ? { display_name: displayName } : {}),
    time: iso(e.at),
    attempt: e.attempt,
  };
}

/** One event of the public timeline: its type, step, time, attempt, and a code when it is a failure. */
export function publicEventView(e: SagaEvent, displayName: string | undefined, codes: PublicCodes) {
  const data = e.data as { code?: unknown } | null | undefined;
  return {
    ...eventFacts(e, displayName),
    // A compensated saga's end event carries the failure that made it compensate.
    code:
      FAILURE_EVENTS.has(e.type) || (e.type === 'SAGA_COMPENSATED' && data?.code !== undefined)
        ? publicFailureCode(data?.code, e.retryable, codes)
        : null,
  };
}

/** One event of the admin timeline: the facts, and its error text, data and trace context. */
export function eventView(e: SagaEvent, displayName: string | undefined) {
  return {
    ...eventFacts(e, displayName),
    error: e.error,
    retryable: e.retryable,
    data: e.data,
    trace_id: e.traceId,
    span_id: e.spanId,
  };
}

/** The phase of an attempt each of its events belongs to: its start, and its outcome. */
const ATTEMPT_PHASE: Partial<Record<SagaEventType, Phase>> = {
  STEP_STARTED: 'action',
  STEP_SUCCEEDED: 'action',
  STEP_FAILED: 'action',
  COMPENSATION_STARTED: 'compensation',
  COMPENSATION_SUCCEEDED: 'compensation',
  COMPENSATION_FAILED: 'compensation',
};

/**
 * What an event of an attempt says about that attempt, for the console: its phase, the key its
 * call carried, and whether the fault switchboard injected its failure. The engine records an
 * injected failure's rule as `data.fault_rule`; that field alone decides (never the error's text).
 * Other events: null, null, false, null.
 */
export function attemptFacts(sagaId: string, e: Pick<SagaEvent, 'type' | 'step' | 'data'>) {
  const phase = ATTEMPT_PHASE[e.type] ?? null;
  const data = e.data;
  const rule =
    phase && typeof data === 'object' && data !== null && !Array.isArray(data) && typeof data.fault_rule === 'string'
      ? data.fault_rule
      : null;
  return {
    phase,
    idempotency_key: phase && e.step ? idempotencyKey(sagaId, e.step, phase) : null,
    injected: rule !== null,
    fault_rule: rule,
  };
}

/** The inventory's products as the API shows them (`GET /products`, and the console's stock). */
export function productsView(res: ListProductsResponse) {
  return {
    products: res.products.map((x) => ({
      product_id: x.productId,
      available: x.available,
      reserved: x.reserved,
      sold: x.sold,
      ...(x.priceCents === undefined ? {} : { price: centsToDollars(x.priceCents) }),
    })),
  };
}
