import { uuidv7 } from '../../platform/ids.js';
import { noteOnRequestLine } from './request-log.js';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { fingerprint as requestFingerprint } from '../../platform/storage/inbox.js';
import { isOrderId } from '../../contracts/ids.js';
import type { OrderRequest } from '../../contracts/order.js';
import { ENGINE_FAILURE_CODES, EngineOverloadedError, type TypedSaga } from '../../saga/index.js';
import { PARTICIPANTS } from '../participants.js';
import { PLACE_ORDER_FAILURE_CODES, type PlaceOrderInput } from '../place-order.js';
import { preferWaitSeconds, toOrderRequest } from '../order-request.js';
import { centsToDollars } from '../money.js';
import { comparePrices, priceMismatchError } from '../pricing.js';
import {
  DEFAULT_MAX_WAIT_SECONDS,
  DEFAULT_READ_TIMEOUT_MS,
  type GatewayOptions,
  type HttpLimits,
  type StoredResponse,
} from './deps.js';
import { HttpError } from './errors.js';
import { participantReads } from './participant-reads.js';
import {
  errorResponses,
  IdParams,
  OrderBody,
  OrderHeaders,
  OrderView,
  OrderWithPayment,
  Products,
  PublicSagaTimeline,
  TimelineQuery,
} from './schemas.js';
import { PAYMENT_STATUS, orderView, productsView } from './views.js';
import { readPublicTimeline } from './sagas.js';
import { OrderRefused } from '../order-refused.js';

export type OrdersDeps = Pick<
  GatewayOptions,
  | 'engine'
  | 'placeOrder'
  | 'store'
  | 'participants'
  | 'idempotency'
  | 'onReplay'
  | 'maxWaitSeconds'
  | 'readTimeoutMs'
  | 'pricing'
> & { limits: Pick<HttpLimits, 'maxWaiters' | 'maxInFlight'> };

/** An order's saga, its input typed. */
type Order = TypedSaga<PlaceOrderInput>;

/** The failure codes an order's public timeline may show. */
const PUBLIC_CODES: ReadonlySet<string> = new Set([...PLACE_ORDER_FAILURE_CODES, ...ENGINE_FAILURE_CODES]);

/** The header that says a `Prefer: wait` was not honoured, and why (RFC 7240 lets a server ignore it). */
export const WAIT_NOT_APPLIED = 'wait-not-applied';

