/**
 * Placing an order (src/gateway/order-placement.ts) with in-memory fakes of the saga handle, the
 * idempotency guard and the participants: every branch of the idempotency protocol (new, replay,
 * conflict, in flight, a Redis value the log does not back), the refusals before the create and
 * how a stored order outranks them, and the wait.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EngineOverloadedError, type StartRequest } from '../../src/saga/index.js';
import type { Begin, IdempotencyGuard, UntrustedReason } from '../../src/platform/storage/idempotency.js';
import type { ParticipantName } from '../../src/contracts/participants.js';
import type { OrderRequest } from '../../src/contracts/order.js';
import type { Order as ParticipantOrder } from '../../src/gen/order/v1/order.js';
import { OrderRefused } from '../../src/gateway/order-refused.js';
import type { PlaceOrderInput } from '../../src/gateway/place-order.js';
import {
  orderPlacement,
  type OrderPlacementDeps,
  type OrderSaga,
  type PlaceOrderRequest,
} from '../../src/gateway/order-placement.js';

const ORDER: OrderRequest = {
  customer_id: 'c1',
  items: [{ product_id: 'p1', quantity: 2, unit_price_cents: 500 }],
  total_cents: 1_000,
};
const OTHER_ORDER: OrderRequest = { ...ORDER, customer_id: 'c2' };

/** What the fake `respond` answers: enough to tell which saga and which read it was given. */
interface Answer {
  id: string;
  status: string;
  orderRead: boolean;
}

function sagaOf(id: string, input: PlaceOrderInput, key: string | null, status: OrderSaga['status']): OrderSaga {
  return {
    id,
    definition: 'place_order',
    version: 1,
    status,
    stepIndex: 0,
    compIndex: -1,
    attempt: 0,
    input,
    results: {},
    failure: null,
    traceparent: null,
    idempotencyKey: key,
    leaseOwner: null,
    leaseExpiresAt: 0,
    deadlineAt: 0,
    createdAt: 0,
    updatedAt: 0,
    subject: input.customer_id,
    currentStep: null,
  };
}

/** The saga handle over a map: a create under a taken key finds its holder, as the log's does. */
class FakeOrders {
  readonly sagas = new Map<string, OrderSaga>();
  starts = 0;
  /** Reads of the log by key the use case made (the create's own check of the key is not one). */
  keyReads = 0;
  startError: Error | undefined;
  waits: Array<{ id: string; ms: number }> = [];
  /** The signal each wait was given. */
  signals: AbortSignal[] = [];
  /** How a wait ends: by default at once, with the saga as it stands. */
  waitFor = (id: string, ms: number, signal?: AbortSignal): Promise<OrderSaga | undefined> => {
    this.waits.push({ id, ms });
    if (signal) this.signals.push(signal);
    return Promise.resolve(this.sagas.get(id));
  };

  async start(req: StartRequest<PlaceOrderInput>) {
    this.starts++;
    if (this.startError) throw this.startError;
    const held = req.idempotencyKey === undefined ? undefined : this.held(req.idempotencyKey);
    if (held) return { saga: held, created: false };
    const saga = sagaOf(req.id, req.input, req.idempotencyKey ?? null, 'RUNNING');
    this.sagas.set(saga.id, saga);
    return { saga, created: true };
  }

  async get(id: string) {
    return this.sagas.get(id);
  }

  async getByIdempotencyKey(key: string) {
    this.keyReads++;
    return this.held(key);
  }

  private held(key: string) {
    return [...this.sagas.values()].find((s) => s.idempotencyKey === key);
  }

  /** A saga stored under `key` earlier, for `order` (its fingerprint computed as a first placement did). */
  async storedFor(key: string, order: OrderRequest, status: OrderSaga['status'] = 'RUNNING'): Promise<OrderSaga> {
    const first = setup();
    first.guard.claim = { kind: 'acquired' };
    const placed = await first.placement.place({ order, key, wait: undefined, requestId: 'r0' });
    assert.equal(placed.kind, 'created');
    const saga = { ...(first.orders.sagas.values().next().value as OrderSaga), id: `stored_${key}`, status };
    this.sagas.set(saga.id, saga);
    return saga;
  }
}

