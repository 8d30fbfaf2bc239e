import assert from 'node:assert/strict';
import type { Reply } from './system.js';

type Api = (method: string, url: string, body?: unknown, headers?: Record<string, string>) => Promise<Reply>;

/** A system as freshSystem gives it: the public API, and the admin one that lists sagas. */
export interface Apis {
  api: Api;
  admin: Api;
}

export interface InvariantReport {
  sagas: number;
  byStatus: Record<string, number>;
}

const TERMINAL = new Set(['COMPLETED', 'COMPENSATED', 'PARKED', 'RESOLVED']);

async function allSagas({ admin }: Apis): Promise<Array<{ id: string; status: string }>> {
  const out: Array<{ id: string; status: string }> = [];
  let cursor: string | null = null;
  do {
    const r: Reply = await admin('GET', `/api/sagas?limit=500${cursor ? `&cursor=${cursor}` : ''}`);
    assert.equal(r.status, 200);
    out.push(...r.body.sagas);
    cursor = r.body.next_cursor;
  } while (cursor);
  return out;
}

/** Whether every saga has reached a terminal state (for polling before the full check). */
export async function allTerminal(sys: Apis): Promise<boolean> {
  return (await allSagas(sys)).every((s) => TERMINAL.has(s.status));
}

/**
 * Checks DESIGN.md §6 through the API (sagas listed by the admin one, orders and stock the public one): every saga terminal; CONFIRMED iff COMPLETED and
 * CANCELLED iff COMPENSATED; stock conserved (initial = available + reserved + sold, sold = Σ
 * confirmed quantities, nothing left reserved); money conserved (confirmed charged exactly their
 * total, cancelled charged nothing net).
 */
export async function checkInvariants(sys: Apis, initialStock: Record<string, number>, opts: { allowParked?: boolean } = {}): Promise<InvariantReport> {
  const { api } = sys;
  const sagas = await allSagas(sys);
  const byStatus: Record<string, number> = {};
  const soldByOrders: Record<string, number> = {};
  for (const s of sagas) {
    byStatus[s.status] = (byStatus[s.status] ?? 0) + 1;
    assert.ok(TERMINAL.has(s.status), `saga ${s.id} is still ${s.status}`);
    if (!opts.allowParked) assert.notEqual(s.status, 'PARKED', `saga ${s.id} is parked`);
    const o = await api('GET', `/orders/${s.id}`);
    assert.equal(o.status, 200, `order ${s.id}: ${JSON.stringify(o.body)}`);
    if (s.status === 'COMPLETED') {
      assert.equal(o.body.status, 'CONFIRMED', `order ${s.id} of a completed saga`);
      assert.deepEqual(o.body.payment, { status: 'charged', amount: o.body.total }, `payment of confirmed order ${s.id}`);
      for (const item of o.body.items as Array<{ product_id: string; quantity: number }>) {
        soldByOrders[item.product_id] = (soldByOrders[item.product_id] ?? 0) + item.quantity;
      }
    } else if (s.status === 'COMPENSATED') {
      assert.equal(o.body.status, 'CANCELLED', `order ${s.id} of a compensated saga`);
      assert.ok(['none', 'declined', 'refunded'].includes(o.body.payment.status), `cancelled order ${s.id} is ${o.body.payment.status}`);
    }
  }
  const products = (await api('GET', '/products')).body.products as Array<{ product_id: string; available: number; reserved: number; sold: number }>;
  for (const p of products) {
    const initial = initialStock[p.product_id];
    assert.ok(initial !== undefined, `unexpected product ${p.product_id}`);
    if (!opts.allowParked) assert.equal(p.reserved, 0, `${p.product_id}: a reservation outlived its saga`);
    assert.equal(p.sold, soldByOrders[p.product_id] ?? 0, `${p.product_id}: sold stock vs confirmed orders`);
    assert.equal(p.available + p.reserved + p.sold, initial, `${p.product_id}: stock not conserved`);
  }
  return { sagas: sagas.length, byStatus };
}
