/**
 * GET /api/sagas/:id/preview (issue 26 item 3): what an operator action would do, from the
 * engine's previewAction, over a real saga. The saga is parked for real: the fault switchboard
 * refuses the pivot, then the refund that undoes the charge, so it parks compensating
 * charge_payment with 130.00 charged. The preview says so in business words, a viewer may read
 * it, it changes nothing, and the action it previewed does what it said.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { gatewayApp, type GatewayApp } from '../helpers/gateway-app.js';
import { eventually } from '../helpers/system.js';
import { FaultBoard } from '../../src/faults/plan.js';
import { previewAction } from '../../src/saga/index.js';
import { previewView } from '../../src/gateway/admin/preview-routes.js';

const OPERATOR = 'op-preview-S3cret-0123456789';
const VIEWER = 'vw-preview-S3cret-9876543210';
const asOperator = { authorization: `Bearer ${OPERATOR}` };
const asViewer = { authorization: `Bearer ${VIEWER}` };
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the admin API's JSON, read loosely: the assertions are the type check
const json = (r: LightMyRequestResponse) => r.json<Record<string, any>>();

/** 2 × prod_1 at 50.00 and 1 × prod_2 at 30.00: 130.00. */
const ORDER = {
  customer_id: 'cust_123',
  items: [
    { product_id: 'prod_1', quantity: 2, price: 50 },
    { product_id: 'prod_2', quantity: 1, price: 30 },
  ],
};

let g: GatewayApp;
let board: FaultBoard;
let parked = '';

before(async () => {
  board = new FaultBoard();
  g = await gatewayApp({
    faults: board,
    adminTokens: `ops:operator:${OPERATOR},watcher:viewer:${VIEWER}`,
    policies: { compensation: { maxAttempts: 2, initialBackoffMs: 1, maxBackoffMs: 5, multiplier: 2 } },
  });
  const plan = await g.admin.inject({
    method: 'PUT',
    url: '/api/faults',
    headers: asOperator,
    payload: {
      rules: [
        { id: 'refuse-confirm', kind: 'error', target: { step: 'confirm_order' }, phase: 'action' },
        { id: 'refuse-refund', kind: 'error', target: { step: 'charge_payment' }, phase: 'compensation' },
      ],
    },
  });
  assert.equal(plan.statusCode, 200, plan.body);
  const placed = await g.app.inject({ method: 'POST', url: '/orders', payload: ORDER });
  assert.equal(placed.statusCode, 201, placed.body);
  parked = json(placed).id as string;
  await eventually('the saga to park', async () =>
    (await g.engine.reads.get(parked))?.status === 'PARKED' ? true : undefined,
  );
  // The faults are gone; the saga stays parked until an operator acts.
  board.setEnabled('refuse-confirm', false);
  board.setEnabled('refuse-refund', false);
});
after(() => g.close());

const preview = (id: string, action: string, headers: Record<string, string> = asOperator) =>
  g.admin.inject({ method: 'GET', url: `/api/sagas/${id}/preview?action=${action}`, headers });

