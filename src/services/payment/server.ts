import type { Db } from '../../platform/storage/db.js';
import type { Logger } from '../../platform/telemetry/logger.js';
import { unary } from '../../platform/grpc/grpc.js';
import { inboxOver } from '../../platform/storage/inbox.js';
import type { IdempotencyGuard } from '../../platform/storage/idempotency.js';
import {
  ChargeOutcome,
  PaymentStatus,
  RefundOutcome,
  chargeOutcomeToJSON,
  refundOutcomeToJSON,
  type ChargeRequest,
  type ListPaymentsRequest,
  type ListPaymentsResponse,
  type ChargeResponse,
  type PaymentServiceServer,
  type RefundRequest,
  type RefundResponse,
} from '../../gen/payment/v1/payment.js';
import { validateCharge, type ChargeDecision, type PaymentStatus as DomainStatus } from './domain.js';
import { sqlitePaymentStore } from './store.js';
import type { PaymentStorePort } from './store-port.js';
import { checkOrderId } from '../shared/validate.js';
import { writeRpcs } from '../shared/write-rpc.js';
import { listPage } from '../shared/paging.js';

export type PaymentServiceDeps = {
  /** The Redis fast path in front of the inbox; the inbox alone is enough for correctness. */
  fastPath?: IdempotencyGuard<unknown>;
  logger: Logger;
  now?: () => number;
} & (
  | {
      /** The store: SQLite (sqlitePaymentStore) or PostgreSQL (openPostgresPaymentStore), with its charge limit. */
      store: PaymentStorePort;
      db?: undefined;
      chargeLimitCents?: undefined;
    }
  | {
      /** An open SQLite database with PAYMENT_MIGRATIONS applied (see openPaymentDatabase): its store. */
      db: Db;
      /** Charges strictly above this many cents are declined (amount_over_limit). */
      chargeLimitCents: number;
      store?: undefined;
    }
);

const CHARGE: Record<ChargeDecision['outcome'], ChargeOutcome> = {
  charged: ChargeOutcome.CHARGE_OUTCOME_CHARGED,
  conflict: ChargeOutcome.CHARGE_OUTCOME_CONFLICT,
  declined: ChargeOutcome.CHARGE_OUTCOME_DECLINED,
  refunded: ChargeOutcome.CHARGE_OUTCOME_REFUNDED,
};
const REFUND: Record<'refunded' | 'nothing_charged', RefundOutcome> = {
  refunded: RefundOutcome.REFUND_OUTCOME_REFUNDED,
  nothing_charged: RefundOutcome.REFUND_OUTCOME_NOTHING_CHARGED,
};
const STATUS: Record<DomainStatus, PaymentStatus> = {
  CHARGED: PaymentStatus.PAYMENT_STATUS_CHARGED,
  REFUNDED: PaymentStatus.PAYMENT_STATUS_REFUNDED,
  DECLINED: PaymentStatus.PAYMENT_STATUS_DECLINED,
};

/** The PaymentService implementation. */
export function createPaymentService(deps: PaymentServiceDeps): PaymentServiceServer {
  const { logger, now = Date.now, fastPath } = deps;
  const store = deps.store ?? sqlitePaymentStore(deps.db, { chargeLimitCents: deps.chargeLimitCents, now });
  const write = writeRpcs('payment', logger, inboxOver(store.inbox, fastPath));

  return {
    charge: write('Charge', 'charge', {
      validate: (req: ChargeRequest) => validateCharge(req),
      effect: (tx, input) => tx.charge(input),
      answer: (result): ChargeResponse => ({ outcome: CHARGE[result.outcome], declineReason: result.declineReason }),
      log: (input, res) => ({
        msg: 'charge',
        level: res.outcome === ChargeOutcome.CHARGE_OUTCOME_CONFLICT ? 'warn' : 'info',
        order_id: input.orderId,
        outcome: chargeOutcomeToJSON(res.outcome),
        amount_cents: input.amountCents,
        decline_reason: res.declineReason || undefined,
      }),
    }),

    refund: write('Refund', 'refund', {
      validate: (req: RefundRequest) => checkOrderId(req.orderId),
      effect: (tx, orderId) => tx.refund(orderId),
      answer: (result): RefundResponse => ({ outcome: REFUND[result.outcome], amountCents: result.amountCents }),
      log: (orderId, res) => ({
        msg: 'refund',
        order_id: orderId,
        outcome: refundOutcomeToJSON(res.outcome),
        amount_cents: res.amountCents,
      }),
    }),

    listPayments: unary(
      'ListPayments',
      logger,
      async (req: ListPaymentsRequest, call): Promise<ListPaymentsResponse> => {
        const res = await listPage(
          req,
          (after, limit) => store.list(after, limit),
          (e) => e.orderId,
          ({ orderId, payment, tombstoned }) => ({
            orderId,
            status: payment ? STATUS[payment.status] : PaymentStatus.PAYMENT_STATUS_NONE,
            amountCents: payment?.amountCents ?? 0,
            refundedCents: payment?.status === 'REFUNDED' ? payment.amountCents : 0,
            tombstoned,
          }),
        );
        call.logger.debug({ count: res.entries.length, more: res.nextPageToken !== '' }, 'list payments');
        return res;
      },
    ),

    getPayment: unary('GetPayment', logger, async (req, call) => {
      const orderId = checkOrderId(req.orderId);
      const payment = await store.get(orderId);
      call.logger.debug({ order_id: orderId, status: payment?.status ?? 'NONE' }, 'get payment');
      return payment
        ? { status: STATUS[payment.status], amountCents: payment.amountCents }
        : { status: PaymentStatus.PAYMENT_STATUS_NONE, amountCents: 0 };
    }),
  };
}
