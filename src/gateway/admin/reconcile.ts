/**
 * `GET /api/reconcile` (any signed-in caller, viewer included): the saga log against the
 * participants' own books, every disagreement in business words (src/reconcile/). What
 * `sagas reconcile`, `sagas chaos`, the soak and the tests check the books with.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { retentionHorizon, type RetentionPolicy, type SagaEngine } from '../../saga/index.js';
import type { Participants } from '../participants.js';
import { HttpError } from '../http/errors.js';
import { errorResponses } from '../http/schemas.js';
import { BooksReadError, grpcParticipantBooks } from '../../reconcile/participant-books.js';
import { reconcile, type ReconcileReport } from '../../reconcile/read.js';
import { ReconcileQuery, ReconcileView } from './schemas.js';

export interface AdminReconcileDeps {
  /** Its reads of the saga log (`engine.reads`, taken when a reconciliation runs). */
  engine: Pick<SagaEngine, 'reads' | 'clockOffsetMs'>;
  /** SAGA_RETENTION: orders older than its shortest age may have lost their saga to pruning. */
  retention?: RetentionPolicy;
  participants: Participants;
  /** Deadline of each page read from a participant. */
  readTimeoutMs: number;
}

export const adminReconcile: FastifyPluginAsyncTypebox<AdminReconcileDeps> = async (app, deps) => {
  const books = grpcParticipantBooks(deps.participants, deps.readTimeoutMs);
  // A reconciliation reads every saga and record, so at most one runs per question. A caller
  // arriving while one runs waits for the next one, which starts when it ends and is shared by
  // everyone who arrived meanwhile: each answer is from a read that began after its request
  // (what a check after "every saga has ended" needs), and the load stays bounded.
  const running = new Map<string, Promise<ReconcileReport>>();
  const next = new Map<string, Promise<ReconcileReport>>();
  const start = (key: string, opts: { settled: boolean; pageSize: number | undefined }): Promise<ReconcileReport> => {
    const prunedBefore = retentionHorizon(deps.retention, Date.now() + deps.engine.clockOffsetMs);
    const run = reconcile(
      { log: deps.engine.reads, books },
      { ...opts, ...(prunedBefore === undefined ? {} : { prunedBefore }) },
    ).finally(() => {
      if (running.get(key) === run) running.delete(key);
    });
    running.set(key, run);
    return run;
  };
  const answer = (key: string, opts: { settled: boolean; pageSize: number | undefined }): Promise<ReconcileReport> => {
    const current = running.get(key);
    if (!current) return start(key, opts);
    let queued = next.get(key);
    if (!queued) {
      const after = () => {
        next.delete(key);
        return start(key, opts);
      };
      queued = current.then(after, after);
      next.set(key, queued);
    }
    return queued;
  };

  app.get(
    '/api/reconcile',
    {
      schema: {
        operationId: 'reconcileBooks',
        summary: "The saga log against the participants' own books: every disagreement",
        tags: ['ops'],
        querystring: ReconcileQuery,
        response: { 200: ReconcileView, ...errorResponses },
      },
    },
    async (req) => {
      if (!req.caller) throw new HttpError('unauthenticated', 'not signed in');
      const settled = req.query.settled === 'true' || req.query.settled === '1';
      const pageSize = req.query.page_size;
      const key = `${settled}:${pageSize ?? ''}`;
      let r: ReconcileReport;
      try {
        r = await answer(key, { settled, pageSize });
      } catch (err) {
        if (err instanceof BooksReadError) throw new HttpError(err.code, err.message);
        throw err;
      }
      const fields = {
        ok: r.ok,
        settled,
        checked: r.checked,
        disagreements: r.disagreements.length,
        kinds: [...new Set(r.disagreements.map((d) => d.kind))],
        actor: req.caller.name,
      };
      if (r.ok) req.log.info(fields, 'reconcile: the books agree');
      else req.log.warn(fields, 'reconcile: the books disagree');
      return r;
    },
  );
};
