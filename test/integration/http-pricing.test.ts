import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import type { Catalog } from '../../src/services/inventory/domain.js';
import { gatewayApp, type GatewayApp } from '../helpers/gateway-app.js';

/**
 * PRICING=catalog through `app.inject()`: an order is placed only at the inventory's current
 * catalog prices; a refusal stores nothing and leaves its idempotency key free.
 */

const CATALOG: Catalog = {
  prod_1: { stock: 15, priceCents: 2500 },
  prod_2: { stock: 10, priceCents: 1999 },
  prod_3: 5,
};

const line = (product_id: string, price: number, quantity = 1) => ({ product_id, quantity, price });
const post = (items: unknown[], headers: Record<string, string> = {}): InjectOptions => ({
  method: 'POST',
  url: '/orders',
  payload: { customer_id: 'cust_1', items },
  headers,
});
const json = (r: LightMyRequestResponse) => r.json<Record<string, unknown>>();
const sagaCount = async (h: GatewayApp) => (await h.log.list({ limit: 500 })).sagas.length;

describe('PRICING=catalog', () => {
  let g: GatewayApp;
  before(async () => {
    g = await gatewayApp({ catalog: CATALOG, pricing: 'catalog' });
  });
  after(() => g.close());

  test('a line off the catalog price: 409 price_mismatch with the current prices, nothing stored', async () => {
    const before = await sagaCount(g);
    const res = await g.app.inject(post([line('prod_2', 19.99, 2), line('prod_1', 20)]));
    assert.equal(res.statusCode, 409, res.body);
    assert.deepEqual(json(res), {
      error: 'price_mismatch',
      message: 'prices differ from the catalog (items[1].price is 20, prod_1 costs 25); nothing was stored',
      prices: [
        { product_id: 'prod_2', price: 19.99 },
        { product_id: 'prod_1', price: 25 },
      ],
    });
    assert.equal(res.headers['retry-after'], undefined, 'a retry of the same body cannot help');
    assert.equal(await sagaCount(g), before);
  });

  test('a product the catalog gives no price (or does not know) is refused too, its price null', async () => {
    const res = await g.app.inject(post([line('prod_1', 25), line('prod_3', 1), line('nope', 1)]));
    assert.equal(res.statusCode, 409, res.body);
    assert.equal(json(res).error, 'price_mismatch');
    assert.match(
      json(res).message as string,
      /items\[1\]: prod_3 has no catalog price; items\[2\]: nope has no catalog price/,
    );
    assert.deepEqual(json(res).prices, [
      { product_id: 'prod_1', price: 25 },
      { product_id: 'prod_3', price: null },
      { product_id: 'nope', price: null },
    ]);
  });

  test('every line at the catalog price: accepted, and the saga completes', async () => {
    const res = await g.app.inject(post([line('prod_1', 25, 2), line('prod_2', 19.99)], { prefer: 'wait=10' }));
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(json(res).status, 'CONFIRMED');
    assert.equal(json(res).total, 69.99);
  });

  test('GET /products shows the catalog prices (none for an unpriced product)', async () => {
    const { products } = json(await g.app.inject({ method: 'GET', url: '/products' })) as {
      products: Array<Record<string, unknown>>;
    };
    assert.deepEqual(
      products.map((p) => [p.product_id, p.price]),
      [
        ['prod_1', 25],
        ['prod_2', 19.99],
        ['prod_3', undefined],
      ],
    );
  });

  test('a refused key is not kept: the same request is refused again (not replayed), then accepted once the prices agree', async () => {
    const h = await gatewayApp({ catalog: CATALOG, pricing: 'catalog' });
    try {
      const req = post([line('prod_1', 30)], { 'x-idempotency-key': 'refused-then-accepted' });
      for (let i = 0; i < 2; i++) {
        const res = await h.app.inject(req);
        assert.equal(res.statusCode, 409, res.body);
        assert.equal(json(res).error, 'price_mismatch');
        assert.equal(res.headers['idempotent-replayed'], undefined);
      }
      assert.equal(await sagaCount(h), 0);
      h.setCatalogPrices({ prod_1: { stock: 15, priceCents: 3000 } });
      const accepted = await h.app.inject(req);
      assert.equal(accepted.statusCode, 201, accepted.body);
      assert.equal(accepted.headers['idempotent-replayed'], undefined);
      assert.equal(await sagaCount(h), 1);
    } finally {
      await h.close();
    }
  });

  test('a repeated key of an accepted order answers that order even after its prices changed; a new order is refused', async () => {
    const h = await gatewayApp({ catalog: CATALOG, pricing: 'catalog' });
    try {
      const req = post([line('prod_1', 25)], { 'x-idempotency-key': 'accepted-then-repriced' });
      const first = await h.app.inject(req);
      assert.equal(first.statusCode, 201, first.body);
      h.setCatalogPrices({ prod_1: { stock: 15, priceCents: 2700 } });
      const replay = await h.app.inject(req);
      assert.equal(replay.statusCode, 201, replay.body);
      assert.equal(replay.headers['idempotent-replayed'], 'true');
      assert.equal(json(replay).id, json(first).id);
      // The fast path forgotten (Redis flushed): the saga log still answers the stored order.
      await h.idempotency.abandon('accepted-then-repriced');
      const fromLog = await h.app.inject(req);
      assert.equal(fromLog.statusCode, 201, fromLog.body);
      assert.equal(json(fromLog).id, json(first).id);
      assert.equal(await sagaCount(h), 1);
      const fresh = await h.app.inject(post([line('prod_1', 25)]));
      assert.equal(fresh.statusCode, 409, fresh.body);
      assert.deepEqual(json(fresh).prices, [{ product_id: 'prod_1', price: 27 }]);
    } finally {
      await h.close();
    }
  });

  test('the inventory unreachable: 503 participant_unavailable, nothing stored', async () => {
    const h = await gatewayApp({ catalog: CATALOG, pricing: 'catalog' });
    try {
      await h.stopParticipants();
      const res = await h.app.inject(post([line('prod_1', 25)]));
      assert.equal(res.statusCode, 503, res.body);
      assert.equal(json(res).error, 'participant_unavailable');
      assert.equal(res.headers['retry-after'], '1');
      assert.equal(await sagaCount(h), 0);
    } finally {
      await h.close();
    }
  });
});

describe('PRICING=client (the default)', () => {
  test("the line's price is taken as sent, catalog prices or not", async () => {
    const h = await gatewayApp({ catalog: CATALOG });
    try {
      const res = await h.app.inject(post([line('prod_1', 1), line('prod_3', 2)], { prefer: 'wait=10' }));
      assert.equal(res.statusCode, 201, res.body);
      assert.equal(json(res).status, 'CONFIRMED');
      assert.equal(json(res).total, 3);
    } finally {
      await h.close();
    }
  });
});
