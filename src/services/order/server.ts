import type { Db } from '../../platform/storage/db.js';
import type { Logger } from '../../platform/telemetry/logger.js';
import { unary } from '../../platform/grpc/grpc.js';
import { createInbox } from '../../platform/storage/inbox.js';
import type { IdempotencyGuard } from '../../platform/storage/idempotency.js';
import { AppError } from '../../platform/errors.js';
import {
  CancelOutcome,
  ConfirmOutcome,
  CreateOutcome,
  OrderStatus,
  cancelOutcomeToJSON,
  confirmOutcomeToJSON,
  createOutcomeToJSON,
  type CancelOrderRequest,
  type CancelOrderResponse,
  type ConfirmOrderRequest,
  type ConfirmOrderResponse,
  type CreateOrderRequest,
  type CreateOrderResponse,
  type ListOrdersRequest,
  type ListOrdersResponse,
  type Order,
  type OrderServiceServer,
} from '../../gen/order/v1/order.js';
import { validateCreate, validateReason, type OrderRecord } from './domain.js';
import { createOrderStore } from './store.js';
import { checkOrderId } from '../shared/validate.js';
import { writeRpcs } from '../shared/write-rpc.js';
import { listPage } from '../shared/paging.js';

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

const CREATE: Record<'created' | 'cancelled' | 'conflict', CreateOutcome> = {
  created: CreateOutcome.CREATE_OUTCOME_CREATED,
  conflict: CreateOutcome.CREATE_OUTCOME_CONFLICT,
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
  const write = writeRpcs('order', logger, createInbox(db, now, fastPath));

  return {
    createOrder: write('CreateOrder', 'create', {
      validate: (req: CreateOrderRequest) => validateCreate(req, now()),
      effect: (input): CreateOrderResponse => {
        const result = store.create(input);
        return { outcome: CREATE[result.outcome], order: result.order && toProtoOrder(result.order) };
      },
      log: (input, res) => ({
        msg: 'create order',
        level: res.outcome === CreateOutcome.CREATE_OUTCOME_CONFLICT ? 'warn' : 'info',
        order_id: input.orderId,
        outcome: createOutcomeToJSON(res.outcome),
      }),
    }),

    getOrder: unary('GetOrder', logger, (req, call) => {
      const orderId = checkOrderId(req.orderId);
      const order = store.get(orderId);
      call.logger.debug({ order_id: orderId, found: order !== undefined }, 'get order');
      if (!order) throw new AppError('not_found', `order ${orderId} not found`);
      return { order: toProtoOrder(order) };
    }),

    listOrders: unary('ListOrders', logger, (req: ListOrdersRequest, call): ListOrdersResponse => {
      const res = listPage(
        req,
        store.list,
        (e) => e.orderId,
        (e) => ({ orderId: e.orderId, order: e.order && toProtoOrder(e.order), tombstoned: e.tombstoned }),
      );
      call.logger.debug({ count: res.entries.length, more: res.nextPageToken !== '' }, 'list orders');
      return res;
    }),

    confirmOrder: write('ConfirmOrder', 'confirm', {
      validate: (req: ConfirmOrderRequest) => checkOrderId(req.orderId),
      effect: (orderId): ConfirmOrderResponse => {
        const result = store.confirm(orderId);
        return { outcome: CONFIRM[result.outcome], order: result.order && toProtoOrder(result.order) };
      },
      log: (orderId, res) => ({ msg: 'confirm order', order_id: orderId, outcome: confirmOutcomeToJSON(res.outcome) }),
    }),

    cancelOrder: write('CancelOrder', 'cancel', {
      validate: (req: CancelOrderRequest) => ({
        orderId: checkOrderId(req.orderId),
        reason: validateReason(req.reason),
      }),
      effect: ({ orderId, reason }): CancelOrderResponse => {
        const result = store.cancel(orderId, reason);
        return { outcome: CANCEL[result.outcome], order: result.order && toProtoOrder(result.order) };
      },
      log: ({ orderId, reason }, res) => ({
        msg: 'cancel order',
        order_id: orderId,
        outcome: cancelOutcomeToJSON(res.outcome),
        reason,
      }),
    }),
  };
}
