import { connectivityState, status } from '@grpc/grpc-js';
import { OrderServiceService, type OrderServiceClient } from '../gen/order/v1/order.js';
import { InventoryServiceService, type InventoryServiceClient } from '../gen/inventory/v1/inventory.js';
import { PaymentServiceService, type PaymentServiceClient } from '../gen/payment/v1/payment.js';
import { HealthService, HealthCheckResponse_ServingStatus, type HealthClient } from '../gen/health/v1/health.js';
import { callUnary, isServiceError } from '../platform/grpc/grpc.js';
import { dialerAs, unaryClient, type UnaryTransport } from '../platform/grpc/grpc-client.js';
import { channelTo, type AddressChange } from '../platform/grpc/grpc-balancer.js';
import type { GrpcSecurity } from '../platform/grpc/tls.js';
import { PARTICIPANTS, type ParticipantClients, type ParticipantName } from '../contracts/participants.js';

export { PARTICIPANTS, type ParticipantName };

/** One address of a participant, and whether it answered its health check. */
export interface AddressHealth {
  address: string;
  up: boolean;
}

/** The gateway's clients of the participants, and whether they answer. */
export interface Participants extends ParticipantClients {
  /**
   * Whether every participant answers its health check (on some address). A result is reused
   * for `ttlMs` while every channel stays connected; `fresh` always probes.
   */
  reachable(fresh?: boolean): Promise<Record<ParticipantName, boolean>>;
  /** Each participant's addresses, each probed alone now: how many of its replicas answer. */
  probeAddresses(): Promise<Record<ParticipantName, AddressHealth[]>>;
  close(): void;
}

export interface ConnectOptions {
  /** How long a `reachable()` answer is reused (default 1 s). */
  ttlMs?: number;
  /** Deadline of one health check (default 500 ms). */
  probeTimeoutMs?: number;
  /** Told when an address of a participant with several goes down or comes back (the gateway logs it). */
  onAddressChange?: (participant: ParticipantName, change: AddressChange) => void;
}

/** A value for each participant. */
function byParticipant<T>(f: (name: ParticipantName) => T): Record<ParticipantName, T> {
  return { order: f('order'), inventory: f('inventory'), payment: f('payment') };
}

/**
 * The gateway's clients of the three participants, dialled with `security`: under mutual TLS the
 * gateway presents its certificate and accepts each participant only with that participant's.
 * One HTTP/2 session per address (grpc-client.ts), shared by the service's client and its health
 * check; a participant with several addresses (replicas) has its calls spread over those that are
 * up (grpc-balancer.ts).
 */
export function connectParticipants(
  addrs: Record<ParticipantName, string | readonly string[]>,
  security: GrpcSecurity,
  opts: ConnectOptions = {},
): Participants {
  const ttlMs = opts.ttlMs ?? 1_000;
  const probeTimeoutMs = opts.probeTimeoutMs ?? 500;
  const dial = dialerAs(security, 'gateway');
  const open = (name: ParticipantName): UnaryTransport => {
    const list = addrs[name];
    return channelTo(typeof list === 'string' ? [list] : list, dial(name), {
      onAddressChange: opts.onAddressChange && ((change) => opts.onAddressChange?.(name, change)),
    });
  };
  const channels = byParticipant(open);
  const order = unaryClient<OrderServiceClient>(OrderServiceService, channels.order);
  const inventory = unaryClient<InventoryServiceClient>(InventoryServiceService, channels.inventory);
  const payment = unaryClient<PaymentServiceClient>(PaymentServiceService, channels.payment);
  // The health checks share the participants' sessions, so a probe also warms them up: one
  // client over the participant (whichever address is up), and one over each address alone.
  const health = byParticipant((n) => unaryClient<HealthClient>(HealthService, channels[n]));
  const healthOfEach = byParticipant((n) =>
    channels[n]
      .members()
      .map((m) => ({ address: m.address, channel: m, client: unaryClient<HealthClient>(HealthService, m) })),
  );
  let cached: { at: number; value: Promise<Record<ParticipantName, boolean>> } | undefined;

  /**
   * Down means refused, disconnected or NOT_SERVING. A probe that outlives its deadline on a
   * connection that is up says the participant (or this process) is slow, not down: the saga's
   * own deadlines and retries deal with slowness, and refusing orders for it turned a loaded
   * machine or a slow link into bursts of 503s.
   */
  const serving = async (client: HealthClient, via: Pick<UnaryTransport, 'getConnectivityState'>): Promise<boolean> => {
    try {
      // Untraced: a probe is not part of the order whose request happened to trigger it.
      const res = await callUnary(client.check.bind(client), { service: '' }, { timeoutMs: probeTimeoutMs });
      return res.status === HealthCheckResponse_ServingStatus.SERVING;
    } catch (err) {
      return (
        isServiceError(err) &&
        err.code === status.DEADLINE_EXCEEDED &&
        via.getConnectivityState() === connectivityState.READY
      );
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
        const value = Promise.all(PARTICIPANTS.map((n) => serving(health[n], channels[n]))).then(([o, i, p]) => ({
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
    async probeAddresses() {
      const each = await Promise.all(
        PARTICIPANTS.map((n) =>
          Promise.all(
            healthOfEach[n].map(async ({ address, channel, client }) => ({
              address,
              up: await serving(client, channel),
            })),
          ),
        ),
      );
      return byParticipant((n) => each[PARTICIPANTS.indexOf(n)] ?? []);
    },
    close() {
      for (const n of PARTICIPANTS) channels[n].close();
    },
  };
}
