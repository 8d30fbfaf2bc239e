import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freshSystem, eventually } from '../helpers/system.js';
import { checkInvariants } from '../helpers/invariants.js';
import { CATALOG, ORDERS } from '../helpers/crash.js';

// The pivot (confirm_order) has no undo: while its outcome is unknown nothing before it may be
// undone. Its answers lost past every attempt, or the order service down for longer than every
// budget after it committed the confirm: the order stays CONFIRMED, charged once, its stock sold,
// and the saga COMPLETED (by itself, or after an operator's retry). Never a refund, never a release.

const TERMINAL = ['COMPLETED', 'COMPENSATED', 'PARKED', 'RESOLVED'];
/** Budgets small enough for a test to run them out: 3 attempts of the pivot, 4 of the fence. */
const BUDGETS = {
  SAGA_STEP_MAX_ATTEMPTS: '3',
  SAGA_RETRY_MAX_BACKOFF_MS: '50',
  SAGA_STEP_TIMEOUT_MS: '1000',
  SAGA_COMPENSATION_MAX_ATTEMPTS: '4',
  SAGA_COMPENSATION_MAX_BACKOFF_MS: '50',
};

let sys: Awaited<ReturnType<typeof freshSystem>>;
let catalogDir = '';
before(async () => {
  catalogDir = fs.mkdtempSync(path.join(os.tmpdir(), 'uncertain-pivot-'));
  const catalog = path.join(catalogDir, 'catalog.json');
  fs.writeFileSync(catalog, JSON.stringify(CATALOG));
  sys = await freshSystem({ INVENTORY_CATALOG: catalog, FAULTS_ENABLED: '1', ...BUDGETS });
});
after(async () => {
  await sys?.stop();
  if (catalogDir) fs.rmSync(catalogDir, { recursive: true, force: true });
});

type Event = { type: string; step: string | null; data: unknown };
type Timeline = { status: string; step_index: number; events: Event[] };
/** confirm_order's index in the place-order saga. */
const PIVOT = 3;

const timeline = async (id: string) => (await sys.admin('GET', `/api/sagas/${id}`)).body as Timeline;
const ended = (id: string, timeoutMs = 30_000) =>
  eventually(
    `saga ${id} to end`,
    async () => {
      const t = await timeline(id);
      return TERMINAL.includes(t.status) ? t : undefined;
    },
    timeoutMs,
  );

/** Nothing was given back: no refund, no release, at any point of the saga. */
function assertNothingUndone(t: Timeline): void {
  const undone = t.events
    .filter((e) => e.type === 'COMPENSATION_STARTED' && e.step !== 'confirm_order')
    .map((e) => e.step);
  assert.deepEqual(undone, [], 'no compensation before the pivot was settled');
}

async function assertConfirmedOnce(id: string, total: number): Promise<void> {
  const order = (await sys.api('GET', `/orders/${id}`)).body;
  assert.equal(order.status, 'CONFIRMED');
  assert.equal(order.total, total);
  assert.deepEqual(order.payment, { status: 'charged', amount: total });
}

test('the confirm answered lost 8 times: the fence finds the order CONFIRMED and the saga completes, charged once, stock sold', async () => {
  // The reproduction: ConfirmOrder commits, then its answer is lost, more often than the
  // pivot has attempts.
  const put = await sys.admin('PUT', '/api/faults', {
    rules: [
      {
        id: 'lost-confirm',
        target: { participant: 'order', method: 'ConfirmOrder' },
        phase: 'action',
        kind: 'after_effect',
        limit: { count: 8 },
      },
    ],
  });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  const stockBefore = (await sys.api('GET', '/products')).body.products as Array<{ product_id: string; sold: number }>;
  const r = await sys.api('POST', '/orders', ORDERS.happy);
  assert.equal(r.status, 201);
  const t = await ended(r.body.id);
  assert.equal(t.status, 'COMPLETED');
  const confirms = t.events.filter((e) => e.type === 'STEP_STARTED' && e.step === 'confirm_order').length;
  assert.equal(confirms, 3, 'the pivot ran out of its attempts');
  // Its fence (a CancelOrder) found the order confirmed: the pivot's success is recorded, forward.
  const types = t.events.map((e) => `${e.type}:${e.step ?? ''}`);
  const fence = types.indexOf('COMPENSATION_STARTED:confirm_order');
  assert.ok(fence > 0, types.join(' '));
  assert.equal(types[fence + 1], 'STEP_SUCCEEDED:confirm_order');
  assert.ok(types.includes('STEP_SUCCEEDED:commit_stock'));
  assertNothingUndone(t);
  await assertConfirmedOnce(r.body.id, r.body.total);
  const stockAfter = (await sys.api('GET', '/products')).body.products as Array<{ product_id: string; sold: number }>;
  const soldBy = (list: typeof stockBefore, p: string) => list.find((x) => x.product_id === p)?.sold ?? 0;
  assert.equal(soldBy(stockAfter, 'prod_1') - soldBy(stockBefore, 'prod_1'), 2);
  assert.equal(soldBy(stockAfter, 'prod_2') - soldBy(stockBefore, 'prod_2'), 1);
  assert.equal((await sys.admin('PUT', '/api/faults', { rules: [] })).status, 200);
  await checkInvariants(sys, CATALOG);
});

