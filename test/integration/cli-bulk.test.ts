/**
 * `sagas bulk dry-run|start|list|show|pause|resume|cancel` (issue 26 item 4) against a real
 * admin listener with its bulk routes and runner, over real parts in this process: sagas parked
 * for real by the fault switchboard, then retried by a job.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { metrics } from '@opentelemetry/api';
import { gatewayApp, type GatewayApp } from '../helpers/gateway-app.js';
import { sagasInProcess } from '../helpers/cli.js';
import { silentLogger } from '../helpers/participants.js';
import { eventually } from '../helpers/system.js';
import { FaultBoard } from '../../src/faults/plan.js';
import { buildAdmin, type AdminApp } from '../../src/gateway/admin/app.js';
import { parseAdminTokens } from '../../src/gateway/admin/tokens.js';
import { BulkRunner } from '../../src/gateway/bulk-runner.js';
import { priorActions } from '../../src/saga/operator.js';

const OPERATOR = 'op-cli-bulk-0123456789';
const VIEWER = 'vw-cli-bulk-9876543210';

let g: GatewayApp;
let admin: AdminApp;
let runner: BulkRunner;
let url = '';
/** Newest first. */
const parked: string[] = [];

before(async () => {
  const board = new FaultBoard();
  g = await gatewayApp({
    faults: board,
    policies: { compensation: { maxAttempts: 2, initialBackoffMs: 1, maxBackoffMs: 5, multiplier: 2 } },
  });
  board.replace({
    rules: [
      { id: 'refuse-confirm', kind: 'error', target: { step: 'confirm_order' }, phase: 'action' },
      { id: 'refuse-refund', kind: 'error', target: { step: 'charge_payment' }, phase: 'compensation' },
    ],
  });
  for (let i = 0; i < 4; i++) {
    const r = await g.app.inject({
      method: 'POST',
      url: '/orders',
      payload: { customer_id: 'cust_cli_bulk', items: [{ product_id: 'prod_2', quantity: 2, price: 12.5 }] },
    });
    assert.equal(r.statusCode, 201, r.body);
    parked.unshift(r.json<{ id: string }>().id);
  }
  await eventually('the sagas to park', async () => {
    const s = await Promise.all(parked.map((id) => g.engine.reads.get(id)));
    return s.every((x) => x?.status === 'PARKED') ? true : undefined;
  });
  board.replace({ rules: [] });
  const store = g.log.bulkJobs();
  runner = new BulkRunner({ store, engine: g.engine, logger: silentLogger, tickMs: 50 });
  admin = await buildAdmin({
    engine: g.engine,
    participants: g.participants,
    logger: silentLogger,
    meter: metrics.getMeter('test'),
    tokens: parseAdminTokens(`ops:operator:${OPERATOR},watcher:viewer:${VIEWER}`),
    bulk: { store, onChange: () => runner.poke() },
  });
  url = await admin.listen({ host: '127.0.0.1', port: 0 });
  runner.start();
});

after(async () => {
  await runner?.stop();
  await admin?.close();
  await g?.close();
});

const sagas = (argv: string[], token = OPERATOR) =>
  sagasInProcess(['bulk', ...argv], { SAGAS_ADMIN_URL: url, SAGAS_ADMIN_TOKEN: token });

test('dry-run prints the count, the refusals and the sums, and changes nothing', async () => {
  const r = await sagas(['dry-run', 'retry', '--status', 'PARKED', '--customer', 'cust_cli_bulk', '--cap', '3']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.split('\n'), [
    'dry run: retry would select 3 saga(s) (more match: only the newest 3, --cap); nothing was changed',
    '  allowed now: 3',
    '  for certain: refunds 75.00, releases 6 × prod_2',
    `  first: ${parked.slice(0, 3).join(', ')}`,
    '',
  ]);
  const refused = await sagas(['dry-run', 'compensate', '--status', 'COMPLETED', '--cap', '10']);
  assert.equal(refused.code, 0, refused.stderr);
  assert.match(refused.stdout, /would select 0 saga\(s\)/);
  assert.equal((await sagas(['list'])).stdout, 'no bulk job\n');
});

