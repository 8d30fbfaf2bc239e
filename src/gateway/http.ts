import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type RawServerDefault } from 'fastify';
import { context, propagation, trace, ROOT_CONTEXT, SpanKind, SpanStatusCode, type Context, type Meter, type Span } from '@opentelemetry/api';
import type { Logger } from '../platform/logger.js';
import { callRpc, isServiceError, isUnavailable } from '../platform/grpc.js';
import { status as grpcStatus } from '@grpc/grpc-js';
import type { SagaEngine } from '../saga/engine.js';
import { SAGA_STATUSES, SagaLogError, type SagaLog, type SagaRecord, type SagaStatus } from '../saga/model.js';
import { OrderStatus, type Order } from '../gen/order/v1/order.js';
import { PaymentStatus } from '../gen/payment/v1/payment.js';
import { centsToDollars } from './money.js';
import { isValidHeaderKey, parseOrderRequest, preferWaitSeconds, type ApiError, type OrderRequest } from './order-request.js';
import type { IdempotencyGuard } from '../platform/idempotency.js';
import { fingerprint as requestFingerprint } from '../platform/inbox.js';
import { PARTICIPANTS, type Participants } from './participants.js';
import { PLACE_ORDER, type PlaceOrderInput } from './place-order.js';

/** A POST's answer as replayed for a repeated idempotency key. */
export interface StoredResponse {
  status: number;
  body: ReturnType<typeof orderView>;
}

export interface GatewayOptions {
  engine: SagaEngine;
  /** Where HTTP metrics go and what /metrics serves. */
  meter: Meter;
  serveMetrics?: (req: IncomingMessage, res: ServerResponse) => void;
  idempotency: IdempotencyGuard<StoredResponse>;
  /** Which store the idempotency fast path is on, for /readyz. */
  fastPathMode?: () => 'redis' | 'memory';
  onReplay?: () => void;
  store: SagaLog;
  participants: Participants;
  logger: Logger;
  /** Cap on `Prefer: wait=N`. */
  maxWaitSeconds?: number;
  /** Deadline of the reads a GET makes to participants. */
  readTimeoutMs?: number;
  bodyLimitBytes?: number;
}

class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

const ORDER_STATUS: Record<OrderStatus, string> = {
  [OrderStatus.ORDER_STATUS_UNSPECIFIED]: 'PENDING',
  [OrderStatus.ORDER_STATUS_PENDING]: 'PENDING',
  [OrderStatus.ORDER_STATUS_CONFIRMED]: 'CONFIRMED',
  [OrderStatus.ORDER_STATUS_CANCELLED]: 'CANCELLED',
  [OrderStatus.UNRECOGNIZED]: 'PENDING',
};

const PAYMENT_STATUS: Record<PaymentStatus, string> = {
  [PaymentStatus.PAYMENT_STATUS_UNSPECIFIED]: 'none',
  [PaymentStatus.PAYMENT_STATUS_NONE]: 'none',
  [PaymentStatus.PAYMENT_STATUS_CHARGED]: 'charged',
  [PaymentStatus.PAYMENT_STATUS_REFUNDED]: 'refunded',
  [PaymentStatus.PAYMENT_STATUS_DECLINED]: 'declined',
  [PaymentStatus.UNRECOGNIZED]: 'none',
};

const ORDER_ID = /^[A-Za-z0-9_.:-]{1,64}$/;

const iso = (ms: number) => new Date(ms).toISOString();

/** Rejects after `ms`: a probe must answer even when a store hangs. */
function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)));
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

function sendError(reply: FastifyReply, e: ApiError | HttpError): FastifyReply {
  const code = e instanceof HttpError ? e.code : e.error;
  return reply.code(e.status).send({ error: code, message: e.message });
}

/** A participant we could not reach is 503, never 404. */
function participantError(err: unknown, participant: string): HttpError {
  if (isUnavailable(err)) return new HttpError(503, 'participant_unavailable', `the ${participant} service is unavailable`);
  return new HttpError(502, 'participant_error', `the ${participant} service failed: ${err instanceof Error ? err.message : String(err)}`);
}

/**
 * The order as the API shows it. Without the order service's record (not created yet, or not
 * read because the saga's end already says it) the saga decides: an order is CONFIRMED iff its
 * saga completed and CANCELLED iff it compensated.
 */
