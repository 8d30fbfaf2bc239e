import type { OrderLine } from '../contracts/order.js';
import { centsToDollars } from './money.js';
import { OrderRefused } from './order-refused.js';

/**
 * Whose prices an order is placed at (PRICING): `client`, the original's behaviour, takes each
 * line's price as sent; `catalog` refuses an order unless every line's price is the inventory's
 * current catalog price of its product.
 */
export const PRICING_MODES = ['client', 'catalog'] as const;
export type Pricing = (typeof PRICING_MODES)[number];

/** A product's current catalog price in cents; null when the catalog gives it none (or does not list it). */
export interface CatalogPrice {
  product_id: string;
  price_cents: number | null;
}

export interface PriceMismatch {
  /** Each line whose price is not its product's catalog price. */
  lines: Array<{ index: number; product_id: string; sent_cents: number; catalog_cents: number | null }>;
  /** The catalog price of every product of the order, once each, in the order's order. */
  prices: CatalogPrice[];
}

/**
 * The lines of an order whose price is not the catalog's. `catalog` maps a product id to its
 * price in cents; a product without an entry has no catalog price, and a line of it never
 * matches: under catalog pricing nothing is sold at a price the catalog does not state.
 * Undefined when every line matches. Pure.
 */
export function comparePrices(
  items: readonly OrderLine[],
  catalog: ReadonlyMap<string, number>,
): PriceMismatch | undefined {
  const lines: PriceMismatch['lines'] = [];
  const prices = new Map<string, number | null>();
  for (const [index, { product_id, unit_price_cents }] of items.entries()) {
    const current = catalog.get(product_id) ?? null;
    prices.set(product_id, current);
    if (current !== unit_price_cents)
      lines.push({ index, product_id, sent_cents: unit_price_cents, catalog_cents: current });
  }
  if (lines.length === 0) return undefined;
  return { lines, prices: [...prices].map(([product_id, price_cents]) => ({ product_id, price_cents })) };
}

/** The 409 a mismatch answers: which lines differ, and the current prices in the body (dollars, null: none). */
export function priceMismatchError({ lines, prices }: PriceMismatch): OrderRefused {
  const differences = lines.map(({ index, product_id, sent_cents, catalog_cents }) =>
    catalog_cents === null
      ? `items[${index}]: ${product_id} has no catalog price`
      : `items[${index}].price is ${centsToDollars(sent_cents)}, ${product_id} costs ${centsToDollars(catalog_cents)}`,
  );
  return new OrderRefused(
    'price_mismatch',
    `prices differ from the catalog (${differences.join('; ')}); nothing was stored`,
    {
      prices: prices.map(({ product_id, price_cents }) => ({
        product_id,
        price: price_cents === null ? null : centsToDollars(price_cents),
      })),
    },
  );
}