test('a wrong command line is exit 2 and sends nothing', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['start', 'retry', '--status', 'PARKED'], /--cap is required/],
    [['start', 'retry', '--cap', '0'], /--cap must be a whole number from 1 to 10000/],
    [['start', 'retry', '--cap', '5', '--rate', '99'], /--rate must be from 0.1 to 50/],
    [['start', 'delete', '--cap', '5'], /the action must be one of retry, compensate, resolve/],
    [['frobnicate'], /no subcommand "frobnicate"/],
    [['show'], /which bulk job\?/],
  ];
  for (const [argv, message] of cases) {
    const r = await sagas(argv);
    assert.equal(r.code, 2, `${argv.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, message);
  }
  // The server's own refusals are exit 1 with their code.
  const resolve = await sagas(['start', 'resolve', '--cap', '5']);
  assert.equal(resolve.code, 1);
  assert.match(resolve.stderr, /note_required \(400\)/);
  const viewer = await sagas(['start', 'retry', '--cap', '5', '--status', 'PARKED'], VIEWER);
  assert.equal(viewer.code, 1);
  assert.match(viewer.stderr, /forbidden \(403\)/);
  assert.equal((await sagas(['list'])).stdout, 'no bulk job\n');
});

test('start, show until done, list; each saga acted on once under the bulk id; a finished job does not pause', async () => {
  const started = await sagas([
    'start',
    'retry',
    '--status',
    'PARKED',
    '--customer',
    'cust_cli_bulk',
    '--cap',
    '3',
    '--rate',
    '20',
    '--note',
    'refunds work again',
    '--json',
  ]);
  assert.equal(started.code, 0, started.stderr);
  const job = JSON.parse(started.stdout) as { id: string; total: number; state: string };
  assert.equal(job.total, 3);
  const shown = await eventually('the job to finish', async () => {
    const r = await sagas(['show', job.id]);
    return r.stdout.includes(' done ') ? r : undefined;
  });
  assert.equal(shown.code, 0, shown.stderr);
  const lines = shown.stdout.trim().split('\n');
  assert.match(
    lines[0] ?? '',
    new RegExp(`^${job.id}  retry +done +3/3  applied 3, replayed 0, refused 0, failed 0  20/s  by ops`),
  );
  assert.equal(lines[1], '  filter: status=PARKED customer=cust_cli_bulk; cap 3; note: refunds work again');
  assert.deepEqual(
    lines.slice(2).map((l) => l.trim().split(/\s+/).slice(0, 3)),
    parked.slice(0, 3).map((id, i) => [String(i), id, 'applied']),
  );
  for (const id of parked.slice(0, 3)) {
    const acts = priorActions(await g.log.events(id)).filter((a) => a.bulk_id === job.id);
    assert.equal(acts.length, 1, id);
  }
  assert.deepEqual(priorActions(await g.log.events(parked[3] as string)), [], 'the oldest, beyond the cap, untouched');
  const list = await sagas(['list']);
  assert.equal(list.code, 0);
  assert.match(list.stdout, new RegExp(`^${job.id}  retry +done +3/3`));
  const pause = await sagas(['pause', job.id]);
  assert.equal(pause.code, 1);
  assert.match(pause.stderr, /bulk_job_finished \(409\)/);
  const missing = await sagas(['resume', 'bulk_missing']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /bulk_job_not_found \(404\)/);
});

test('pause, resume and cancel a running job', async () => {
  // The first saga goes at once, the next 10 s later: time enough to pause.
  const started = await sagas(['start', 'resolve', '--cap', '3', '--rate', '0.1', '--note', 'by hand', '--json']);
  const id = (JSON.parse(started.stdout) as { id: string }).id;
  const paused = await sagas(['pause', id]);
  assert.equal(paused.code, 0, paused.stderr);
  assert.match(paused.stdout, /resolve +paused/);
  assert.match((await sagas(['resume', id])).stdout, /resolve +running/);
  assert.match((await sagas(['cancel', id])).stdout, /resolve +cancelled/);
});
