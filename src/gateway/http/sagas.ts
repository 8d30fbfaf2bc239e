import { isOrderId } from '../../contracts/ids.js';
import type { SagaEngine } from '../../saga/index.js';
import { HttpError } from './errors.js';
import { TIMELINE_PAGE_MAX } from './schemas.js';
import { eventView, publicEventView, publicSagaSummary, sagaSummary, type PublicCodes } from './views.js';

type TimelinePage = { after_seq?: number; limit?: number };

/** A page of a saga's events after `after_seq`, through the engine; a 404 when there is no such saga. */
async function timelinePage(engine: SagaEngine, id: string, page: TimelinePage) {
  const timeline = isOrderId(id)
    ? await engine.timeline(id, { afterSeq: page.after_seq ?? 0, limit: page.limit ?? TIMELINE_PAGE_MAX })
    : undefined;
  if (!timeline) throw new HttpError('saga_not_found', `saga ${id} not found`);
  return timeline;
}

/** The whole timeline, for operators (the admin API): every event's data, error text and trace. */
export async function readTimeline(engine: SagaEngine, id: string, page: TimelinePage = {}) {
  const { saga, events, displayName, nextAfterSeq } = await timelinePage(engine, id, page);
  return {
    saga,
    ...sagaSummary(saga),
    events: events.map((e) => eventView(e, displayName(e.step))),
    next_after_seq: nextAfterSeq,
  };
}

/** The customer's timeline (the public API): types, steps, times, attempts and failure codes only. */
export async function readPublicTimeline(engine: SagaEngine, id: string, codes: PublicCodes, page: TimelinePage = {}) {
  const { saga, events, displayName, nextAfterSeq } = await timelinePage(engine, id, page);
  return {
    ...publicSagaSummary(saga, codes),
    events: events.map((e) => publicEventView(e, displayName(e.step), codes)),
    next_after_seq: nextAfterSeq,
  };
}
