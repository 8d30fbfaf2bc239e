/**
 * The fault switchboard's admin API (GET/PUT /api/faults, POST /api/faults/:id) and its roles,
 * the vocabulary it answers (derived from the registered definitions) and the plan's schema in its
 * OpenAPI document, the switchboard off (404 faults_disabled, no fault routes acting, no interceptor: x-fault never
 * sent), and FAULTS_ENABLED / FAULTS_FILE in the configuration of the gateway and the participants.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { FaultBoard } from '../../src/faults/plan.js';
import { gatewayConfig } from '../../src/gateway/config.js';
import { paymentConfig } from '../../src/services/payment/config.js';
import { gatewayApp, type GatewayApp } from '../helpers/gateway-app.js';

const OPERATOR = 'op-S3cretToken-0123456789';
const VIEWER = 'vw-S3cretToken-9876543210';
const asOperator = { authorization: `Bearer ${OPERATOR}` };
const asViewer = { authorization: `Bearer ${VIEWER}` };
const RULE = { id: 'slow-pay', target: { step: 'charge_payment' }, kind: 'latency', latency_ms: 50 };
/** What a rule may name, as GET /api/faults answers it: the format's words, and the place-order saga's. */
const VOCABULARY = {
  kinds: ['latency', 'error', 'uncertain', 'after_effect', 'crash'],
  participants: ['order', 'inventory', 'payment'],
  phases: ['action', 'compensation'],
  crash_points: ['before_intent', 'after_intent', 'before_outcome', 'after_outcome'],
  steps: ['create_order', 'reserve_stock', 'charge_payment', 'confirm_order', 'commit_stock'],
  calls: [
    { participant: 'order', method: 'CreateOrder' },
    { participant: 'order', method: 'CancelOrder' },
    { participant: 'inventory', method: 'Reserve' },
    { participant: 'inventory', method: 'Release' },
    { participant: 'payment', method: 'Charge' },
    { participant: 'payment', method: 'Refund' },
    { participant: 'order', method: 'ConfirmOrder' },
    { participant: 'inventory', method: 'Commit' },
  ],
};

