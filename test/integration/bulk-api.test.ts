/**
 * Bulk actions through the admin API (issue 26 item 4), in one process over real parts: the
 * participants on a real gRPC server, a SQLite saga log, the engine, the admin app with its bulk
 * routes and a BulkRunner. Sagas are parked for real by the fault switchboard (the pivot refused,
 * then the refund that undoes the charge), and the switchboard is then switched off so that a
 * retry brings them to COMPENSATED.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { metrics } from '@opentelemetry/api';
import { gatewayApp, type GatewayApp } from '../helpers/gateway-app.js';
import { silentLogger } from '../helpers/participants.js';
import { eventually } from '../helpers/system.js';
import { FaultBoard } from '../../src/faults/plan.js';
import { buildAdmin, type AdminApp } from '../../src/gateway/admin/app.js';
import { parseAdminTokens } from '../../src/gateway/admin/tokens.js';
import { BulkRunner } from '../../src/gateway/bulk-runner.js';
import type { BulkJobStore } from '../../src/saga/bulk.js';
import { priorActions } from '../../src/saga/operator.js';

const OPERATOR = 'op-bulk-api-0123456789';
const VIEWER = 'vw-bulk-api-9876543210';
const asOperator = { authorization: `Bearer ${OPERATOR}` };
const asViewer = { authorization: `Bearer ${VIEWER}` };

let g: GatewayApp;
let admin: AdminApp;
let store: BulkJobStore;
let runner: BulkRunner;
/** Parked sagas by customer, newest first (as the listing selects them). */
const parked: Record<'cust_a' | 'cust_b' | 'cust_c', string[]> = { cust_a: [], cust_b: [], cust_c: [] };

before(async () => {
  const board = new FaultBoard();
  g = await gatewayApp({
    faults: board,
    adminTokens: `ops:operator:${OPERATOR},watcher:viewer:${VIEWER}`,
    policies: { compensation: { maxAttempts: 2, initialBackoffMs: 1, maxBackoffMs: 5, multiplier: 2 } },
  });
  board.replace({
    rules: [
      { id: 'refuse-confirm', kind: 'error', target: { step: 'confirm_order' }, phase: 'action' },
      { id: 'refuse-refund', kind: 'error', target: { step: 'charge_payment' }, phase: 'compensation' },
    ],
  });
  const place = async (customer: keyof typeof parked) => {
    const r = await g.app.inject({
      method: 'POST',
      url: '/orders',
      payload: { customer_id: customer, items: [{ product_id: 'prod_1', quantity: 1, price: 50 }] },
    });
    assert.equal(r.statusCode, 201, r.body);
    parked[customer].unshift(r.json<{ id: string }>().id);
  };
  // One at a time: creation order is the listing's order.
  for (let i = 0; i < 8; i++) await place('cust_a');
  for (let i = 0; i < 4; i++) await place('cust_b');
  for (let i = 0; i < 3; i++) await place('cust_c');
  const all = Object.values(parked).flat();
  await eventually('every saga to park', async () => {
    const states = await Promise.all(all.map((id) => g.engine.reads.get(id)));
    return states.every((s) => s?.status === 'PARKED') ? true : undefined;
  });
  board.setEnabled('refuse-confirm', false);
  board.setEnabled('refuse-refund', false);
  const jobs = g.log.bulkJobs();
  store = jobs;
  runner = new BulkRunner({ store: jobs, engine: g.engine, logger: silentLogger, tickMs: 50 });
  admin = await buildAdmin({
    engine: g.engine,
    participants: g.participants,
    logger: silentLogger,
    meter: metrics.getMeter('test'),
    tokens: parseAdminTokens(`ops:operator:${OPERATOR},watcher:viewer:${VIEWER}`),
    bulk: { store: jobs, onChange: () => runner.poke() },
  });
  runner.start();
});

after(async () => {
  await runner?.stop();
  await admin?.close();
  await g?.close();
});

const post = (url: string, payload?: object, headers: Record<string, string> = asOperator) =>
  admin.inject({ method: 'POST', url, headers, ...(payload ? { payload } : {}) });
const get = (url: string, headers: Record<string, string> = asViewer) => admin.inject({ method: 'GET', url, headers });

