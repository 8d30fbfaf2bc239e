import { isOrderId } from '../../contracts/ids.js';
import { type SagaEngine, SAGA_STATUSES, type SagaLog, type SagaStatus } from '../../saga/index.js';
import { HttpError } from './errors.js';
import { TIMELINE_PAGE_MAX } from './schemas.js';
import { eventView, publicEventView, publicSagaSummary, sagaSummary, type PublicCodes } from './views.js';

type TimelinePage = { after_seq?: number; limit?: number };

/**
 * A page of a saga's events after `after_seq`, with the step names for people where they can be.
 * A saga retried for long has a long timeline: it is read in pages.
 */
async function timelinePage(engine: SagaEngine, store: SagaLog, id: string, page: TimelinePage) {
  const saga = isOrderId(id) ? await store.get(id) : undefined;
  if (!saga) throw new HttpError('saga_not_found', `saga ${id} not found`);
  const limit = page.limit ?? TIMELINE_PAGE_MAX;
  const events = await store.events(id, { afterSeq: page.after_seq ?? 0, limit });
  const names = new Map((engine.definitionOf(saga.definition)?.steps ?? []).map((s) => [s.name, s.displayName]));
  const displayName = (step: string | null) => (step ? names.get(step) : undefined);
  // A full page may have a next one; asking for it costs one read that may come back empty.
  const nextAfterSeq = events.length === limit ? (events.at(-1)?.seq ?? null) : null;
  return { saga, events, displayName, nextAfterSeq };
}

/** The whole timeline, for operators (the admin API): every event's data, error text and trace. */
export async function readTimeline(engine: SagaEngine, store: SagaLog, id: string, page: TimelinePage = {}) {
  const { saga, events, displayName, nextAfterSeq } = await timelinePage(engine, store, id, page);
  return {
    ...sagaSummary(saga),
    events: events.map((e) => eventView(e, displayName(e.step))),
    next_after_seq: nextAfterSeq,
  };
}

/** The customer's timeline (the public API): types, steps, times, attempts and failure codes only. */
export async function readPublicTimeline(
  engine: SagaEngine,
  store: SagaLog,
  id: string,
  codes: PublicCodes,
  page: TimelinePage = {},
) {
  const { saga, events, displayName, nextAfterSeq } = await timelinePage(engine, store, id, page);
  return {
    ...publicSagaSummary(saga, codes),
    events: events.map((e) => publicEventView(e, displayName(e.step), codes)),
    next_after_seq: nextAfterSeq,
  };
}

/** A page of sagas, newest first, of one status (any case) or all. */
export async function listSagas(store: SagaLog, q: { status?: string; limit?: number; cursor?: string }) {
  const status = q.status?.toUpperCase();
  if (status !== undefined && !SAGA_STATUSES.includes(status as SagaStatus)) {
    throw new HttpError('invalid_request', `status must be one of ${SAGA_STATUSES.join(', ')}`);
  }
  const page = await store.list({
    status: status as SagaStatus | undefined,
    limit: q.limit ?? 50,
    cursor: q.cursor || undefined,
  });
  return { sagas: page.sagas.map(sagaSummary), next_cursor: page.nextCursor };
}