/** The idempotency guard, scripted: `begin` answers `claim`; the rest is recorded. */
class FakeGuard implements IdempotencyGuard<Answer> {
  claim: Begin<Answer> = { kind: 'acquired' };
  calls: string[] = [];
  completed: Answer[] = [];
  async begin(key: string) {
    this.calls.push(`begin ${key}`);
    return this.claim;
  }
  async complete(key: string, _fp: string, response: Answer) {
    this.calls.push(`complete ${key}`);
    this.completed.push(response);
  }
  async abandon(key: string) {
    this.calls.push(`abandon ${key}`);
  }
  untrusted(key: string, why: UntrustedReason) {
    this.calls.push(`untrusted ${key} ${why}`);
  }
}

function setup(over: Partial<OrderPlacementDeps<Answer>> = {}) {
  const orders = new FakeOrders();
  const guard = new FakeGuard();
  const engine = { stopping: false, inFlight: 0 };
  const up: Record<ParticipantName, boolean> = { order: true, inventory: true, payment: true };
  const catalog = new Map<string, number>([['p1', 500]]);
  const reads = { orders: 0, products: 0, productsError: undefined as Error | undefined };
  let ids = 0;
  const placement = orderPlacement<Answer>({
    orders,
    engine,
    participants: { reachable: async () => ({ ...up }) },
    reads: {
      order: async (id) => {
        reads.orders++;
        return { id } as ParticipantOrder;
      },
      products: async (_requestId, productIds) => {
        reads.products++;
        if (reads.productsError) throw reads.productsError;
        return { products: productIds.map((productId) => ({ productId, priceCents: catalog.get(productId) })) };
      },
    },
    idempotency: guard,
    pricing: 'client',
    maxInFlight: 10,
    respond: (saga, order) => ({ id: saga.id, status: saga.status, orderRead: order !== undefined }),
    now: () => 1_700_000_000_000,
    newId: () => `ord_${++ids}`,
    ...over,
  });
  return { placement, orders, guard, engine, up, catalog, reads };
}

const request = (over: Partial<PlaceOrderRequest> = {}): PlaceOrderRequest => ({
  order: ORDER,
  key: 'k1',
  wait: undefined,
  requestId: 'r1',
  ...over,
});

describe('a new order', () => {
  test('without a key: one saga started, answered at once, the guard untouched', async () => {
    const s = setup();
    const placed = await s.placement.place(request({ key: undefined }));
    assert.deepEqual(placed, {
      kind: 'created',
      sagaId: 'ord_1',
      response: { id: 'ord_1', status: 'RUNNING', orderRead: false },
    });
    assert.equal(s.orders.starts, 1);
    assert.deepEqual(s.guard.calls, []);
    const saga = s.orders.sagas.get('ord_1');
    assert.equal(saga?.input.created_at_ms, 1_700_000_000_000);
    assert.equal(saga?.input.request_id, 'r1');
    assert.equal(saga?.idempotencyKey, null);
  });

  test('with a new key: the saga is started under it and its answer kept under the key', async () => {
    const s = setup();
    const placed = await s.placement.place(request());
    assert.equal(placed.kind, 'created');
    assert.equal(s.orders.sagas.get('ord_1')?.idempotencyKey, 'k1');
    assert.deepEqual(s.guard.calls, ['begin k1', 'complete k1']);
    assert.deepEqual(s.guard.completed, [{ id: 'ord_1', status: 'RUNNING', orderRead: false }]);
  });

  test('the answer does not wait for the cache to keep it, nor fail when it cannot', async () => {
    for (const complete of [() => new Promise<void>(() => undefined), () => Promise.reject(new Error('redis gone'))]) {
      const s = setup();
      s.guard.complete = complete;
      const placed = await s.placement.place(request());
      assert.equal(placed.kind, 'created');
      assert.equal(s.orders.sagas.get('ord_1')?.idempotencyKey, 'k1');
    }
  });
});

