/**
 * "Why hasn't this order moved?" from the command line, against a real gateway's admin listener:
 * `sagas show <id>` says what a saga in flight waits for (the participants' gRPC server stopped:
 * the order service unreachable, attempt n of N, the next attempt, the deadline), and once it has
 * made no progress for longer than SAGA_STUCK_AFTER, that it is stuck; `sagas list --stuck` lists
 * it, and no saga that finished.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { gatewayApp, type GatewayApp } from '../helpers/gateway-app.js';
import { sagasInProcess } from '../helpers/cli.js';
import { eventually } from '../helpers/system.js';

const VIEWER = 'vw-cli-waiting-0123456789';
const STUCK_AFTER_MS = 1_500;

let g: GatewayApp;
let url = '';
let done = '';
let wedged = '';

const input = (orderId: string) => ({
  order_id: orderId,
  customer_id: 'cust_wait',
  items: [{ product_id: 'prod_1', quantity: 1, unit_price_cents: 5_000 }],
  total_cents: 5_000,
  created_at_ms: Date.now(),
  fingerprint: 'f'.repeat(64),
  request_id: null,
});

before(async () => {
  g = await gatewayApp({
    adminTokens: `watcher:viewer:${VIEWER}`,
    stuckAfterMs: STUCK_AFTER_MS,
    // Retried for long, a few hundred ms apart: the saga stays in flight while the server is down.
    policies: {
      action: { maxAttempts: 1_000, initialBackoffMs: 100, maxBackoffMs: 300, multiplier: 2 },
      sagaDeadlineMs: 3_600_000,
    },
  });
  done = (await g.engine.start('place_order', { id: 'ord-cli-wait-done', input: input('ord-cli-wait-done') })).saga.id;
  await eventually('the first saga to complete', async () =>
    (await g.engine.reads.get(done))?.status === 'COMPLETED' ? true : undefined,
  );
  await g.stopParticipants();
  wedged = (await g.engine.start('place_order', { id: 'ord-cli-wait-1', input: input('ord-cli-wait-1') })).saga.id;
  url = await g.admin.listen({ host: '127.0.0.1', port: 0 });
});
after(() => g.close());

const sagas = (argv: string[]) => sagasInProcess(argv, { SAGAS_ADMIN_URL: url, SAGAS_ADMIN_TOKEN: VIEWER });

test('sagas show: a saga retrying an unreachable participant says what it waits for and until when', async () => {
  // Two failed attempts at least, so that a streak and a next attempt exist.
  await eventually('a second failed attempt', async () =>
    (await g.engine.reads.events(wedged)).filter((e) => e.type === 'STEP_FAILED').length >= 2 ? true : undefined,
  );
  const r = await eventually('a retrying saga', async () => {
    const out = await sagas(['show', wedged]);
    return /waiting: create_order, attempt \d+ of 1000, order service unreachable since/.test(out.stdout)
      ? out
      : undefined;
  });
  assert.equal(r.code, 0, r.stderr);
  const line = r.stdout.split('\n').find((l) => l.includes('waiting:')) ?? '';
  assert.match(
    line,
    /^ {2}(STUCK; )?waiting: create_order, attempt \d+ of 1000, order service unreachable since \d\d:\d\d:\d\d UTC, (next attempt at|calling CreateOrder|next attempt was due at)/,
  );
  assert.match(line, /saga deadline \d\d:\d\d:\d\d \(then it compensates\)/);

  const asJson = await sagas(['show', wedged, '--json']);
  assert.equal(asJson.code, 0, asJson.stderr);
  const body = JSON.parse(asJson.stdout) as {
    status: string;
    waiting: { step: string; participant: string; last_error: { kind: string; code: string } | null };
  };
  assert.equal(body.status, 'RUNNING');
  assert.equal(body.waiting.step, 'create_order');
  assert.equal(body.waiting.participant, 'order');
  assert.deepEqual(
    { kind: body.waiting.last_error?.kind, code: body.waiting.last_error?.code },
    { kind: 'unreachable', code: 'grpc_unavailable' },
  );
});

test('past SAGA_STUCK_AFTER without progress: show says stuck, list --stuck lists it and nothing finished', async () => {
  const shown = await eventually(
    'the saga to be stuck',
    async () => {
      const out = await sagas(['show', wedged]);
      return out.stdout.includes('STUCK; waiting:') ? out : undefined;
    },
    30_000,
  );
  assert.match(shown.stdout, /Stuck: no progress for [\d.]+ s \(threshold 1\.5 s\)\./);

  const listed = await sagas(['list', '--stuck']);
  assert.equal(listed.code, 0, listed.stderr);
  const lines = listed.stdout.trim().split('\n');
  assert.equal(lines.length, 2, listed.stdout);
  assert.match(lines[1] ?? '', new RegExp(`^${wedged} {2}RUNNING .*STUCK: no progress for \\d+ s$`));
  assert.ok(!listed.stdout.includes(done), 'a finished saga is never stuck');

  const all = await sagas(['list']);
  assert.match(all.stdout, new RegExp(`${done} {2}COMPLETED`));

  const shownDone = await sagas(['show', done]);
  assert.equal(shownDone.code, 0);
  assert.ok(!shownDone.stdout.includes('waiting:'), 'a completed saga waits for nothing');

  const listedJson = JSON.parse((await sagas(['list', '--stuck', '--json'])).stdout) as {
    sagas: Array<{ id: string; waiting: { stuck: boolean; progress_age_seconds: number } | null }>;
  };
  assert.deepEqual(
    listedJson.sagas.map((s) => [s.id, s.waiting?.stuck]),
    [[wedged, true]],
  );
});

test('the admin API: the waiting route and the stuck filter, documented; bad input is a 400 and unknown a 404', async () => {
  const auth = { authorization: `Bearer ${VIEWER}` };
  const bad = await g.admin.inject({ method: 'GET', url: '/api/sagas?stuck=yes', headers: auth });
  assert.equal(bad.statusCode, 400, bad.body);
  assert.equal(bad.json<{ error: string }>().error, 'invalid_request');
  const none = await g.admin.inject({ method: 'GET', url: '/api/sagas/no-such-saga/waiting', headers: auth });
  assert.equal(none.statusCode, 404);
  assert.equal(none.json<{ error: string }>().error, 'saga_not_found');
  const finished = await g.admin.inject({ method: 'GET', url: `/api/sagas/${done}/waiting`, headers: auth });
  assert.deepEqual(finished.json(), { saga_id: done, status: 'COMPLETED', waiting: null });
  const unauthenticated = await g.admin.inject({ method: 'GET', url: `/api/sagas/${wedged}/waiting` });
  assert.equal(unauthenticated.statusCode, 401);
  const doc = (await g.admin.inject({ method: 'GET', url: '/api/openapi.json', headers: auth })).json<{
    paths: Record<string, { get?: { operationId?: string; parameters?: Array<{ name: string }> } }>;
  }>();
  assert.equal(doc.paths['/api/sagas/{id}/waiting']?.get?.operationId, 'getSagaWaiting');
  assert.ok(doc.paths['/api/sagas']?.get?.parameters?.some((p) => p.name === 'stuck'));
});
