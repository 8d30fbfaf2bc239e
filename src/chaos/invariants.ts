import type { JsonCall, JsonReply } from '../platform/json-client.js';
import type { ReconcileReport } from '../reconcile/read.js';
import type { Disagreement } from '../reconcile/rules.js';

/**
 * DESIGN.md §6's invariants, checked against the participants' own books, never against the
 * gateway's view of them: the books through `GET /api/reconcile?settled=1` (the saga log against
 * what the order, payment and inventory services hold: CONFIRMED iff completed and CANCELLED iff
 * compensated, a confirmed order charged exactly its total once and its stock sold, nothing charged
 * net or held for a cancelled one, stock conserved per product, PARKED sagas repairable), the
 * sagas themselves through the admin API's saga list (every one ended, one per idempotency key),
 * and the stock against a baseline taken before the run (nothing invented or lost, nothing left
 * reserved). Used by `sagas chaos` and by the tests and the soak (test/helpers/invariants.ts).
 * Returns the violations rather than throwing.
 */

export type ApiReply = JsonReply;
export type ApiCall = JsonCall;

export interface Apis {
  /** The public API (products). */
  api: ApiCall;
  /** The admin API (sagas, the books). */
  admin: ApiCall;
}

export const TERMINAL_STATUSES = new Set(['COMPLETED', 'COMPENSATED', 'PARKED', 'RESOLVED']);

export interface SagaRow {
  id: string;
  status: string;
  attempt: number;
  created_at: string;
  updated_at: string;
  failure: { code: string; step: string } | null;
}

/** Stock of each product before the run: its total (available + reserved + sold), sold and reserved. */
export type StockBaseline = Record<string, { total: number; sold: number; reserved: number }>;

export interface InvariantResult {
  sagas: number;
  byStatus: Record<string, number>;
  violations: string[];
}

/** Every saga in the log (all pages of GET /api/sagas), or only those of `ids`. */
export async function listSagas(apis: Pick<Apis, 'admin'>, ids?: ReadonlySet<string>): Promise<SagaRow[]> {
  const out: SagaRow[] = [];
  let cursor: string | null = null;
  do {
    const r: ApiReply = await apis.admin(
      'GET',
      `/api/sagas?limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
    if (r.status !== 200)
      throw new Error(`GET /api/sagas answered ${r.status}: ${JSON.stringify(r.body).slice(0, 200)}`);
    out.push(...(r.body.sagas as SagaRow[]));
    cursor = r.body.next_cursor as string | null;
  } while (cursor);
  return ids ? out.filter((s) => ids.has(s.id)) : out;
}

/** Whether every saga (of `ids`, or all) has ended. */
export async function allTerminal(apis: Pick<Apis, 'admin'>, ids?: ReadonlySet<string>): Promise<boolean> {
  return (await listSagas(apis, ids)).every((s) => TERMINAL_STATUSES.has(s.status));
}

export interface ProductStock {
  product_id: string;
  available: number;
  reserved: number;
  sold: number;
}

export async function readStock(apis: Pick<Apis, 'api'>): Promise<ProductStock[]> {
  const r = await apis.api('GET', '/products');
  if (r.status !== 200) throw new Error(`GET /products answered ${r.status}`);
  return r.body.products as ProductStock[];
}

/** A baseline from initial stock counts (a fresh system: nothing sold or reserved). */
export function baselineOf(initial: Record<string, number>): StockBaseline {
  return Object.fromEntries(Object.entries(initial).map(([p, n]) => [p, { total: n, sold: 0, reserved: 0 }]));
}

/** A baseline from the stock as it is now (a running system, before a run). */
export function baselineFrom(stock: readonly ProductStock[]): StockBaseline {
  return Object.fromEntries(
    stock.map((p) => [p.product_id, { total: p.available + p.reserved + p.sold, sold: p.sold, reserved: p.reserved }]),
  );
}

/** The books, reconciled through the admin API: every disagreement between the saga log and the participants' own records. */
export async function reconcileBooks(apis: Pick<Apis, 'admin'>, opts: { settled: boolean }): Promise<ReconcileReport> {
  const r: ApiReply = await apis.admin('GET', `/api/reconcile${opts.settled ? '?settled=1' : ''}`);
  if (r.status !== 200)
    throw new Error(`GET /api/reconcile answered ${r.status}: ${JSON.stringify(r.body).slice(0, 200)}`);
  return r.body as ReconcileReport;
}

/** Whether a disagreement is about one of `ids` (a product's, or the whole log's, is everyone's). */
export function concerns(d: Disagreement, ids: ReadonlySet<string>): boolean {
  const id = d.order_id ?? d.saga_id;
  return id === undefined || ids.has(id);
}

/**
 * Checks the invariants over every saga (or those of `ids`: the orders of one run, on a system
 * that had others before, and may have others in flight: then only the disagreements about them
 * count, and the books are not required to be settled as a whole). `allowParked`: a PARKED saga
 * (and the stock it still holds reserved) is not a violation; its books must still fit a way out.
 */
export async function checkInvariants(
  apis: Apis,
  before: StockBaseline,
  opts: { ids?: ReadonlySet<string>; allowParked?: boolean } = {},
): Promise<InvariantResult> {
  const violations: string[] = [];
  const sagas = await listSagas(apis, opts.ids);
  const byStatus: Record<string, number> = {};
  for (const s of sagas) {
    byStatus[s.status] = (byStatus[s.status] ?? 0) + 1;
    if (!TERMINAL_STATUSES.has(s.status)) violations.push(`saga ${s.id} is still ${s.status}`);
    if (s.status === 'PARKED' && !opts.allowParked) violations.push(`saga ${s.id} is parked`);
  }

  const books = await reconcileBooks(apis, { settled: opts.ids === undefined });
  for (const d of books.disagreements)
    if (!opts.ids || concerns(d, opts.ids)) violations.push(`${d.kind}: ${d.message}`);

  const parked = (byStatus.PARKED ?? 0) > 0;
  for (const p of await readStock(apis)) {
    const b = before[p.product_id];
    if (!b) {
      violations.push(`unexpected product ${p.product_id}`);
      continue;
    }
    if (!(opts.allowParked && parked) && p.reserved !== b.reserved)
      violations.push(
        `${p.product_id}: ${p.reserved - b.reserved} reserved by sagas that ended (a reservation outlived its saga)`,
      );
    if (p.available + p.reserved + p.sold !== b.total)
      violations.push(
        `${p.product_id}: stock not conserved (${p.available} available + ${p.reserved} reserved + ${p.sold} sold, was ${b.total})`,
      );
  }
  return { sagas: sagas.length, byStatus, violations };
}