describe('GET /api/sagas/:id/preview', () => {
  test('a saga parked undoing its charge: compensate refunds 130.00, releases the stock, cancels the order', async () => {
    const saga = await g.engine.reads.get(parked);
    assert.ok(saga);
    assert.equal(saga.compIndex, 2, 'parked compensating charge_payment');
    const r = await preview(parked, 'compensate');
    assert.equal(r.statusCode, 200, r.body);
    const p = json(r);
    assert.equal(p.allowed, true);
    assert.equal(p.refusal, null);
    assert.equal(p.summary, `Refunds 130.00 to cust_123, releases 2 × prod_1 and 1 × prod_2, cancels order ${parked}.`);
    assert.deepEqual(
      p.effects.map((e: { certainty: string; step: string; phase: string }) => `${e.certainty} ${e.step}/${e.phase}`),
      ['will charge_payment/compensation', 'will reserve_stock/compensation', 'will create_order/compensation'],
    );
    assert.deepEqual(p.totals, {
      charge_cents: 0,
      refund_cents: 13_000,
      stock: [
        { item: 'prod_1', quantity: 2, direction: 'release' },
        { item: 'prod_2', quantity: 1, direction: 'release' },
      ],
    });
    assert.equal(p.half_done, null);
    // The API's answer is the engine's one function, nothing of the route's own.
    assert.deepEqual(
      p,
      previewView(previewAction(g.engine.definitionOf(saga.definition, saga.version), saga, 'compensate')),
    );
  });

  test('retry and resolve of the same saga, read by a viewer; nothing changes', async () => {
    const before = await g.engine.reads.get(parked);
    const retry = json(await preview(parked, 'retry', asViewer));
    assert.equal(retry.allowed, true);
    assert.equal(
      retry.summary,
      `Retries the undo of charge_payment with a fresh budget: refunds 130.00 to cust_123. Then releases 2 × prod_1 and 1 × prod_2, cancels order ${parked}.`,
    );
    const resolve = json(await preview(parked, 'resolve', asViewer));
    assert.equal(resolve.allowed, true);
    assert.deepEqual(resolve.effects, []);
    assert.match(
      resolve.summary,
      /^Closes the saga; nothing is called: say in the note what you repaired by hand\. Left half-done: /,
    );
    assert.deepEqual(
      resolve.half_done.map((h: { state: string; step: string }) => `${h.state} ${h.step}`),
      ['unknown charge_payment', 'done reserve_stock', 'done create_order'],
    );
    assert.deepEqual(await g.engine.reads.get(parked), before, 'a preview writes nothing');
    assert.equal((await g.engine.reads.events(parked)).filter((e) => e.type === 'OPERATOR_ACTION').length, 0);
  });

  test('the action previewed does what the preview said: the charge is refunded, the order cancelled', async () => {
    const act = await g.admin.inject({
      method: 'POST',
      url: `/api/sagas/${parked}/actions`,
      headers: asOperator,
      payload: { action: 'compensate', action_id: `t-${randomUUID()}` },
    });
    assert.equal(act.statusCode, 200, act.body);
    await eventually('the saga to compensate', async () =>
      (await g.engine.reads.get(parked))?.status === 'COMPENSATED' ? true : undefined,
    );
    const payment = g.dbs.payment
      .prepare<[string], { status: string; amount_cents: number }>(
        'SELECT status, amount_cents FROM payments WHERE order_id = ?',
      )
      .get(parked);
    assert.deepEqual({ ...payment }, { status: 'REFUNDED', amount_cents: 13_000 });
    const order = json(await g.app.inject({ method: 'GET', url: `/orders/${parked}` }));
    assert.equal(order.status, 'CANCELLED');
    // Ended: every action is now refused, and the preview says so with the engine's code (200: a preview).
    for (const action of ['retry', 'compensate', 'resolve']) {
      const p = json(await preview(parked, action));
      assert.equal(p.allowed, false);
      assert.equal(p.refusal.code, 'action_not_allowed');
      assert.deepEqual(p.effects, []);
      assert.match(p.summary, /^Cannot /);
    }
  });

  test('an unknown saga is 404, a bad or missing action 400, no token 401', async () => {
    const unknown = await preview(randomUUID(), 'retry');
    assert.equal(unknown.statusCode, 404);
    assert.equal(json(unknown).error, 'saga_not_found');
    const notAnId = await preview('not a saga', 'retry');
    assert.equal(notAnId.statusCode, 404);
    for (const url of [`/api/sagas/${parked}/preview?action=refund`, `/api/sagas/${parked}/preview`]) {
      const bad = await g.admin.inject({ method: 'GET', url, headers: asOperator });
      assert.equal(bad.statusCode, 400, `${url}: ${bad.body}`);
      assert.equal(json(bad).error, 'invalid_request');
    }
    const anonymous = await g.admin.inject({ method: 'GET', url: `/api/sagas/${parked}/preview?action=retry` });
    assert.equal(anonymous.statusCode, 401);
  });

  test('documented in the OpenAPI document', async () => {
    const doc = json(await g.admin.inject({ method: 'GET', url: '/api/openapi.json', headers: asViewer }));
    const op = doc.paths['/api/sagas/{id}/preview']?.get;
    assert.equal(op?.operationId, 'previewAction');
    assert.deepEqual(op.parameters.find((p: { name: string }) => p.name === 'action').schema.enum, [
      'retry',
      'compensate',
      'resolve',
    ]);
    assert.ok(op.responses['200'] && op.responses['4XX'], Object.keys(op.responses).join());
  });
});
