/**
 * Operator actions through the admin API and the `sagas` CLI against a started system (issue 12
 * parts 3 and 4): each action's allowed and refused transitions, replays, the timeline's record of
 * who acted, and the CLI's output and exit codes. No ADMIN_TOKENS: this test is the loopback
 * operator `local` (test/unit/admin-cli.test.ts covers the CLI with tokens).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { freshSystem, eventually } from '../helpers/system.js';
import { main } from '../../src/cli/main.js';

let sys: Awaited<ReturnType<typeof freshSystem>>;
before(async () => {
  sys = await freshSystem({
    SAGA_COMPENSATION_MAX_ATTEMPTS: '3',
    SAGA_COMPENSATION_MAX_BACKOFF_MS: '50',
    // A step whose participant is down is retried (not given up) until an operator steps in.
    SAGA_STEP_MAX_ATTEMPTS: '1000',
    SAGA_RETRY_MAX_BACKOFF_MS: '100',
  });
});
after(() => sys?.stop());

const DECLINED = { customer_id: 'c', items: [{ product_id: 'prod_1', quantity: 1, price: 600 }] };
const HAPPY = { customer_id: 'c', items: [{ product_id: 'prod_1', quantity: 1, price: 10 }] };

/** A saga parked by an inventory that dies on the release undoing a declined order; inventory is back after. */
async function parkedSaga(): Promise<string> {
  const armed = await sys.restart('inventory', { CRASH_AT: 'inventory.release.before_commit', SAGAS_TEST_HOOKS: '1' });
  const r = await sys.api('POST', '/orders', DECLINED);
  assert.equal(r.status, 201);
  assert.equal((await armed.exited).signal, 'SIGKILL');
  await eventually(
    'the saga to park',
    async () => ((await sys.admin('GET', `/api/sagas/${r.body.id}`)).body.status === 'PARKED' ? true : undefined),
    30_000,
  );
  await sys.restart('inventory');
  // The gateway sees inventory again (its gRPC channel reconnected) before an operator acts.
  await eventually('the gateway to be ready again', async () =>
    (await sys.api('GET', '/readyz')).status === 200 ? true : undefined,
  );
  return r.body.id as string;
}

const act = (id: string, action: string, actionId: string, note?: string) =>
  sys.admin('POST', `/api/sagas/${id}/actions`, {
    action,
    action_id: actionId,
    ...(note === undefined ? {} : { note }),
  });

function expectRefused(r: { status: number; body: { error: string } }, status: number, code: string) {
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.equal(r.body.error, code);
}

async function cli(argv: string[], env: NodeJS.ProcessEnv = {}) {
  let out = '';
  let err = '';
  const sink = (f: (s: string) => void) => new Writable({ write: (c, _e, cb) => (f(String(c)), cb()) });
  const code = await main(argv, {
    env: { SAGAS_ADMIN_URL: sys.adminUrl, ...env },
    stdout: sink((s) => (out += s)),
    stderr: sink((s) => (err += s)),
  });
  return { code, out, err };
}

test('the parked queue, retry of a PARKED saga (allowed once, replayed, refused after), and the refusals', async () => {
  const id = await parkedSaga();
  const parked = await sys.admin('GET', '/api/parked');
  assert.equal(parked.status, 200);
  const row = parked.body.sagas.find((s: { id: string }) => s.id === id);
  assert.ok(row, JSON.stringify(parked.body));
  assert.match(row.reason, /^payment_declined: /);
  assert.equal(typeof row.age_seconds, 'number');

  expectRefused(await act(id, 'resolve', 'r-0'), 400, 'note_required');
  expectRefused(await act(id, 'resolve', 'r-0', '   '), 400, 'note_required');
  // (compensate of a PARKED saga is allowed now: it resumes the compensation, like retry — issue 21,
  // every PARKED saga is repairable by retry or compensate; test/unit/saga-operator-decision.test.ts.)
  expectRefused(await act('6d1c5f9e-0000-4000-8000-000000000000', 'retry', 'x-0'), 404, 'saga_not_found');

  const first = await act(id, 'retry', 'retry-1', 'inventory is back');
  assert.equal(first.status, 200, JSON.stringify(first.body));
  assert.equal(first.body.replayed, false);
  assert.equal(first.body.saga.id, id);
  const again = await act(id, 'retry', 'retry-1', 'inventory is back');
  assert.equal(again.status, 200);
  assert.equal(again.body.replayed, true);
  expectRefused(await act(id, 'resolve', 'retry-1', 'another action, same id'), 409, 'action_id_reused');

  const ended = await eventually('the retried saga to end', async () => {
    const s = (await sys.admin('GET', `/api/sagas/${id}`)).body;
    return ['COMPENSATED', 'PARKED'].includes(s.status) && s.events.at(-1).type !== 'OPERATOR_ACTION' ? s : undefined;
  });
  assert.equal(ended.status, 'COMPENSATED', JSON.stringify(ended.events.slice(-6)));
  expectRefused(await act(id, 'retry', 'retry-2'), 409, 'action_not_allowed');
  expectRefused(await act(id, 'resolve', 'resolve-2', 'too late'), 409, 'action_not_allowed');

  const t = await sys.admin('GET', `/api/sagas/${id}`);
  const actions = t.body.events.filter((e: { type: string }) => e.type === 'OPERATOR_ACTION');
  assert.equal(actions.length, 1, 'a replay records nothing');
  assert.equal(actions[0].data.action, 'retry');
  assert.equal(actions[0].data.actor, 'local');
  assert.equal(actions[0].data.action_id, 'retry-1');
  const o = await sys.api('GET', `/orders/${id}`);
  assert.equal(o.body.status, 'CANCELLED');
  assert.equal(o.body.payment.status !== 'charged', true);
});

