import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { PARTICIPANTS, type ParticipantName } from '../participants.js';
import { DEFAULT_READ_TIMEOUT_MS, type GatewayOptions } from './deps.js';
import { HttpError } from './errors.js';
import { errorResponses, Health, Readiness } from './schemas.js';

/** Rejects after `ms`: a probe must answer even when a store hangs. */
function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>(
    (_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)),
  );
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** Every route, probes included, counts against RATE_LIMIT_PER_MINUTE when it is set. */
const rateLimited = {
  ...errorResponses['4xx'],
  description: '`rate_limited`: more than RATE_LIMIT_PER_MINUTE requests from this client in a minute',
};

export type OpsDeps = Pick<
  GatewayOptions,
  'engine' | 'participants' | 'serveMetrics' | 'fastPathMode' | 'readTimeoutMs'
>;

/** What orchestrators and Prometheus ask: liveness, readiness, metrics. */
export const opsRoutes: FastifyPluginAsyncTypebox<OpsDeps> = async (app, deps) => {
  const { engine, participants: p } = deps;
  const readTimeoutMs = deps.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS;

  app.get(
    '/healthz',
    { schema: { operationId: 'health', summary: 'Alive', tags: ['ops'], response: { 200: Health, 429: rateLimited } } },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        operationId: 'ready',
        summary: 'Ready: every participant and the saga log reachable',
        description:
          '503 with the same body when not. A participant is reachable while one of its addresses (replicas) answers; ' +
          '`details.participants` counts, per participant, those that answer and all. ' +
          'The idempotency fast path (Redis) is a detail: its loss degrades nothing.',
        tags: ['ops'],
        response: { 200: Readiness, 429: rateLimited, 503: Readiness },
      },
    },
    async (_req, reply) => {
      // Each address of each participant probed alone: a participant is up while one of its
      // replicas answers (the gateway's calls go to those that do).
      const [each, sagaLog] = await Promise.all([
        p.probeAddresses(),
        withTimeout(engine.reads.liveStats(), readTimeoutMs).then(
          () => true,
          () => false,
        ),
      ]);
      const up = (n: ParticipantName) => each[n].filter((a) => a.up).length;
      const checks: Record<string, 'ok' | 'unavailable'> = {
        ...Object.fromEntries(PARTICIPANTS.map((n) => [n, up(n) > 0 ? 'ok' : 'unavailable'] as const)),
        saga_log: sagaLog ? 'ok' : 'unavailable',
      };
      const ready = sagaLog && PARTICIPANTS.every((n) => up(n) > 0);
      // Counts only: the addresses themselves are the operators' (the admin API's), not the public's.
      const details = {
        idempotency_fast_path: deps.fastPathMode?.() ?? ('memory' as const),
        participants: Object.fromEntries(PARTICIPANTS.map((n) => [n, { up: up(n), addresses: each[n].length }])),
      };
      return reply
        .code(ready ? 200 : 503)
        .send({ status: ready ? 'ready' : 'not_ready', checks, details, in_flight: engine.inFlight });
    },
  );

  app.get(
    '/metrics',
    {
      schema: {
        operationId: 'metrics',
        summary: 'Prometheus metrics (text exposition format)',
        description: '404 `not_found` when this gateway serves no metrics here.',
        tags: ['ops'],
        response: {
          200: {
            description: 'the metrics, in the Prometheus text exposition format',
            content: { 'text/plain': { schema: { type: 'string' } } },
          },
          404: errorResponses['4xx'],
          429: rateLimited,
        },
      },
    },
    (req, reply) => {
      if (!deps.serveMetrics) throw new HttpError('not_found', 'metrics are not enabled');
      reply.hijack();
      deps.serveMetrics(req.raw, reply.raw);
    },
  );
};
