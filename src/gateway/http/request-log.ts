import { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';

/** The Fastify options that turn its own two lines per request off (a top-level `disableRequestLogging` is deprecated in Fastify 5.12). */
export function withoutFastifyRequestLogging(): { logController: LogController } {
  return { logController: new LogController({ disableRequestLogging: true }) };
}

/**
 * One log line per request, when it is answered (Fastify's own logging writes two, one as it
 * arrives): method, URL, status, time, and what the route added with `noteOnRequestLine`
 * (POST /orders: the order id and whether it was a replay). Both listeners use it, with
 * `withoutFastifyRequestLogging()` in their Fastify options.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- FastifyInstance's generics differ per caller (type provider, logger); only its hooks are used.
export function installRequestLogging(app: FastifyInstance<any, any, any, any, any>): void {
  app.addHook('onResponse', (req: FastifyRequest, reply: FastifyReply, done: () => void) => {
    const noted = lineNotes.get(req);
    req.log.info(
      {
        req: { method: req.method, url: req.url, remoteAddress: req.ip },
        res: { statusCode: reply.statusCode },
        responseTime: reply.elapsedTime,
        ...noted,
      },
      'request completed',
    );
    done();
  });
}

const lineNotes = new WeakMap<FastifyRequest, Record<string, unknown>>();

/** Fields for the request's one log line (installRequestLogging). */
export function noteOnRequestLine(req: FastifyRequest, fields: Record<string, unknown>): void {
  lineNotes.set(req, { ...lineNotes.get(req), ...fields });
}
