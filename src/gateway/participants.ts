import { connectivityState } from '@grpc/grpc-js';
import { OrderServiceClient } from '../gen/order/v1/order.js';
import { InventoryServiceClient } from '../gen/inventory/v1/inventory.js';
import { PaymentServiceClient } from '../gen/payment/v1/payment.js';
import { HealthClient, HealthCheckResponse_ServingStatus } from '../gen/health/v1/health.js';
import { callUnary, channelOptions, credentialsAs } from '../platform/grpc.js';
import type { GrpcSecurity } from '../platform/tls.js';

export type ParticipantName = 'order' | 'inventory' | 'payment';
export const PARTICIPANTS: readonly ParticipantName[] = ['order', 'inventory', 'payment'];

export interface Participants {
  order: OrderServiceClient;
  inventory: InventoryServiceClient;
  payment: PaymentServiceClient;
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
 */
export function connectParticipants(addrs: Record<ParticipantName, string>, security: GrpcSecurity, ttlMs = 1_000, probeTimeoutMs = 500): Participants {
  const dial = credentialsAs(security, 'gateway');
  const creds = { order: dial('order'), inventory: dial('inventory'), payment: dial('payment') };
  const order = new OrderServiceClient(addrs.order, creds.order, channelOptions(security, 'order'));
  const inventory = new InventoryServiceClient(addrs.inventory, creds.inventory, channelOptions(security, 'inventory'));
  const payment = new PaymentServiceClient(addrs.payment, creds.payment, channelOptions(security, 'payment'));
  // The health clients share the participants' channels, so a probe also warms them up.
  const health: Record<ParticipantName, HealthClient> = {
    order: new HealthClient(addrs.order, creds.order, { channelOverride: order.getChannel() }),
    inventory: new HealthClient(addrs.inventory, creds.inventory, { channelOverride: inventory.getChannel() }),
    payment: new HealthClient(addrs.payment, creds.payment, { channelOverride: payment.getChannel() }),
  };
  let cached: { at: number; value: Promise<Record<ParticipantName, boolean>> } | undefined;

  const probe = async (name: ParticipantName): Promise<boolean> => {
    try {
      // Untraced: a probe is not part of the order whose request happened to trigger it.
      const res = await callUnary(health[name].check.bind(health[name]), { service: '' }, { timeoutMs: probeTimeoutMs });
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
      const connected = [order, inventory, payment].every((c) => c.getChannel().getConnectivityState(false) === connectivityState.READY);
      if (fresh || !connected || !cached || now - cached.at > ttlMs) {
        const value = Promise.all(PARTICIPANTS.map(probe)).then(
          ([o, i, p]) => ({ order: o ?? false, inventory: i ?? false, payment: p ?? false }),
        );
        cached = { at: now, value };
        // A failed probe is not cached: the next request probes again.
        void value.then((r) => {
          if (!r.order || !r.inventory || !r.payment) cached = undefined;
        });
      }
      return cached.value;
    },
    close() {
      order.close();
      inventory.close();
      payment.close();
    },
  };
}
