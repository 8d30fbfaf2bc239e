/**
 * The bench's floor makes the place-order saga's own calls: the steps of placeOrderSaga in
 * definition order, with the saga's keys, and on a refusal the compensations of the steps before
 * it, newest first. Fake participants record each call; no process, no network.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { status, type Metadata, type ServiceError } from '@grpc/grpc-js';
import { floorJob } from '../../bench/src/floor.js';
import { runDirect } from '../../bench/src/direct-saga.js';
import { ownCatalog, ownPool, OWN_EMPTY_PRODUCT } from '../../bench/src/orders.js';
import type { Participants } from '../../src/gateway/participants.js';
import { placeOrderSaga, type PlaceOrderInput } from '../../src/gateway/place-order.js';
import { CreateOutcome, ConfirmOutcome, CancelOutcome } from '../../src/gen/order/v1/order.js';
import { ReserveOutcome, ReleaseOutcome, CommitOutcome } from '../../src/gen/inventory/v1/inventory.js';
import { ChargeOutcome, RefundOutcome } from '../../src/gen/payment/v1/payment.js';

type Answer = (req: Record<string, unknown>) => object | ServiceError;

/** Participants whose every unary method records `<method> <idempotency key>` and answers `answers[method]`. */
function fakeParticipants(answers: Record<string, Answer>) {
  const calls: string[] = [];
  const client = (methods: string[]) =>
    Object.fromEntries(
      methods.map((m) => [
        m,
        (
          req: Record<string, unknown>,
          md: Metadata,
          _opts: unknown,
          cb: (err: ServiceError | null, res?: object) => void,
        ) => {
          calls.push(`${m} ${String(md.get('x-idempotency-key')[0])}`);
          const res = (answers[m] as Answer)(req);
          queueMicrotask(() => (res instanceof Error ? cb(res) : cb(null, res)));
          return {};
        },
      ]),
    );
  // Only the unary methods the saga calls exist: a structural stand-in for the generated clients.
  const participants = {
    order: client(['createOrder', 'confirmOrder', 'cancelOrder']),
    inventory: client(['reserve', 'release', 'commit']),
    payment: client(['charge', 'refund']),
    reachable: () => Promise.resolve({ order: true, inventory: true, payment: true }),
    close: () => {},
  } as unknown as Participants;
  return { participants, calls };
}

const ANSWERS: Record<string, Answer> = {
  createOrder: () => ({ outcome: CreateOutcome.CREATE_OUTCOME_CREATED }),
  confirmOrder: () => ({ outcome: ConfirmOutcome.CONFIRM_OUTCOME_CONFIRMED }),
  cancelOrder: () => ({ outcome: CancelOutcome.CANCEL_OUTCOME_CANCELLED }),
  reserve: (req) =>
    (req.items as { productId: string }[]).some((i) => i.productId === OWN_EMPTY_PRODUCT)
      ? { outcome: ReserveOutcome.RESERVE_OUTCOME_INSUFFICIENT_STOCK, productIds: [OWN_EMPTY_PRODUCT] }
      : { outcome: ReserveOutcome.RESERVE_OUTCOME_RESERVED, productIds: [] },
  release: () => ({ outcome: ReleaseOutcome.RELEASE_OUTCOME_RELEASED }),
  commit: () => ({ outcome: CommitOutcome.COMMIT_OUTCOME_COMMITTED }),
  charge: (req) =>
    Number(req.amountCents) > 50_000
      ? { outcome: ChargeOutcome.CHARGE_OUTCOME_DECLINED, declineReason: 'over limit' }
      : { outcome: ChargeOutcome.CHARGE_OUTCOME_CHARGED },
  refund: () => ({ outcome: RefundOutcome.REFUND_OUTCOME_REFUNDED }),
};

const pool = ownPool(ownCatalog(10, 100));
/** Random numbers for pickKind (mixed): < 0.8 happy, < 0.9 declined, else no stock; then 0.5s for the order. */
const randomFor = (first: number) => {
  let n = 0;
  return () => (n++ === 0 ? first : 0.5);
};

