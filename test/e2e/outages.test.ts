import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { freshSystem, eventually } from '../helpers/system.js';

const ORDER = { customer_id: 'cust_1', items: [{ product_id: 'prod_1', quantity: 1, price: 10 }] };

let sys: Awaited<ReturnType<typeof freshSystem>>;
before(async () => {
  sys = await freshSystem();
});
after(async () => {
  await sys?.stop();
});

test('a participant that is down is 503, never 404, and a POST then stores nothing', async () => {
  const confirmed = await sys.api('POST', '/orders', ORDER, { Prefer: 'wait=10' });
  assert.equal(confirmed.body.status, 'CONFIRMED');
  const sagasBefore = (await sys.admin('GET', '/api/sagas?limit=500')).body.sagas.length;

  await sys.kill('payment');
  // The gateway learns of the death through its connection or its next probe.
  const ready = await eventually('readiness to report payment down', async () => {
    const r = await sys.api('GET', '/readyz');
    return r.status === 503 ? r : undefined;
  });
  assert.equal(ready.body.checks.payment, 'unavailable');
  assert.equal(ready.body.checks.order, 'ok');
  const post = await sys.api('POST', '/orders', ORDER);
  assert.equal(post.status, 503);
  assert.equal(post.body.error, 'participant_unavailable');
  assert.match(post.body.message, /payment/);
  assert.equal((await sys.admin('GET', '/api/sagas?limit=500')).body.sagas.length, sagasBefore);

  await sys.kill('order');
  const get = await sys.api('GET', `/orders/${confirmed.body.id}`);
  assert.equal(get.status, 503);
  assert.equal(get.body.error, 'participant_unavailable');

  await sys.kill('inventory');
  assert.equal((await sys.api('GET', '/products')).status, 503);

  await Promise.all([sys.restart('payment'), sys.restart('order'), sys.restart('inventory')]);
  const again = await eventually('orders accepted again', async () => {
    const r = await sys.api('POST', '/orders', ORDER, { Prefer: 'wait=10' });
    return r.status === 201 ? r : undefined;
  });
  assert.equal(again.body.status, 'CONFIRMED');
});

test('a restart of every process loses nothing', async () => {
  const r = await sys.api('POST', '/orders', ORDER, { Prefer: 'wait=10' });
  assert.equal(r.body.status, 'CONFIRMED');
  const productsBefore = (await sys.api('GET', '/products')).body;
  for (const name of ['gateway', 'order', 'inventory', 'payment'] as const) await sys.restart(name);
  const got = await eventually('order readable after restart', async () => {
    const g = await sys.api('GET', `/orders/${r.body.id}`);
    return g.status === 200 ? g.body : undefined;
  });
  assert.equal(got.status, 'CONFIRMED');
  assert.deepEqual(got.payment, { status: 'charged', amount: 10 });
  assert.deepEqual((await sys.api('GET', '/products')).body, productsBefore);
  assert.equal((await sys.api('GET', `/orders/${r.body.id}/saga`)).body.status, 'COMPLETED');
});

test('a saga running when the gateway gets SIGTERM is checkpointed and resumed at once by the next start', async () => {
  // Payment dies on the charge, so the saga is mid-retry when the gateway is told to stop.
  const armed = await sys.restart('payment', { CRASH_AT: 'payment.charge.before_commit', SAGAS_TEST_HOOKS: '1' });
  const r = await sys.api('POST', '/orders', ORDER);
  assert.equal(r.status, 201);
  assert.equal((await armed.exited).signal, 'SIGKILL');
  await eventually('the saga to be retrying the charge', async () => {
    const t = await sys.api('GET', `/orders/${r.body.id}/saga`);
    return t.body.events.some(
      (e: { type: string; step: string }) => e.type === 'STEP_FAILED' && e.step === 'charge_payment',
    )
      ? true
      : undefined;
  });
  await sys.procs.gateway.stop('SIGTERM');
  const exit = await sys.procs.gateway.exited;
  assert.equal(exit.code, 0, `graceful exit; the gateway's last lines:\n${sys.procs.gateway.output(30).join('\n')}`);
  await sys.restart('payment');
  await sys.restart('gateway');
  // The lease (15 s by default) was given back at shutdown, so this resumes well before it would expire.
  const saga = await eventually(
    'the saga to complete after the restart',
    async () => {
      const t = await sys.api('GET', `/orders/${r.body.id}/saga`);
      return t.body.status === 'COMPLETED' ? t.body : undefined;
    },
    8_000,
  );
  assert.ok(saga.events.some((e: { type: string }) => e.type === 'SAGA_RESUMED'));
  assert.equal((await sys.api('GET', `/orders/${r.body.id}`)).body.status, 'CONFIRMED');
});