describe('a repeated key', () => {
  for (const claim of [
    { kind: 'replay', response: { id: 'x', status: 'x', orderRead: false } },
    { kind: 'in_flight' },
    { kind: 'mismatch' },
  ] as const) {
    test(`Redis says ${claim.kind}, the log holds the same request: replayed from the log, nothing started`, async () => {
      const s = setup();
      const stored = await s.orders.storedFor('k1', ORDER);
      s.guard.claim = claim;
      const placed = await s.placement.place(request());
      assert.deepEqual(placed, {
        kind: 'replayed',
        sagaId: stored.id,
        response: { id: stored.id, status: 'RUNNING', orderRead: true },
      });
      assert.equal(s.orders.starts, 0);
      assert.deepEqual(s.guard.calls, ['begin k1'], 'a replay from the log is not stored again, nor freed');
    });

    test(`Redis says ${claim.kind}, the log holds another request under the key: key_reused, the key kept`, async () => {
      const s = setup();
      await s.orders.storedFor('k1', OTHER_ORDER);
      s.guard.claim = claim;
      assert.deepEqual(await s.placement.place(request()), { kind: 'key_reused' });
      assert.equal(s.orders.starts, 0);
      assert.deepEqual(s.guard.calls, ['begin k1']);
    });
  }

  test('a settled saga answers from the log alone: no participant read', async () => {
    const s = setup();
    await s.orders.storedFor('k1', ORDER, 'COMPLETED');
    s.guard.claim = { kind: 'in_flight' };
    const placed = await s.placement.place(request());
    assert.equal(placed.kind, 'replayed');
    assert.equal(s.reads.orders, 0);
  });

  test('in flight and nothing in the log yet: in_flight, nothing started, the key left to its holder', async () => {
    for (const kind of ['in_flight', 'mismatch'] as const) {
      const s = setup();
      s.guard.claim = { kind };
      assert.deepEqual(await s.placement.place(request()), { kind: 'in_flight' });
      assert.equal(s.orders.starts, 0);
      assert.deepEqual(s.guard.calls, ['begin k1']);
    }
  });

  test('a finished answer the log does not back is ignored (and said so): the order is placed', async () => {
    const s = setup();
    s.guard.claim = { kind: 'replay', response: { id: 'forged', status: 'COMPLETED', orderRead: false } };
    const placed = await s.placement.place(request());
    assert.equal(placed.kind, 'created');
    assert.deepEqual(s.guard.calls, ['begin k1', 'untrusted k1 unbacked', 'complete k1']);
  });

  test('Redis lost the key, the log has the same request: the create finds it, replayed and kept', async () => {
    const s = setup();
    const stored = await s.orders.storedFor('k1', ORDER);
    const placed = await s.placement.place(request());
    assert.equal(placed.kind, 'replayed');
    assert.equal(placed.kind === 'replayed' && placed.sagaId, stored.id);
    assert.equal(s.orders.sagas.size, 1, 'no second saga');
    assert.deepEqual(s.guard.calls, ['begin k1', 'complete k1']);
  });

  test('Redis lost the key, the log has another request under it: key_reused, the key freed', async () => {
    const s = setup();
    await s.orders.storedFor('k1', OTHER_ORDER);
    assert.deepEqual(await s.placement.place(request()), { kind: 'key_reused' });
    assert.deepEqual(s.guard.calls, ['begin k1', 'abandon k1']);
  });
});

