import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freshSystem, eventually } from '../helpers/system.js';
import { checkInvariants } from '../helpers/invariants.js';
import { CATALOG, ORDERS } from '../helpers/crash.js';

// A charge whose outcome stays unknown past its retry budget is compensated too: the payment
// service commits the charge and dies before answering, and stays down. The saga must refund it,
// even when the payment service is killed again around the refund's own commit.
let sys: Awaited<ReturnType<typeof freshSystem>>;
let catalogDir = '';
before(async () => {
  catalogDir = fs.mkdtempSync(path.join(os.tmpdir(), 'uncertain-'));
  const catalog = path.join(catalogDir, 'catalog.json');
  fs.writeFileSync(catalog, JSON.stringify(CATALOG));
  sys = await freshSystem({
    INVENTORY_CATALOG: catalog,
    SAGA_STEP_MAX_ATTEMPTS: '2',
    SAGA_RETRY_MAX_BACKOFF_MS: '50',
    SAGA_STEP_TIMEOUT_MS: '1000',
    SAGA_COMPENSATION_MAX_ATTEMPTS: '200',
    SAGA_COMPENSATION_MAX_BACKOFF_MS: '100',
  });
});
after(async () => {
  await sys?.stop();
  if (catalogDir) fs.rmSync(catalogDir, { recursive: true, force: true });
});

type Timeline = { status: string; events: Array<{ type: string; step: string | null }> };

for (const refundPoint of ['payment.refund.before_commit', 'payment.refund.after_commit']) {
  test(`an uncertain charge is refunded, with payment killed at ${refundPoint}`, async () => {
    const chargeCrash = await sys.restart('payment', {
      CRASH_AT: 'payment.charge.after_commit',
      SAGAS_TEST_HOOKS: '1',
    });
    const r = await sys.api('POST', '/orders', ORDERS.happy);
    assert.equal(r.status, 201);
    assert.equal((await chargeCrash.exited).signal, 'SIGKILL', 'payment died after committing the charge');
    const timeline = async () => (await sys.api('GET', `/orders/${r.body.id}/saga`)).body as Timeline;
    await eventually('the engine to give up on the charge and compensate it', async () =>
      (await timeline()).events.some((e) => e.type === 'COMPENSATION_STARTED' && e.step === 'charge_payment')
        ? true
        : undefined,
    );
    const refundCrash = await sys.restart('payment', { CRASH_AT: refundPoint, SAGAS_TEST_HOOKS: '1' });
    assert.equal((await refundCrash.exited).signal, 'SIGKILL', `payment died at ${refundPoint}`);
    await sys.restart('payment');
    const final = await eventually('the saga to end', async () => {
      const t = await timeline();
      return ['COMPENSATED', 'COMPLETED', 'PARKED'].includes(t.status) ? t : undefined;
    });
    assert.equal(final.status, 'COMPENSATED');
    const order = (await sys.api('GET', `/orders/${r.body.id}`)).body;
    assert.equal(order.status, 'CANCELLED');
    assert.equal(order.reason, 'participant_unavailable');
    assert.deepEqual(order.payment, { status: 'refunded', amount: order.total });
    await checkInvariants(sys, CATALOG);
  });
}
