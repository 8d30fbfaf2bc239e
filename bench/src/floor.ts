/**
 * The floor of `sagas bench`: what the participants alone can do. From this one process, per
 * order, the gRPC calls the place-order saga makes, in the saga's order and with keys of the
 * saga's form (`<order_id>:<step>`, `<order_id>:<step>:undo`) — CreateOrder, Reserve, Charge,
 * ConfirmOrder, Commit, and Release / CancelOrder when an order is declined or short of stock —
 * with no saga log, no HTTP and no orchestrator. The system's throughput over this one is the
 * cost of the gateway and its write-ahead log.
 */
import { randomUUID } from 'node:crypto';
import { credentials, status as grpcStatus } from '@grpc/grpc-js';
import { OrderServiceClient, CreateOutcome, ConfirmOutcome, CancelOutcome } from '../../src/gen/order/v1/order.js';
import { InventoryServiceClient, ReserveOutcome, ReleaseOutcome, CommitOutcome } from '../../src/gen/inventory/v1/inventory.js';
import { PaymentServiceClient, ChargeOutcome } from '../../src/gen/payment/v1/payment.js';
import { callUnary, isServiceError } from '../../src/platform/grpc.js';
import { EXPECTED, makeOrder, pickKind, type Mix, type ProductPool, type Random } from './orders.js';
import type { Attempt, Job } from './load.js';

export interface FloorClients {
  order: OrderServiceClient;
  inventory: InventoryServiceClient;
  payment: PaymentServiceClient;
  close(): void;
}

/** The same channel options as the gateway's participants (src/gateway/participants.ts). */
const CHANNEL_OPTIONS = {
  'grpc.keepalive_time_ms': 30_000,
  'grpc.keepalive_timeout_ms': 5_000,
};

export function floorClients(addrs: { order: string; inventory: string; payment: string }): FloorClients {
  const insecure = credentials.createInsecure();
  const order = new OrderServiceClient(addrs.order, insecure, CHANNEL_OPTIONS);
  const inventory = new InventoryServiceClient(addrs.inventory, insecure, CHANNEL_OPTIONS);
  const payment = new PaymentServiceClient(addrs.payment, insecure, CHANNEL_OPTIONS);
  return {
    order,
    inventory,
    payment,
    close() {
      order.close();
      inventory.close();
      payment.close();
    },
  };
}

class StepError extends Error {
  constructor(readonly kind: string) {
    super(kind);
  }
}

export interface FloorJobOptions {
  clients: FloorClients;
  pool: ProductPool;
  mix: Mix;
  random: Random;
  timeoutMs?: number;
}

export function floorJob(o: FloorJobOptions): Job {
  const { order: os, inventory: inv, payment: pay } = o.clients;
  const timeoutMs = o.timeoutMs ?? 10_000;
  const call = async <Req, Res>(step: string, method: Parameters<typeof callUnary<Req, Res>>[0], req: Req, key: string): Promise<Res> => {
    try {
      return await callUnary(method, req, { idempotencyKey: key, timeoutMs });
    } catch (err) {
      throw new StepError(isServiceError(err) ? `grpc:${step}:${grpcStatus[err.code] ?? err.code}` : `${step}:${err instanceof Error ? err.message : String(err)}`);
    }
  };
  const unexpected = (step: string, outcome: number) => new StepError(`unexpected_outcome:${step}:${outcome}`);

  return async (seq): Promise<Attempt> => {
    const kind = pickKind(o.mix, o.random);
    const order = makeOrder(kind, o.pool, seq, o.random);
    const id = randomUUID();
    const cancelled = async (reason: string, reserved: boolean): Promise<Attempt> => {
      if (reserved) {
        const rel = await call('reserve_stock:undo', inv.release.bind(inv), { orderId: id }, `${id}:reserve_stock:undo`);
        if (rel.outcome !== ReleaseOutcome.RELEASE_OUTCOME_RELEASED && rel.outcome !== ReleaseOutcome.RELEASE_OUTCOME_NOTHING_RESERVED) throw unexpected('release', rel.outcome);
      }
      const c = await call('create_order:undo', os.cancelOrder.bind(os), { orderId: id, reason }, `${id}:create_order:undo`);
      if (c.outcome !== CancelOutcome.CANCEL_OUTCOME_CANCELLED && c.outcome !== CancelOutcome.CANCEL_OUTCOME_TOMBSTONED) throw unexpected('cancel', c.outcome);
      return label('CANCELLED', reason);
    };
    const label = (status: 'CONFIRMED' | 'CANCELLED', reason?: string): Attempt => {
      const e = EXPECTED[kind];
      const asExpected = e.status === status && (e.reason === undefined || e.reason === reason);
      return { ok: true, status, label: `${kind} → ${status}${reason ? ` ${reason}` : ''}${asExpected ? '' : ' (unexpected)'}` };
    };
    try {
      const created = await call('create_order', os.createOrder.bind(os), {
        orderId: id,
        customerId: order.customerId,
        items: order.items.map((l) => ({ productId: l.productId, quantity: l.quantity, unitPriceCents: l.unitPriceCents })),
        createdAtMs: Date.now(),
      }, `${id}:create_order`);
      if (created.outcome !== CreateOutcome.CREATE_OUTCOME_CREATED) throw unexpected('create_order', created.outcome);

      const reserved = await call('reserve_stock', inv.reserve.bind(inv), {
        orderId: id,
        items: order.items.map((l) => ({ productId: l.productId, quantity: l.quantity })),
      }, `${id}:reserve_stock`);
      if (reserved.outcome === ReserveOutcome.RESERVE_OUTCOME_INSUFFICIENT_STOCK) return await cancelled('insufficient_stock', false);
      if (reserved.outcome === ReserveOutcome.RESERVE_OUTCOME_UNKNOWN_PRODUCT) return await cancelled('unknown_product', false);
      if (reserved.outcome !== ReserveOutcome.RESERVE_OUTCOME_RESERVED) throw unexpected('reserve_stock', reserved.outcome);

      const charged = await call('charge_payment', pay.charge.bind(pay), { orderId: id, amountCents: order.totalCents }, `${id}:charge_payment`);
      if (charged.outcome === ChargeOutcome.CHARGE_OUTCOME_DECLINED) return await cancelled('payment_declined', true);
      if (charged.outcome !== ChargeOutcome.CHARGE_OUTCOME_CHARGED) throw unexpected('charge_payment', charged.outcome);

      const confirmed = await call('confirm_order', os.confirmOrder.bind(os), { orderId: id }, `${id}:confirm_order`);
      if (confirmed.outcome !== ConfirmOutcome.CONFIRM_OUTCOME_CONFIRMED) throw unexpected('confirm_order', confirmed.outcome);

      const committed = await call('commit_stock', inv.commit.bind(inv), { orderId: id }, `${id}:commit_stock`);
      if (committed.outcome !== CommitOutcome.COMMIT_OUTCOME_COMMITTED) throw unexpected('commit_stock', committed.outcome);
      return label('CONFIRMED');
    } catch (err) {
      if (err instanceof StepError) return { ok: false, kind: err.kind };
      throw err;
    }
  };
}
