import { noteOnRequestLine } from './request-log.js';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { isOrderId } from '../../contracts/ids.js';
import type { OrderRequest } from '../../contracts/order.js';
import { ENGINE_FAILURE_CODES } from '../../saga/index.js';
import { PLACE_ORDER_FAILURE_CODES } from '../place-order.js';
import { preferWaitSeconds, toOrderRequest } from '../order-request.js';
import { centsToDollars } from '../money.js';
import { orderPlacement, type PlacementRefusal } from '../order-placement.js';
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
import { PAYMENT_STATUS, orderView, productsView, prunedOrderView } from './views.js';
import { readPublicTimeline } from './sagas.js';

export type OrdersDeps = Pick<
  GatewayOptions,
  'engine' | 'placeOrder' | 'participants' | 'idempotency' | 'onReplay' | 'maxWaitSeconds' | 'readTimeoutMs' | 'pricing'
> & { limits: Pick<HttpLimits, 'maxWaiters' | 'maxInFlight'> };

/** The failure codes an order's public timeline may show. */
const PUBLIC_CODES: ReadonlySet<string> = new Set([...PLACE_ORDER_FAILURE_CODES, ...ENGINE_FAILURE_CODES]);

/** The header that says a `Prefer: wait` was not honoured, and why (RFC 7240 lets a server ignore it). */
export const WAIT_NOT_APPLIED = 'wait-not-applied';

/** The public API: place an order, read it and its saga, and the catalogue's stock. */
export const ordersRoutes: FastifyPluginAsyncTypebox<OrdersDeps> = async (app, deps) => {
  const { engine, placeOrder: orderSagas, participants: p, idempotency } = deps;
  const maxWait = deps.maxWaitSeconds ?? DEFAULT_MAX_WAIT_SECONDS;
  const reads = participantReads(p, deps.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS);
  const placement = orderPlacement<StoredResponse>({
    orders: orderSagas,
    engine,
    participants: p,
    reads,
    idempotency,
    pricing: deps.pricing ?? 'client',
    maxInFlight: deps.limits.maxInFlight,
    respond: (saga, order) => ({ status: 201, body: orderView(saga.input, saga, order) }),
  });
  let waiting = 0;
  app.addHook('preClose', (done) => {
    placement.close();
    done();
  });

  /** Places the order and answers: 201 with the order (replayed or not), or the refusal's error. */
  const placeAndAnswer = async (
    req: FastifyRequest,
    reply: FastifyReply,
    order: OrderRequest,
    key: string | undefined,
    wait: number | undefined,
  ): Promise<FastifyReply> => {
    const placed = await placement.place({ order, key, wait, requestId: req.id });
    if (placed.kind !== 'created' && placed.kind !== 'replayed') throw refusalError(placed);
    const replayed = placed.kind === 'replayed';
    noteOnRequestLine(req, { order_id: placed.sagaId, saga_id: placed.sagaId, replayed });
    if (replayed) {
      reply.header('idempotent-replayed', 'true');
      deps.onReplay?.();
    }
    return reply.code(placed.response.status).send(placed.response.body);
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
      let wait = preferWaitSeconds(req.headers.prefer, maxWait);
      if (wait !== undefined && waiting >= deps.limits.maxWaiters) {
        // Too many already wait: answer at once (PENDING) rather than hold one more connection.
        wait = undefined;
        reply.header(WAIT_NOT_APPLIED, 'too-many-waiters');
      }
      if (wait === undefined) return placeAndAnswer(req, reply, order, key, undefined);
      // The waiter's slot is taken now, before the first await, and held until the answer.
      waiting++;
      reply.header('preference-applied', `wait=${wait}`);
      try {
        return await placeAndAnswer(req, reply, order, key, wait);
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
      const saga = isOrderId(id) ? await orderSagas.get(id) : undefined;
      if (!saga && isOrderId(id)) {
        // A saga pruned by retention leaves its order at the order service: that record answers.
        const [order, payment] = await Promise.all([reads.order(id, req.id), reads.payment(id, req.id)]);
        if (!order) throw new HttpError('order_not_found', `order ${id} not found`);
        return {
          ...prunedOrderView(order),
          payment: { status: PAYMENT_STATUS[payment.status], amount: centsToDollars(payment.amountCents) },
        };
      }
      if (!saga) throw new HttpError('order_not_found', `order ${id} not found`);
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
    async (req) => readPublicTimeline(engine, req.params.id, PUBLIC_CODES, req.query),
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

/** What a refused placement answers (nothing was stored). */
function refusalError(r: PlacementRefusal): Error {
  switch (r.kind) {
    case 'key_reused':
      return new HttpError('idempotency_key_reused', 'this X-Idempotency-Key was used with a different request');
    case 'in_flight':
      return new HttpError(
        'idempotency_in_flight',
        'a request with this X-Idempotency-Key is still in progress; retry shortly',
      );
    case 'participants_down':
      return new HttpError('participant_unavailable', `unavailable: ${r.down.join(', ')} service; nothing was stored`);
    case 'refused':
      return r.error;
    case 'stopping':
      return new HttpError('shutting_down', 'the gateway is shutting down; retry');
    case 'overloaded':
      return new HttpError(
        'overloaded',
        `this gateway drives ${r.inFlight} sagas already; nothing was stored, retry shortly`,
      );
  }
}
