import { callRpc } from '../platform/grpc/grpc.js';
import {
  formatCents,
  stockWords,
  type SagaDefinition,
  type StepContext,
  type StepEffect,
  type StepOutcome,
  type StockMove,
} from '../saga/index.js';
import { CreateOutcome, ConfirmOutcome, CancelOutcome } from '../gen/order/v1/order.js';
import { ReserveOutcome, ReleaseOutcome, CommitOutcome } from '../gen/inventory/v1/inventory.js';
import { ChargeOutcome, RefundOutcome } from '../gen/payment/v1/payment.js';
import type { Participants } from './participants.js';
import type { OrderLine } from '../contracts/order.js';
import { isReasonCode } from '../contracts/ids.js';
import { PLACE_ORDER } from '../contracts/place-order.js';

export { PLACE_ORDER };

/** The saga's input, stored in SAGA_STARTED: everything a resumed saga needs. */
export type PlaceOrderInput = {
  order_id: string;
  customer_id: string;
  items: OrderLine[];
  total_cents: number;
  created_at_ms: number;
  /** sha256 of the HTTP request, to tell a replay from a reused idempotency key. */
  fingerprint: string;
  request_id: string | null;
};

/** Every code a place-order step fails with: the public timeline shows these (and the engine's) and no other. */
export const PLACE_ORDER_FAILURE_CODES = [
  'order_cancelled',
  'order_conflict',
  'order_not_pending',
  'order_not_found',
  'insufficient_stock',
  'unknown_product',
  'reservation_released',
  'stock_conflict',
  'stock_already_committed',
  'stock_not_reserved',
  'payment_declined',
  'payment_refunded',
  'payment_conflict',
] as const;

const OK: StepOutcome = { ok: true };
const fail = (code: (typeof PLACE_ORDER_FAILURE_CODES)[number], message: string): StepOutcome => ({
  ok: false,
  code,
  message,
});

/** A response whose outcome this gateway does not know (a newer participant?) is not a decision. */
class UnexpectedOutcome extends Error {
  readonly code = 'unexpected_outcome';
}

function opts(ctx: StepContext<PlaceOrderInput>) {
  return {
    idempotencyKey: ctx.idempotencyKey,
    timeoutMs: ctx.timeoutMs,
    requestId: ctx.input.request_id ?? undefined,
    fault: ctx.fault,
  };
}

/**
 * The cancellation reason of an order cancelled by the pivot's fence. Fixed, unlike a compensation's:
 * a keyed request must be the same on every attempt, and the fence can run again after an
 * operator's retry under another failure (the deadline, a refusal), where a reason taken from the
 * failure would be a different request under the same key (refused as idempotency_key_reused).
 */
export const FENCE_CANCEL_REASON = 'confirmation_failed';

/**
 * The cancellation reason the customer sees: the code of what made the saga compensate. Stable
 * for create_order's compensation: a saga's failure does not change once it compensates.
 */
function cancelReason(ctx: StepContext<PlaceOrderInput>): string {
  const code = ctx.failure?.code ?? 'cancelled';
  return isReasonCode(code) ? code : 'cancelled';
}

/** A saga as a step's `effects` reads it. */
type EffectsOf = { input: PlaceOrderInput; results: Readonly<Partial<PlaceOrderResults>> };
type Describe = (saga: EffectsOf) => StepEffect;

/**
 * A description that first checks the input is a place-order's: a saga logged by another version
 * (or hand-edited) then throws, and the preview falls back to naming the step's calls instead of
 * speaking of "order undefined".
 */
function described(f: Describe): Describe {
  return (saga) => {
    const i = saga.input as Partial<PlaceOrderInput> | null;
    if (
      typeof i?.order_id !== 'string' ||
      typeof i.customer_id !== 'string' ||
      !Array.isArray(i.items) ||
      !Number.isInteger(i.total_cents)
    )
      throw new TypeError('not a place-order input');
    return f(saga);
  };
}

/** The order's lines as stock moves, one per product (a product on two lines counts once, summed). */
function stockMoves(input: PlaceOrderInput, direction: StockMove['direction']): StockMove[] {
  const byItem = new Map<string, number>();
  for (const l of input.items) byItem.set(l.product_id, (byItem.get(l.product_id) ?? 0) + l.quantity);
  return [...byItem].map(([item, quantity]) => ({ item, quantity, direction }));
}

const stockEffect = (
  verb: string,
  input: PlaceOrderInput,
  direction: StockMove['direction'],
  tail = '',
): StepEffect => {
  const stock = stockMoves(input, direction);
  return { words: `${verb} ${stockWords(stock)}${tail}`, stock };
};

