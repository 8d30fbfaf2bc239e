/**
 * Placing an order, the use case behind `POST /orders`: the idempotency protocol (a key's claim,
 * its replay, its conflicts), the checks before the saga's create (participants up, catalog
 * prices, the gateway not stopping or full), the start, the wait for the saga's end when asked,
 * and the answer. Free of HTTP: it returns what happened as a value (Placement) that the route
 * maps to a status and a body; the errors of its dependencies (a participant's read, the saga
 * log) are thrown through.
 *
 * The saga log is the truth, the idempotency guard (Redis) only its cache: whatever the guard says
 * of a key, the answer comes from the log.
 */
import { setMaxListeners } from 'node:events';
import { EngineOverloadedError, type SagaEngine, type SagaHandle, type TypedSaga } from '../saga/index.js';
import { PARTICIPANTS, type ParticipantName } from '../contracts/participants.js';
import type { OrderRequest } from '../contracts/order.js';
import type { Order as ParticipantOrder } from '../gen/order/v1/order.js';
import { uuidv7 } from '../platform/ids.js';
import type { IdempotencyGuard } from '../platform/storage/idempotency.js';
import { fingerprint as requestFingerprint } from '../platform/storage/inbox.js';
import type { OrderRefused } from './order-refused.js';
import type { PlaceOrderInput, PlaceOrderResults } from './place-order.js';
import { comparePrices, priceMismatchError, type Pricing } from './pricing.js';

/** An order's saga, its input typed. */
export type OrderSaga = TypedSaga<PlaceOrderInput, PlaceOrderResults>;

/** The participants' reads the use case makes, each under its deadline; a failure is thrown. */
export interface PlacementReads {
  /** The order service's record, or undefined when it has none (yet). */
  order(id: string, requestId: string): Promise<ParticipantOrder | undefined>;
  /** The catalog of `productIds` (a product without a price has no priceCents). */
  products(
    requestId: string,
    productIds: string[],
  ): Promise<{ products: ReadonlyArray<{ productId: string; priceCents?: number | undefined }> }>;
}

export interface OrderPlacementDeps<R> {
  /** The place-order saga's handle: start, read, wait. */
  orders: Pick<SagaHandle<PlaceOrderInput, PlaceOrderResults>, 'start' | 'get' | 'getByIdempotencyKey' | 'waitFor'>;
  engine: Pick<SagaEngine, 'stopping' | 'inFlight'>;
  participants: { reachable(): Promise<Record<ParticipantName, boolean>> };
  reads: PlacementReads;
  /** The key's fast path; it keeps the answer `respond` built. */
  idempotency: IdempotencyGuard<R>;
  pricing: Pricing;
  /** Sagas this gateway drives at once; a start over it is refused (`overloaded`). */
  maxInFlight: number;
  /** The answer to an order: its saga, and the order service's record when it was read. */
  respond(saga: OrderSaga, order: ParticipantOrder | undefined): R;
  /** The clock the order's created_at is read from (Date.now). */
  now?: () => number;
  /** A new order id (a UUIDv7). */
  newId?: () => string;
}

/** One request to place an order. */
export interface PlaceOrderRequest {
  order: OrderRequest;
  /** The client's X-Idempotency-Key, if any. */
  key: string | undefined;
  /** Seconds to wait for the saga to end before answering; undefined: answer at once. */
  wait: number | undefined;
  requestId: string;
}

/** Why nothing was placed: each is the answer, and nothing was stored. */
export type PlacementRefusal =
  /** The key was used with a different request. */
  | { kind: 'key_reused' }
  /** The first request with this key holds it and its saga is not durable yet. */
  | { kind: 'in_flight' }
  | { kind: 'participants_down'; down: ParticipantName[] }
  /** The order's own rules refuse it (with PRICING=catalog: prices that differ from the catalog). */
  | { kind: 'refused'; error: OrderRefused }
  | { kind: 'stopping' }
  /** This gateway drives `inFlight` sagas already. */
  | { kind: 'overloaded'; inFlight: number };

