import { connectivityState } from '@grpc/grpc-js';
import { OrderServiceService, type OrderServiceClient } from '../gen/order/v1/order.js';
import { InventoryServiceService, type InventoryServiceClient } from '../gen/inventory/v1/inventory.js';
import { PaymentServiceService, type PaymentServiceClient } from '../gen/payment/v1/payment.js';
import { HealthService, HealthCheckResponse_ServingStatus, type HealthClient } from '../gen/health/v1/health.js';
import { callUnary } from '../platform/grpc/grpc.js';
import { dialerAs, UnaryChannel, unaryClient } from '../platform/grpc/grpc-client.js';
import type { GrpcSecurity } from '../platform/grpc/tls.js';
import { PARTICIPANTS, type ParticipantClients, type ParticipantName } from '../contracts/participants.js';

export { PARTICIPANTS, type ParticipantName };

/** The gateway's clients of the participants, and whether they answer. */
export interface Participants extends ParticipantClients {
  /**
   * Whether every participant answers its health check. A result is reused for `ttlMs` while
   * every channel stays connected; `fresh` always probes.
   */
  reachable(fresh?: boolean): Promise<Record<ParticipantName, boolean>>;
  close(): void;
}

/**
 * The gateway's clients of the three participants, dialled with `security`: under mutual TLS the
 * gateway presents its certificate and accepts each participant only with that participant's.
 * One HTTP/2 session each (grpc-client.ts), shared by the service's client and its health check.
 */
export function connectParticipants(
  addrs: Record<ParticipantName, string>,
  security: GrpcSecurity,
  ttlMs = 1_000,
  probeTimeoutMs = 500,
): Participants {
  const dial = dialerAs(security, 'gateway');
  const channels: Record<ParticipantName, UnaryChannel> = {
    order: new UnaryChannel(addrs.order, dial('order')),
    inventory: new UnaryChannel(addrs.inventory, dial('inventory')),
    payment: new UnaryChannel(addrs.payment, dial('payment')),
  };
  const order = unaryClient<OrderServiceClient>(OrderServiceService, channels.order);
  const inventory = unaryClient<InventoryServiceClient>(InventoryServiceService, channels.inventory);
  const payment = unaryClient<PaymentServiceClient>(PaymentServiceService, channels.payment);
  // The health checks share the participants' sessions, so a probe also warms them up.
  const health: Record<ParticipantName, HealthClient> = {
    order: unaryClient<HealthClient>(HealthService, channels.order),
    inventory: unaryClient<HealthClient>(HealthService, channels.inventory),
    payment: unaryClient<HealthClient>(HealthService, channels.payment),
  };
  let cached: { at: number; value: Promise<Record<ParticipantName, boolean>> } | undefined;

  const probe = async (name: ParticipantName): Promise<boolean> => {
    try {
      // Untraced: a probe is not part of the order whose request happened to trigger it.
      const res = await callUnary(
        health[name].check.bind(health[name]),
        { service: '' },
        { timeoutMs: probeTimeoutMs },
      );
      return res.status === HealthCheckResponse_ServingStatus.SERVING;
    } catch {
      return false;
    }
  };

  return {
    order,
    inventory,
    payment,
    reachable(fresh = false) {
      const now = Date.now();
      // A channel that lost its connection (the participant died) invalidates the cached answer.
      const connected = PARTICIPANTS.every((n) => channels[n].getConnectivityState() === connectivityState.READY);
      if (fresh || !connected || !cached || now - cached.at > ttlMs) {
        const value = Promise.all(PARTICIPANTS.map(probe)).then(([o, i, p]) => ({
          order: o ?? false,
          inventory: i ?? false,
          payment: p ?? false,
        }));
        cached = { at: now, value };
        // A failed probe is not cached: the next request probes again.
        void value.then((r) => {
          if (!r.order || !r.inventory || !r.payment) cached = undefined;
        });
      }
      return cached.value;
    },
    close() {
      for (const n of PARTICIPANTS) channels[n].close();
    },
  };
}
