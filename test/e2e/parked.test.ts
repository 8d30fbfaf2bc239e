import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { freshSystem, eventually } from '../helpers/system.js';

let sys: Awaited<ReturnType<typeof freshSystem>> | undefined;
after(async () => {
  await sys?.stop();
});

test('a compensation that keeps failing parks the saga, listed by the admin API: GET /api/sagas?status=PARKED', async () => {
  sys = await freshSystem({ SAGA_COMPENSATION_MAX_ATTEMPTS: '3', SAGA_COMPENSATION_MAX_BACKOFF_MS: '50' });
  // Inventory dies on the release that undoes the reservation of a declined order and stays down.
  const armed = await sys.restart('inventory', { CRASH_AT: 'inventory.release.before_commit', SAGAS_TEST_HOOKS: '1' });
  const r = await sys.api('POST', '/orders', {
    customer_id: 'c',
    items: [{ product_id: 'prod_1', quantity: 1, price: 600 }],
  });
  assert.equal(r.status, 201);
  assert.equal((await armed.exited).signal, 'SIGKILL');
  const parked = await eventually('the saga to park', async () => {
    const list = await sys!.admin('GET', '/api/sagas?status=PARKED');
    return list.body.sagas.length > 0 ? list.body.sagas : undefined;
  });
  assert.deepEqual(
    parked.map((s: { id: string }) => s.id),
    [r.body.id],
  );
  assert.equal(parked[0].failure.code, 'payment_declined');
  const t = await sys.api('GET', `/orders/${r.body.id}/saga`);
  assert.equal(t.body.status, 'PARKED');
  const failures = t.body.events.filter((e: { type: string }) => e.type === 'COMPENSATION_FAILED');
  assert.equal(failures.length, 3);
  assert.ok(
    failures.every((e: { step: string; code: string }) => e.step === 'reserve_stock' && e.code === 'unavailable'),
  );
  assert.equal(t.body.events.at(-1).type, 'SAGA_PARKED');
  // Parked is terminal: the order was not cancelled behind the operator's back.
  await sys.restart('inventory');
  const order = await sys.api('GET', `/orders/${r.body.id}`);
  assert.equal(order.body.status, 'PENDING');
  assert.equal(order.body.saga_status, 'PARKED');
});