export type Placement<R> =
  | { kind: 'created'; sagaId: string; response: R }
  /** The key's saga, answered again (the same order id); no second saga was started. */
  | { kind: 'replayed'; sagaId: string; response: R }
  | PlacementRefusal;

export interface OrderPlacement<R> {
  place(req: PlaceOrderRequest): Promise<Placement<R>>;
  /** Answers every waiter at once with its order as it stands (the gateway is stopping). */
  close(): void;
}

/** What a request's fingerprint is made with: stored in every saga's input, so it never changes. */
const FINGERPRINT_SCOPE = 'POST /orders';

type Started = { saga: OrderSaga; replayed: boolean };

export function orderPlacement<R>(deps: OrderPlacementDeps<R>): OrderPlacement<R> {
  const { orders, engine, idempotency, reads } = deps;
  const now = deps.now ?? Date.now;
  const newId = deps.newId ?? uuidv7;

  // Closing answers every waiter with the order as it stands, so a stop ends within its grace
  // period and the engine can give its leases back: the engine's one waiting mechanism, told by
  // a signal. Every waiter listens to it while it waits (and only then): no cap on listeners.
  const closing = new AbortController();
  setMaxListeners(0, closing.signal);

  /** The saga once it ends, or after `seconds`, or as it stands when the gateway stops. */
  const waitForEnd = async (saga: OrderSaga, seconds: number): Promise<{ saga: OrderSaga; stopping: boolean }> => {
    const ended = await orders.waitFor(saga.id, seconds * 1000, closing.signal);
    return { saga: ended ?? saga, stopping: closing.signal.aborted };
  };

  /** The answer: the order as it stands (after waiting, when asked to). */
  const answer = async (saga: OrderSaga, replayed: boolean, req: PlaceOrderRequest): Promise<R> => {
    let stopping = false;
    if (req.wait !== undefined) ({ saga, stopping } = await waitForEnd(saga, req.wait));
    // A completed or compensated saga already says what the order is; anything else is read
    // (except by a gateway that is stopping: it answers from its log, at once).
    const settled = saga.status === 'COMPLETED' || saga.status === 'COMPENSATED';
    const order =
      (req.wait !== undefined || replayed) && !settled && !stopping
        ? await reads.order(saga.id, req.requestId)
        : undefined;
    return deps.respond(saga, order);
  };

  /**
   * PRICING=catalog: every line at its product's current catalog price. Only for a new order: a
   * repeated key answers its stored order even if the prices have changed since.
   */
  const catalogRefusal = async (req: PlaceOrderRequest): Promise<PlacementRefusal | undefined> => {
    const ids = [...new Set(req.order.items.map((l) => l.product_id))];
    const { products } = await reads.products(req.requestId, ids);
    const catalog = new Map(
      products.flatMap((x) => (x.priceCents === undefined ? [] : [[x.productId, x.priceCents] as const])),
    );
    const mismatch = comparePrices(req.order.items, catalog);
    return mismatch ? { kind: 'refused', error: priceMismatchError(mismatch) } : undefined;
  };

  /** Why the order cannot be started now, if it cannot; a participant's read that fails is thrown. */
  const refusalBeforeCreate = async (req: PlaceOrderRequest): Promise<PlacementRefusal | undefined> => {
    const reach = await deps.participants.reachable();
    const down = PARTICIPANTS.filter((n) => !reach[n]);
    if (down.length > 0) return { kind: 'participants_down', down };
    if (deps.pricing === 'catalog') {
      const refusal = await catalogRefusal(req);
      if (refusal) return refusal;
    }
    if (engine.stopping) return { kind: 'stopping' };
    return undefined;
  };

  /** Creates the saga (or finds its key taken); refused over this gateway's cap, the log's errors thrown. */
  const create = async (req: PlaceOrderRequest, fingerprint: string): Promise<Started | PlacementRefusal> => {
    const input: PlaceOrderInput = {
      order_id: newId(),
      customer_id: req.order.customer_id,
      items: req.order.items,
      total_cents: req.order.total_cents,
      created_at_ms: now(),
      fingerprint,
      request_id: req.requestId,
    };
    try {
      const started = await orders.start({
        id: input.order_id,
        input,
        idempotencyKey: req.key,
        maxInFlight: deps.maxInFlight,
      });
      return { saga: started.saga, replayed: !started.created };
    } catch (err) {
      if (!(err instanceof EngineOverloadedError)) throw err;
      return { kind: 'overloaded', inFlight: engine.inFlight };
    }
  };

  /** The saga this key already has in the log, if any. */
  const heldBy = async (key: string | undefined): Promise<Started | undefined> => {
    const saga = key === undefined ? undefined : await orders.getByIdempotencyKey(key);
    return saga ? { saga, replayed: true } : undefined;
  };

  /**
   * Starts the saga, unless the durable log already has one for this key (Redis lost it). The log
   * is not read first: the saga's create finds the key taken and answers with its holder, and a
   * refusal before the create (participants down, prices moved, a participant's read failed,
   * stopping, overloaded) is checked against the log before it is given, so a stored order is
   * replayed whatever the refusal. An error of the create itself (the saga log's) is thrown as is.
   */
  const startOrFind = async (req: PlaceOrderRequest, fingerprint: string): Promise<Started | PlacementRefusal> => {
    let refusal: PlacementRefusal | undefined;
    try {
      refusal = await refusalBeforeCreate(req);
    } catch (err) {
      const held = await heldBy(req.key);
      if (held) return held;
      throw err;
    }
    const outcome = refusal ?? (await create(req, fingerprint));
    if ('saga' in outcome) return outcome;
    return (await heldBy(req.key)) ?? outcome;
  };

  const placed = (saga: OrderSaga, replayed: boolean, response: R): Placement<R> =>
    replayed ? { kind: 'replayed', sagaId: saga.id, response } : { kind: 'created', sagaId: saga.id, response };

  return {
    close() {
      closing.abort();
    },

    async place(req) {
      const fingerprint = requestFingerprint(FINGERPRINT_SCOPE, req.order);
      const { key } = req;
      if (key === undefined) {
        const outcome = await startOrFind(req, fingerprint);
        if (!('saga' in outcome)) return outcome;
        return placed(outcome.saga, false, await answer(outcome.saga, false, req));
      }

      const claim = await idempotency.begin(key, fingerprint);
      if (claim.kind !== 'acquired') {
        // Redis is a cache of what the saga log holds, never the truth: whatever it says (a replay,
        // another request's fingerprint, a request in flight), the answer comes from the log.
        const saga = await orders.getByIdempotencyKey(key);
        if (saga) {
          if (saga.input.fingerprint !== fingerprint) return { kind: 'key_reused' };
          return placed(saga, true, await answer(saga, true, req));
        }
        // A finished answer the log does not back: forged, or from another deployment. Ignored.
        if (claim.kind === 'replay') idempotency.untrusted(key, 'unbacked');
        // The first request still holds the key and its saga is not durable yet: come back.
        else return { kind: 'in_flight' };
      }
      let outcome: Started | PlacementRefusal;
      try {
        outcome = await startOrFind(req, fingerprint);
        if ('saga' in outcome && (!outcome.replayed || outcome.saga.input.fingerprint === fingerprint)) {
          const response = await answer(outcome.saga, outcome.replayed, req);
          // Not awaited: every later request with this key is answered from the log, whatever Redis
          // holds (above), so the answer need not wait a round trip for the cache. A write that is
          // lost leaves the claim in flight until it expires, and a retry meanwhile reads the log.
          idempotency.complete(key, fingerprint, response).catch(() => undefined);
          return placed(outcome.saga, outcome.replayed, response);
        }
      } catch (err) {
        // Nothing durable was promised under this key that the log does not hold: free it for a retry.
        await idempotency.abandon(key);
        throw err;
      }
      await idempotency.abandon(key);
      return 'saga' in outcome ? { kind: 'key_reused' } : outcome;
    },
  };
}
