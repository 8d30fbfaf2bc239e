/**
 * `sagas retry|compensate|resolve <id> --dry-run` (issue 26 item 3) against a real gateway's admin
 * listener: it prints the engine's preview (the summary, then one line per call, will or may) and
 * changes nothing; a refused action's dry run says why and exits 1. The saga is parked for real by
 * the fault switchboard (the pivot refused, then the refund that undoes the charge).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { gatewayApp, type GatewayApp } from '../helpers/gateway-app.js';
import { sagasInProcess } from '../helpers/cli.js';
import { eventually } from '../helpers/system.js';
import { FaultBoard } from '../../src/faults/plan.js';

const OPERATOR = 'op-cli-preview-0123456789';
const VIEWER = 'vw-cli-preview-9876543210';

let g: GatewayApp;
let url = '';
let parked = '';

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
  const placed = await g.app.inject({
    method: 'POST',
    url: '/orders',
    payload: {
      customer_id: 'cust_cli',
      items: [
        { product_id: 'prod_1', quantity: 2, price: 50 },
        { product_id: 'prod_2', quantity: 1, price: 30 },
      ],
    },
  });
  assert.equal(placed.statusCode, 201, placed.body);
  parked = placed.json<{ id: string }>().id;
  await eventually('the saga to park', async () =>
    (await g.engine.reads.get(parked))?.status === 'PARKED' ? true : undefined,
  );
  board.setEnabled('refuse-confirm', false);
  board.setEnabled('refuse-refund', false);
  url = await g.admin.listen({ host: '127.0.0.1', port: 0 });
});
after(() => g.close());

const sagas = (argv: string[], token = VIEWER) =>
  sagasInProcess(argv, { SAGAS_ADMIN_URL: url, SAGAS_ADMIN_TOKEN: token });

test('compensate --dry-run prints the refund, the release and the cancel, and changes nothing (a viewer may ask)', async () => {
  const before = await g.engine.reads.get(parked);
  const r = await sagas(['compensate', parked, '--dry-run']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  assert.deepEqual(r.stdout.split('\n'), [
    `dry run: compensate of ${parked}; nothing was changed`,
    `Refunds 130.00 to cust_cli, releases 2 × prod_1 and 1 × prod_2, cancels order ${parked}.`,
    '  will charge_payment (undo): refunds 130.00 to cust_cli',
    '  will reserve_stock (undo): releases 2 × prod_1 and 1 × prod_2',
    `  will create_order (undo): cancels order ${parked}`,
    'for certain: refunds 130.00, releases 2 × prod_1, releases 1 × prod_2',
    '',
  ]);
  assert.deepEqual(await g.engine.reads.get(parked), before);
});

test('retry --dry-run and resolve --dry-run (no note needed to look)', async () => {
  const retry = await sagas(['retry', parked, '--dry-run']);
  assert.equal(retry.code, 0, retry.stderr);
  assert.match(
    retry.stdout,
    /^dry run: retry of \S+; nothing was changed\nRetries the undo of charge_payment with a fresh budget: refunds 130\.00 to cust_cli\. Then releases 2 × prod_1 and 1 × prod_2, cancels order \S+\.\n {2}will charge_payment \(undo\): refunds 130\.00 to cust_cli\n/,
  );
  const resolve = await sagas(['resolve', parked, '--dry-run']);
  assert.equal(resolve.code, 0, resolve.stderr);
  const lines = resolve.stdout.split('\n');
  assert.match(
    lines[1] ?? '',
    /^Closes the saga; nothing is called: say in the note what you repaired by hand\. Left half-done: /,
  );
  assert.deepEqual(lines.slice(2), [
    '  left unknown charge_payment (undo): refunds 130.00 to cust_cli',
    '  left done    reserve_stock: reserves 2 × prod_1 and 1 × prod_2',
    `  left done    create_order: creates order ${parked} of 130.00 for cust_cli`,
    '',
  ]);
  const asJson = await sagas(['compensate', parked, '--dry-run', '--json']);
  assert.equal(asJson.code, 0);
  const p = JSON.parse(asJson.stdout) as { allowed: boolean; totals: { refund_cents: number } };
  assert.equal(p.allowed, true);
  assert.equal(p.totals.refund_cents, 13_000);
  assert.equal((await g.engine.reads.events(parked)).filter((e) => e.type === 'OPERATOR_ACTION').length, 0);
});

test('after the real compensate, a dry run says why the action would be refused, exit 1', async () => {
  const done = await sagas(['compensate', parked], OPERATOR);
  assert.equal(done.code, 0, done.stderr);
  await eventually('the saga to compensate', async () =>
    (await g.engine.reads.get(parked))?.status === 'COMPENSATED' ? true : undefined,
  );
  const r = await sagas(['retry', parked, '--dry-run']);
  assert.equal(r.code, 1);
  assert.deepEqual(r.stdout.split('\n'), [
    `dry run: retry of ${parked} would be refused (action_not_allowed); nothing was changed`,
    `Cannot retry saga ${parked} (COMPENSATED): only a PARKED saga is retried.`,
    '',
  ]);
  const unknown = await sagas(['retry', '00000000-0000-4000-8000-000000000000', '--dry-run']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /saga_not_found \(404\)/);
});
