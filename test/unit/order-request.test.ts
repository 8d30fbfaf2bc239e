import { test } from 'node:test';
import assert from 'node:assert/strict';
import { preferWaitSeconds, toOrderRequest } from '../../src/gateway/order-request.js';
import { dollarsToCents, centsToDollars } from '../../src/gateway/money.js';
import { OrderRefused } from '../../src/gateway/order-refused.js';
import {
  isCustomerId,
  isIdempotencyKey,
  isOrderId,
  isProductId,
  isReasonCode,
  isRequestId,
} from '../../src/contracts/ids.js';
import { LIMITS } from '../../src/contracts/limits.js';

const item = (over: Record<string, unknown> = {}) => ({ product_id: 'prod_1', quantity: 2, price: 50.0, ...over });

test('money: decimal dollars become integer cents, a third decimal is refused', () => {
  assert.equal(dollarsToCents(50), 5000);
  assert.equal(dollarsToCents(0.29), 29);
  assert.equal(dollarsToCents(19.99), 1999);
  // 0.1 + 0.2 is 0.30000000000000004: as JSON that is a price with 17 decimals, refused (issue 11: exactly two).
  assert.equal(dollarsToCents(0.1 + 0.2), undefined);
  assert.equal(dollarsToCents(0.3), 30);
  assert.equal(dollarsToCents(19.999), undefined);
  assert.equal(dollarsToCents(10.000000001), undefined);
  assert.equal(dollarsToCents(1e-9), undefined);
  assert.equal(dollarsToCents(1_000_000), 100_000_000);
  assert.equal(dollarsToCents(Number.NaN), undefined);
  assert.equal(centsToDollars(13000), 130);
});

test('a body the schema accepted becomes an order in cents with its total', () => {
  const r = toOrderRequest({
    customer_id: 'cust_123',
    items: [item(), item({ product_id: 'prod_2', quantity: 1, price: 30 })] as never,
  });
  assert.equal(r.total_cents, 13000);
  assert.deepEqual(r.items[0], { product_id: 'prod_1', quantity: 2, unit_price_cents: 5000 });
});

/** The refusal `fn` throws (a domain error, which the HTTP error table maps): its code and message. */
function thrown(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof OrderRefused, String(err));
    return { code: err.code, message: err.message };
  }
  assert.fail('expected an OrderRefused');
}

test('the money rules a schema cannot state: two decimals, and the order total cap', () => {
  assert.deepEqual(
    thrown(() => toOrderRequest({ customer_id: 'c', items: [item({ price: 10.001 })] as never })),
    {
      code: 'invalid_item',
      message: 'items[0].price must have at most two decimals',
    },
  );
  const huge = Array.from({ length: LIMITS.itemsMax }, () =>
    item({ quantity: LIMITS.quantityMax, price: LIMITS.unitPriceMaxCents / 100 }),
  );
  const e = thrown(() => toOrderRequest({ customer_id: 'c', items: huge }));
  assert.equal(e.code, 'invalid_request');
  assert.match(e.message, /total must be at most 100000000/);
});

test('Prefer: wait=N is parsed, capped, and ignored when malformed', () => {
  assert.equal(preferWaitSeconds('wait=5', 60), 5);
  assert.equal(preferWaitSeconds('respond-async, wait=10', 60), 10);
  assert.equal(preferWaitSeconds('wait=600', 60), 60);
  assert.equal(preferWaitSeconds('wait=abc', 60), undefined);
  assert.equal(preferWaitSeconds(undefined, 60), undefined);
});

test('contracts: ids and header keys are bounded, with the character set each allows', () => {
  assert.ok(isIdempotencyKey('unique-key-001'));
  assert.ok(isIdempotencyKey('with space'));
  assert.ok(!isIdempotencyKey(''));
  assert.ok(!isIdempotencyKey('a'.repeat(256)));
  assert.ok(!isIdempotencyKey('bad\u0001key'));
  assert.ok(isRequestId('r'.repeat(128)) && !isRequestId('r'.repeat(129)));
  assert.ok(isOrderId('2f1c-ab:x.y_z') && !isOrderId('a/b') && !isOrderId('a'.repeat(65)) && !isOrderId(''));
  assert.ok(isProductId('PROD#1') && !isProductId('a b') && !isProductId('é') && !isProductId('p'.repeat(65)));
  assert.ok(isCustomerId('c'.repeat(128)) && !isCustomerId('c'.repeat(129)) && !isCustomerId(' '));
  assert.ok(isReasonCode('payment_declined') && !isReasonCode('Payment Declined') && !isReasonCode('r'.repeat(65)));
});
