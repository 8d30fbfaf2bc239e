/**
 * The orders the bench places: the same generator feeds the HTTP phase and the gRPC floor,
 * so both do the same work. Amounts are integer cents here and dollars only on the wire.
 */

export type Mix = 'happy' | 'mixed';
/** What an order is built to do: confirm, be declined by payment, or find no stock. */
export type OrderKind = 'happy' | 'declined' | 'no_stock';

export const EXPECTED: Readonly<Record<OrderKind, { status: 'CONFIRMED' | 'CANCELLED'; reason?: string }>> = {
  happy: { status: 'CONFIRMED' },
  declined: { status: 'CANCELLED', reason: 'payment_declined' },
  no_stock: { status: 'CANCELLED', reason: 'insufficient_stock' },
};

export interface BenchLine {
  productId: string;
  quantity: number;
  unitPriceCents: number;
}

export interface BenchOrder {
  kind: OrderKind;
  customerId: string;
  items: BenchLine[];
  totalCents: number;
}

/** Which products the generator may use. */
export interface ProductPool {
  /** Products with plenty of stock. */
  stocked: readonly string[];
  /** A line that cannot be reserved (a product with too little stock), or none if there is none. */
  short?: { productId: string; quantity: number };
  /** Why the figures may mislead (e.g. too little stock for happy orders to stay happy). */
  warning?: string;
}

/** Catalog of a system the bench starts itself: `count` products of `stock` each, plus one empty. */
export const OWN_PRODUCT_PREFIX = 'bench_p';
export const OWN_EMPTY_PRODUCT = 'bench_empty';

export function ownCatalog(count = 1000, stock = 1_000_000_000): Record<string, number> {
  const catalog: Record<string, number> = {};
  for (let i = 0; i < count; i++) catalog[`${OWN_PRODUCT_PREFIX}${String(i).padStart(4, '0')}`] = stock;
  catalog[OWN_EMPTY_PRODUCT] = 0;
  return catalog;
}

export function ownPool(catalog: Record<string, number>): ProductPool {
  return {
    stocked: Object.keys(catalog).filter((k) => (catalog[k] ?? 0) > 0),
    short: { productId: OWN_EMPTY_PRODUCT, quantity: 1 },
  };
}

/**
 * A pool from a running system's `GET /products`: the products with the most stock, and one
 * whose stock is below what an order can ask for (the API allows a quantity up to 10 000).
 */
export function poolFromProducts(products: readonly { product_id: string; available: number }[]): ProductPool {
  const byStock = [...products].sort((a, b) => b.available - a.available);
  const stocked = byStock
    .filter((p) => p.available >= 1000)
    .slice(0, 1000)
    .map((p) => p.product_id);
  const fallback = stocked.length
    ? stocked
    : byStock
        .filter((p) => p.available > 0)
        .slice(0, 10)
        .map((p) => p.product_id);
  const low = [...byStock].reverse().find((p) => p.available < 10_000);
  return {
    stocked: fallback,
    short: low ? { productId: low.product_id, quantity: Math.max(1, low.available + 1) } : undefined,
    warning: stocked.length
      ? undefined
      : 'no product has 1000 units or more: stock will run out and happy orders will be cancelled; start the system with INVENTORY_CATALOG (see bench/README.md)',
  };
}

export type Random = () => number;

/** The mix: `happy` only, or ~80 % happy, 10 % declined (> $500), 10 % insufficient stock. */
export function pickKind(mix: Mix, random: Random): OrderKind {
  if (mix === 'happy') return 'happy';
  const r = random();
  return r < 0.8 ? 'happy' : r < 0.9 ? 'declined' : 'no_stock';
}

const pick = <T>(xs: readonly T[], random: Random): T => xs[Math.floor(random() * xs.length) % xs.length] as T;

/** 1-3 lines of stocked products, each $1.00-$50.00 × 1-3: always under the $500 charge limit. */
export function makeOrder(kind: OrderKind, pool: ProductPool, seq: number, random: Random): BenchOrder {
  if (pool.stocked.length === 0) throw new Error('no product with stock to order');
  const items: BenchLine[] = [];
  const lines = 1 + Math.floor(random() * 3);
  for (let i = 0; i < lines; i++) {
    items.push({
      productId: pick(pool.stocked, random),
      quantity: 1 + Math.floor(random() * 3),
      unitPriceCents: 100 + Math.floor(random() * 4901),
    });
  }
  if (kind === 'declined')
    items.splice(0, items.length, { productId: pick(pool.stocked, random), quantity: 1, unitPriceCents: 60_000 });
  if (kind === 'no_stock' && pool.short)
    items.push({ productId: pool.short.productId, quantity: pool.short.quantity, unitPriceCents: 500 });
  const totalCents = items.reduce((s, l) => s + l.quantity * l.unitPriceCents, 0);
  return { kind, customerId: `bench_${seq % 1000}`, items, totalCents };
}

/** The POST /orders body: dollars, as the API speaks them. */
export function httpBody(order: BenchOrder): string {
  return JSON.stringify({
    customer_id: order.customerId,
    items: order.items.map((l) => ({ product_id: l.productId, quantity: l.quantity, price: l.unitPriceCents / 100 })),
  });
}
