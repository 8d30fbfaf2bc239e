import { ConfigError } from '../../platform/errors.js';
import { isProductId } from '../../contracts/ids.js';
import { dollarsToCents } from '../../contracts/money.js';
import { LIMITS, checkItemCount, checkOrderId, checkStockLine, type StockLine } from '../shared/validate.js';

/** Stock rules, free of I/O: validation, summing lines, and the HELD → RELEASED | COMMITTED machine. */

export type { StockLine };
export type ReservationStatus = 'HELD' | 'RELEASED' | 'COMMITTED';

/** A product as INVENTORY_CATALOG may give it: its initial stock, and its unit price in cents. */
export interface CatalogProduct {
  stock: number;
  /** Absent: the catalog gives no price for it. */
  priceCents?: number;
}

/** Per product id, the initial stock alone (the original form) or a CatalogProduct. */
export type Catalog = Readonly<Record<string, number | CatalogProduct>>;

/** One catalog entry in its full form. */
export function catalogProduct(entry: number | CatalogProduct): { stock: number; priceCents: number | undefined } {
  return typeof entry === 'number'
    ? { stock: entry, priceCents: undefined }
    : { stock: entry.stock, priceCents: entry.priceCents };
}

export const DEFAULT_CATALOG: Catalog = Object.freeze({ prod_1: 15, prod_2: 10, prod_3: 0 });
export const MAX_INITIAL_STOCK = 1_000_000_000;

export interface ReserveInput {
  orderId: string;
  items: readonly StockLine[];
}

export interface ValidReserve {
  orderId: string;
  /** One line per product, quantities summed, sorted by product id. */
  lines: StockLine[];
}

export function validateReserve(input: ReserveInput): ValidReserve {
  const orderId = checkOrderId(input.orderId);
  checkItemCount(input.items.length);
  input.items.forEach((line, i) => checkStockLine(line, `items[${i}]`));
  return { orderId, lines: sumLines(input.items) };
}

/**
 * Duplicate lines of a product are summed before any check, so that two lines of 6 against a
 * stock of 10 are judged as 12 (the original judged each line alone and went negative).
 */
export function sumLines(items: readonly StockLine[]): StockLine[] {
  const sums = new Map<string, number>();
  for (const { productId, quantity } of items) sums.set(productId, (sums.get(productId) ?? 0) + quantity);
  return [...sums.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([productId, quantity]) => ({ productId, quantity }));
}

export interface ReservationState {
  tombstoned: boolean;
  status: ReservationStatus | undefined;
  /** The lines the order's reservation holds (summed and sorted, as validateReserve makes them); [] without one. */
  lines: readonly StockLine[];
}

/** Two summed-and-sorted line sets are the same reservation. */
export function sameLines(a: readonly StockLine[], b: readonly StockLine[]): boolean {
  return a.length === b.length && a.every((l, i) => l.productId === b[i]?.productId && l.quantity === b[i]?.quantity);
}

export type ReserveDecision =
  /** Released (or tombstoned) before this reserve arrived: a late action, refused. */
  | { outcome: 'released' }
  | { outcome: 'reserved'; hold: boolean }
  /**
   * The order already holds (or sold) other lines: answering RESERVED would let the saga go on as
   * if its own lines were held, so the contradiction is refused and nothing changes.
   */
  | { outcome: 'conflict' }
  | { outcome: 'unknown_product' | 'insufficient_stock'; productIds: string[] };

/**
 * `available` maps each product id of `lines` to its available stock, or has no entry for an
 * unknown product. Unknown products are reported before shortages: they are a different mistake.
 */
export function decideReserve(
  state: ReservationState,
  lines: readonly StockLine[],
  available: ReadonlyMap<string, number>,
): ReserveDecision {
  if (state.tombstoned || state.status === 'RELEASED') return { outcome: 'released' };
  if (state.status === 'HELD' || state.status === 'COMMITTED') {
    return sameLines(state.lines, lines) ? { outcome: 'reserved', hold: false } : { outcome: 'conflict' };
  }
  const unknown = lines.filter((l) => !available.has(l.productId)).map((l) => l.productId);
  if (unknown.length > 0) return { outcome: 'unknown_product', productIds: unknown.sort() };
  const short = lines.filter((l) => (available.get(l.productId) ?? 0) < l.quantity).map((l) => l.productId);
  if (short.length > 0) return { outcome: 'insufficient_stock', productIds: short.sort() };
  return { outcome: 'reserved', hold: true };
}