interface JobView {
  id: string;
  state: string;
  total: number;
  counts: Record<string, number>;
  actor: string;
  filter: Record<string, unknown>;
}
interface ItemView {
  position: number;
  saga_id: string;
  result: string;
  code: string | null;
  at: string | null;
}

async function job(id: string): Promise<{ job: JobView; items: ItemView[] }> {
  const r = await get(`/api/bulk/${id}?limit=1000`);
  assert.equal(r.statusCode, 200, r.body);
  return r.json();
}

/** The OPERATOR_ACTIONs of a saga taken under `bulkId`. */
async function bulkActions(sagaId: string, bulkId: string) {
  return priorActions(await g.log.events(sagaId)).filter((a) => a.bulk_id === bulkId);
}

describe('refusals: a clear 400 (or 403, 404) with a code, and nothing written', () => {
  const base = { action: 'retry', filter: { status: 'PARKED' }, cap: 10 };
  const cases: Array<[string, object, number, string, RegExp]> = [
    ['no cap', { action: 'retry', filter: {} }, 400, 'invalid_request', /cap/],
    ['cap too big', { ...base, cap: 10_001 }, 400, 'invalid_request', /cap must be at most 10000/],
    ['cap 0', { ...base, cap: 0 }, 400, 'invalid_request', /cap must be at least 1/],
    ['unknown status', { ...base, filter: { status: 'STUCK' } }, 400, 'invalid_request', /status must be one of/],
    ['unknown step', { ...base, filter: { step: 'ship_it' } }, 400, 'invalid_request', /step must be one of/],
    ['unknown action', { ...base, action: 'delete' }, 400, 'invalid_request', /action must be one of/],
    ['resolve without a note', { ...base, action: 'resolve' }, 400, 'note_required', /note/],
    ['rate too high', { ...base, rate: 51 }, 400, 'invalid_request', /rate must be at most 50/],
    ['rate too low', { ...base, rate: 0 }, 400, 'invalid_request', /rate must be at least 0.1/],
    ['a bad failure code', { ...base, filter: { failure_code: 'has space' } }, 400, 'invalid_request', /failure_code/],
    ['an unknown filter', { ...base, filter: { colour: 'red' } }, 400, 'invalid_request', /filter/],
  ];
  for (const [name, body, status, code, message] of cases) {
    for (const url of ['/api/bulk', '/api/bulk/dry-run']) {
      test(`${url}: ${name} → ${status} ${code}`, async () => {
        const r = await post(url, body);
        assert.equal(r.statusCode, status, r.body);
        assert.equal(r.json().error, code);
        assert.match(r.json().message, message);
      });
    }
  }
  test('a viewer may look but not start, dry-run or pause', async () => {
    for (const url of ['/api/bulk', '/api/bulk/dry-run']) {
      const r = await post(url, base, asViewer);
      assert.equal(r.statusCode, 403, r.body);
      assert.equal(r.json().error, 'forbidden');
    }
    assert.equal((await get('/api/bulk')).statusCode, 200);
  });
  test('an unknown job is 404 bulk_job_not_found; an unknown command 400', async () => {
    const r = await get('/api/bulk/bulk_nope');
    assert.equal(r.statusCode, 404);
    assert.equal(r.json().error, 'bulk_job_not_found');
    assert.equal((await post('/api/bulk/bulk_nope/pause')).json().error, 'bulk_job_not_found');
    assert.equal((await post('/api/bulk/bulk_nope/explode')).statusCode, 400);
  });
  test("signed in by cookie, a bulk request needs the session's X-CSRF-Token, as every admin request", async () => {
    const signIn = await admin.inject({ method: 'POST', url: '/api/session', payload: { token: OPERATOR } });
    assert.equal(signIn.statusCode, 200, signIn.body);
    const cookie = String(signIn.headers['set-cookie']).split(';')[0] as string;
    const csrf = signIn.json<{ csrf_token: string }>().csrf_token;
    const body = { action: 'retry', filter: { status: 'PARKED' }, cap: 1 };
    for (const url of ['/api/bulk', '/api/bulk/dry-run', '/api/bulk/bulk_nope/cancel']) {
      const r = await post(url, body, { cookie });
      assert.equal(r.statusCode, 403, `${url}: ${r.body}`);
      assert.equal(r.json().error, 'csrf_rejected');
    }
    const ok = await post('/api/bulk/dry-run', body, { cookie, 'x-csrf-token': csrf });
    assert.equal(ok.statusCode, 200, ok.body);
  });
  test('none of the above wrote a job', async () => {
    assert.deepEqual((await get('/api/bulk')).json().jobs, []);
  });
});