test('compensate a saga still before its pivot, retrying a participant that is down', async () => {
  const armed = await sys.restart('payment', { CRASH_AT: 'payment.charge.before_commit', SAGAS_TEST_HOOKS: '1' });
  const r = await sys.api('POST', '/orders', HAPPY);
  assert.equal(r.status, 201);
  await armed.exited;
  const id = r.body.id as string;
  // Payment is down: the charge is retried; the saga is RUNNING at charge_payment.
  const running = await sys.admin('GET', `/api/sagas/${id}`);
  assert.equal(running.body.status, 'RUNNING');
  const overview = await sys.admin('GET', '/api/overview');
  assert.ok(overview.body.in_flight >= 1, JSON.stringify(overview.body));
  const c = await act(id, 'compensate', 'comp-1', 'payment is out for the day');
  assert.equal(c.status, 200, JSON.stringify(c.body));
  assert.equal(c.body.replayed, false);
  assert.ok(['COMPENSATING', 'COMPENSATED', 'PARKED'].includes(c.body.saga.status), c.body.saga.status);
  expectRefused(await act(id, 'compensate', 'comp-2'), 409, 'action_not_allowed');
  await sys.restart('payment');
  await eventually(
    'the compensated saga to end',
    async () => {
      const s = (await sys.admin('GET', `/api/sagas/${id}`)).body;
      return s.status === 'COMPENSATED' || s.status === 'PARKED' ? s.status : undefined;
    },
    30_000,
  );
  const o = await sys.api('GET', `/orders/${id}`);
  assert.notEqual(o.body.status, 'CONFIRMED');
});

test('the CLI: resolve a PARKED saga, list and show it, refusals exit 1, usage errors exit 2', async () => {
  const id = await parkedSaga();
  const listed = await cli(['list', '--status', 'parked', '--json']);
  assert.equal(listed.code, 0, listed.err);
  const page = JSON.parse(listed.out);
  assert.ok(page.sagas.some((s: { id: string }) => s.id === id));
  assert.ok(page.counts.PARKED >= 1);

  const readable = await cli(['list', '--status', 'PARKED']);
  assert.equal(readable.code, 0);
  assert.match(readable.out, /PARKED \d+/);
  assert.ok(readable.out.includes(id));

  assert.equal((await cli(['resolve', id])).code, 2, 'resolve without --note is a usage error');
  const resolved = await cli([
    'resolve',
    id,
    '--note',
    'released the reservation by hand',
    '--action-id',
    'cli-resolve-1',
  ]);
  assert.equal(resolved.code, 0, resolved.err);
  assert.match(resolved.out, /resolve of .* done; the saga is now RESOLVED/);
  const replay = await cli([
    'resolve',
    id,
    '--note',
    'released the reservation by hand',
    '--action-id',
    'cli-resolve-1',
    '--json',
  ]);
  assert.equal(replay.code, 0, replay.err);
  assert.equal(JSON.parse(replay.out).replayed, true);

  const refused = await cli(['retry', id]);
  assert.equal(refused.code, 1);
  assert.match(refused.err, /action_not_allowed \(409\)/);
  const missing = await cli(['show', '6d1c5f9e-0000-4000-8000-000000000000']);
  assert.equal(missing.code, 1);
  assert.match(missing.err, /saga_not_found \(404\)/);

  const shown = await cli(['show', id]);
  assert.equal(shown.code, 0, shown.err);
  assert.match(shown.out, /RESOLVED/);
  assert.match(shown.out, /OPERATOR_ACTION( \S+)? resolve by local: "released the reservation by hand"/);
  const json = await cli(['show', id, '--json']);
  assert.equal(JSON.parse(json.out).status, 'RESOLVED');

  const counts = (await sys.admin('GET', '/api/sagas?status=RESOLVED')).body;
  assert.ok(counts.sagas.some((s: { id: string }) => s.id === id));
  assert.ok(counts.counts.RESOLVED >= 1);
  assert.equal((await cli(['compensate'])).code, 2);
  assert.equal((await cli(['list', '--status', 'DONE'])).code, 2);
});

test('a system started by startSystem reports its admin listener, and the public port lists no sagas', async () => {
  assert.match(sys.adminUrl ?? '', /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.deepEqual(sys.adminUrls, [sys.adminUrl]);
  assert.notEqual(sys.adminUrl, sys.url);
  // No ADMIN_TOKENS: the gateway said at start that it serves loopback clients only.
  assert.ok(
    sys.procs.gateway.output().some((l) => l.includes('no ADMIN_TOKENS configured') && l.includes('loopback')),
    sys.procs.gateway.output().join('\n'),
  );
  assert.equal((await sys.api('GET', '/sagas')).status, 404);
  const stock = await sys.admin('GET', '/api/stock');
  assert.equal(stock.status, 200);
  assert.ok(stock.body.products.some((p: { product_id: string }) => p.product_id === 'prod_1'));
  const home = await fetch(`${sys.adminUrl}/`);
  assert.equal(home.status, 200);
  assert.match(home.headers.get('content-type') ?? '', /^text\/html/);
});
