import { dollarsToCents, MAX_PRICE_CENTS } from './money.js';

export const LIMITS = {
  maxItems: 100,
  maxQuantity: 10_000,
  maxIdLength: 64,
  maxCustomerIdLength: 128,
  maxTotalCents: 10_000_000_000, // $100,000,000.00 an order
} as const;

export type OrderLine = {
  product_id: string;
  quantity: number;
  unit_price_cents: number;
};

export interface OrderRequest {
  customer_id: string;
  items: OrderLine[];
  total_cents: number;
}

export interface ApiError {
  status: number;
  error: string;
  message: string;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: ApiError };

const bad = (error: string, message: string): Parsed<never> => ({ ok: false, error: { status: 400, error, message } });

const ID_PATTERN = /^[\x21-\x7e]+$/; // printable ASCII, no spaces

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Validates a POST /orders body. Pure; unknown fields are ignored, as the original did. */
export function parseOrderRequest(body: unknown): Parsed<OrderRequest> {
  if (!isRecord(body)) return bad('invalid_json', 'the body must be a JSON object');
  const { customer_id, items } = body;
  if (typeof customer_id !== 'string' || customer_id.trim() === '' || items === undefined || items === null ||
      (Array.isArray(items) && items.length === 0)) {
    return bad('invalid_request', 'customer_id and items are required');
  }
  if (customer_id.length > LIMITS.maxCustomerIdLength || !ID_PATTERN.test(customer_id)) {
    return bad('invalid_request', `customer_id must be 1-${LIMITS.maxCustomerIdLength} printable characters without spaces`);
  }
  if (!Array.isArray(items)) return bad('invalid_request', 'items must be an array');
  if (items.length > LIMITS.maxItems) return bad('invalid_request', `an order has at most ${LIMITS.maxItems} items`);
  const lines: OrderLine[] = [];
  let total = 0;
  for (const [i, item] of items.entries()) {
    const where = `items[${i}]`;
    if (!isRecord(item)) return bad('invalid_item', `${where} must be an object with product_id, quantity and price`);
    const { product_id, quantity, price } = item;
    if (typeof product_id !== 'string' || product_id === '' || product_id.length > LIMITS.maxIdLength || !ID_PATTERN.test(product_id)) {
      return bad('invalid_item', `${where}.product_id must be 1-${LIMITS.maxIdLength} printable characters without spaces`);
    }
    if (typeof quantity !== 'number' || !Number.isInteger(quantity) || quantity <= 0 || quantity > LIMITS.maxQuantity) {
      return bad('invalid_item', `${where}.quantity must be an integer from 1 to ${LIMITS.maxQuantity}`);
    }
    if (typeof price !== 'number' || !(price > 0)) return bad('invalid_item', `${where}.price must be a positive number`);
    // The bound first: an absurd number has no meaningful decimals to complain about.
    if (price > MAX_PRICE_CENTS / 100) return bad('invalid_item', `${where}.price must be at most ${MAX_PRICE_CENTS / 100}`);
    const cents = dollarsToCents(price);
    if (cents === undefined) return bad('invalid_item', `${where}.price must have at most two decimals`);
    total += cents * quantity;
    lines.push({ product_id, quantity, unit_price_cents: cents });
  }
  if (total > LIMITS.maxTotalCents) return bad('invalid_request', `the order total must be at most ${LIMITS.maxTotalCents / 100}`);
  return { ok: true, value: { customer_id, items: lines, total_cents: total } };
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

export const MAX_HEADER_KEY_LENGTH = 255;

/** An idempotency or request id header value: 1-255 printable ASCII characters. */
export function isValidHeaderKey(v: string): boolean {
  return v.length > 0 && v.length <= MAX_HEADER_KEY_LENGTH && /^[\x20-\x7e]+$/.test(v);
}
