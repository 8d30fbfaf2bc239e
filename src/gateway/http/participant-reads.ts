import { status as grpcStatus } from '@grpc/grpc-js';
import { callRpc, isServiceError, isUnavailable } from '../../platform/grpc/grpc.js';
import type { Order } from '../../gen/order/v1/order.js';
import type { ParticipantName, Participants } from '../participants.js';
import { HttpError } from './errors.js';

/** A participant we could not reach is 503, never 404. */
export function participantError(err: unknown, participant: ParticipantName): HttpError {
  if (isUnavailable(err)) return new HttpError('participant_unavailable', `the ${participant} service is unavailable`);
  return new HttpError(
    'participant_error',
    `the ${participant} service failed`,
    err instanceof Error ? err.message : String(err),
  );
}

/** The reads the public API makes of the participants, each under a deadline. */
export function participantReads(p: Participants, timeoutMs: number) {
  return {
    /** The order service's record, or undefined when it has none (yet). */
    async order(id: string, requestId: string): Promise<Order | undefined> {
      try {
        const res = await callRpc(p.order, 'getOrder', { orderId: id }, { timeoutMs, requestId });
        return res.order;
      } catch (err) {
        if (isServiceError(err) && err.code === grpcStatus.NOT_FOUND) return undefined;
        throw participantError(err, 'order');
      }
    },
    payment(id: string, requestId: string) {
      return callRpc(p.payment, 'getPayment', { orderId: id }, { timeoutMs, requestId }).catch((err: unknown) => {
        throw participantError(err, 'payment');
      });
    },
    /** Every product's stock and catalog price, or only those of `productIds` when given. */
    products(requestId: string, productIds: string[] = []) {
      return callRpc(p.inventory, 'listProducts', { productIds }, { timeoutMs, requestId }).catch((err: unknown) => {
        throw participantError(err, 'inventory');
      });
    },
  };
}