/** What was charged (the charge's own result), else what would be: the order's total. */
function chargedCents({ input, results }: EffectsOf): number {
  return results.charge_payment?.amount_cents ?? input.total_cents;
}

const money = (saga: EffectsOf, direction: 'charge' | 'refund'): StepEffect => {
  const cents = chargedCents(saga);
  const party = saga.input.customer_id;
  const verb = direction === 'charge' ? 'charges' : 'refunds';
  return { words: `${verb} ${formatCents(cents)} to ${party}`, money: { cents, direction, party } };
};

/** What each step's calls do, in the shop's words (operators' previews read them; the engine does not). */
const EFFECTS = {
  create_order: {
    action: described(({ input }) => ({
      words: `creates order ${input.order_id} of ${formatCents(input.total_cents)} for ${input.customer_id}`,
    })),
    compensation: described(({ input }) => ({ words: `cancels order ${input.order_id}` })),
  },
  reserve_stock: {
    action: described(({ input }) => stockEffect('reserves', input, 'reserve')),
    compensation: described(({ input }) => stockEffect('releases', input, 'release')),
  },
  charge_payment: {
    action: described((saga) => money(saga, 'charge')),
    compensation: described((saga) => money(saga, 'refund')),
  },
  confirm_order: {
    action: described(({ input }) => ({ words: `confirms order ${input.order_id}` })),
    // The fence settles the confirm: it cancels a PENDING order, and finds a CONFIRMED one so.
    compensation: described(({ input }) => ({ words: `cancels order ${input.order_id} if it was not confirmed` })),
  },
  commit_stock: { action: described(({ input }) => stockEffect('commits', input, 'commit', ' as sold')) },
} satisfies Record<string, { action: Describe; compensation?: Describe }>;

/**
 * The place-order saga. create_order → reserve_stock → charge_payment → confirm_order (pivot) →
 * commit_stock (retriable: turns the reservation into sold stock once the order is confirmed).
 */
/** What the place-order saga's steps record on success: the amount charged (the other steps record null). */
export type PlaceOrderResults = { charge_payment: { amount_cents: number } };

