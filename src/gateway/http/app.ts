import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import Fastify, { type FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Ajv, type Options as AjvOptions } from 'ajv';
import { isRequestId } from '../../contracts/ids.js';
import rateLimit from '@fastify/rate-limit';
import { DEFAULT_LIMITS, type GatewayOptions, type HttpLimits } from './deps.js';
import { HttpError, retryAfterOf, toHttpError } from './errors.js';
import { registerOpenApi } from './openapi.js';
import { opsRoutes } from './ops.js';
import { ordersRoutes } from './orders.js';
import { instrumentHttp } from './tracing.js';
import { installRequestLogging, withoutFastifyRequestLogging } from './request-log.js';

export type { GatewayOptions, StoredResponse } from './deps.js';

export interface RouteEntry {
  method: string;
  url: string;
  /** Whether /openapi.json describes it (the docs' own routes are not part of the API). */
  documented: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route served, as registered: what the OpenAPI document is checked against. */
    apiRoutes: readonly RouteEntry[];
  }
}

const AJV_OPTIONS: AjvOptions = { allErrors: false, useDefaults: true, strict: false, verbose: true };

/**
 * Two validators: a JSON body is taken as typed (a quantity of "5" is an error, as it always
 * was), while params and query strings, which are text by nature, are coerced to their types.
 */
export function validatorCompilers() {
  const body = new Ajv({ ...AJV_OPTIONS, coerceTypes: false });
  const text = new Ajv({ ...AJV_OPTIONS, coerceTypes: 'array' });
  return ({ schema, httpPart }: { schema: object; httpPart?: string }) =>
    (httpPart === 'body' ? body : text).compile(schema);
}

/** `X-Request-Id` as given when it is one, else a fresh one. */
export function requestId(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && isRequestId(given) ? given : randomUUID();
}

/**
 * What every listener of the gateway shares (the public API and the admin one): the validators,
 * JSON only, the 404 and the one error handler over the error table.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- FastifyInstance's generics differ per caller (type provider, logger); only its hooks are used.
export function installErrorHandling(app: FastifyInstance<any, any, any, any, any>): void {
  app.setValidatorCompiler(validatorCompilers());
  // The API speaks JSON only: anything else is 415, not a string handed to the validator.
  app.removeContentTypeParser('text/plain');
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ error: 'not_found', message: `no route for ${req.method} ${req.url}` }),
  );
  app.setErrorHandler((err, req, reply) => {
    const e = toHttpError(err);
    // A 5xx body says what failed in the table's words; what the cause said is logged, not sent.
    if (e.status >= 500)
      req.log.error(
        { err, error_code: e.code, detail: e.detail },
        e.code === 'internal_error' ? 'unhandled error' : e.message,
      );
    const retryAfter = retryAfterOf(e.code);
    // The rate limiter has already said when its window ends.
    if (retryAfter !== undefined && !reply.hasHeader('retry-after')) reply.header('retry-after', String(retryAfter));
    return reply.code(e.status).send({ ...e.fields, error: e.code, message: e.message });
  });
}

/**
 * The gateway's HTTP layer: tracing, one error handler over the error table, and the route
 * plugins (orders, ops, the OpenAPI document), each given the dependencies it uses.
 */
export async function buildGateway(opts: GatewayOptions) {
  const limits: HttpLimits = { ...DEFAULT_LIMITS, ...opts.limits };
  const app = Fastify({
    loggerInstance: opts.logger,
    ...withoutFastifyRequestLogging(),
    bodyLimit: opts.bodyLimitBytes ?? 64 * 1024,
    // A request (headers and body) must arrive within this long, and a silent connection is closed
    // after it: a slow client holds nothing for ever. Both exceed the longest Prefer: wait.
    requestTimeout: limits.requestTimeoutMs,
    // A second later than the request timeout (Node checks every second), so a request with slow
    // headers gets its 408 first; a body that stops coming is cut off by this one.
    connectionTimeout: limits.requestTimeoutMs + 1_000,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // Node looks for requests past their timeout every 30 s by default: look every second.
    http: { connectionsCheckingInterval: Math.min(1_000, limits.requestTimeoutMs) },
    genReqId: requestId,
  }).withTypeProvider<TypeBoxTypeProvider>();
  // Connections over the cap are closed by Node as they arrive.
  app.server.maxConnections = limits.maxConnections;

  const routes: RouteEntry[] = [];
  app.decorate('apiRoutes', routes);
  app.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) {
      if (method !== 'HEAD')
        routes.push({ method, url: r.url, documented: r.schema?.hide !== true && !r.url.startsWith('/docs') });
    }
  });
  instrumentHttp(app, opts.meter);
  installRequestLogging(app);
  installErrorHandling(app);

  if (limits.ratePerMinute > 0) {
    await app.register(rateLimit, {
      max: limits.ratePerMinute,
      timeWindow: 60_000,
      // Thrown, so the one error handler answers it like every other error.
      errorResponseBuilder: (_req, ctx) =>
        new HttpError('rate_limited', `at most ${ctx.max} requests a minute; retry in ${Math.ceil(ctx.ttl / 1000)} s`),
    });
  }
  await registerOpenApi(app);
  await app.register(ordersRoutes, { ...opts, limits });
  // GET /sagas and /sagas/:id moved to the admin listener (src/gateway/admin/, DESIGN §6b): they
  // list every customer's orders, which the public port must not.
  await app.register(opsRoutes, opts);
  return app;
}
