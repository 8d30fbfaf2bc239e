/**
 * The books check at the end of a nemesis run, in one call: the gateway's reconciliation
 * (`GET /api/reconcile` on the admin listener: the saga log against the participants' own
 * records, src/reconcile/), as `sagas reconcile` runs it. Each disagreement naming a saga gets
 * that saga's timeline for the report.
 */
import type { JsonCall } from '../platform/json-client.js';
import type { Disagreement as BooksDisagreement } from '../reconcile/rules.js';
import { concerns, reconcileBooks, type Apis } from './invariants.js';

/** A disagreement of the books, or one the nemesis sees from the customers' side (e.g. one key, two orders). */
export type Disagreement = Omit<BooksDisagreement, 'kind'> & {
  kind: BooksDisagreement['kind'] | 'one_key_two_orders' | 'accepted_order_without_saga' | 'saga_without_order';
};

export interface BooksResult {
  ok: boolean;
  checked: number;
  by_status: Record<string, number>;
  disagreements: Disagreement[];
}

/** The books check could not be run at all (the admin API unreachable, or refusing). */
export class BooksCheckError extends Error {
  readonly code = 'books_check_failed';
  constructor(message: string) {
    super(message);
    this.name = 'BooksCheckError';
  }
}

/**
 * The books, checked once every saga has settled. `ids`: only these sagas (a running system with
 * sagas of its own, maybe in flight: only the disagreements about these count).
 */
export async function checkBooks(
  apis: Pick<Apis, 'admin'>,
  opts: { ids?: ReadonlySet<string> } = {},
): Promise<BooksResult> {
  const { ids } = opts;
  let books;
  try {
    // settled: every saga should have ended; one still in flight is a disagreement too.
    books = await reconcileBooks(apis, { settled: ids === undefined });
  } catch (err) {
    throw new BooksCheckError(`the books check failed: ${(err as Error).message}`);
  }
  const disagreements = ids ? books.disagreements.filter((d) => concerns(d, ids)) : books.disagreements;
  return { ok: disagreements.length === 0, checked: books.checked.sagas, by_status: books.by_status, disagreements };
}

export interface TimelineEvent {
  seq: number;
  type: string;
  step: string | null;
  attempt: number | null;
  time: string;
  error: string | null;
  data?: unknown;
}

/** A saga's status and events from the admin API (GET /api/sagas/:id), for a disagreement's report. */
export async function sagaTimeline(
  admin: JsonCall,
  id: string,
): Promise<{ status: string; failure: unknown; events: TimelineEvent[] } | undefined> {
  const r = await admin('GET', `/api/sagas/${encodeURIComponent(id)}`);
  if (r.status !== 200) return undefined;
  const events = (r.body.events as Array<Record<string, unknown>>).map((e) => ({
    seq: e.seq as number,
    type: e.type as string,
    step: (e.step as string | null) ?? null,
    attempt: (e.attempt as number | null) ?? null,
    time: e.time as string,
    error: typeof e.error === 'string' ? e.error : e.error ? JSON.stringify(e.error) : null,
    ...(e.data !== null && e.data !== undefined ? { data: e.data } : {}),
  }));
  return { status: r.body.status as string, failure: r.body.failure ?? null, events };
}