export function placeOrderSaga(p: Participants): SagaDefinition<PlaceOrderInput, PlaceOrderResults> {
  return {
    name: PLACE_ORDER,
    version: 1,
    tags: ({ input }) => ({ 'order.id': input.order_id }),
    // The console's search by customer.
    subject: ({ input }) => input.customer_id,
    steps: [
      {
        name: 'create_order',
        displayName: 'Create_Order_Step',
        kind: 'compensatable',
        calls: {
          action: { participant: 'order', method: 'CreateOrder' },
          compensation: { participant: 'order', method: 'CancelOrder' },
        },
        effects: EFFECTS.create_order,
        async action(ctx) {
          const { input } = ctx;
          const res = await callRpc(
            p.order,
            'createOrder',
            {
              orderId: input.order_id,
              customerId: input.customer_id,
              items: input.items.map((i) => ({
                productId: i.product_id,
                quantity: i.quantity,
                unitPriceCents: i.unit_price_cents,
              })),
              createdAtMs: input.created_at_ms,
            },
            opts(ctx),
          );
          if (res.outcome === CreateOutcome.CREATE_OUTCOME_CREATED) return OK;
          if (res.outcome === CreateOutcome.CREATE_OUTCOME_CANCELLED)
            return fail('order_cancelled', `order ${input.order_id} was cancelled before it was created`);
          if (res.outcome === CreateOutcome.CREATE_OUTCOME_CONFLICT)
            return fail('order_conflict', `an order ${input.order_id} exists with another customer, lines or total`);
          throw new UnexpectedOutcome(`CreateOrder answered outcome ${res.outcome}`);
        },
        async compensate(ctx) {
          const res = await callRpc(
            p.order,
            'cancelOrder',
            { orderId: ctx.input.order_id, reason: cancelReason(ctx) },
            opts(ctx),
          );
          if (
            res.outcome === CancelOutcome.CANCEL_OUTCOME_CANCELLED ||
            res.outcome === CancelOutcome.CANCEL_OUTCOME_TOMBSTONED
          )
            return OK;
          if (res.outcome === CancelOutcome.CANCEL_OUTCOME_NOT_PENDING)
            return fail(
              'order_not_pending',
              `order ${ctx.input.order_id} is no longer pending; it cannot be cancelled`,
            );
          throw new UnexpectedOutcome(`CancelOrder answered outcome ${res.outcome}`);
        },
      },
      {
        name: 'reserve_stock',
        displayName: 'Inventory_Reservation_Step',
        kind: 'compensatable',
        calls: {
          action: { participant: 'inventory', method: 'Reserve' },
          compensation: { participant: 'inventory', method: 'Release' },
        },
        effects: EFFECTS.reserve_stock,
        async action(ctx) {
          const res = await callRpc(
            p.inventory,
            'reserve',
            {
              orderId: ctx.input.order_id,
              items: ctx.input.items.map((i) => ({ productId: i.product_id, quantity: i.quantity })),
            },
            opts(ctx),
          );
          switch (res.outcome) {
            case ReserveOutcome.RESERVE_OUTCOME_RESERVED:
              return OK;
            case ReserveOutcome.RESERVE_OUTCOME_INSUFFICIENT_STOCK:
              return fail('insufficient_stock', `insufficient stock for ${res.productIds.join(', ')}`);
            case ReserveOutcome.RESERVE_OUTCOME_UNKNOWN_PRODUCT:
              return fail('unknown_product', `unknown product ${res.productIds.join(', ')}`);
            case ReserveOutcome.RESERVE_OUTCOME_RELEASED:
              return fail(
                'reservation_released',
                `the reservation for order ${ctx.input.order_id} was already released`,
              );
            case ReserveOutcome.RESERVE_OUTCOME_CONFLICT:
              // Someone else's reservation under this order id: ours was not made, nothing to release.
              return fail('stock_conflict', `order ${ctx.input.order_id} already holds a reservation of other items`);
            default:
              throw new UnexpectedOutcome(`Reserve answered outcome ${res.outcome}`);
          }
        },
        async compensate(ctx) {
          const res = await callRpc(p.inventory, 'release', { orderId: ctx.input.order_id }, opts(ctx));
          if (
            res.outcome === ReleaseOutcome.RELEASE_OUTCOME_RELEASED ||
            res.outcome === ReleaseOutcome.RELEASE_OUTCOME_NOTHING_RESERVED
          )
            return OK;
          if (res.outcome === ReleaseOutcome.RELEASE_OUTCOME_ALREADY_COMMITTED)
            return fail('stock_already_committed', `stock of order ${ctx.input.order_id} was already committed`);
          throw new UnexpectedOutcome(`Release answered outcome ${res.outcome}`);
        },
      },
      {
        name: 'charge_payment',
        displayName: 'Payment_Charge_Step',
        kind: 'compensatable',
        calls: {
          action: { participant: 'payment', method: 'Charge' },
          compensation: { participant: 'payment', method: 'Refund' },
        },
        effects: EFFECTS.charge_payment,
        async action(ctx) {
          const res = await callRpc(
            p.payment,
            'charge',
            { orderId: ctx.input.order_id, amountCents: ctx.input.total_cents },
            opts(ctx),
          );
          switch (res.outcome) {
            case ChargeOutcome.CHARGE_OUTCOME_CHARGED:
              return { ok: true, result: { amount_cents: ctx.input.total_cents } };
            case ChargeOutcome.CHARGE_OUTCOME_DECLINED:
              return fail('payment_declined', `payment declined: ${res.declineReason || 'declined'}`);
            case ChargeOutcome.CHARGE_OUTCOME_REFUNDED:
              return fail('payment_refunded', `order ${ctx.input.order_id} was refunded before it was charged`);
            case ChargeOutcome.CHARGE_OUTCOME_CONFLICT:
              // Paid another amount than the total: never a success, so the order is not confirmed.
              return fail('payment_conflict', `order ${ctx.input.order_id} was already charged another amount`);
            default:
              throw new UnexpectedOutcome(`Charge answered outcome ${res.outcome}`);
          }
        },
        async compensate(ctx) {
          const res = await callRpc(p.payment, 'refund', { orderId: ctx.input.order_id }, opts(ctx));
          if (
            res.outcome === RefundOutcome.REFUND_OUTCOME_REFUNDED ||
            res.outcome === RefundOutcome.REFUND_OUTCOME_NOTHING_CHARGED
          )
            return OK;
          throw new UnexpectedOutcome(`Refund answered outcome ${res.outcome}`);
        },
      },
      {
        name: 'confirm_order',
        displayName: 'Confirm_Order_Step',
        kind: 'pivot',
        // The pivot's compensation phase is its fence: a CancelOrder that settles an uncertain confirm.
        calls: {
          action: { participant: 'order', method: 'ConfirmOrder' },
          compensation: { participant: 'order', method: 'CancelOrder' },
        },
        effects: EFFECTS.confirm_order,
        async action(ctx) {
          const res = await callRpc(p.order, 'confirmOrder', { orderId: ctx.input.order_id }, opts(ctx));
          if (res.outcome === ConfirmOutcome.CONFIRM_OUTCOME_CONFIRMED) return OK;
          if (res.outcome === ConfirmOutcome.CONFIRM_OUTCOME_NOT_PENDING)
            return fail('order_not_pending', `order ${ctx.input.order_id} is not pending`);
          if (res.outcome === ConfirmOutcome.CONFIRM_OUTCOME_NOT_FOUND)
            return fail('order_not_found', `order ${ctx.input.order_id} does not exist`);
          throw new UnexpectedOutcome(`ConfirmOrder answered outcome ${res.outcome}`);
        },
        // When the confirm's outcome is unknown: cancel the order at the order service, which
        // either cancels a PENDING order (a late ConfirmOrder then answers NOT_PENDING, so the
        // charge and the stock may be given back) or finds it CONFIRMED (the saga goes forward).
        async fence(ctx) {
          const res = await callRpc(
            p.order,
            'cancelOrder',
            { orderId: ctx.input.order_id, reason: FENCE_CANCEL_REASON },
            opts(ctx),
          );
          if (
            res.outcome === CancelOutcome.CANCEL_OUTCOME_CANCELLED ||
            res.outcome === CancelOutcome.CANCEL_OUTCOME_TOMBSTONED
          )
            return { fenced: true };
          if (res.outcome === CancelOutcome.CANCEL_OUTCOME_NOT_PENDING) return { fenced: false };
          throw new UnexpectedOutcome(`CancelOrder answered outcome ${res.outcome}`);
        },
      },
      {
        name: 'commit_stock',
        kind: 'retriable',
        calls: { action: { participant: 'inventory', method: 'Commit' } },
        effects: EFFECTS.commit_stock,
        async action(ctx) {
          const res = await callRpc(p.inventory, 'commit', { orderId: ctx.input.order_id }, opts(ctx));
          if (res.outcome === CommitOutcome.COMMIT_OUTCOME_COMMITTED) return OK;
          if (res.outcome === CommitOutcome.COMMIT_OUTCOME_NOT_RESERVED)
            return fail('stock_not_reserved', `no reservation to commit for order ${ctx.input.order_id}`);
          throw new UnexpectedOutcome(`Commit answered outcome ${res.outcome}`);
        },
      },
    ],
  };
}

