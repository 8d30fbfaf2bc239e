import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseOrderRequest, preferWaitSeconds, isValidHeaderKey } from '../../src/gateway/order-request.js';
import { dollarsToCents, centsToDollars } from '../../src/gateway/money.js';

const item = (over: Record<string, unknown> = {}) => ({ product_id: 'prod_1', quantity: 2, price: 50.0, ...over });

test('money: decimal dollars become integer cents, a third decimal is refused', () => {
  assert.equal(dollarsToCents(50), 5000);
  assert.equal(dollarsToCents(0.29), 29);
  assert.equal(dollarsToCents(19.99), 1999);
  assert.equal(dollarsToCents(0.1 + 0.2), 30);
  assert.equal(dollarsToCents(19.999), undefined);
  assert.equal(dollarsToCents(Number.NaN), undefined);
  assert.equal(centsToDollars(13000), 130);
});

test('the original happy-path body parses with the total in cents', () => {
  const r = parseOrderRequest({ customer_id: 'cust_123', items: [item(), item({ product_id: 'prod_2', quantity: 1, price: 30 })] });
  assert.ok(r.ok);
  assert.equal(r.value.total_cents, 13000);
  assert.deepEqual(r.value.items[0], { product_id: 'prod_1', quantity: 2, unit_price_cents: 5000 });
});

test('missing customer or items is invalid_request with the original message', () => {
  for (const body of [{ items: [item()] }, { customer_id: '', items: [item()] }, { customer_id: 'c' }, { customer_id: 'c', items: [] }]) {
    const r = parseOrderRequest(body);
    assert.ok(!r.ok);
    assert.deepEqual(r.error, { status: 400, error: 'invalid_request', message: 'customer_id and items are required' });
  }
});

test('a body that is not an object is invalid_json', () => {
  for (const body of [null, 'x', 3, [1]]) {
    const r = parseOrderRequest(body);
    assert.ok(!r.ok && r.error.error === 'invalid_json');
  }
});

test('every bad item field is invalid_item naming the field', () => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ product_id: '' }, /items\[0\]\.product_id/],
    [{ product_id: 'a b' }, /product_id/],
    [{ quantity: 0 }, /quantity/],
    [{ quantity: -1 }, /quantity/],
    [{ quantity: 1.5 }, /quantity/],
    [{ quantity: '2' }, /quantity/],
    [{ quantity: 10_001 }, /quantity/],
    [{ price: 0 }, /price/],
    [{ price: -5 }, /price/],
    [{ price: '5' }, /price/],
    [{ price: 10.001 }, /two decimals/],
    [{ price: 1_000_000.01 }, /at most 1000000/],
    [{ price: 1e308 }, /at most 1000000/],
  ];
  for (const [over, msg] of cases) {
    const r = parseOrderRequest({ customer_id: 'c', items: [item(over)] });
    assert.ok(!r.ok, JSON.stringify(over));
    assert.equal(r.error.error, 'invalid_item');
    assert.match(r.error.message, msg);
  }
});

test('too many items and absurd totals are refused', () => {
  const many = parseOrderRequest({ customer_id: 'c', items: Array.from({ length: 101 }, () => item()) });
  assert.ok(!many.ok && many.error.error === 'invalid_request');
  const huge = parseOrderRequest({ customer_id: 'c', items: Array.from({ length: 100 }, () => item({ quantity: 10_000, price: 1_000_000 })) });
  assert.ok(!huge.ok && /total/.test(huge.error.message));
});

test('Prefer: wait=N is parsed, capped, and ignored when malformed', () => {
  assert.equal(preferWaitSeconds('wait=5', 60), 5);
  assert.equal(preferWaitSeconds('respond-async, wait=10', 60), 10);
  assert.equal(preferWaitSeconds('wait=600', 60), 60);
  assert.equal(preferWaitSeconds('wait=abc', 60), undefined);
  assert.equal(preferWaitSeconds(undefined, 60), undefined);
});

test('header keys are bounded printable ASCII', () => {
  assert.ok(isValidHeaderKey('unique-key-001'));
  assert.ok(!isValidHeaderKey(''));
  assert.ok(!isValidHeaderKey('a'.repeat(256)));
  assert.ok(!isValidHeaderKey('bad\u0001key'));
});