function orderView(input: PlaceOrderInput, saga: SagaRecord, order: Order | undefined) {
  const derived = saga.status === 'COMPLETED' ? 'CONFIRMED' : saga.status === 'COMPENSATED' ? 'CANCELLED' : 'PENDING';
  const status = order ? ORDER_STATUS[order.status] : derived;
  const reason = order ? order.reason : saga.status === 'COMPENSATED' ? saga.failure?.code : undefined;
  const updatedAt = order?.updatedAtMs || (derived === 'PENDING' ? input.created_at_ms : saga.updatedAt);
  return {
    id: input.order_id,
    customer_id: input.customer_id,
    status,
    ...(reason ? { reason } : {}),
    total: centsToDollars(input.total_cents),
    items: input.items.map((i) => ({ product_id: i.product_id, quantity: i.quantity, price: centsToDollars(i.unit_price_cents) })),
    created_at: iso(order?.createdAtMs || input.created_at_ms),
    updated_at: iso(updatedAt),
    saga_status: saga.status,
  };
}

function sagaSummary(s: SagaRecord) {
  return {
    id: s.id,
    status: s.status,
    definition: s.definition,
    version: s.version,
    step_index: s.stepIndex,
    attempt: s.attempt,
    failure: s.failure,
    created_at: iso(s.createdAt),
    updated_at: iso(s.updatedAt),
  };
}

const httpTracer = trace.getTracer('ecommerce-sagas/http');

/**
 * A SERVER span per request, named after its route (`POST /orders`) and continuing the caller's
 * W3C trace, made the active context of the route's handler; and the request-duration histogram.
 */
function instrumentHttp(app: FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, Logger>, meter: Meter): void {
  const duration = meter.createHistogram('http.server.request.duration', {
    unit: 's',
    description: 'Duration of HTTP requests served',
    advice: { explicitBucketBoundaries: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] },
  });
  const live = new WeakMap<FastifyRequest, { span: Span; ctx: Context; started: number }>();
  // The body is read on stream events outside any context, so the handler itself is wrapped.
  app.addHook('onRoute', (route) => {
    const handler = route.handler;
    route.handler = function (req, reply) {
      const t = live.get(req);
      return t ? context.with(t.ctx, () => handler.call(this, req, reply)) : handler.call(this, req, reply);
    };
  });
  app.addHook('onRequest', (req, reply, done) => {
    reply.header('x-request-id', req.id);
    const route = req.routeOptions.url;
    const parent = propagation.extract(ROOT_CONTEXT, req.headers);
    const span = httpTracer.startSpan(
      route ? `${req.method} ${route}` : req.method,
      { kind: SpanKind.SERVER, attributes: { 'http.request.method': req.method, 'url.path': req.url.split('?')[0], 'http.route': route ?? '', 'http.request.id': req.id } },
      parent,
    );
    const ctx = trace.setSpan(parent, span);
    live.set(req, { span, ctx, started: performance.now() });
    context.with(ctx, done);
  });
  app.addHook('onResponse', (req, reply, done) => {
    const t = live.get(req);
    if (t) {
      t.span.setAttribute('http.response.status_code', reply.statusCode);
      if (reply.statusCode >= 500) t.span.setStatus({ code: SpanStatusCode.ERROR });
      t.span.end();
      duration.record((performance.now() - t.started) / 1000, {
        'http.request.method': req.method,
        'http.route': req.routeOptions.url ?? 'unmatched',
        'http.response.status_code': reply.statusCode,
      });
    }
    done();
  });
}