/** Version 2's order: stock first, so an order that cannot be filled leaves no cancelled order behind. */
const V2_ORDER = ['reserve_stock', 'create_order', 'charge_payment', 'confirm_order', 'commit_stock'] as const;

/**
 * The place-order saga, version 2: the same steps as version 1, but stock is reserved before the
 * order is created. An order refused for stock (the most common refusal) then never exists at the
 * order service: nothing to create, nothing to cancel, one participant call instead of three.
 * A saga of version 1 in flight can move to it (`sagas migrate`) once it is past create_order and
 * reserve_stock; one between them cannot (their order changes).
 */
export function placeOrderSagaV2(p: Participants): SagaDefinition<PlaceOrderInput, PlaceOrderResults> {
  const v1 = placeOrderSaga(p);
  const byName = new Map(v1.steps.map((st) => [st.name, st]));
  return {
    ...v1,
    version: 2,
    steps: V2_ORDER.map((name) => {
      const step = byName.get(name);
      if (!step) throw new Error(`place_order v1 has no step ${name}`);
      return step;
    }),
  };
}

/** Every version of the place-order saga this code has, by version. */
export const PLACE_ORDER_VERSIONS: Readonly<
  Record<number, (p: Participants) => SagaDefinition<PlaceOrderInput, PlaceOrderResults>>
> = { 1: placeOrderSaga, 2: placeOrderSagaV2 };

/** Participants that are not there: any use throws (PLACE_ORDER_DEFINITION is read, never run). */
const NOT_CONNECTED = new Proxy({} as Participants, {
  get() {
    throw new Error('PLACE_ORDER_DEFINITION is for reading: its steps call no participant');
  },
});

/**
 * The place-order definition to read, not to run: its steps and the calls they make, for what
 * drives no saga of its own (the chaos runner's schedules and scenario files, tests). A step run
 * from it throws; the gateway registers `placeOrderSaga(participants)`.
 */
export const PLACE_ORDER_DEFINITION = placeOrderSaga(NOT_CONNECTED);