test('a dry run counts, groups refusals and sums the money and stock, writing nothing', async () => {
  const before = await Promise.all(parked.cust_a.map((id) => g.engine.reads.get(id)));
  const r = await post('/api/bulk/dry-run', {
    action: 'retry',
    filter: { status: 'parked', customer: 'cust_a', failure_code: 'fault_injected' },
    cap: 5,
  });
  assert.equal(r.statusCode, 200, r.body);
  assert.deepEqual(r.json(), {
    action: 'retry',
    count: 5,
    truncated: true,
    allowed: 5,
    refused: [],
    totals: { charge_cents: 0, refund_cents: 5 * 5000, stock: [{ item: 'prod_1', direction: 'release', quantity: 5 }] },
    sample: parked.cust_a.slice(0, 5),
  });
  // resolve of the same: allowed (nothing moves); compensate of COMPLETED sagas: none selected.
  const none = await post('/api/bulk/dry-run', {
    action: 'retry',
    filter: { status: 'PARKED', failure_code: 'payment_declined' },
    cap: 100,
  });
  assert.deepEqual([none.json().count, none.json().truncated], [0, false]);
  // A status the action does not apply to: every saga refused, grouped by code.
  const done = await post('/api/bulk/dry-run', { action: 'retry', filter: { status: 'RUNNING' }, cap: 100 });
  assert.equal(done.json().allowed, 0);
  assert.deepEqual(await Promise.all(parked.cust_a.map((id) => g.engine.reads.get(id))), before);
  assert.deepEqual((await get('/api/bulk')).json().jobs, []);
});

test('a job acts on its frozen selection once each, paced, under its bulk id, and finishes', async () => {
  const started = await post('/api/bulk', {
    action: 'retry',
    note: 'refund service back',
    filter: { status: 'PARKED', customer: 'cust_b' },
    cap: 100,
    rate: 10,
  });
  assert.equal(started.statusCode, 201, started.body);
  const id = started.json<JobView>().id;
  assert.match(id, /^bulk_[0-9a-f-]{36}$/);
  assert.equal(started.json<JobView>().total, 4);
  assert.equal(started.json<JobView>().actor, 'ops');
  const end = await eventually('the job to finish', async () => {
    const j = await job(id);
    return j.job.state === 'done' ? j : undefined;
  });
  assert.deepEqual(end.job.counts, { pending: 0, applied: 4, replayed: 0, refused: 0, failed: 0 });
  assert.deepEqual(
    end.items.map((i) => i.saga_id),
    parked.cust_b,
  );
  for (const sagaId of parked.cust_b) {
    const acts = await bulkActions(sagaId, id);
    assert.equal(acts.length, 1, sagaId);
    assert.deepEqual(acts[0], {
      action: 'retry',
      action_id: id,
      actor: 'ops',
      note: 'refund service back',
      bulk_id: id,
    });
  }
  // Pacing: n sagas at 10/s take at least (n-1)/10 s from the first to the last.
  const at = end.items.map((i) => Date.parse(i.at ?? ''));
  assert.ok((at.at(-1) ?? 0) - (at[0] ?? 0) >= 3 * 100 - 20, `took ${(at.at(-1) ?? 0) - (at[0] ?? 0)} ms`);
  await eventually('the retried sagas to compensate', async () => {
    const s = await Promise.all(parked.cust_b.map((sid) => g.engine.reads.get(sid)));
    return s.every((x) => x?.status === 'COMPENSATED') ? true : undefined;
  });
  // A finished job does not move.
  const again = await post(`/api/bulk/${id}/resume`);
  assert.equal(again.statusCode, 409);
  assert.equal(again.json().error, 'bulk_job_finished');
});

