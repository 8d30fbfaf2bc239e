import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { OrderLine } from '../../src/contracts/order.js';
import { comparePrices, priceMismatchError } from '../../src/gateway/pricing.js';
import { toHttpError } from '../../src/gateway/http/errors.js';

const line = (product_id: string, unit_price_cents: number, quantity = 1): OrderLine => ({
  product_id,
  quantity,
  unit_price_cents,
});
const catalog = new Map([
  ['prod_1', 2500],
  ['prod_2', 1999],
]);

describe('comparePrices (PRICING=catalog)', () => {
  test('every line at its catalog price: no mismatch, whatever the quantities', () => {
    assert.equal(
      comparePrices([line('prod_1', 2500, 3), line('prod_2', 1999), line('prod_1', 2500)], catalog),
      undefined,
    );
  });

  test('a line off by a cent, either way, is a mismatch; the prices list each product once, in the order of the lines', () => {
    assert.deepEqual(comparePrices([line('prod_2', 1999), line('prod_1', 2501), line('prod_2', 1998)], catalog), {
      lines: [
        { index: 1, product_id: 'prod_1', sent_cents: 2501, catalog_cents: 2500 },
        { index: 2, product_id: 'prod_2', sent_cents: 1998, catalog_cents: 1999 },
      ],
      prices: [
        { product_id: 'prod_2', price_cents: 1999 },
        { product_id: 'prod_1', price_cents: 2500 },
      ],
    });
  });

  test('a product without a catalog price (unpriced or unknown) never matches', () => {
    assert.deepEqual(comparePrices([line('prod_1', 2500), line('prod_9', 100)], catalog), {
      lines: [{ index: 1, product_id: 'prod_9', sent_cents: 100, catalog_cents: null }],
      prices: [
        { product_id: 'prod_1', price_cents: 2500 },
        { product_id: 'prod_9', price_cents: null },
      ],
    });
    assert.equal(comparePrices([line('prod_1', 2500)], new Map())?.lines.length, 1);
  });
});

describe('priceMismatchError', () => {
  test('409 price_mismatch naming each differing line, with the current prices in dollars (null: none)', () => {
    const mismatch = comparePrices([line('prod_1', 2000), line('prod_2', 1999), line('prod_9', 5)], catalog);
    assert.ok(mismatch);
    const e = priceMismatchError(mismatch);
    assert.equal(e.code, 'price_mismatch');
    assert.equal(toHttpError(e).status, 409, 'the error table maps it to 409');
    assert.equal(
      e.message,
      'prices differ from the catalog (items[0].price is 20, prod_1 costs 25; items[2]: prod_9 has no catalog price); nothing was stored',
    );
    assert.deepEqual(e.fields, {
      prices: [
        { product_id: 'prod_1', price: 25 },
        { product_id: 'prod_2', price: 19.99 },
        { product_id: 'prod_9', price: null },
      ],
    });
  });
});
