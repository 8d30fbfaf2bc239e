import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/**
 * One log line per request, when it is answered (Fastify's own logging writes two, one as it
 * arrives): method, URL, status, time, and what the route added with `noteOnRequestLine`
 * (POST /orders: the order id and whether it was a replay). Both listeners use it; pass
 * `disableRequestLogging: true` with it.
 */
// FastifyInstance's generics differ per caller (type provider, logger); only its hooks are used.
export function installRequestLogging(app: FastifyInstance<any, any, any, any, any>): void {
  app.addHook('onResponse', (req: FastifyRequest, reply: FastifyReply, done: () => void) => {
    const noted = lineNotes.get(req);
    req.log.info(
      { req: { method: req.method, url: req.url, remoteAddress: req.ip }, res: { statusCode: reply.statusCode }, responseTime: reply.elapsedTime, ...noted },
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
