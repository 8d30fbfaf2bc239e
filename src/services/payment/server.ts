import type { Db } from '../../platform/db.js';
import type { Logger } from '../../platform/logger.js';
import { unary } from '../../platform/grpc.js';
import { createInbox } from '../../platform/inbox.js';
import type { IdempotencyGuard } from '../../platform/idempotency.js';
import { crashPoint } from '../../platform/crash.js';
import {
  ChargeOutcome,
  PaymentStatus,
  RefundOutcome,
  chargeOutcomeToJSON,
  refundOutcomeToJSON,
  type ChargeResponse,
  type PaymentServiceServer,
  type RefundResponse,
} from '../../gen/payment/v1/payment.js';
import { validateCharge, type PaymentStatus as DomainStatus } from './domain.js';
import { createPaymentStore } from './store.js';
import { checkOrderId } from '../shared/validate.js';

export interface PaymentServiceDeps {
  /** The Redis fast path in front of the inbox; the inbox alone is enough for correctness. */
  fastPath?: IdempotencyGuard<unknown>;
  /** An open database with PAYMENT_MIGRATIONS applied (see openPaymentDatabase). */
  db: Db;
  logger: Logger;
  /** Charges strictly above this many cents are declined (amount_over_limit). */
  chargeLimitCents: number;
  now?: () => number;
}

const CHARGE: Record<'charged' | 'declined' | 'refunded', ChargeOutcome> = {
  charged: ChargeOutcome.CHARGE_OUTCOME_CHARGED,
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
export function createPaymentService({ db, logger, chargeLimitCents, now = Date.now, fastPath }: PaymentServiceDeps): PaymentServiceServer {
  const store = createPaymentStore(db, { chargeLimitCents, now });
  const inbox = createInbox(db, now, fastPath);

  return {
    charge: unary('Charge', logger, async (req, call) => {
      const input = validateCharge(req);
      const { response, replayed } = await inbox.run(call.idempotencyKey, 'Charge', req, (): ChargeResponse => {
        const result = store.charge(input);
        crashPoint('payment.charge.before_commit');
        return { outcome: CHARGE[result.outcome], declineReason: result.declineReason };
      });
      crashPoint('payment.charge.after_commit');
      call.logger.info(
        {
          order_id: input.orderId,
          outcome: chargeOutcomeToJSON(response.outcome),
          amount_cents: input.amountCents,
          decline_reason: response.declineReason || undefined,
          idempotency_key: call.idempotencyKey,
          replayed,
        },
        'charge',
      );
      return response;
    }),

    refund: unary('Refund', logger, async (req, call) => {
      const orderId = checkOrderId(req.orderId);
      const { response, replayed } = await inbox.run(call.idempotencyKey, 'Refund', req, (): RefundResponse => {
        const result = store.refund(orderId);
        crashPoint('payment.refund.before_commit');
        return { outcome: REFUND[result.outcome], amountCents: result.amountCents };
      });
      crashPoint('payment.refund.after_commit');
      call.logger.info(
        {
          order_id: orderId,
          outcome: refundOutcomeToJSON(response.outcome),
          amount_cents: response.amountCents,
          idempotency_key: call.idempotencyKey,
          replayed,
        },
        'refund',
      );
      return response;
    }),

    getPayment: unary('GetPayment', logger, (req, call) => {
      const orderId = checkOrderId(req.orderId);
      const payment = store.get(orderId);
      call.logger.debug({ order_id: orderId, status: payment?.status ?? 'NONE' }, 'get payment');
      return payment
        ? { status: STATUS[payment.status], amountCents: payment.amountCents }
        : { status: PaymentStatus.PAYMENT_STATUS_NONE, amountCents: 0 };
    }),
  };
}