export async function buildGateway(opts: GatewayOptions) {
  const { engine, store, participants: p, idempotency } = opts;
  const maxWait = opts.maxWaitSeconds ?? 60;
  const readTimeoutMs = opts.readTimeoutMs ?? 2_000;
  const app = Fastify({
    loggerInstance: opts.logger,
    bodyLimit: opts.bodyLimitBytes ?? 64 * 1024,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && given.length <= 128 && isValidHeaderKey(given) ? given : randomUUID();
    },
  });

  instrumentHttp(app, opts.meter);
  // The API speaks JSON only: anything else is 415, not a string handed to the validator.
  app.removeContentTypeParser('text/plain');

  app.setNotFoundHandler((req, reply) => sendError(reply, new HttpError(404, 'not_found', `no route for ${req.method} ${req.url}`)));
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    if (err instanceof HttpError) return sendError(reply, err);
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return sendError(reply, new HttpError(413, 'body_too_large', err.message));
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return sendError(reply, new HttpError(415, 'unsupported_media_type', 'send the body as application/json'));
    if (err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || err instanceof SyntaxError || err.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
      return sendError(reply, new HttpError(400, 'invalid_json', err.message));
    }
    if (err instanceof SagaLogError) {
      if (err.code === 'invalid_cursor') return sendError(reply, new HttpError(400, 'invalid_cursor', err.message));
      if (err.code === 'saga_log_unavailable') {
        req.log.error({ err }, 'saga log unavailable');
        reply.header('retry-after', '1');
        return sendError(reply, new HttpError(503, 'saga_log_unavailable', 'the saga log is unavailable; retry shortly'));
      }
    }
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) return sendError(reply, new HttpError(err.statusCode, 'invalid_request', err.message));
    req.log.error({ err }, 'unhandled error');
    return sendError(reply, new HttpError(500, 'internal_error', 'internal error'));
  });

  const sagaOrThrow = async (id: string): Promise<SagaRecord> => {
    const saga = ORDER_ID.test(id) ? await store.get(id) : undefined;
    if (!saga || saga.definition !== PLACE_ORDER) throw new HttpError(404, 'order_not_found', `order ${id} not found`);
    return saga;
  };

  const readOrder = async (id: string, requestId: string): Promise<Order | undefined> => {
    try {
      const res = await callRpc(p.order, 'getOrder', { orderId: id }, { timeoutMs: readTimeoutMs, requestId });
      return res.order;
    } catch (err) {
      if (isServiceError(err) && err.code === grpcStatus.NOT_FOUND) return undefined;
      throw participantError(err, 'order');
    }
  };

  /** What a POST answers: the order as it stands (after waiting, when asked to). */
  const answer = async (saga: SagaRecord, replayed: boolean, wait: number | undefined, requestId: string): Promise<StoredResponse> => {
    if (wait !== undefined) saga = (await engine.waitFor(saga.id, wait * 1000)) ?? saga;
    // A completed or compensated saga already says what the order is; anything else is read.
    const settled = saga.status === 'COMPLETED' || saga.status === 'COMPENSATED';
    const order = (wait !== undefined || replayed) && !settled ? await readOrder(saga.id, requestId) : undefined;
    return { status: 201, body: orderView(saga.input as PlaceOrderInput, saga, order) };
  };

  /** Starts the saga, unless the durable log already has one for this key (Redis lost it). */
  const placeOrder = async (req: FastifyRequest, order: OrderRequest, fingerprint: string, key: string | undefined) => {
    const existing = key ? await store.getByIdempotencyKey(key) : undefined;
    if (existing) return { saga: existing, replayed: true };
    const reach = await p.reachable();
    const down = PARTICIPANTS.filter((n) => !reach[n]);
    if (down.length > 0) throw new HttpError(503, 'participant_unavailable', `unavailable: ${down.join(', ')} service; nothing was stored`);
    const input: PlaceOrderInput = {
      order_id: randomUUID(),
      customer_id: order.customer_id,
      items: order.items,
      total_cents: order.total_cents,
      created_at_ms: Date.now(),
      fingerprint,
      request_id: req.id,
    };
    if (engine.stopping) throw new HttpError(503, 'shutting_down', 'the gateway is shutting down; retry');
    const started = await engine.start(PLACE_ORDER, { id: input.order_id, input, idempotencyKey: key });
    return { saga: started.saga, replayed: !started.created };
  };

  const checkFingerprint = (saga: SagaRecord, fingerprint: string) => {
    if ((saga.input as PlaceOrderInput).fingerprint !== fingerprint) {
      throw new HttpError(422, 'idempotency_key_reused', 'this X-Idempotency-Key was used with a different request');
    }
  };

  app.post('/orders', async (req: FastifyRequest, reply) => {
    const keyHeader = req.headers['x-idempotency-key'];
    const key = Array.isArray(keyHeader) ? keyHeader[0] : keyHeader;
    if (key !== undefined && !isValidHeaderKey(key)) {
      throw new HttpError(400, 'invalid_idempotency_key', 'X-Idempotency-Key must be 1-255 printable ASCII characters');
    }
    const parsed = parseOrderRequest(req.body);
    if (!parsed.ok) return sendError(reply, parsed.error);
    const fingerprint = requestFingerprint('POST /orders', parsed.value);
    const wait = preferWaitSeconds(req.headers.prefer, maxWait);
    if (wait !== undefined) reply.header('preference-applied', `wait=${wait}`);

    const send = (res: StoredResponse, replayed: boolean, sagaId: string) => {
      req.log.info({ order_id: sagaId, saga_id: sagaId, replayed }, replayed ? 'order replayed' : 'order accepted');
      if (replayed) {
        reply.header('idempotent-replayed', 'true');
        opts.onReplay?.();
      }
      return reply.code(res.status).send(res.body);
    };

    if (key === undefined) {
      const { saga } = await placeOrder(req, parsed.value, fingerprint, undefined);
      return send(await answer(saga, false, wait, req.id), false, saga.id);
    }

    const claim = await idempotency.begin(key, fingerprint);
    if (claim.kind === 'mismatch') throw new HttpError(422, 'idempotency_key_reused', 'this X-Idempotency-Key was used with a different request');
    if (claim.kind === 'replay') return send(claim.response, true, String(claim.response.body.id));
    if (claim.kind === 'in_flight') {
      // The first request still holds the key. Once its saga is durable the order exists and can
      // be shown; before that the client must come back.
      const saga = await store.getByIdempotencyKey(key);
      if (!saga) {
        reply.header('retry-after', '1');
        throw new HttpError(409, 'idempotency_in_flight', 'a request with this X-Idempotency-Key is still in progress; retry shortly');
      }
      checkFingerprint(saga, fingerprint);
      return send(await answer(saga, true, wait, req.id), true, saga.id);
    }
    try {
      const { saga, replayed } = await placeOrder(req, parsed.value, fingerprint, key);
      if (replayed) checkFingerprint(saga, fingerprint);
      const res = await answer(saga, replayed, wait, req.id);
      await idempotency.complete(key, fingerprint, res);
      return send(res, replayed, saga.id);
    } catch (err) {
      // Nothing durable was promised under this key that the log does not hold: free it for a retry.
      await idempotency.abandon(key);
      throw err;
    }
  });

  app.get('/orders/:id', async (req, reply) => {
    const { id } = req.params as { id: string };
    const saga = await sagaOrThrow(id);
    const [order, payment] = await Promise.all([
      readOrder(id, req.id),
      callRpc(p.payment, 'getPayment', { orderId: id }, { timeoutMs: readTimeoutMs, requestId: req.id }).catch((err: unknown) => {
        throw participantError(err, 'payment');
      }),
    ]);
    return reply.send({
      ...orderView(saga.input as PlaceOrderInput, saga, order),
      payment: { status: PAYMENT_STATUS[payment.status], amount: centsToDollars(payment.amountCents) },
    });
  });

  const timeline = async (req: FastifyRequest, reply: FastifyReply) => {
    const { id } = req.params as { id: string };
    const saga = ORDER_ID.test(id) ? await store.get(id) : undefined;
    if (!saga) throw new HttpError(404, 'saga_not_found', `saga ${id} not found`);
    const events = await store.events(id);
    const names = new Map((engine.definitionOf(saga.definition)?.steps ?? []).map((s) => [s.name, s.displayName]));
    return reply.send({
      ...sagaSummary(saga),
      events: events.map((e) => ({
        seq: e.seq,
        type: e.type,
        step: e.step,
        ...(e.step && names.get(e.step) ? { display_name: names.get(e.step) } : {}),
        time: iso(e.at),
        attempt: e.attempt,
        error: e.error,
        retryable: e.retryable,
        data: e.data,
        trace_id: e.traceId,
        span_id: e.spanId,
      })),
    });
  };
  app.get('/orders/:id/saga', timeline);
  app.get('/sagas/:id', timeline);

  app.get('/sagas', async (req, reply) => {
    const q = req.query as Record<string, string | undefined>;
    const status = q.status?.toUpperCase();
    if (status !== undefined && !SAGA_STATUSES.includes(status as SagaStatus)) {
      throw new HttpError(400, 'invalid_request', `status must be one of ${SAGA_STATUSES.join(', ')}`);
    }
    const limit = q.limit === undefined ? 50 : Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new HttpError(400, 'invalid_request', 'limit must be an integer from 1 to 500');
    const page = await store.list({ status: status as SagaStatus | undefined, limit, cursor: q.cursor || undefined });
    return reply.send({ sagas: page.sagas.map(sagaSummary), next_cursor: page.nextCursor });
  });

  app.get('/products', async (req, reply) => {
    const res = await callRpc(p.inventory, 'listProducts', {}, { timeoutMs: readTimeoutMs, requestId: req.id }).catch((err: unknown) => {
      throw participantError(err, 'inventory');
    });
    return reply.send({
      products: res.products.map((x) => ({ product_id: x.productId, available: x.available, reserved: x.reserved, sold: x.sold })),
    });
  });

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/metrics', (req, reply) => {
    if (!opts.serveMetrics) throw new HttpError(404, 'not_found', 'metrics are not enabled');
    reply.hijack();
    opts.serveMetrics(req.raw, reply.raw);
  });

  app.get('/readyz', async (_req, reply) => {
    const reach = await p.reachable(true);
    const sagaLog = await withTimeout(store.liveStats(), readTimeoutMs).then(() => true, () => false);
    const checks = {
      ...Object.fromEntries(PARTICIPANTS.map((n) => [n, reach[n] ? 'ok' : 'unavailable'])),
      saga_log: sagaLog ? 'ok' : 'unavailable',
    };
    const ready = sagaLog && PARTICIPANTS.every((n) => reach[n]);
    // Redis is a fast path only: its loss degrades nothing that readiness should fail on.
    const details = { idempotency_fast_path: opts.fastPathMode?.() ?? 'memory' };
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks, details, in_flight: engine.inFlight });
  });

  return app;
}
