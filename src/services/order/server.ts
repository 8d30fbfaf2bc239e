import type { Db } from '../../platform/storage/db.js';
import type { Logger } from '../../platform/telemetry/logger.js';
import { unary } from '../../platform/grpc/grpc.js';
import { inboxOver } from '../../platform/storage/inbox.js';
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
import { sqliteOrderStore } from './store.js';
import type { OrderStorePort } from './store-port.js';
import { checkOrderId } from '../shared/validate.js';
import { writeRpcs } from '../shared/write-rpc.js';
import { listPage } from '../shared/paging.js';

export type OrderServiceDeps = {
  /** The Redis fast path in front of the inbox; the inbox alone is enough for correctness. */
  fastPath?: IdempotencyGuard<unknown>;
  logger: Logger;
  /** Clock in epoch ms; tests pass a fixed one. */
  now?: () => number;
} & (
  | {
      /** The store: SQLite (sqliteOrderStore) or PostgreSQL (openPostgresOrderStore). */
      store: OrderStorePort;
      db?: undefined;
    }
  | {
      /** An open SQLite database with ORDER_MIGRATIONS applied (see openOrderDatabase): its store. */
      db: Db;
      store?: undefined;
    }
);

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
export function createOrderService(deps: OrderServiceDeps): OrderServiceServer {
  const { logger, now = Date.now, fastPath } = deps;
  const store = deps.store ?? sqliteOrderStore(deps.db, { now });
  const write = writeRpcs('order', logger, inboxOver(store.inbox, fastPath));

  return {
    createOrder: write('CreateOrder', 'create', {
      validate: (req: CreateOrderRequest) => validateCreate(req, now()),
      effect: (tx, input) => tx.create(input),
      answer: (result): CreateOrderResponse => ({
        outcome: CREATE[result.outcome],
        order: result.order && toProtoOrder(result.order),
      }),
      log: (input, res) => ({
        msg: 'create order',
        level: res.outcome === CreateOutcome.CREATE_OUTCOME_CONFLICT ? 'warn' : 'info',
        order_id: input.orderId,
        outcome: createOutcomeToJSON(res.outcome),
      }),
    }),

    getOrder: unary('GetOrder', logger, async (req, call) => {
      const orderId = checkOrderId(req.orderId);
      const order = await store.get(orderId);
      call.logger.debug({ order_id: orderId, found: order !== undefined }, 'get order');
      if (!order) throw new AppError('not_found', `order ${orderId} not found`);
      return { order: toProtoOrder(order) };
    }),

    listOrders: unary('ListOrders', logger, async (req: ListOrdersRequest, call): Promise<ListOrdersResponse> => {
      const res = await listPage(
        req,
        (after, limit) => store.list(after, limit),
        (e) => e.orderId,
        (e) => ({ orderId: e.orderId, order: e.order && toProtoOrder(e.order), tombstoned: e.tombstoned }),
      );
      call.logger.debug({ count: res.entries.length, more: res.nextPageToken !== '' }, 'list orders');
      return res;
    }),

    confirmOrder: write('ConfirmOrder', 'confirm', {
      validate: (req: ConfirmOrderRequest) => checkOrderId(req.orderId),
      effect: (tx, orderId) => tx.confirm(orderId),
      answer: (result): ConfirmOrderResponse => ({
        outcome: CONFIRM[result.outcome],
        order: result.order && toProtoOrder(result.order),
      }),
      log: (orderId, res) => ({ msg: 'confirm order', order_id: orderId, outcome: confirmOutcomeToJSON(res.outcome) }),
    }),

    cancelOrder: write('CancelOrder', 'cancel', {
      validate: (req: CancelOrderRequest) => ({
        orderId: checkOrderId(req.orderId),
        reason: validateReason(req.reason),
      }),
      effect: (tx, { orderId, reason }) => tx.cancel(orderId, reason),
      answer: (result): CancelOrderResponse => ({
        outcome: CANCEL[result.outcome],
        order: result.order && toProtoOrder(result.order),
      }),
      log: ({ orderId, reason }, res) => ({
        msg: 'cancel order',
        order_id: orderId,
        outcome: cancelOutcomeToJSON(res.outcome),
        reason,
      }),
    }),
  };
}
