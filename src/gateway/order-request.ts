import { LIMITS } from '../contracts/limits.js';
import type { OrderLine, OrderRequest } from '../contracts/order.js';
import { dollarsToCents } from './money.js';
import { OrderRefused } from './order-refused.js';
import type { OrderBody } from './http/schemas.js';

/**
 * The money rules a schema cannot state, on a body the schema already accepted: prices have at
 * most two decimals, and the order's total stays under the cap every participant accepts.
 * Pure; throws OrderRefused.
 */
export function toOrderRequest(body: OrderBody): OrderRequest {
  const items: OrderLine[] = [];
  let total = 0;
  for (const [i, item] of body.items.entries()) {
    const cents = dollarsToCents(item.price);
    if (cents === undefined) throw new OrderRefused('invalid_item', `items[${i}].price must have at most two decimals`);
    total += cents * item.quantity;
    items.push({ product_id: item.product_id, quantity: item.quantity, unit_price_cents: cents });
  }
  if (total > LIMITS.orderTotalMaxCents)
    throw new OrderRefused('invalid_request', `the order total must be at most ${LIMITS.orderTotalMaxCents / 100}`);
  return { customer_id: body.customer_id, items, total_cents: total };
}

/** RFC 7240 `Prefer: wait=N`, capped; anything unparseable is ignored, as the RFC asks. */
export function preferWaitSeconds(header: string | string[] | undefined, maxSeconds: number): number | undefined {
  const raw = Array.isArray(header) ? header.join(',') : header;
  if (!raw) return undefined;
  for (const pref of raw.split(',')) {
    const m = /^\s*wait\s*=\s*"?(\d{1,6})"?\s*$/i.exec(pref.split(';')[0] ?? '');
    if (m) return Math.min(Number(m[1]), maxSeconds);
  }
  return undefined;
}
