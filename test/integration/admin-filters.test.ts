/**
 * The saga list's filters through the admin API (issue 12 part 2): customer, step, time range and
 * id prefix, alone and together, paged with cursors, each bad value a clear 400; the PARKED queue
 * longest parked first. In-process (inject) over real participants and a SQLite saga log.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { gatewayApp, type GatewayApp } from '../helpers/gateway-app.js';
import { parkedSaga } from '../helpers/admin-attack.js';
import { eventually } from '../helpers/system.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the admin API's saga pages, read loosely on purpose: the assertions are the type check
type Json = Record<string, any>;
const json = (r: LightMyRequestResponse) => r.json<Json>();
const order = (customer: string, price = 10) => ({
  customer_id: customer,
  items: [{ product_id: 'prod_1', quantity: 1, price }],
});
const ids = (page: Json) => (page.sagas as Array<{ id: string }>).map((s) => s.id);

let g: GatewayApp;
const A = `cust_a_${randomUUID().slice(0, 8)}`;
const B = `cust_b_${randomUUID().slice(0, 8)}`;
let a1: string;
let a2: string;
let b1: string;
const parked: string[] = [];

const get = async (url: string) => {
  const r = await g.admin.inject({ method: 'GET', url });
  assert.equal(r.statusCode, 200, `${url}: ${r.body}`);
  return json(r);
};
const refused = async (url: string, code = 'invalid_request') => {
  const r = await g.admin.inject({ method: 'GET', url });
  assert.equal(r.statusCode, 400, `${url}: ${r.body}`);
  assert.equal(json(r).error, code, url);
  return json(r).message as string;
};

before(async () => {
  // No ADMIN_TOKENS: the loopback operator (inject comes from 127.0.0.1).
  g = await gatewayApp();
  const place = async (body: unknown) =>
    json(await g.app.inject({ method: 'POST', url: '/orders', payload: body as object, headers: { prefer: 'wait=5' } }))
      .id as string;
  a1 = await place(order(A));
  b1 = await place(order(B, 600)); // declined: COMPENSATED
  a2 = await place(order(A));
  // Three PARKED sagas as another gateway left them (the log is shared), parked a minute ago.
  for (let i = 0; i < 3; i++)
    parked.push(await parkedSaga(g, 'cust_parked', { at: i === 0 ? 'commit_stock' : 'reserve_stock' }));
});
after(() => g.close());

describe('GET /api/sagas filters', () => {
  test('customer: exactly that customer’s sagas, newest first, with the customer and current step on each', async () => {
    const page = await get(`/api/sagas?customer=${A}`);
    assert.deepEqual(ids(page), [a2, a1]);
    assert.deepEqual(
      page.sagas.map((s: Json) => [s.customer_id, s.current_step, s.status]),
      [
        [A, null, 'COMPLETED'],
        [A, null, 'COMPLETED'],
      ],
    );
    assert.deepEqual(ids(await get(`/api/sagas?customer=${B}`)), [b1]);
    assert.deepEqual(ids(await get(`/api/sagas?customer=${B}&status=compensated`)), [b1]);
    assert.deepEqual(ids(await get(`/api/sagas?customer=${A}&status=COMPENSATED`)), []);
    assert.deepEqual(ids(await get(`/api/sagas?customer=${A.toUpperCase()}`)), [], 'exact, case-sensitive');
    assert.deepEqual(ids(await get(`/api/sagas?customer=${A.slice(0, -1)}`)), [], 'not a prefix');
    // The counts stay the whole log's, whatever the filters.
    const all = await get('/api/sagas');
    assert.deepEqual(page.counts, all.counts);
    assert.ok(all.counts.COMPLETED >= 2 && all.counts.PARKED === 3);
  });

  test('customer pages with cursors; a cursor of another listing is refused', async () => {
    const first = await get(`/api/sagas?customer=${A}&limit=1`);
    assert.deepEqual(ids(first), [a2]);
    assert.ok(first.next_cursor);
    const second = await get(`/api/sagas?customer=${A}&limit=1&cursor=${first.next_cursor}`);
    assert.deepEqual(ids(second), [a1]);
    assert.equal(second.next_cursor, null);
    await refused(`/api/sagas?customer=${A}&limit=1&from=0&cursor=${first.next_cursor}`, 'invalid_cursor');
    await refused('/api/sagas?cursor=bogus', 'invalid_cursor');
  });

  test('q: a saga (= order) id or its beginning', async () => {
    assert.deepEqual(ids(await get(`/api/sagas?q=${a1}`)), [a1]);
    assert.ok(ids(await get(`/api/sagas?q=${a1.slice(0, 6)}&limit=500`)).includes(a1));
    assert.deepEqual(ids(await get(`/api/sagas?q=%20${a1}%20`)), [a1], 'spaces around are ignored');
    assert.deepEqual(ids(await get(`/api/sagas?q=${a1}&status=compensated`)), []);
    assert.deepEqual(ids(await get('/api/sagas?q=no-such-saga')), []);
    assert.match(await refused('/api/sagas?q=a%20b'), /q must be a saga/);
    await refused(`/api/sagas?q=${encodeURIComponent("x' OR 1=1")}`);
    await refused(`/api/sagas?q=${'x'.repeat(65)}`);
  });

  test('step: sagas at (or stuck on) a step; the step names are in every page; an unknown one is a 400', async () => {
    const page = await get('/api/sagas?step=reserve_stock');
    assert.deepEqual(ids(page), [parked[2], parked[1]]);
    assert.deepEqual(page.steps, ['create_order', 'reserve_stock', 'charge_payment', 'confirm_order', 'commit_stock']);
    assert.deepEqual(ids(await get('/api/sagas?step=commit_stock&status=parked')), [parked[0]]);
    assert.deepEqual(ids(await get('/api/sagas?step=commit_stock&status=running')), []);
    assert.deepEqual(ids(await get('/api/sagas?step=commit_stock&customer=cust_parked')), [parked[0]]);
    assert.deepEqual(ids(await get('/api/sagas?step=charge_payment')), [], 'finished sagas are at no step');
    assert.match(
      await refused('/api/sagas?step=Charge_Payment_Step'),
      /step must be one of create_order, reserve_stock, charge_payment, confirm_order, commit_stock/,
    );
  });

  test('from and to: ISO 8601 times with a zone, dates (UTC) or epoch ms; listed newest first by creation time', async () => {
    const created = Date.parse((await get(`/api/sagas?q=${a1}`)).sagas[0].created_at as string);
    const since = new Date(created).toISOString();
    assert.deepEqual(ids(await get(`/api/sagas?from=${since}`)), [a2, b1, a1]);
    assert.deepEqual(ids(await get(`/api/sagas?from=${created}&customer=${A}`)), [a2, a1], 'epoch ms');
    assert.deepEqual(ids(await get(`/api/sagas?to=${created}&customer=${A}`)), [a1], 'both ends included');
    assert.deepEqual(
      ids(
        await get(
          `/api/sagas?from=${encodeURIComponent(new Date(created).toISOString().replace('Z', '+00:00'))}&to=${created}`,
        ),
      ),
      [a1],
    );
    assert.deepEqual(ids(await get(`/api/sagas?to=${created - 1}&status=PARKED`)), [parked[2], parked[1], parked[0]]);
    assert.deepEqual(ids(await get(`/api/sagas?from=${new Date(Date.now() + 3_600_000).toISOString()}`)), []);
    assert.deepEqual(ids(await get('/api/sagas?to=2000-01-01')), []);
    // Paged by time, the cursor carries on the same listing.
    const first = await get(`/api/sagas?from=${since}&limit=2`);
    assert.deepEqual(ids(first), [a2, b1]);
    assert.deepEqual(ids(await get(`/api/sagas?from=${since}&limit=2&cursor=${first.next_cursor}`)), [a1]);

    assert.match(await refused('/api/sagas?from=2026-11-27T10:00'), /from has no time zone/);
    assert.match(await refused('/api/sagas?to=yesterday'), /to must be an ISO 8601 time/);
    await refused('/api/sagas?from=2026-13-45');
    await refused('/api/sagas?from=-5');
    await refused('/api/sagas?from=1e12');
    assert.match(await refused(`/api/sagas?from=${created + 1}&to=${created}`), /from must not be after to/);
  });

  test('bad status and limit are 400s too', async () => {
    assert.match(await refused('/api/sagas?status=DONE'), /status must be one of/);
    await refused('/api/sagas?limit=0');
    await refused(`/api/sagas?customer=${encodeURIComponent('a b')}`);
  });
});

describe('GET /api/parked', () => {
  test('longest parked first, with reason and age', async () => {
    const page = await get('/api/parked');
    assert.deepEqual(ids(page), parked);
    assert.ok(page.sagas.every((s: Json) => s.reason === 'payment_declined: declined' && s.age_seconds >= 59));
    assert.deepEqual(ids(await get('/api/parked?limit=2')), parked.slice(0, 2));
  });
});

describe('a saga the engine drives', () => {
  test('is listed at its current step while it runs, with its customer', async () => {
    await g.stopParticipants();
    // The gateway refuses new orders while the participants are down: the engine is asked directly,
    // as for an order accepted just before they went.
    const id = randomUUID();
    const input = {
      order_id: id,
      customer_id: 'cust_live',
      items: [{ product_id: 'prod_1', quantity: 1, unit_price_cents: 1000 }],
      total_cents: 1000,
      created_at_ms: Date.now(),
      fingerprint: 'f',
      request_id: null,
    };
    await g.engine.start('place_order', { id, input });
    const page = await eventually('the running saga to be listed at create_order', async () => {
      const p = await get('/api/sagas?step=create_order&customer=cust_live');
      return ids(p).includes(id) ? p : undefined;
    });
    assert.deepEqual(
      page.sagas.map((s: Json) => [s.status, s.current_step, s.customer_id]),
      [['RUNNING', 'create_order', 'cust_live']],
    );
    assert.equal((await g.log.get(id))?.subject, 'cust_live');
  });
});
