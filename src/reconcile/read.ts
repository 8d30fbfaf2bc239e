/**
 * `sagas reconcile`'s I/O: reads the saga log (through the SagaLog port, page by page) and the
 * participants' own books (participant-books.ts, page by page), judges them with the pure rules
 * (rules.ts), and reads again the sagas behind each disagreement, so that a saga that moved while
 * the books were read is not reported as a disagreement it no longer is.
 *
 * The reads are not one transaction across four databases, so a system taking orders can look
 * inconsistent for an instant. What keeps that out of the report: a saga in flight is not judged;
 * a disagreement whose saga moved (or appeared) between the reads is dropped, or with `settled`
 * reported as a saga in flight; and reserved and sold stock are compared with the reservations
 * only when the saga log did not move at all while the books were read.
 */
import { isDeepStrictEqual } from 'node:util';
import { LIMITS } from '../contracts/limits.js';
import type { Cursor, SagaLog, SagaStatus } from '../saga/index.js';
import { sagaBookOf, type Books, type SagaBook } from './books.js';
import { BooksReadError, type BookPage, type ParticipantBooks } from './participant-books.js';
import { judge, sortDisagreements, type Disagreement } from './rules.js';
import type { ParticipantName } from '../contracts/participants.js';

export interface ReconcileSources {
  log: Pick<SagaLog, 'list' | 'get' | 'countByStatus'>;
  books: ParticipantBooks;
}

export interface ReconcileOptions {
  /** Every saga should have ended: one in flight, or one that moved while reading, is a disagreement. */
  settled?: boolean;
  /** Sagas and records asked for per page (1-1000, default 500). */
  pageSize?: number;
  /** See JudgeOptions.prunedBefore: where retention may have pruned sagas. */
  prunedBefore?: number;
}

/** What `GET /api/reconcile` answers and `sagas reconcile --json` prints. */
export interface ReconcileReport {
  /** No disagreement: the books agree. */
  ok: boolean;
  settled: boolean;
  checked: { sagas: number; orders: number; payments: number; reservations: number; products: number };
  by_status: Record<SagaStatus, number>;
  /** Sagas whose books were not judged, and why. */
  not_judged: {
    in_flight: number;
    resolved: number;
    other_definition: number;
    moved_while_reading: number;
    pruned: number;
  };
  /** Whether reserved and sold stock were compared with the reservations (only when nothing moved). */
  stock_sums_compared: boolean;
  disagreements: Disagreement[];
}

/** Every record of a participant's books, page after page; a page that does not advance is its failure. */
async function allPages<T extends { orderId: string }>(
  participant: ParticipantName,
  pageSize: number,
  page: (token: string, size: number) => Promise<BookPage<T>>,
): Promise<T[]> {
  const out: T[] = [];
  let token = '';
  let last: string | undefined;
  do {
    const p = await page(token, pageSize);
    for (const e of p.entries) {
      // Keyset pages are in strictly increasing id order: anything else would loop or double count.
      if (last !== undefined && !(e.orderId > last))
        throw new BooksReadError(
          'participant_error',
          participant,
          `the ${participant} service listed ${e.orderId} after ${last}: its pages are not in order`,
        );
      last = e.orderId;
      out.push(e);
    }
    if (p.nextPageToken !== '' && p.entries.length === 0)
      throw new BooksReadError(
        'participant_error',
        participant,
        `the ${participant} service answered an empty page that is not the last`,
      );
    token = p.nextPageToken;
  } while (token !== '');
  return out;
}

/** Every saga of the log, newest first, page after page (sagas created meanwhile are not seen). */
async function allSagas(log: ReconcileSources['log'], pageSize: number): Promise<SagaBook[]> {
  const out: SagaBook[] = [];
  let cursor: Cursor | undefined;
  do {
    const page = await log.list({ limit: pageSize, cursor });
    for (const s of page.sagas) out.push(sagaBookOf(s));
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined);
  return out;
}

export async function reconcile(sources: ReconcileSources, opts: ReconcileOptions = {}): Promise<ReconcileReport> {
  const settled = opts.settled ?? false;
  const pageSize = opts.pageSize ?? LIMITS.listPageSizeDefault;
  const { log, books: participants } = sources;

  const countsBefore = await log.countByStatus();
  const sagas = await allSagas(log, pageSize);
  // After the saga log: a record of a saga created meanwhile is found again below, with its saga.
  const [orders, payments, reservations, products] = await Promise.all([
    allPages('order', pageSize, (t, n) => participants.orders(t, n)),
    allPages('payment', pageSize, (t, n) => participants.payments(t, n)),
    allPages('inventory', pageSize, (t, n) => participants.reservations(t, n)),
    participants.products(),
  ]);
  const countsAfter = await log.countByStatus();
  const stable = isDeepStrictEqual(countsBefore, countsAfter);

  const books: Books = { sagas, orders, payments, reservations, products };
  const judgement = judge(books, {
    settled,
    stable,
    ...(opts.prunedBefore === undefined ? {} : { prunedBefore: opts.prunedBefore }),
  });

  // The sagas behind the disagreements, read again: one that moved (or appeared) since it was read
  // was in motion while its books were read.
  const seen = new Map(sagas.map((s) => [s.order?.orderId ?? s.id, s]));
  const moved = new Map<string, SagaStatus | undefined>();
  const movedSince = async (id: string): Promise<boolean> => {
    if (!moved.has(id)) {
      const before = seen.get(id);
      const now = await log.get(before?.id ?? id);
      const changed =
        now !== undefined &&
        (before === undefined || before.status !== now.status || before.updatedAt !== now.updatedAt);
      moved.set(id, changed ? now.status : undefined);
    }
    return moved.get(id) !== undefined;
  };
  const kept: Disagreement[] = [];
  const inFlightNoted = new Set<string>();
  let movedWhileReading = 0;
  for (const d of judgement.disagreements) {
    const id = d.order_id ?? d.saga_id;
    if (d.kind === 'saga_in_flight' || id === undefined || !(await movedSince(id))) {
      if (d.kind === 'saga_in_flight' && id !== undefined) inFlightNoted.add(id);
      kept.push(d);
      continue;
    }
    if (!settled) {
      movedWhileReading += 1;
      continue;
    }
    if (inFlightNoted.has(id)) continue;
    inFlightNoted.add(id);
    const status = moved.get(id) as SagaStatus;
    kept.push({
      kind: 'saga_in_flight',
      saga_id: seen.get(id)?.id ?? id,
      order_id: id,
      message: `saga ${seen.get(id)?.id ?? id} moved while the books were read (it is ${status} now)`,
    });
  }
  if (settled && !stable) {
    kept.push({
      kind: 'saga_in_flight',
      message: `the saga log changed while the books were read (sagas by status before: ${countsText(countsBefore)}; after: ${countsText(countsAfter)})`,
    });
  }

  return {
    ok: kept.length === 0,
    settled,
    checked: judgement.checked,
    by_status: judgement.byStatus,
    not_judged: { ...judgement.notJudged, moved_while_reading: movedWhileReading },
    stock_sums_compared: judgement.stockSumsCompared,
    disagreements: sortDisagreements(kept),
  };
}

function countsText(counts: Record<SagaStatus, number>): string {
  return (
    Object.entries(counts)
      .filter(([, n]) => n > 0)
      .map(([s, n]) => `${s} ${n}`)
      .join(', ') || 'none'
  );
}