/** The calls with the order id taken out, so they read as the saga's sequence. */
const shape = (calls: string[]) => calls.map((c) => c.replace(/ [0-9a-f-]{36}:/, ' <id>:'));

describe('bench floor', () => {
  it('a happy order: the five actions of the saga in order, with its keys', async () => {
    const { participants, calls } = fakeParticipants(ANSWERS);
    const r = await floorJob({ participants, pool, mix: 'mixed', random: randomFor(0.1) })(0);
    assert.deepEqual(r, { ok: true, status: 'CONFIRMED', label: 'happy → CONFIRMED' });
    assert.deepEqual(shape(calls), [
      'createOrder <id>:create_order',
      'reserve <id>:reserve_stock',
      'charge <id>:charge_payment',
      'confirmOrder <id>:confirm_order',
      'commit <id>:commit_stock',
    ]);
  });

  it('a declined order: the steps before the charge are compensated, newest first', async () => {
    const { participants, calls } = fakeParticipants(ANSWERS);
    const r = await floorJob({ participants, pool, mix: 'mixed', random: randomFor(0.85) })(0);
    assert.deepEqual(r, { ok: true, status: 'CANCELLED', label: 'declined → CANCELLED payment_declined' });
    assert.deepEqual(shape(calls), [
      'createOrder <id>:create_order',
      'reserve <id>:reserve_stock',
      'charge <id>:charge_payment',
      'release <id>:reserve_stock:undo',
      'cancelOrder <id>:create_order:undo',
    ]);
  });

  it('an order short of stock: only the order is cancelled', async () => {
    const { participants, calls } = fakeParticipants(ANSWERS);
    const r = await floorJob({ participants, pool, mix: 'mixed', random: randomFor(0.95) })(0);
    assert.deepEqual(r, { ok: true, status: 'CANCELLED', label: 'no_stock → CANCELLED insufficient_stock' });
    assert.deepEqual(shape(calls), [
      'createOrder <id>:create_order',
      'reserve <id>:reserve_stock',
      'cancelOrder <id>:create_order:undo',
    ]);
  });

  it('a participant error is an error of the run, named after the step and the status; no retry', async () => {
    const unavailable = Object.assign(new Error('down'), {
      code: status.UNAVAILABLE,
      details: 'down',
      metadata: undefined,
    }) as unknown as ServiceError;
    const { participants, calls } = fakeParticipants({ ...ANSWERS, charge: () => unavailable });
    const r = await floorJob({ participants, pool, mix: 'happy', random: randomFor(0.1) })(0);
    assert.deepEqual(r, { ok: false, kind: 'grpc:charge_payment:UNAVAILABLE' });
    assert.equal(calls.length, 3);
  });

  it('an outcome the saga does not know is an error named after its code and step', async () => {
    const { participants } = fakeParticipants({ ...ANSWERS, confirmOrder: () => ({ outcome: 99 }) });
    const r = await floorJob({ participants, pool, mix: 'happy', random: randomFor(0.1) })(0);
    assert.deepEqual(r, { ok: false, kind: 'unexpected_outcome:confirm_order' });
  });

  it('a step added to the definition is run too, in its place', async () => {
    const { participants, calls } = fakeParticipants(ANSWERS);
    const saga = placeOrderSaga(participants);
    const extra = {
      name: 'notify',
      kind: 'retriable' as const,
      action: async () => (calls.push('notify'), { ok: true as const }),
    };
    const input: PlaceOrderInput = {
      order_id: 'o1',
      customer_id: 'c',
      items: [{ product_id: 'p', quantity: 1, unit_price_cents: 100 }],
      total_cents: 100,
      created_at_ms: 0,
      fingerprint: '',
      request_id: null,
    };
    const r = await runDirect({ ...saga, steps: [...saga.steps, extra] }, 'o1', input);
    assert.deepEqual(r, { ok: true, status: 'COMPLETED' });
    assert.equal(calls.at(-1), 'notify');
    assert.equal(calls.length, 6);
  });
});