test('pause takes effect before the next saga, resume goes on, cancel stops; the cap bounds the selection', async () => {
  const started = await post('/api/bulk', {
    action: 'retry',
    filter: { status: 'PARKED', customer: 'cust_a' },
    cap: 6,
    rate: 4,
  });
  const id = started.json<JobView>().id;
  assert.equal(started.json<JobView>().total, 6, 'cap 6 of the 8 parked');
  await eventually('a first saga', async () => ((await job(id)).job.counts.applied ?? 0) >= 1 || undefined);
  const paused = await post(`/api/bulk/${id}/pause`);
  assert.equal(paused.statusCode, 200, paused.body);
  assert.equal(paused.json<JobView>().state, 'paused');
  // The runner lets go of a paused job (its lease released)...
  await eventually('the runner to let go', async () => (runner.running.includes(id) ? undefined : true));
  const atPause = (await job(id)).job.counts;
  // ...and stays off it: a few of its intervals later nothing more was done.
  await new Promise((r) => setTimeout(r, 800));
  assert.deepEqual((await job(id)).job.counts, atPause);
  assert.equal((await post(`/api/bulk/${id}/pause`)).json<JobView>().state, 'paused', 'a second pause is no error');
  assert.equal((await post(`/api/bulk/${id}/resume`)).json<JobView>().state, 'running');
  await eventually('more sagas after the resume', async () =>
    ((await job(id)).job.counts.applied ?? 0) > (atPause.applied ?? 0) ? true : undefined,
  );
  const cancelled = await post(`/api/bulk/${id}/cancel`);
  assert.equal(cancelled.json<JobView>().state, 'cancelled');
  await eventually('the runner to let go', async () => (runner.running.includes(id) ? undefined : true));
  const end = await job(id);
  assert.ok((end.job.counts.pending ?? 0) > 0, 'cancelled before the end');
  // Only the selection was touched: the two oldest parked sagas of cust_a never.
  for (const sagaId of parked.cust_a.slice(6)) assert.deepEqual(await bulkActions(sagaId, id), []);
  for (const item of end.items) {
    const acts = await bulkActions(item.saga_id, id);
    assert.equal(acts.length, item.result === 'pending' ? 0 : 1, item.saga_id);
  }
  assert.equal((await post(`/api/bulk/${id}/resume`)).json().error, 'bulk_job_finished');
});

test('a job another runner resumes replays a saga acted on before its result was recorded, never acts twice', async () => {
  // Taken by hand: a runner stopped between a saga's action and its record.
  const started = await post('/api/bulk', {
    action: 'resolve',
    note: 'fixed by hand',
    filter: { customer: 'cust_c' },
    cap: 3,
    rate: 20,
  });
  const id = started.json<JobView>().id;
  await runner.stop();
  const stillPending = (await job(id)).items.filter((i) => i.result === 'pending');
  assert.ok(stillPending.length > 0, 'the first runner stopped before the end');
  const first = stillPending[0] as ItemView;
  await g.engine.act({
    sagaId: first.saga_id,
    action: 'resolve',
    actionId: id,
    actor: 'ops',
    note: 'fixed by hand',
    bulkId: id,
  });
  const other = new BulkRunner({
    store,
    engine: { act: (req) => g.engine.act(req), owner: 'another-gateway' },
    logger: silentLogger,
    tickMs: 50,
  });
  other.start();
  try {
    const end = await eventually('the job to finish on the other runner', async () => {
      const j = await job(id);
      return j.job.state === 'done' ? j : undefined;
    });
    const replayed = end.items.find((i) => i.saga_id === first.saga_id);
    assert.equal(replayed?.result, 'replayed');
    for (const item of end.items) {
      assert.equal((await bulkActions(item.saga_id, id)).length, 1, item.saga_id);
      assert.equal((await g.engine.reads.get(item.saga_id))?.status, 'RESOLVED');
    }
  } finally {
    await other.stop();
  }
});

test('jobs are listed newest first; GET /api/bulk/:id pages the results', async () => {
  const list = (await get('/api/bulk')).json<{ jobs: JobView[] }>().jobs;
  assert.equal(list.length, 3);
  const [newest] = list;
  const page1 = await get(`/api/bulk/${newest?.id}?limit=2`);
  assert.equal(page1.json().items.length, 2);
  assert.equal(page1.json().next_after, 1);
  const page2 = await get(`/api/bulk/${newest?.id}?limit=2&after=1`);
  assert.deepEqual(
    page2.json().items.map((i: ItemView) => i.position),
    [2],
  );
  assert.equal(page2.json().next_after, null);
});
