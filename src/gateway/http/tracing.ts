import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyRequest, RawServerDefault } from 'fastify';
import {
  context,
  propagation,
  trace,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  type Context,
  type Meter,
  type Span,
} from '@opentelemetry/api';
import type { Logger } from '../../platform/telemetry/logger.js';

const httpTracer = trace.getTracer('ecommerce-sagas/http');

/**
 * A SERVER span per request, named after its route (`POST /orders`) and continuing the caller's
 * W3C trace, made the active context of the route's handler; and the request-duration histogram.
 * (@fastify/otel was measured against these hooks and costs no less: bench/README.md, "HTTP tracing".)
 */
export function instrumentHttp(
  app: FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, Logger>,
  meter: Meter,
): void {
  const duration = meter.createHistogram('http.server.request.duration', {
    unit: 's',
    description: 'Duration of HTTP requests served',
    advice: {
      explicitBucketBoundaries: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    },
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
      {
        kind: SpanKind.SERVER,
        attributes: {
          'http.request.method': req.method,
          'url.path': req.url.split('?')[0],
          'http.route': route ?? '',
          'http.request.id': req.id,
        },
      },
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
