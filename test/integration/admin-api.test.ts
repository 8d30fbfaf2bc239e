/**
 * The admin API's answers (issue 12): the saga list with its counts and id search, a timeline's
 * trace link, the PARKED queue, the overview, stock, refused actions through the engine, the
 * action log line, no token in any log line, and the CLI with tokens. In-process (inject, and one
 * real listen for the CLI).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { LightMyRequestResponse } from 'fastify';
import { gatewayApp, type GatewayApp } from '../helpers/gateway-app.js';
import { parkedSaga } from '../helpers/admin-attack.js';
import { newSaga, STARTED } from '../helpers/saga-log-work.js';
import { recentSagas } from '../../src/gateway/admin/recent.js';
import { main } from '../../src/cli/main.js';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';

// Real spans, so a saga carries a trace id (the gateway's telemetry registers one the same way).
new NodeTracerProvider().register();

const OPERATOR = 'op-S3cretToken-0123456789';
const VIEWER = 'vw-S3cretToken-9876543210';
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the admin API's JSON, read loosely on purpose (nested pages, traces, stats): the assertions are the type check
const json = (r: LightMyRequestResponse) => r.json<Record<string, any>>();
const auth = { authorization: `Bearer ${OPERATOR}` };
const HAPPY = { customer_id: 'cust_admin', items: [{ product_id: 'prod_1', quantity: 1, price: 10 }] };
const DECLINED = { customer_id: 'cust_admin', items: [{ product_id: 'prod_1', quantity: 1, price: 600 }] };

const logLines: string[] = [];
let g: GatewayApp;
let completed: string;
let compensated: string;

before(async () => {
  const sink = new Writable({ write: (c, _e, cb) => (logLines.push(String(c)), cb()) });
  g = await gatewayApp({
    adminTokens: `ops:operator:${OPERATOR},watcher:viewer:${VIEWER}`,
    traceUrlTemplate: 'http://grafana.local/explore?traceId={trace_id}&x=1',
    logger: pino({ level: 'debug' }, sink),
  });
  const place = async (body: unknown) =>
    json(await g.app.inject({ method: 'POST', url: '/orders', payload: body as object, headers: { prefer: 'wait=5' } }))
      .id as string;
  completed = await place(HAPPY);
  compensated = await place(DECLINED);
});
after(() => g.close());

const get = async (url: string) => {
  const r = await g.admin.inject({ method: 'GET', url, headers: auth });
  assert.equal(r.statusCode, 200, `${url}: ${r.body}`);
  return json(r);
};

describe('reads', () => {
  test('GET /api/sagas: newest first, with every status counted, and search by saga (= order) id', async () => {
    const page = await get('/api/sagas');
    assert.deepEqual(page.sagas.map((s: { id: string }) => s.id).slice(0, 2), [compensated, completed]);
    assert.deepEqual(Object.keys(page.counts).sort(), [
      'COMPENSATED',
      'COMPENSATING',
      'COMPLETED',
      'PARKED',
      'RESOLVED',
      'RUNNING',
    ]);
    assert.ok(page.counts.COMPLETED >= 1 && page.counts.COMPENSATED >= 1);
    assert.deepEqual(
      (await get(`/api/sagas?q=${completed}`)).sagas.map((s: { id: string }) => s.id),
      [completed],
    );
    assert.deepEqual((await get(`/api/sagas?q=${completed}&status=compensated`)).sagas, []);
    assert.deepEqual((await get('/api/sagas?q=no-such-saga')).sagas, []);
    assert.equal((await get('/api/sagas?q=no-such-saga')).next_cursor, null);
  });

  test("GET /api/sagas/:id: the timeline, the input, the results and the trace's link", async () => {
    const t = await get(`/api/sagas/${completed}`);
    assert.equal(t.status, 'COMPLETED');
    assert.equal(t.events[0].type, 'SAGA_STARTED');
    assert.equal(t.input.customer_id, 'cust_admin');
    assert.ok(t.results.reserve_stock !== undefined, JSON.stringify(t.results));
    assert.match(t.trace_id, /^[0-9a-f]{32}$/);
    assert.equal(t.trace_url, `http://grafana.local/explore?traceId=${t.trace_id}&x=1`);
    const none = await gatewayApp();
    try {
      const id = json(
        await none.app.inject({ method: 'POST', url: '/orders', payload: HAPPY, headers: { prefer: 'wait=5' } }),
      ).id;
      assert.equal(json(await none.admin.inject({ method: 'GET', url: `/api/sagas/${id}` })).trace_url, null);
    } finally {
      await none.close();
    }
  });

  test('GET /api/parked, /api/overview, /api/stock', async () => {
    assert.deepEqual(await get('/api/parked'), { sagas: [] });
    const o = await get('/api/overview');
    assert.deepEqual(Object.keys(o).sort(), [
      'in_flight',
      'oldest_in_flight_age_seconds',
      'p50_ms',
      'p99_ms',
      'parked',
      'sagas_per_second',
    ]);
    assert.equal(o.parked, 0);
    assert.ok(o.sagas_per_second > 0, JSON.stringify(o));
    assert.equal(typeof o.p50_ms, 'number');
    assert.ok(o.p99_ms >= o.p50_ms);
    const stock = await get('/api/stock');
    const p1 = stock.products.find((p: { product_id: string }) => p.product_id === 'prod_1');
    assert.deepEqual(
      Object.keys(p1)
        .filter((k) => k !== 'price')
        .sort(),
      ['available', 'product_id', 'reserved', 'sold'],
    );
    assert.ok(p1.sold >= 1);
  });

  test('the overview window: sagas per second and percentiles of the last minute only', () => {
    let t = 1_000_000;
    const r = recentSagas(() => t);
    assert.deepEqual(r.stats(), { sagas_per_second: 0, p50_ms: null, p99_ms: null });
    for (let i = 1; i <= 100; i++) r.record(i * 10, t);
    assert.deepEqual(r.stats(), { sagas_per_second: 1.667, p50_ms: 500, p99_ms: 990 });
    t += 60_001;
    assert.deepEqual(r.stats(), { sagas_per_second: 0, p50_ms: null, p99_ms: null });
  });
});

describe('actions', () => {
  const act = (id: string, body: object, headers: Record<string, string> = auth) =>
    g.admin.inject({ method: 'POST', url: `/api/sagas/${id}/actions`, payload: body, headers });

  test('refused transitions: retry or resolve of a saga that is not PARKED, compensate past its end', async () => {
    for (const [id, action] of [
      [completed, 'retry'],
      [compensated, 'retry'],
      [completed, 'compensate'],
      [compensated, 'compensate'],
    ] as const) {
      const r = await act(id, { action, action_id: `${action}-${id}` });
      assert.equal(r.statusCode, 409, r.body);
      assert.equal(json(r).error, 'action_not_allowed');
    }
    const resolve = await act(completed, { action: 'resolve', action_id: 'resolve-x', note: 'fixed' });
    assert.equal(json(resolve).error, 'action_not_allowed');
  });

  test('the body is checked: an unknown action, an action id out of bounds, an over-long note', async () => {
    for (const body of [
      { action: 'delete', action_id: 'a' },
      { action: 'retry', action_id: '' },
      { action: 'retry', action_id: 'x'.repeat(101) },
      { action: 'retry' },
      { action: 'resolve', action_id: 'a', note: 'n'.repeat(1001) },
    ]) {
      const r = await act(completed, body);
      assert.equal(r.statusCode, 400, `${JSON.stringify(body)}: ${r.body}`);
      assert.equal(json(r).error, 'invalid_request');
    }
  });

  test('no token ever reaches a log line; actions are logged with their actor', async () => {
    await g.admin.inject({ method: 'POST', url: '/api/session', payload: { token: OPERATOR } });
    await g.admin.inject({ method: 'POST', url: '/api/session', payload: { token: `${VIEWER}-wrong` } });
    await g.admin.inject({ method: 'GET', url: '/api/sagas', headers: { authorization: `Bearer ${VIEWER}` } });
    await g.admin.inject({ method: 'GET', url: '/api/sagas', headers: { authorization: `Bearer ${OPERATOR}x` } });
    await act(completed, { action: 'retry', action_id: 'logged-1' });
    const all = logLines.join('');
    assert.ok(all.length > 0);
    for (const secret of ['S3cretToken', OPERATOR, VIEWER])
      assert.ok(!all.includes(secret), `a log line carries ${secret}`);
    assert.ok(logLines.some((l) => l.includes('admin signed in') && l.includes('"admin":"ops"')));
    assert.ok(
      logLines.some(
        (l) =>
          l.includes('operator action refused: retry') &&
          l.includes('"actor":"ops"') &&
          l.includes('"action_id":"logged-1"'),
      ),
    );
  });
});

describe('the CLI with ADMIN_TOKENS', () => {
  let url: string;
  before(async () => {
    url = await g.admin.listen({ host: '127.0.0.1', port: 0 });
  });

  async function cli(argv: string[], env: NodeJS.ProcessEnv) {
    let out = '';
    let err = '';
    const sink = (f: (s: string) => void) => new Writable({ write: (c, _e, cb) => (f(String(c)), cb()) });
    const code = await main(argv, {
      env: { SAGAS_ADMIN_URL: url, ...env },
      stdout: sink((s) => (out += s)),
      stderr: sink((s) => (err += s)),
    });
    return { code, out, err };
  }

  test('no token: exit 1, unauthenticated, with a hint; a viewer lists but may not act', async () => {
    const none = await cli(['list'], {});
    assert.equal(none.code, 1);
    assert.match(none.err, /unauthenticated \(401\)/);
    assert.match(none.err, /SAGAS_ADMIN_TOKEN/);
    const listed = await cli(['list', '--json'], { SAGAS_ADMIN_TOKEN: VIEWER });
    assert.equal(listed.code, 0, listed.err);
    assert.ok(JSON.parse(listed.out).sagas.length >= 2);
    const acting = await cli(['retry', completed], { SAGAS_ADMIN_TOKEN: VIEWER });
    assert.equal(acting.code, 1);
    assert.match(acting.err, /forbidden \(403\)/);
    const wrong = await cli(['show', completed], { SAGAS_ADMIN_TOKEN: `${OPERATOR}-not` });
    assert.equal(wrong.code, 1);
    assert.ok(!wrong.err.includes(OPERATOR), 'the CLI does not print the token');
    const refused = await cli(['compensate', completed, '--json'], { SAGAS_ADMIN_TOKEN: OPERATOR });
    assert.equal(refused.code, 1);
    assert.equal(JSON.parse(refused.out).error, 'action_not_allowed');
    const shown = await cli(['show', completed], { SAGAS_ADMIN_TOKEN: OPERATOR });
    assert.equal(shown.code, 0, shown.err);
    assert.match(shown.out, /COMPLETED/);
    assert.match(shown.out, /trace: http:\/\/grafana\.local\/explore\?traceId=[0-9a-f]{32}&x=1/);
  });

  test('an unreachable admin API is exit 1, a bad SAGAS_ADMIN_URL exit 2', async () => {
    const down = await cli(['list'], { SAGAS_ADMIN_URL: 'http://127.0.0.1:9' });
    assert.equal(down.code, 1);
    assert.match(down.err, /cannot reach the admin API at http:\/\/127\.0\.0\.1:9/);
    assert.equal((await cli(['list'], { SAGAS_ADMIN_URL: 'not a url' })).code, 2);
    assert.equal((await cli(['list'], { SAGAS_ADMIN_URL: 'http://user:pw@127.0.0.1:1' })).code, 2);
  });
});

describe('what the console is sent, so that it guesses nothing (issue 24 item 3)', () => {
  test('the console is ES modules the admin listener serves: every module app.js imports, as JavaScript, under the CSP', async () => {
    const index = await g.admin.inject({ method: 'GET', url: '/', headers: auth });
    assert.match(index.body, /<script type="module" src="\/ui\/app\.js"><\/script>/);
    const seen = new Set<string>();
    const load = async (url: string): Promise<void> => {
      if (seen.has(url)) return;
      seen.add(url);
      const r = await g.admin.inject({ method: 'GET', url, headers: auth });
      assert.equal(r.statusCode, 200, url);
      assert.equal(r.headers['content-type'], 'text/javascript; charset=utf-8', url);
      assert.match(String(r.headers['content-security-policy']), /script-src 'self';/, url);
      for (const m of r.body.matchAll(/^import [^;]*? from '([^']+)';$/gms))
        await load(new URL(m[1] as string, `http://admin${url}`).pathname);
    };
    await load('/ui/app.js');
    assert.ok(seen.has('/ui/js/api.js') && seen.has('/ui/js/faults.js') && seen.size > 10, [...seen].join(' '));
    for (const url of ['/ui/js/nothing.js', '/ui/js/..%2Fapp.js', '/ui/css/app.css', '/ui/js/a/b.js'])
      assert.equal((await g.admin.inject({ method: 'GET', url, headers: auth })).statusCode, 404, url);
  });

  test("GET /api/console: the engine's statuses, operator actions and longest note", async () => {
    assert.deepEqual(await get('/api/console'), {
      statuses: ['RUNNING', 'COMPENSATING', 'COMPLETED', 'COMPENSATED', 'PARKED', 'RESOLVED'],
      terminal_statuses: ['COMPLETED', 'COMPENSATED', 'PARKED', 'RESOLVED'],
      actions: ['retry', 'compensate', 'resolve'],
      note_max_length: 1000,
      registered_versions: [{ definition: 'place_order', version: 1 }],
    });
    const none = await g.admin.inject({ method: 'GET', url: '/api/console' });
    assert.equal(none.statusCode, 401);
  });

  test('allowed_actions: in the list, the detail and the PARKED queue, by the rules that refuse an action', async () => {
    const inCompensation = await parkedSaga(g, 'cust_allowed');
    const afterPivot = await parkedSaga(g, 'cust_allowed', { at: 'commit_stock' });
    const expected: Record<string, string[]> = {
      [completed]: [],
      [compensated]: [],
      [inCompensation]: ['retry', 'compensate', 'resolve'],
      [afterPivot]: ['retry', 'resolve'],
    };
    const listed = (await get('/api/sagas?limit=500')).sagas as Array<{ id: string; allowed_actions: string[] }>;
    const parked = (await get('/api/parked')).sagas as Array<{ id: string; allowed_actions: string[] }>;
    assert.deepEqual(parked.map((s) => s.id).sort(), [inCompensation, afterPivot].sort());
    for (const [id, actions] of Object.entries(expected)) {
      assert.deepEqual(listed.find((s) => s.id === id)?.allowed_actions, actions, `list: ${id}`);
      assert.deepEqual((await get(`/api/sagas/${id}`)).allowed_actions, actions, `detail: ${id}`);
      if (actions.length) assert.deepEqual(parked.find((s) => s.id === id)?.allowed_actions, actions, `parked: ${id}`);
    }
    // A compensate the list did not offer is refused; one it offered is applied.
    const refused = await g.admin.inject({
      method: 'POST',
      url: `/api/sagas/${afterPivot}/actions`,
      payload: { action: 'compensate', action_id: 'not-offered-1' },
      headers: auth,
    });
    assert.equal(json(refused).error, 'action_not_allowed');
    const resolved = await g.admin.inject({
      method: 'POST',
      url: `/api/sagas/${afterPivot}/actions`,
      payload: { action: 'resolve', action_id: 'offered-1', note: 'repaired by hand' },
      headers: auth,
    });
    assert.equal(resolved.statusCode, 200, resolved.body);
    assert.deepEqual((await get(`/api/sagas/${afterPivot}`)).allowed_actions, []);
  });

  test("each event of an attempt: its attempt, phase and call's key; injected only from data.fault_rule", async () => {
    const t = await get(`/api/sagas/${compensated}`);
    for (const e of t.events) {
      const phase = /^STEP_(STARTED|SUCCEEDED|FAILED)$/.test(e.type)
        ? 'action'
        : /^COMPENSATION_/.test(e.type)
          ? 'compensation'
          : null;
      assert.equal(e.phase, phase, e.type);
      assert.equal(
        e.idempotency_key,
        phase === null ? null : `${compensated}:${e.step}${phase === 'compensation' ? ':undo' : ''}`,
        e.type,
      );
      if (phase) assert.equal(e.attempt, 1, `${e.type} ${e.step}`);
      assert.equal(e.injected, false);
      assert.equal(e.fault_rule, null);
    }
    assert.ok(t.events.some((e: { type: string }) => e.type === 'COMPENSATION_STARTED'));

    // A saga of a definition this gateway does not run, its failures written as the engine would.
    const id = randomUUID();
    assert.ok((await g.log.create(newSaga(id, { definition: 'console_facts' }), [STARTED], 60_000)).created);
    await g.log.append(id, 'owner-a', { attempt: 2 }, [
      { type: 'STEP_STARTED', step: 'a', attempt: 1 },
      {
        type: 'STEP_FAILED',
        step: 'a',
        attempt: 1,
        error: 'a refused',
        retryable: true,
        data: { code: 'fault_injected', fault_rule: 'refuse-a' },
      },
      { type: 'STEP_STARTED', step: 'a', attempt: 2 },
      // The text names a rule, the data does not: not injected (no reading of prose).
      {
        type: 'STEP_FAILED',
        step: 'a',
        attempt: 2,
        error: 'fault injected by rule refuse-a: a refused',
        retryable: true,
        data: { code: 'fault_injected' },
      },
    ]);
    const d = await get(`/api/sagas/${id}`);
    const failed = d.events.filter((e: { type: string }) => e.type === 'STEP_FAILED');
    assert.deepEqual(
      failed.map((e: Record<string, unknown>) => [e.attempt, e.idempotency_key, e.injected, e.fault_rule]),
      [
        [1, `${id}:a`, true, 'refuse-a'],
        [2, `${id}:a`, false, null],
      ],
    );
    assert.deepEqual(d.allowed_actions, [], 'running, of a definition this gateway does not know: nothing to offer');
  });
});
