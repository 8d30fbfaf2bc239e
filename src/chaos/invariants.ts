import type { JsonCall, JsonReply } from '../platform/json-client.js';
/**
 * DESIGN.md §6's invariants, checked through the gateway's APIs (sagas from the admin API, orders
 * and stock from the public one): every saga terminal; CONFIRMED iff COMPLETED and CANCELLED iff
 * COMPENSATED; stock conserved (total = available + reserved + sold, sold grown by exactly the
 * confirmed quantities, nothing left reserved); money conserved (a confirmed order charged its total
 * once, a cancelled one charged nothing net). Used by `sagas chaos` and by the tests and the soak
 * (test/helpers/invariants.ts). Returns the violations rather than throwing.
 */

export type ApiReply = JsonReply;
export type ApiCall = JsonCall;

export interface Apis {
  /** The public API (orders, products). */
  api: ApiCall;
  /** The admin API (sagas). */
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
    const r: ApiReply = await apis.admin('GET', `/api/sagas?limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    if (r.status !== 200) throw new Error(`GET /api/sagas answered ${r.status}: ${JSON.stringify(r.body).slice(0, 200)}`);
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
  return Object.fromEntries(stock.map((p) => [p.product_id, { total: p.available + p.reserved + p.sold, sold: p.sold, reserved: p.reserved }]));
}

/**
 * Checks the invariants over every saga (or those of `ids`: the orders of one run, on a system
 * that had others before). `allowParked`: a PARKED saga (and the stock it still holds reserved)
 * is not a violation.
 */
export async function checkInvariants(apis: Apis, before: StockBaseline, opts: { ids?: ReadonlySet<string>; allowParked?: boolean } = {}): Promise<InvariantResult> {
  const violations: string[] = [];
  const sagas = await listSagas(apis, opts.ids);
  const byStatus: Record<string, number> = {};
  const sold: Record<string, number> = {};
  for (const s of sagas) {
    byStatus[s.status] = (byStatus[s.status] ?? 0) + 1;
    if (!TERMINAL_STATUSES.has(s.status)) violations.push(`saga ${s.id} is still ${s.status}`);
    if (s.status === 'PARKED' && !opts.allowParked) violations.push(`saga ${s.id} is parked`);
    const o = await apis.api('GET', `/orders/${s.id}`);
    if (o.status !== 200) {
      violations.push(`order ${s.id}: GET /orders answered ${o.status}`);
      continue;
    }
    const payment = o.body.payment as { status: string; amount?: number } | undefined;
    if (s.status === 'COMPLETED') {
      if (o.body.status !== 'CONFIRMED') violations.push(`order ${s.id} of a completed saga is ${o.body.status}`);
      if (payment?.status !== 'charged' || payment.amount !== o.body.total) violations.push(`confirmed order ${s.id} (total ${o.body.total}) has payment ${JSON.stringify(payment)}`);
      for (const item of o.body.items as Array<{ product_id: string; quantity: number }>) sold[item.product_id] = (sold[item.product_id] ?? 0) + item.quantity;
    } else if (s.status === 'COMPENSATED') {
      if (o.body.status !== 'CANCELLED') violations.push(`order ${s.id} of a compensated saga is ${o.body.status}`);
      if (!['none', 'declined', 'refunded'].includes(payment?.status ?? '')) violations.push(`cancelled order ${s.id} has payment ${payment?.status}`);
    }
  }
  const parked = (byStatus.PARKED ?? 0) > 0;
  for (const p of await readStock(apis)) {
    const b = before[p.product_id];
    if (!b) {
      violations.push(`unexpected product ${p.product_id}`);
      continue;
    }
    if (!(opts.allowParked && parked) && p.reserved !== b.reserved) violations.push(`${p.product_id}: ${p.reserved - b.reserved} reserved by sagas that ended (a reservation outlived its saga)`);
    if (p.sold - b.sold !== (sold[p.product_id] ?? 0)) violations.push(`${p.product_id}: sold grew by ${p.sold - b.sold}, confirmed orders hold ${sold[p.product_id] ?? 0}`);
    if (p.available + p.reserved + p.sold !== b.total) violations.push(`${p.product_id}: stock not conserved (${p.available} available + ${p.reserved} reserved + ${p.sold} sold, was ${b.total})`);
  }
  return { sagas: sagas.length, byStatus, violations };
}
