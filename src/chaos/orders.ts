/**
 * The chaos runner's load: orders of every kind (happy, declined by the payment service, short of
 * stock), from a small seeded generator so a run can be replayed.
 */

/** The catalog of a system the runner starts: prod_3 is out of stock. */
export const CHAOS_CATALOG: Readonly<Record<string, number>> = { prod_1: 100_000, prod_2: 100_000, prod_3: 0 };

export type OrderKind = 'happy' | 'declined' | 'no_stock';

export interface OrderBody {
  customer_id: string;
  items: Array<{ product_id: string; quantity: number; price: number }>;
}

/** A linear congruential generator: deterministic from `seed`. */
export function seededRandom(seed: number): () => number {
  let state = seed % 2 ** 31;
  return () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

/** Order `i`: 3 in 5 happy, 1 in 5 declined (over the payment limit), 1 in 5 short of stock. */
export function chaosOrder(i: number, random: () => number): { kind: OrderKind; body: OrderBody } {
  const r = random();
  const kind: OrderKind = r < 0.6 ? 'happy' : r < 0.8 ? 'declined' : 'no_stock';
  const customer_id = `chaos_${i}`;
  if (kind === 'happy')
    return {
      kind,
      body: {
        customer_id,
        items: [
          { product_id: random() < 0.5 ? 'prod_1' : 'prod_2', quantity: 1 + Math.floor(random() * 3), price: 19.99 },
        ],
      },
    };
  if (kind === 'declined')
    return { kind, body: { customer_id, items: [{ product_id: 'prod_1', quantity: 1, price: 600 }] } };
  return { kind, body: { customer_id, items: [{ product_id: 'prod_3', quantity: 1, price: 5 }] } };
}