/** The public API: place an order, read it and its saga, and the catalogue's stock. */
export const ordersRoutes: FastifyPluginAsyncTypebox<OrdersDeps> = async (app, deps) => {
  const { engine, placeOrder: orderSagas, store, participants: p, idempotency } = deps;
  const maxWait = deps.maxWaitSeconds ?? DEFAULT_MAX_WAIT_SECONDS;
  const reads = participantReads(p, deps.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS);
  let waiting = 0;
  // Closing answers every waiter with the order as it stands, so a stop ends within its grace
  // period and the engine can give its leases back. Each waiter is held here only while it waits
  // (racing every request against one promise living until shutdown left a reaction per request
  // on it, with its result and async context, until then).
  let closed = false;
  const waiters = new Set<() => void>();
  app.addHook('preClose', (done) => {
    closed = true;
    for (const stop of waiters) stop();
    done();
  });

  /** The saga once it ends, or after `seconds`, or as it stands when the gateway stops. */
  const waitForEnd = async (saga: Order, seconds: number): Promise<{ saga: Order; stopping: boolean }> => {
    let stop: (() => void) | undefined;
    try {
      const ended = closed
        ? 'closed'
        : await new Promise<Order | undefined | 'closed'>((resolve, reject) => {
            stop = () => resolve('closed');
            waiters.add(stop);
            orderSagas.waitFor(saga.id, seconds * 1000).then(resolve, reject);
          });
      if (ended === 'closed') return { saga: (await orderSagas.get(saga.id)) ?? saga, stopping: true };
      return { saga: ended ?? saga, stopping: false };
    } finally {
      if (stop) waiters.delete(stop);
    }
  };

  const sagaOrThrow = async (id: string): Promise<Order> => {
    const saga = isOrderId(id) ? await orderSagas.get(id) : undefined;
    if (!saga) throw new HttpError('order_not_found', `order ${id} not found`);
    return saga;
  };

  /** What a POST answers: the order as it stands (after waiting, when asked to). */
  const answer = async (
    saga: Order,
    replayed: boolean,
    wait: number | undefined,
    requestId: string,
  ): Promise<StoredResponse> => {
    let stopping = false;
    if (wait !== undefined) ({ saga, stopping } = await waitForEnd(saga, wait));
    // A completed or compensated saga already says what the order is; anything else is read
    // (except by a gateway that is stopping: it answers from its log, at once).
    const settled = saga.status === 'COMPLETED' || saga.status === 'COMPENSATED';
    const order =
      (wait !== undefined || replayed) && !settled && !stopping ? await reads.order(saga.id, requestId) : undefined;
    return { status: 201, body: orderView(saga.input, saga, order) };
  };

  /**
   * PRICING=catalog: every line at its product's current catalog price, or 409 price_mismatch
   * with the current prices. Only for a new order: a repeated key answers its stored order even if
   * the prices have changed since.
   */
  const checkCatalogPrices = async (req: FastifyRequest, order: OrderRequest) => {
    const ids = [...new Set(order.items.map((l) => l.product_id))];
    const { products } = await reads.products(req.id, ids);
    const catalog = new Map(
      products.flatMap((x) => (x.priceCents === undefined ? [] : [[x.productId, x.priceCents] as const])),
    );
    const mismatch = comparePrices(order.items, catalog);
    if (mismatch) throw priceMismatchError(mismatch);
  };

  /**
   * Starts the saga, unless the durable log already has one for this key (Redis lost it). The log
   * is not read first: the saga's create finds the key taken and answers with its holder, and a
   * refusal before the create (participants down, prices moved, stopping, overloaded) is checked
   * against the log before it is given, so a stored order is replayed whatever the refusal.
   */
  const placeOrder = async (req: FastifyRequest, order: OrderRequest, fingerprint: string, key: string | undefined) => {
    try {
      return await startOrder(req, order, fingerprint, key);
    } catch (err) {
      const existing =
        key !== undefined && (err instanceof HttpError || err instanceof OrderRefused)
          ? await orderSagas.getByIdempotencyKey(key)
          : undefined;
      if (existing) return { saga: existing, replayed: true };
      throw err;
    }
  };

  const startOrder = async (req: FastifyRequest, order: OrderRequest, fingerprint: string, key: string | undefined) => {
    const reach = await p.reachable();
    const down = PARTICIPANTS.filter((n) => !reach[n]);
    if (down.length > 0)
      throw new HttpError('participant_unavailable', `unavailable: ${down.join(', ')} service; nothing was stored`);
    if (deps.pricing === 'catalog') await checkCatalogPrices(req, order);
    const input: PlaceOrderInput = {
      order_id: uuidv7(),
      customer_id: order.customer_id,
      items: order.items,
      total_cents: order.total_cents,
      created_at_ms: Date.now(),
      fingerprint,
      request_id: req.id,
    };
    if (engine.stopping) throw new HttpError('shutting_down', 'the gateway is shutting down; retry');
    try {
      const started = await orderSagas.start({
        id: input.order_id,
        input,
        idempotencyKey: key,
        maxInFlight: deps.limits.maxInFlight,
      });
      return { saga: started.saga, replayed: !started.created };
    } catch (err) {
      if (!(err instanceof EngineOverloadedError)) throw err;
      throw new HttpError(
        'overloaded',
        `this gateway drives ${engine.inFlight} sagas already; nothing was stored, retry shortly`,
      );
    }
  };

  const checkFingerprint = (saga: Order, fingerprint: string) => {
    if (saga.input.fingerprint !== fingerprint) {
      throw new HttpError('idempotency_key_reused', 'this X-Idempotency-Key was used with a different request');
    }
  };

  /** Starts (or finds, by its key) the order's saga and answers with it, replayed or not. */
  const placeAndAnswer = async (
    req: FastifyRequest,
    reply: FastifyReply,
    order: OrderRequest,
    fingerprint: string,
    key: string | undefined,
    wait: number | undefined,
  ): Promise<FastifyReply> => {
    const send = (res: StoredResponse, replayed: boolean, sagaId: string): FastifyReply => {
      noteOnRequestLine(req, { order_id: sagaId, saga_id: sagaId, replayed });
      if (replayed) {
        reply.header('idempotent-replayed', 'true');
        deps.onReplay?.();
      }
      return reply.code(res.status).send(res.body);
    };

    if (key === undefined) {
      const { saga } = await placeOrder(req, order, fingerprint, undefined);
      return send(await answer(saga, false, wait, req.id), false, saga.id);
    }

    const claim = await idempotency.begin(key, fingerprint);
    if (claim.kind !== 'acquired') {
      // Redis is a cache of what the saga log holds, never the truth: whatever it says (a replay,
      // another request's fingerprint, a request in flight), the answer comes from the log.
      const saga = await orderSagas.getByIdempotencyKey(key);
      if (saga) {
        checkFingerprint(saga, fingerprint);
        return send(await answer(saga, true, wait, req.id), true, saga.id);
      }
      if (claim.kind === 'replay') {
        // A finished answer the log does not back: forged, or from another deployment. Ignored.
        idempotency.untrusted(key, 'unbacked');
      } else {
        // The first request still holds the key and its saga is not durable yet: come back.
        throw new HttpError(
          'idempotency_in_flight',
          'a request with this X-Idempotency-Key is still in progress; retry shortly',
        );
      }
    }
    try {
      const { saga, replayed } = await placeOrder(req, order, fingerprint, key);
      if (replayed) checkFingerprint(saga, fingerprint);
      const res = await answer(saga, replayed, wait, req.id);
      await idempotency.complete(key, fingerprint, res);
      return send(res, replayed, saga.id);
    } catch (err) {
      // Nothing durable was promised under this key that the log does not hold: free it for a retry.
      await idempotency.abandon(key);
      throw err;
    }
  };

  app.post(
    '/orders',
    {
      schema: {
        operationId: 'placeOrder',
        summary: 'Place an order',
        description:
          'Starts the place-order saga and answers 201 with the order (PENDING unless `Prefer: wait=N` let it finish).',
        tags: ['orders'],
        headers: OrderHeaders,
        body: OrderBody,
        response: { 201: OrderView, ...errorResponses },
      },
    },
    async (req, reply) => {
      const key = req.headers['x-idempotency-key'];
      const order = toOrderRequest(req.body);
      const fingerprint = requestFingerprint('POST /orders', order);
      let wait = preferWaitSeconds(req.headers.prefer, maxWait);
      if (wait !== undefined && waiting >= deps.limits.maxWaiters) {
        // Too many already wait: answer at once (PENDING) rather than hold one more connection.
        wait = undefined;
        reply.header(WAIT_NOT_APPLIED, 'too-many-waiters');
      }
      if (wait === undefined) return placeAndAnswer(req, reply, order, fingerprint, key, undefined);
      // The waiter's slot is taken now, before the first await, and held until the answer.
      waiting++;
      reply.header('preference-applied', `wait=${wait}`);
      try {
        return await placeAndAnswer(req, reply, order, fingerprint, key, wait);
      } finally {
        waiting--;
      }
    },
  );

  app.get(
    '/orders/:id',
    {
      schema: {
        operationId: 'getOrder',
        summary: 'Read an order',
        description: 'The order, its payment and its saga status. A participant that is down is 503, never 404.',
        tags: ['orders'],
        params: IdParams,
        response: { 200: OrderWithPayment, ...errorResponses },
      },
    },
    async (req) => {
      const { id } = req.params;
      const saga = await sagaOrThrow(id);
      const [order, payment] = await Promise.all([reads.order(id, req.id), reads.payment(id, req.id)]);
      return {
        ...orderView(saga.input, saga, order),
        payment: { status: PAYMENT_STATUS[payment.status], amount: centsToDollars(payment.amountCents) },
      };
    },
  );

  app.get(
    '/orders/:id/saga',
    {
      schema: {
        operationId: 'getOrderSaga',
        summary: "An order's saga timeline",
        description:
          "Every event of the order's saga with its type, step, time, attempt and, for a failure, a code. The inputs, error text, operators' notes and trace context are on the admin API (GET /api/sagas/{id}).",
        tags: ['orders'],
        params: IdParams,
        querystring: TimelineQuery,
        response: { 200: PublicSagaTimeline, ...errorResponses },
      },
    },
    async (req) => readPublicTimeline(engine, store, req.params.id, PUBLIC_CODES, req.query),
  );

  app.get(
    '/products',
    {
      schema: {
        operationId: 'listProducts',
        summary: 'Stock of every product',
        tags: ['orders'],
        response: { 200: Products, ...errorResponses },
      },
    },
    async (req) => {
      return productsView(await reads.products(req.id));
    },
  );
};