export type ReleaseDecision =
  | { outcome: 'released'; giveBack: boolean }
  | { outcome: 'already_committed' }
  /** Nothing was reserved: a tombstone must refuse a late reserve. */
  | { outcome: 'nothing_reserved' };

export function decideRelease(status: ReservationStatus | undefined): ReleaseDecision {
  switch (status) {
    case 'HELD':
      return { outcome: 'released', giveBack: true };
    case 'RELEASED':
      return { outcome: 'released', giveBack: false };
    case 'COMMITTED':
      return { outcome: 'already_committed' };
    case undefined:
      return { outcome: 'nothing_reserved' };
  }
}

export type CommitDecision = { outcome: 'committed'; sell: boolean } | { outcome: 'not_reserved' };

export function decideCommit(status: ReservationStatus | undefined): CommitDecision {
  if (status === 'HELD') return { outcome: 'committed', sell: true };
  if (status === 'COMMITTED') return { outcome: 'committed', sell: false };
  return { outcome: 'not_reserved' };
}

/** The catalog file's form, for messages. */
export const CATALOG_FORM = '{"<product_id>": <initial stock> or {"stock": <initial stock>, "price": <dollars>}}';

/**
 * Validates a parsed INVENTORY_CATALOG file: `{"<product_id>": <entry>, ...}`, where an entry is
 * the initial stock (`7`, the original form) or `{"stock": 7, "price": 12.5}`. A price is decimal
 * dollars as the HTTP API takes an order line's: a JSON number with at most two decimals, from
 * 0.01 to the unit price cap; it is kept in cents. `source` names the file in the error so the
 * operator knows what to fix.
 */
export function parseCatalog(value: unknown, source: string): Catalog {
  const fail = (message: string) => new ConfigError('INVENTORY_CATALOG', `${source}: ${message}`);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw fail(`expected a JSON object of ${CATALOG_FORM}`);
  }
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 0) throw fail('lists no products');
  const checkStock = (productId: string, stock: unknown): number => {
    if (typeof stock !== 'number' || !Number.isInteger(stock) || stock < 0 || stock > MAX_INITIAL_STOCK) {
      throw fail(
        `stock of "${productId}" must be an integer from 0 to ${MAX_INITIAL_STOCK}, got ${JSON.stringify(stock)}`,
      );
    }
    return stock;
  };
  const checkPrice = (productId: string, price: unknown): number => {
    const cents = typeof price === 'number' ? dollarsToCents(price) : undefined;
    if (cents === undefined || cents < 1 || cents > LIMITS.unitPriceMaxCents) {
      throw fail(
        `price of "${productId}" must be a number of dollars with at most two decimals, from 0.01 to ${LIMITS.unitPriceMaxCents / 100}, got ${JSON.stringify(price)}`,
      );
    }
    return cents;
  };
  const products = entries.map(([productId, entry]): [string, number | CatalogProduct] => {
    if (!isProductId(productId)) {
      throw fail(`product id "${productId}" must be 1-${LIMITS.productIdMax} printable characters without spaces`);
    }
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry))
      return [productId, checkStock(productId, entry)];
    const unknown = Object.keys(entry).filter((k) => k !== 'stock' && k !== 'price');
    if (unknown.length > 0)
      throw fail(
        `"${productId}" has unknown field(s) ${unknown.map((k) => JSON.stringify(k)).join(', ')}; expected "stock" and "price"`,
      );
    const { stock, price } = entry as { stock?: unknown; price?: unknown };
    if (!('stock' in entry)) throw fail(`"${productId}" has no "stock"`);
    const product: CatalogProduct = { stock: checkStock(productId, stock) };
    if ('price' in entry) product.priceCents = checkPrice(productId, price);
    return [productId, Object.freeze(product)];
  });
  // fromEntries defines own properties, so even an id like "__proto__" stays a plain entry.
  return Object.freeze(Object.fromEntries(products) as Record<string, number | CatalogProduct>);
}
