/**
 * The floor of the bench: what the participants alone can do. From this one process, per order,
 * the place-order saga's own steps (placeOrderSaga, the definition the gateway runs) against the
 * gateway's own gRPC clients, run directly (see direct-saga.ts): the same calls in the same order
 * with the same keys, compensations included when an order is declined or short of stock — with
 * no saga log, no HTTP and no orchestrator. A step added to the saga is in the floor too. The
 * system's throughput over this one is the cost of the gateway and its write-ahead log.
 */
import { uuidv7 } from '../../src/platform/ids.js';
import { connectParticipants, type ParticipantName, type Participants } from '../../src/gateway/participants.js';
import { placeOrderSaga, type PlaceOrderInput } from '../../src/gateway/place-order.js';
import type { GrpcSecurity } from '../../src/platform/grpc/tls.js';
import { runDirect } from './direct-saga.js';
import type { Attempt, Job } from './load.js';
import { EXPECTED, makeOrder, pickKind, type BenchOrder, type Mix, type ProductPool, type Random } from './orders.js';

/** The participants as the gateway connects to them (same clients, channel options and security; every replica's address). */
export function floorParticipants(
  addrs: Record<ParticipantName, string | readonly string[]>,
  security: GrpcSecurity,
): Participants {
  return connectParticipants(addrs, security);
}

export interface FloorJobOptions {
  participants: Participants;
  pool: ProductPool;
  mix: Mix;
  random: Random;
  /** Per-call deadline of steps without their own; default the engine's. */
  timeoutMs?: number;
}

/** The saga's input for an order, as the gateway would store it (no HTTP request behind it). */
function sagaInput(id: string, order: BenchOrder): PlaceOrderInput {
  return {
    order_id: id,
    customer_id: order.customerId,
    items: order.items.map((l) => ({
      product_id: l.productId,
      quantity: l.quantity,
      unit_price_cents: l.unitPriceCents,
    })),
    total_cents: order.totalCents,
    created_at_ms: Date.now(),
    fingerprint: '',
    request_id: null,
  };
}

export function floorJob(o: FloorJobOptions): Job {
  const saga = placeOrderSaga(o.participants);
  return async (seq): Promise<Attempt> => {
    const kind = pickKind(o.mix, o.random);
    // The gateway's own id scheme (time-ordered), so the participants' stores see the same keys.
    const id = uuidv7();
    const out = await runDirect(saga, id, sagaInput(id, makeOrder(kind, o.pool, seq, o.random)), o.timeoutMs);
    if (!out.ok) return out;
    // The order's status, as GET /orders/:id would show it; the reason is the failure's code.
    const status = out.status === 'COMPLETED' ? 'CONFIRMED' : 'CANCELLED';
    const reason = out.status === 'COMPENSATED' ? out.failure.code : undefined;
    const e = EXPECTED[kind];
    const asExpected = e.status === status && (e.reason === undefined || e.reason === reason);
    return {
      ok: true,
      status,
      label: `${kind} → ${status}${reason ? ` ${reason}` : ''}${asExpected ? '' : ' (unexpected)'}`,
    };
  };
}