test('the order service down after committing a confirm, longer than the pivot and its fence can wait: PARKED with nothing undone, then retry completes it', async () => {
  const crash = await sys.restart('order', { CRASH_AT: 'order.confirm.after_commit', SAGAS_TEST_HOOKS: '1' });
  const r = await sys.api('POST', '/orders', ORDERS.happy);
  assert.equal(r.status, 201);
  assert.equal((await crash.exited).signal, 'SIGKILL', 'the order service died after committing the confirm');
  // It stays down: the pivot's 3 attempts and its fence's 4 run out.
  const parked = await ended(r.body.id);
  assert.equal(parked.status, 'PARKED');
  assert.equal(parked.step_index, PIVOT, 'parked at its pivot');
  assertNothingUndone(parked);
  // The order service comes back. The books are those of a saga that can still complete: the
  // order confirmed, charged, the stock still reserved (nothing sold, nothing released).
  await sys.restart('order');
  await assertConfirmedOnce(r.body.id, r.body.total);
  const stock = (await sys.api('GET', '/products')).body.products as Array<{ product_id: string; reserved: number }>;
  assert.equal(stock.find((p) => p.product_id === 'prod_1')?.reserved, 2);
  assert.equal(stock.find((p) => p.product_id === 'prod_2')?.reserved, 1);
  // Compensate would be allowed here (its fence first, which would find the order confirmed);
  // the operator retries: the confirm is answered from the order service's inbox, the stock committed.
  const retry = await eventually('the retry to be accepted', async () => {
    const a = await sys.admin('POST', `/api/sagas/${r.body.id}/actions`, {
      action: 'retry',
      action_id: 'order-service-back',
      note: 'order service restored',
    });
    return a.status === 200 ? a : undefined;
  });
  assert.equal(retry.body.saga.status, 'RUNNING');
  const done = await ended(r.body.id);
  assert.equal(done.status, 'COMPLETED');
  assertNothingUndone(done);
  await assertConfirmedOnce(r.body.id, r.body.total);
  await checkInvariants(sys, CATALOG);
});

test("the order service down after committing a confirm, back within the fence's budget: COMPLETED without an operator", async () => {
  const crash = await sys.restart('order', { CRASH_AT: 'order.confirm.after_commit', SAGAS_TEST_HOOKS: '1' });
  // A patient fence: the gateway's compensation budget far beyond the outage.
  await sys.restart('gateway', { SAGA_COMPENSATION_MAX_ATTEMPTS: '1000', SAGA_COMPENSATION_MAX_BACKOFF_MS: '100' });
  const r = await sys.api('POST', '/orders', ORDERS.happy);
  assert.equal(r.status, 201);
  assert.equal((await crash.exited).signal, 'SIGKILL');
  await eventually('the fence to be tried against the dead order service', async () =>
    (await timeline(r.body.id)).events.some((e) => e.type === 'COMPENSATION_FAILED' && e.step === 'confirm_order')
      ? true
      : undefined,
  );
  await sys.restart('order');
  const done = await ended(r.body.id);
  assert.equal(done.status, 'COMPLETED');
  assertNothingUndone(done);
  await assertConfirmedOnce(r.body.id, r.body.total);
  await sys.restart('gateway');
  await checkInvariants(sys, CATALOG);
});

test('operator compensate is refused (409 pivot_uncertain) while the pivot is in flight, and changes nothing', async () => {
  const put = await sys.admin('PUT', '/api/faults', {
    rules: [
      {
        id: 'slow-confirm',
        target: { participant: 'order', method: 'ConfirmOrder' },
        phase: 'action',
        kind: 'latency',
        latency_ms: 800,
        limit: { count: 1 },
      },
    ],
  });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  const r = await sys.api('POST', '/orders', ORDERS.happy);
  assert.equal(r.status, 201);
  await eventually('the saga to reach its pivot', async () =>
    (await timeline(r.body.id)).events.some((e) => e.type === 'STEP_STARTED' && e.step === 'confirm_order')
      ? true
      : undefined,
  );
  const before = await timeline(r.body.id);
  const refused = await sys.admin('POST', `/api/sagas/${r.body.id}/actions`, {
    action: 'compensate',
    action_id: 'undo-at-pivot',
    note: 'customer asked',
  });
  assert.equal(refused.status, 409, JSON.stringify(refused.body));
  assert.equal(refused.body.error, 'pivot_uncertain');
  assert.match(refused.body.message, /confirm_order may be in flight/);
  const done = await ended(r.body.id);
  assert.equal(done.status, 'COMPLETED');
  assert.ok(!done.events.some((e) => e.type === 'OPERATOR_ACTION'), 'the refusal wrote nothing');
  assert.ok(done.events.length > before.events.length);
  await assertConfirmedOnce(r.body.id, r.body.total);
  assert.equal((await sys.admin('PUT', '/api/faults', { rules: [] })).status, 200);
  await checkInvariants(sys, CATALOG);
});