describe('refusals before the create', () => {
  test('participants down: refused naming them, nothing started, the key freed', async () => {
    const s = setup();
    s.up.payment = false;
    s.up.order = false;
    assert.deepEqual(await s.placement.place(request()), { kind: 'participants_down', down: ['order', 'payment'] });
    assert.equal(s.orders.starts, 0);
    assert.deepEqual(s.guard.calls, ['begin k1', 'abandon k1']);
  });

  test('a stored order outranks the refusal (Redis lost the key): replayed', async () => {
    const s = setup();
    const stored = await s.orders.storedFor('k1', ORDER);
    s.up.inventory = false;
    const placed = await s.placement.place(request());
    assert.equal(placed.kind, 'replayed');
    assert.equal(placed.kind === 'replayed' && placed.sagaId, stored.id);
  });

  test('stopping, and over the cap: refused, nothing stored', async () => {
    const s = setup();
    s.engine.stopping = true;
    assert.deepEqual(await s.placement.place(request()), { kind: 'stopping' });
    assert.equal(s.orders.starts, 0);

    const t = setup();
    t.engine.inFlight = 10;
    t.orders.startError = new EngineOverloadedError('full');
    assert.deepEqual(await t.placement.place(request()), { kind: 'overloaded', inFlight: 10 });
    assert.deepEqual(t.guard.calls, ['begin k1', 'abandon k1']);
  });

  test("the create's own failure (the saga log's) is thrown, not checked against the log, and the key freed", async () => {
    const s = setup();
    const failure = new Error('saga log unavailable');
    s.orders.startError = failure;
    await assert.rejects(s.placement.place(request()), (err) => err === failure);
    assert.equal(s.orders.keyReads, 0);
    assert.deepEqual(s.guard.calls, ['begin k1', 'abandon k1']);
  });

  describe('PRICING=catalog', () => {
    test('prices as the catalog states them: placed', async () => {
      const s = setup({ pricing: 'catalog' });
      assert.equal((await s.placement.place(request())).kind, 'created');
      assert.equal(s.reads.products, 1);
    });

    test('a price that differs: refused with OrderRefused price_mismatch and the current prices', async () => {
      const s = setup({ pricing: 'catalog' });
      s.catalog.set('p1', 600);
      const placed = await s.placement.place(request());
      assert.equal(placed.kind, 'refused');
      const error = placed.kind === 'refused' ? placed.error : undefined;
      assert.ok(error instanceof OrderRefused);
      assert.equal(error.code, 'price_mismatch');
      assert.deepEqual(error.fields, { prices: [{ product_id: 'p1', price: 6 }] });
      assert.equal(s.orders.starts, 0);
    });

    test("the catalog cannot be read: its error is thrown, unless the log holds the key's order", async () => {
      const s = setup({ pricing: 'catalog' });
      const failure = new Error('inventory unavailable');
      s.reads.productsError = failure;
      await assert.rejects(s.placement.place(request()), (err) => err === failure);
      assert.deepEqual(s.guard.calls, ['begin k1', 'abandon k1']);

      const t = setup({ pricing: 'catalog' });
      await t.orders.storedFor('k1', ORDER);
      t.reads.productsError = failure;
      assert.equal((await t.placement.place(request())).kind, 'replayed');
    });

    test('a repeated key answers its stored order even if the prices moved since', async () => {
      const s = setup({ pricing: 'catalog' });
      await s.orders.storedFor('k1', ORDER);
      s.guard.claim = { kind: 'in_flight' };
      s.catalog.set('p1', 600);
      assert.equal((await s.placement.place(request())).kind, 'replayed');
      assert.equal(s.reads.products, 0);
    });
  });
});

describe('waiting', () => {
  test("the wait goes through the handle's waitFor; a saga that ended is answered from the log", async () => {
    const s = setup();
    s.orders.waitFor = async (id, ms) => {
      s.orders.waits.push({ id, ms });
      return { ...(s.orders.sagas.get(id) as OrderSaga), status: 'COMPLETED' };
    };
    const placed = await s.placement.place(request({ wait: 3 }));
    assert.deepEqual(s.orders.waits, [{ id: 'ord_1', ms: 3_000 }]);
    assert.deepEqual(placed.kind === 'created' && placed.response, {
      id: 'ord_1',
      status: 'COMPLETED',
      orderRead: false,
    });
  });

  test('a wait that times out answers the saga as it stands, with the order service read', async () => {
    const s = setup();
    const placed = await s.placement.place(request({ wait: 1 }));
    assert.deepEqual(placed.kind === 'created' && placed.response, { id: 'ord_1', status: 'RUNNING', orderRead: true });
  });

  test('close aborts every wait (the engine answers it with the saga as it stands), without a participant read', async () => {
    const s = setup();
    let waiting!: () => void;
    const waitStarted = new Promise<void>((resolve) => (waiting = resolve));
    // As the engine's waitFor: never ends by itself here, but answers the saga when the signal aborts.
    s.orders.waitFor = (id, ms, signal) => {
      s.orders.waits.push({ id, ms });
      if (signal) s.orders.signals.push(signal);
      waiting();
      return new Promise((resolve) => {
        if (signal?.aborted) return resolve(s.orders.sagas.get(id));
        signal?.addEventListener('abort', () => resolve(s.orders.sagas.get(id)), { once: true });
      });
    };
    const pending = s.placement.place(request({ wait: 60 }));
    await waitStarted;
    assert.equal(s.orders.signals[0]?.aborted, false);
    s.placement.close();
    assert.equal(s.orders.signals[0]?.aborted, true);
    const placed = await pending;
    assert.deepEqual(placed.kind === 'created' && placed.response, {
      id: 'ord_1',
      status: 'RUNNING',
      orderRead: false,
    });

    const after = await s.placement.place(request({ key: 'k2', wait: 60 }));
    assert.equal(after.kind, 'created');
    assert.equal(s.orders.signals[1]?.aborted, true, 'a closed placement asks for no wait');
    assert.equal(s.reads.orders, 0);
  });
});
