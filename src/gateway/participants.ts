import { credentials, connectivityState } from '@grpc/grpc-js';
import { OrderServiceClient } from '../gen/order/v1/order.js';
import { InventoryServiceClient } from '../gen/inventory/v1/inventory.js';
import { PaymentServiceClient } from '../gen/payment/v1/payment.js';
import { HealthClient, HealthCheckResponse_ServingStatus } from '../gen/health/v1/health.js';
import { CLIENT_CHANNEL_OPTIONS, callUnary } from '../platform/grpc.js';

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

export function connectParticipants(addrs: Record<ParticipantName, string>, ttlMs = 1_000, probeTimeoutMs = 500): Participants {
  const insecure = credentials.createInsecure();
  const order = new OrderServiceClient(addrs.order, insecure, CLIENT_CHANNEL_OPTIONS);
  const inventory = new InventoryServiceClient(addrs.inventory, insecure, CLIENT_CHANNEL_OPTIONS);
  const payment = new PaymentServiceClient(addrs.payment, insecure, CLIENT_CHANNEL_OPTIONS);
  // The health clients share the participants' channels, so a probe also warms them up.
  const health: Record<ParticipantName, HealthClient> = {
    order: new HealthClient(addrs.order, insecure, { ...CLIENT_CHANNEL_OPTIONS, channelOverride: order.getChannel() }),
    inventory: new HealthClient(addrs.inventory, insecure, { ...CLIENT_CHANNEL_OPTIONS, channelOverride: inventory.getChannel() }),
    payment: new HealthClient(addrs.payment, insecure, { ...CLIENT_CHANNEL_OPTIONS, channelOverride: payment.getChannel() }),
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