describe('admin API with the switchboard on', () => {
  let g: GatewayApp;
  let board: FaultBoard;
  before(async () => {
    board = new FaultBoard();
    g = await gatewayApp({ faults: board, adminTokens: `ops:operator:${OPERATOR},watcher:viewer:${VIEWER}` });
  });
  after(() => g.close());

  test('PUT replaces the plan (operator), GET lists it with fired counts (viewer too)', async () => {
    const put = await g.admin.inject({
      method: 'PUT',
      url: '/api/faults',
      headers: asOperator,
      payload: { rules: [RULE] },
    });
    assert.equal(put.statusCode, 200, put.body);
    const expected = {
      id: 'slow-pay',
      enabled: true,
      target: { step: 'charge_payment' },
      kind: 'latency',
      latency_ms: 50,
      probability: 1,
      fired: 0,
    };
    assert.deepEqual(put.json(), { enabled: true, rules: [expected], vocabulary: VOCABULARY });
    // It acts: an order's charge is delayed, and the rule counts it.
    const order = await g.app.inject({
      method: 'POST',
      url: '/orders',
      headers: { prefer: 'wait=10' },
      payload: { customer_id: 'c', items: [{ product_id: 'prod_1', quantity: 1, price: 5 }] },
    });
    assert.equal(order.json<{ status: string }>().status, 'CONFIRMED');
    const get = await g.admin.inject({ method: 'GET', url: '/api/faults', headers: asViewer });
    assert.equal(get.statusCode, 200);
    assert.deepEqual(get.json(), { enabled: true, rules: [{ ...expected, fired: 1 }], vocabulary: VOCABULARY });
  });

  test('POST /api/faults/:id switches a rule off and on', async () => {
    const off = await g.admin.inject({
      method: 'POST',
      url: '/api/faults/slow-pay',
      headers: asOperator,
      payload: { enabled: false },
    });
    assert.equal(off.statusCode, 200, off.body);
    assert.equal(off.json<{ rule: { enabled: boolean } }>().rule.enabled, false);
    assert.equal(board.list()[0]?.enabled, false);
    const on = await g.admin.inject({
      method: 'POST',
      url: '/api/faults/slow-pay',
      headers: asOperator,
      payload: { enabled: true },
    });
    assert.equal(on.json<{ rule: { enabled: boolean } }>().rule.enabled, true);
  });

  test('an invalid plan: 400 invalid_fault_plan naming the rule and field; the old plan stays', async () => {
    const res = await g.admin.inject({
      method: 'PUT',
      url: '/api/faults',
      headers: asOperator,
      payload: { rules: [{ id: 'bad', kind: 'latency', target: { step: 'charge_payment' } }] },
    });
    assert.equal(res.statusCode, 400);
    assert.deepEqual(res.json(), {
      error: 'invalid_fault_plan',
      message: 'rule 1 (bad): latency_ms is required for a latency rule',
    });
    const unknownStep = await g.admin.inject({
      method: 'PUT',
      url: '/api/faults',
      headers: asOperator,
      payload: { rules: [{ id: 'x', kind: 'error', target: { step: 'pay' } }] },
    });
    assert.equal(unknownStep.statusCode, 400);
    assert.match(unknownStep.json<{ message: string }>().message, /target\.step "pay" is not a step/);
    const noRules = await g.admin.inject({ method: 'PUT', url: '/api/faults', headers: asOperator, payload: {} });
    assert.equal(noRules.json<{ error: string }>().error, 'invalid_fault_plan');
    // The names come from the registered definitions: a participant no saga calls is refused.
    const shipping = await g.admin.inject({
      method: 'PUT',
      url: '/api/faults',
      headers: asOperator,
      payload: { rules: [{ id: 'ship', kind: 'error', target: { participant: 'shipping' } }] },
    });
    assert.equal(shipping.statusCode, 400);
    assert.deepEqual(shipping.json(), {
      error: 'invalid_fault_plan',
      message:
        'rule 1 (ship): target.participant "shipping" is not a participant the sagas call (order, inventory, payment)',
    });
    const unknownField = await g.admin.inject({
      method: 'PUT',
      url: '/api/faults',
      headers: asOperator,
      payload: { rules: [{ ...RULE, colour: 'red' }] },
    });
    assert.equal(unknownField.statusCode, 400);
    assert.equal(unknownField.json<{ error: string }>().error, 'invalid_fault_plan');
    assert.match(
      unknownField.json<{ message: string }>().message,
      /^rule 1 \(slow-pay\): colour is not a field of a rule/,
    );
    assert.deepEqual(
      board.list().map((r) => r.id),
      ['slow-pay'],
    );
  });

  test("the admin OpenAPI document describes PUT /api/faults's body with the plan's schema, and the vocabulary in its answer", async () => {
    // Read as JSON (any): the assertions are the type check.
    const doc = (await g.admin.inject({ method: 'GET', url: '/api/openapi.json', headers: asOperator })).json();
    const put = doc.paths['/api/faults']?.put;
    const body = put?.requestBody?.content?.['application/json']?.schema;
    assert.equal(body?.additionalProperties, false);
    assert.equal(body?.properties?.rules?.maxItems, 200);
    const rule = body?.properties?.rules?.items;
    assert.deepEqual(rule?.required, ['id', 'kind']);
    assert.deepEqual(rule?.properties?.kind, {
      type: 'string',
      enum: ['latency', 'error', 'uncertain', 'after_effect', 'crash'],
      description: 'one of latency, error, uncertain, after_effect, crash',
    });
    assert.equal(rule?.properties?.latency_ms?.maximum, 600_000);
    const answer = put?.responses?.['200']?.content?.['application/json']?.schema;
    assert.deepEqual(Object.keys(answer?.properties ?? {}), ['enabled', 'rules', 'vocabulary']);
    assert.deepEqual(Object.keys(answer?.properties?.vocabulary?.properties ?? {}), Object.keys(VOCABULARY));
  });

  test('an unknown rule: 404 fault_rule_not_found; a bad toggle body: 400', async () => {
    const res = await g.admin.inject({
      method: 'POST',
      url: '/api/faults/nope',
      headers: asOperator,
      payload: { enabled: false },
    });
    assert.equal(res.statusCode, 404);
    assert.equal(res.json<{ error: string }>().error, 'fault_rule_not_found');
    const bad = await g.admin.inject({
      method: 'POST',
      url: '/api/faults/slow-pay',
      headers: asOperator,
      payload: { enabled: 'no' },
    });
    assert.equal(bad.statusCode, 400);
  });

  test('a viewer reads but changes nothing (403 forbidden); no token: 401', async () => {
    const put = await g.admin.inject({ method: 'PUT', url: '/api/faults', headers: asViewer, payload: { rules: [] } });
    assert.equal(put.statusCode, 403);
    assert.equal(put.json<{ error: string }>().error, 'forbidden');
    const toggle = await g.admin.inject({
      method: 'POST',
      url: '/api/faults/slow-pay',
      headers: asViewer,
      payload: { enabled: false },
    });
    assert.equal(toggle.statusCode, 403);
    assert.equal(board.list()[0]?.enabled, true);
    const anon = await g.admin.inject({ method: 'GET', url: '/api/faults' });
    assert.equal(anon.statusCode, 401);
  });
});

describe('the switchboard off', () => {
  let g: GatewayApp;
  before(async () => {
    g = await gatewayApp({ adminTokens: `ops:operator:${OPERATOR}` });
  });
  after(() => g.close());

  test('every fault route answers 404 faults_disabled, to an operator too', async () => {
    for (const req of [
      { method: 'GET' as const, url: '/api/faults' },
      { method: 'PUT' as const, url: '/api/faults', payload: { rules: [] } },
      { method: 'POST' as const, url: '/api/faults/x', payload: { enabled: true } },
    ]) {
      const res = await g.admin.inject({ ...req, headers: asOperator });
      assert.equal(res.statusCode, 404, `${req.method} ${req.url}`);
      assert.equal(res.json<{ error: string }>().error, 'faults_disabled');
    }
  });
});

describe('configuration', () => {
  test('FAULTS_ENABLED is off by default; 1 switches it on; FAULTS_FILE is a path; anything else is refused', () => {
    assert.deepEqual(gatewayConfig({}).faults, { enabled: false, file: undefined });
    const on = gatewayConfig({ FAULTS_ENABLED: '1', FAULTS_FILE: 'plans/pay.yaml' }).faults;
    assert.equal(on.enabled, true);
    assert.match(on.file ?? '', /plans\/pay\.yaml$/);
    assert.throws(() => gatewayConfig({ FAULTS_ENABLED: 'yes' }), /FAULTS_ENABLED/);
    assert.equal(paymentConfig({}).faults, false);
    assert.equal(paymentConfig({ FAULTS_ENABLED: '1' }).faults, true);
  });
});
