import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { inFlightOf, refName, type SagaEngine } from '../../saga/index.js';
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

/** How long /readyz reuses the versions' counts: probes may come every second, the counts need a read of the log. */
export const VERSIONS_TTL_MS = 5_000;

interface LeftToOthers {
  definition: string;
  version: number;
  in_flight: number;
}

/**
 * The versions with sagas in flight that this gateway does not register (other gateways drive
 * them), read at most every `ttlMs`; one read at a time; when a read fails, the last answer (or
 * none): readiness never waits on it for long nor depends on it.
 */
function versionsLeftToOthers(engine: Pick<SagaEngine, 'versions'>, ttlMs: number, timeoutMs: number) {
  let last: { at: number; left: LeftToOthers[] } | undefined;
  let reading: Promise<LeftToOthers[]> | undefined;
  return (): Promise<LeftToOthers[]> => {
    if (last && Date.now() - last.at < ttlMs) return Promise.resolve(last.left);
    reading ??= withTimeout(engine.versions(), timeoutMs)
      .then(
        (views) => {
          const left = views
            .filter((v) => v.state === 'left_to_others')
            .map((v) => ({ definition: v.definition, version: v.version, in_flight: inFlightOf(v) }));
          last = { at: Date.now(), left };
          return left;
        },
        () => last?.left ?? [],
      )
      .finally(() => (reading = undefined));
    return reading;
  };
}

export type OpsDeps = Pick<
  GatewayOptions,
  'engine' | 'participants' | 'serveMetrics' | 'fastPathMode' | 'readTimeoutMs'
>;

/** What orchestrators and Prometheus ask: liveness, readiness, metrics. */
export const opsRoutes: FastifyPluginAsyncTypebox<OpsDeps> = async (app, deps) => {
  const { engine, participants: p } = deps;
  const readTimeoutMs = deps.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS;
  const leftToOthers = versionsLeftToOthers(engine, VERSIONS_TTL_MS, readTimeoutMs);
  // What this gateway drives, from its registrations (no I/O).
  const drives = () => {
    const defs = engine.registered();
    return {
      registered: defs.map((d) => refName({ definition: d.name, version: d.version })),
      starts: Object.fromEntries(
        [...new Set(defs.map((d) => d.name))].flatMap((name) => {
          const v = engine.definitionOf(name)?.version;
          return v === undefined ? [] : [[name, v] as const];
        }),
      ),
    };
  };

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
          'The idempotency fast path (Redis) is a detail: its loss degrades nothing. ' +
          '`definitions` says which saga versions this gateway drives and which, with sagas in flight, it leaves to other gateways (a rolling upgrade): it does not change readiness.',
        tags: ['ops'],
        response: { 200: Readiness, 429: rateLimited, 503: Readiness },
      },
    },
    async (_req, reply) => {
      // Each address of each participant probed alone: a participant is up while one of its
      // replicas answers (the gateway's calls go to those that do).
      const [each, sagaLog, left] = await Promise.all([
        p.probeAddresses(),
        withTimeout(engine.reads.liveStats(), readTimeoutMs).then(
          () => true,
          () => false,
        ),
        leftToOthers(),
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
      return reply.code(ready ? 200 : 503).send({
        status: ready ? 'ready' : 'not_ready',
        checks,
        details,
        in_flight: engine.inFlight,
        // A gateway leaving a version to others is still ready: it says so, that is all.
        definitions: { ...drives(), left_to_others: left },
      });
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
