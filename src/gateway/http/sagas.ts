import { isOrderId } from '../../contracts/ids.js';
import type { SagaEngine } from '../../saga/engine.js';
import { SAGA_STATUSES, type SagaLog, type SagaStatus } from '../../saga/model.js';
import { HttpError } from './errors.js';
import { TIMELINE_PAGE_MAX } from './schemas.js';
import { eventView, sagaSummary } from './views.js';

/**
 * A page of a saga's timeline: its summary and the events after `afterSeq`, steps named for
 * people where they can be. A saga retried for long has a long timeline: it is read in pages.
 */
export async function readTimeline(engine: SagaEngine, store: SagaLog, id: string, page: { after_seq?: number; limit?: number } = {}) {
  const saga = isOrderId(id) ? await store.get(id) : undefined;
  if (!saga) throw new HttpError('saga_not_found', `saga ${id} not found`);
  const limit = page.limit ?? TIMELINE_PAGE_MAX;
  const events = await store.events(id, { afterSeq: page.after_seq ?? 0, limit });
  const names = new Map((engine.definitionOf(saga.definition)?.steps ?? []).map((s) => [s.name, s.displayName]));
  return {
    ...sagaSummary(saga),
    events: events.map((e) => eventView(e, e.step ? names.get(e.step) : undefined)),
    // A full page may have a next one; asking for it costs one read that may come back empty.
    next_after_seq: events.length === limit ? (events.at(-1)?.seq ?? null) : null,
  };
}

/** A page of sagas, newest first, of one status (any case) or all. */
export async function listSagas(store: SagaLog, q: { status?: string; limit?: number; cursor?: string }) {
  const status = q.status?.toUpperCase();
  if (status !== undefined && !SAGA_STATUSES.includes(status as SagaStatus)) {
    throw new HttpError('invalid_request', `status must be one of ${SAGA_STATUSES.join(', ')}`);
  }
  const page = await store.list({ status: status as SagaStatus | undefined, limit: q.limit ?? 50, cursor: q.cursor || undefined });
  return { sagas: page.sagas.map(sagaSummary), next_cursor: page.nextCursor };
}
