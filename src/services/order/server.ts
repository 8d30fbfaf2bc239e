import type { Db } from '../../platform/db.js';
import type { Logger } from '../../platform/logger.js';
import { unary } from '../../platform/grpc.js';
import { createInbox } from '../../platform/inbox.js';
import type { IdempotencyGuard } from '../../platform/idempotency.js';
import { crashPoint } from '../../platform/crash.js';
import { AppError } from '../../platform/errors.js';
import {
  CancelOutcome,
  ConfirmOutcome,
  CreateOutcome,
  OrderStatus,
  cancelOutcomeToJSON,
  confirmOutcomeToJSON,
  createOutcomeToJSON,
  type CancelOrderResponse,
  type ConfirmOrderResponse,
  type CreateOrderResponse,
  type Order,
  type OrderServiceServer,
} from '../../gen/order/v1/order.js';
import { validateCreate, validateReason, type OrderRecord } from './domain.js';
import { createOrderStore } from './store.js';
import { checkOrderId } from '../shared/validate.js';

export interface OrderServiceDeps {
  /** The Redis fast path in front of the inbox; the inbox alone is enough for correctness. */
  fastPath?: IdempotencyGuard<unknown>;
  /** An open database with ORDER_MIGRATIONS applied (see openOrderDatabase). */
  db: Db;
  logger: Logger;
  /** Clock in epoch ms; tests pass a fixed one. */
  now?: () => number;
}

const STATUS: Record<OrderRecord['status'], OrderStatus> = {
  PENDING: OrderStatus.ORDER_STATUS_PENDING,
  CONFIRMED: OrderStatus.ORDER_STATUS_CONFIRMED,
  CANCELLED: OrderStatus.ORDER_STATUS_CANCELLED,
};

export function toProtoOrder(order: OrderRecord): Order {
  return {
    id: order.id,
    customerId: order.customerId,
    items: order.items.map((i) => ({ productId: i.productId, quantity: i.quantity, unitPriceCents: i.unitPriceCents })),
    status: STATUS[order.status],
    totalCents: order.totalCents,
    reason: order.reason,
    createdAtMs: order.createdAtMs,
    updatedAtMs: order.updatedAtMs,
  };
}

const CREATE: Record<'created' | 'cancelled', CreateOutcome> = {
  created: CreateOutcome.CREATE_OUTCOME_CREATED,
  cancelled: CreateOutcome.CREATE_OUTCOME_CANCELLED,
};
const CONFIRM: Record<'confirmed' | 'not_pending' | 'not_found', ConfirmOutcome> = {
  confirmed: ConfirmOutcome.CONFIRM_OUTCOME_CONFIRMED,
  not_pending: ConfirmOutcome.CONFIRM_OUTCOME_NOT_PENDING,
  not_found: ConfirmOutcome.CONFIRM_OUTCOME_NOT_FOUND,
};
const CANCEL: Record<'cancelled' | 'not_pending' | 'tombstoned', CancelOutcome> = {
  cancelled: CancelOutcome.CANCEL_OUTCOME_CANCELLED,
  not_pending: CancelOutcome.CANCEL_OUTCOME_NOT_PENDING,
  tombstoned: CancelOutcome.CANCEL_OUTCOME_TOMBSTONED,
};

/** The OrderService implementation: gRPC in, domain rules and the store, gRPC out. */
export function createOrderService({ db, logger, now = Date.now, fastPath }: OrderServiceDeps): OrderServiceServer {
  const store = createOrderStore(db, now);
  const inbox = createInbox(db, now, fastPath);

  return {
    createOrder: unary('CreateOrder', logger, async (req, call) => {
      const input = validateCreate(req, now());
      const { response, replayed } = await inbox.run(call.idempotencyKey, 'CreateOrder', req, (): CreateOrderResponse => {
        const result = store.create(input);
        crashPoint('order.create.before_commit');
        return { outcome: CREATE[result.outcome], order: toProtoOrder(result.order) };
      });
      crashPoint('order.create.after_commit');
      call.logger.info(
        { order_id: input.orderId, outcome: createOutcomeToJSON(response.outcome), idempotency_key: call.idempotencyKey, replayed },
        'create order',
      );
      return response;
    }),

    getOrder: unary('GetOrder', logger, (req, call) => {
      const orderId = checkOrderId(req.orderId);
      const order = store.get(orderId);
      call.logger.debug({ order_id: orderId, found: order !== undefined }, 'get order');
      if (!order) throw new AppError('not_found', `order ${orderId} not found`);
      return { order: toProtoOrder(order) };
    }),

    confirmOrder: unary('ConfirmOrder', logger, async (req, call) => {
      const orderId = checkOrderId(req.orderId);
      const { response, replayed } = await inbox.run(call.idempotencyKey, 'ConfirmOrder', req, (): ConfirmOrderResponse => {
        const result = store.confirm(orderId);
        crashPoint('order.confirm.before_commit');
        return { outcome: CONFIRM[result.outcome], order: result.order && toProtoOrder(result.order) };
      });
      crashPoint('order.confirm.after_commit');
      call.logger.info(
        { order_id: orderId, outcome: confirmOutcomeToJSON(response.outcome), idempotency_key: call.idempotencyKey, replayed },
        'confirm order',
      );
      return response;
    }),

    cancelOrder: unary('CancelOrder', logger, async (req, call) => {
      const orderId = checkOrderId(req.orderId);
      const reason = validateReason(req.reason);
      const { response, replayed } = await inbox.run(call.idempotencyKey, 'CancelOrder', req, (): CancelOrderResponse => {
        const result = store.cancel(orderId, reason);
        crashPoint('order.cancel.before_commit');
        return { outcome: CANCEL[result.outcome], order: result.order && toProtoOrder(result.order) };
      });
      crashPoint('order.cancel.after_commit');
      call.logger.info(
        {
          order_id: orderId,
          outcome: cancelOutcomeToJSON(response.outcome),
          reason,
          idempotency_key: call.idempotencyKey,
          replayed,
        },
        'cancel order',
      );
      return response;
    }),
  };
}
