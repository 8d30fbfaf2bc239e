/**
 * The gateway's second listener, for operators (ADMIN_ADDR, default 127.0.0.1:8081): the admin
 * API under /api and the console's files. Its own fastify instance, with the public app's error
 * table and handler, so the public port (HTTP_ADDR) serves no saga list and no action at all.
 * Who may call it: auth.ts.
 */
import Fastify from 'fastify';
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Meter } from '@opentelemetry/api';
import type { Logger } from '../../platform/telemetry/logger.js';
import type { RetentionPolicy, SagaEngine } from '../../saga/index.js';
import type { Participants } from '../participants.js';
import { installErrorHandling, requestId } from '../http/app.js';
import { installRequestLogging, withoutFastifyRequestLogging } from '../http/request-log.js';
import { instrumentHttp } from '../http/tracing.js';
import { adminApi } from './api.js';
import type { BulkDeps } from './bulk-routes.js';
import { adminAuth } from './auth.js';
import { adminOpenApiOptions } from './openapi.js';
import type { RecentSagas } from './recent.js';
import type { AdminToken } from './tokens.js';
import type { FaultBoard } from '../../faults/plan.js';
import { adminUi } from './ui.js';

export interface AdminOptions {
  engine: SagaEngine;
  /** SAGA_RETENTION (see AdminApiDeps.retention). */
  retention?: RetentionPolicy;
  participants: Participants;
  logger: Logger;
  /** The gateway's meter: saga_operator_actions_total and the HTTP metrics go there. */
  meter: Meter;
  /** ADMIN_TOKENS; empty: loopback clients only, as the operator `local`. */
  tokens: readonly AdminToken[];
  /** TRACE_URL_TEMPLATE. */
  traceUrlTemplate?: string;
  /** What this gateway finished lately (the overview's rates and percentiles). */
  recent?: RecentSagas;
  /** The fault switchboard (FAULTS_ENABLED=1); unset: /api/faults answers 404 faults_disabled. */
  faults?: FaultBoard;
  /** Bulk actions' jobs and the runner's nudge; unset: /api/bulk… answers 404 not_found. */
  bulk?: BulkDeps;
  readTimeoutMs?: number;
  /** Where the console's files are (default src/gateway/admin/ui/). */
  uiDir?: string;
  now?: () => number;
  sessionTtlMs?: number;
  /** SAGA_STUCK_AFTER (ms). */
  stuckAfterMs?: number;
}

export async function buildAdmin(opts: AdminOptions) {
  const app = Fastify({
    loggerInstance: opts.logger,
    ...withoutFastifyRequestLogging(),
    bodyLimit: 16 * 1024,
    requestTimeout: 30_000,
    connectionTimeout: 31_000,
    http: { connectionsCheckingInterval: 1_000 },
    genReqId: requestId,
  }).withTypeProvider<TypeBoxTypeProvider>();
  app.server.maxConnections = 256;
  const auth = adminAuth(opts.tokens, { now: opts.now, ttlMs: opts.sessionTtlMs });
  instrumentHttp(app, opts.meter);
  installRequestLogging(app);
  installErrorHandling(app);
  // Before routing's handlers, static files and 404s included: loopback-only mode refuses others.
  app.addHook('onRequest', async (req) => auth.gate(req));
  // Nothing this listener answers may be kept by a browser or a proxy cache: saga inputs,
  // customers, sessions, errors. Set on every answer (errors and 404s run onSend too); the
  // console's static files carry no data but are cheap to send again.
  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('cache-control', 'no-store');
    return payload;
  });
  // The OpenAPI document collects the routes registered after it (served at /api/openapi.json).
  await app.register(swagger, adminOpenApiOptions({ loopbackOnly: auth.loopbackOnly }));
  await app.register(adminApi, { ...opts, auth });
  await app.register(adminUi, { dir: opts.uiDir });
  return Object.assign(app, { loopbackOnly: auth.loopbackOnly });
}

export type AdminApp = Awaited<ReturnType<typeof buildAdmin>>;
