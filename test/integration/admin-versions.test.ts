/**
 * The versions of the saga definitions on the admin API (issue 26, item 1): GET /api/versions,
 * POST /api/migrations (a dry run for any role, a real one for an operator, CSRF with a cookie,
 * every refusal a 400 or 409 with its code and nothing written), and /readyz's `definitions`.
 * In-process (inject), over a gateway registering place_order v1 and v2 with a real SQLite log;
 * the sagas in flight are written into the log as other gateways would have left them, so none
 * of them is driven here.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { gatewayApp, type GatewayApp } from '../helpers/gateway-app.js';
import { signIn } from '../helpers/admin-attack.js';
import { newSaga, STARTED } from '../helpers/saga-log-work.js';
import type { SagaRecord } from '../../src/saga/model.js';

const OPERATOR = 'op-versions-0123456789';
const VIEWER = 'vw-versions-0123456789';
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the admin API's JSON, read loosely: the assertions are the type check
const json = (r: LightMyRequestResponse) => r.json<Record<string, any>>();
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

let g: GatewayApp;
/** PARKED after the pivot (commit_stock out of attempts): moves to v2 at commit_stock. */
let afterPivot: string;
/** PARKED compensating reserve_stock after a declined charge: moves to v2, compensating from create_order. */
let compensating: string;
/** COMPENSATING with nothing left to compensate (another gateway finishing it): stays. */
let finishing: string;
/** A saga of place_order v3, which this gateway does not have: left to the gateways that do. */
let newer: string;

/** A saga as another gateway left it in the shared log (a live foreign lease, or parked without one). */
async function leftInLog(over: Partial<SagaRecord>): Promise<string> {
  const id = randomUUID();
  const at = Date.now() - 60_000;
  const held = over.status === 'RUNNING' || over.status === 'COMPENSATING';
  const res = await g.log.create(
    newSaga(id, {
      definition: 'place_order',
      version: 1,
      input: { order_id: id, customer_id: 'cust_versions' },
      subject: 'cust_versions',
      leaseOwner: held ? 'gateway-elsewhere' : null,
      leaseExpiresAt: held ? Date.now() + 3_600_000 : 0,
      createdAt: at,
      updatedAt: at,
      ...over,
    }),
    [STARTED],
    held ? 3_600_000 : 0,
  );
  assert.ok(res.created);
  return id;
}

/** Every saga's row and event count: what "nothing written" compares. */
async function snapshot(): Promise<string> {
  const page = await g.log.list({ limit: 500 });
  const rows = await Promise.all(
    page.sagas.map(async (s) => ({
      id: s.id,
      version: s.version,
      status: s.status,
      step: s.stepIndex,
      comp: s.compIndex,
      updated: s.updatedAt,
      events: (await g.log.events(s.id, { afterSeq: 0, limit: 1000 })).length,
    })),
  );
  return JSON.stringify(rows.sort((a, b) => a.id.localeCompare(b.id)));
}

const migrate = (body: unknown, headers: Record<string, string> = bearer(OPERATOR)) =>
  g.admin.inject({ method: 'POST', url: '/api/migrations', payload: body as object, headers });

const versions = async (token = VIEWER) => {
  const r = await g.admin.inject({ method: 'GET', url: '/api/versions', headers: bearer(token) });
  assert.equal(r.statusCode, 200, r.body);
  return json(r).versions as Array<Record<string, unknown>>;
};

const version = (definition: string, v: number, state: string, startsHere: boolean, counts = [0, 0, 0]) => {
  const [running, compensating, parked] = counts as [number, number, number];
  return {
    definition,
    version: v,
    state,
    starts_here: startsHere,
    running,
    compensating,
    parked,
    in_flight: running + compensating + parked,
  };
};

before(async () => {
  g = await gatewayApp({
    adminTokens: `alice:operator:${OPERATOR},victor:viewer:${VIEWER}`,
    placeOrderVersions: { registered: [1, 2], start: 1 },
  });
  afterPivot = await leftInLog({
    status: 'PARKED',
    stepIndex: 4,
    compIndex: -1,
    currentStep: 'commit_stock',
    attempt: 50,
    failure: { step: 'commit_stock', code: 'unavailable', message: 'inventory unreachable' },
  });
  compensating = await leftInLog({
    status: 'PARKED',
    stepIndex: 2,
    compIndex: 1,
    currentStep: 'reserve_stock',
    attempt: 5,
    failure: { step: 'charge_payment', code: 'payment_declined', message: 'declined' },
  });
  finishing = await leftInLog({ status: 'COMPENSATING', stepIndex: 1, compIndex: -1, currentStep: null });
  newer = await leftInLog({ version: 3, status: 'RUNNING', stepIndex: 1, currentStep: 'create_order' });
});
after(() => g.close());

describe('GET /api/versions', () => {
  test('every version registered here or in flight, with its counts and what this gateway makes of it', async () => {
    assert.deepEqual(await versions(), [
      version('place_order', 1, 'driven', true, [0, 1, 2]),
      version('place_order', 2, 'driven', false),
      version('place_order', 3, 'left_to_others', false, [1, 0, 0]),
    ]);
    const none = await g.admin.inject({ method: 'GET', url: '/api/versions' });
    assert.equal(none.statusCode, 401);
    assert.equal(json(none).error, 'unauthenticated');
  });

  test('/api/console names the versions this gateway registers (the console marks the others)', async () => {
    const r = await g.admin.inject({ method: 'GET', url: '/api/console', headers: bearer(VIEWER) });
    assert.deepEqual(json(r).registered_versions, [
      { definition: 'place_order', version: 1 },
      { definition: 'place_order', version: 2 },
    ]);
  });

  test('/readyz says what this gateway drives and what it leaves to others, and stays ready', async () => {
    const r = await g.app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(r.statusCode, 200, r.body);
    const body = json(r);
    assert.equal(body.status, 'ready');
    assert.deepEqual(body.definitions, {
      registered: ['place_order@1', 'place_order@2'],
      starts: { place_order: 1 },
      left_to_others: [{ definition: 'place_order', version: 3, in_flight: 1 }],
    });
  });

  test("/readyz reads the versions' counts at most once every few seconds, however often it is probed", async () => {
    // Counting the engine's reads (the real method is still called).
    const read = g.engine.versions.bind(g.engine);
    let reads = 0;
    g.engine.versions = () => {
      reads++;
      return read();
    };
    try {
      for (let i = 0; i < 20; i++) {
        const r = await g.app.inject({ method: 'GET', url: '/readyz' });
        assert.equal(r.statusCode, 200, r.body);
        assert.equal(json(r).definitions.left_to_others.length, 1);
      }
      assert.ok(reads <= 1, `${reads} reads for 20 probes`);
    } finally {
      g.engine.versions = read;
    }
  });
});

describe('POST /api/migrations refused as a whole: a 400 or 409 with its code, nothing written', () => {
  const base = { definition: 'place_order', from: 1, to: 2, dry_run: false };
  const cases: Array<{ name: string; body: unknown; status: number; code: string; message?: RegExp }> = [
    { name: 'a version that is not an integer', body: { ...base, from: 1.5 }, status: 400, code: 'invalid_request' },
    { name: 'a version given as text', body: { ...base, to: '2' }, status: 400, code: 'invalid_request' },
    { name: 'version 0', body: { ...base, from: 0 }, status: 400, code: 'invalid_request' },
    { name: 'no dry_run', body: { definition: 'place_order', from: 1, to: 2 }, status: 400, code: 'invalid_request' },
    {
      name: 'a definition this gateway does not register',
      body: { ...base, definition: 'ship_order' },
      status: 400,
      code: 'unknown_definition',
      message: /ship_order/,
    },
    {
      name: 'a map that is not old=new',
      body: { ...base, map: 'create_order' },
      status: 400,
      code: 'invalid_map',
      message: /not old_step=new_step/,
    },
    {
      name: 'a map naming one step twice',
      body: { ...base, map: 'a=b,a=c' },
      status: 400,
      code: 'invalid_map',
      message: /mapped twice/,
    },
    {
      name: 'a map to a step the new version does not have',
      body: { ...base, map: { charge_payment: 'charge' } },
      status: 400,
      code: 'invalid_map',
      message: /place_order@2 has no step charge/,
    },
    { name: 'the same version', body: { ...base, to: 1 }, status: 400, code: 'same_version' },
    {
      name: 'a version this gateway does not register',
      body: { ...base, to: 3 },
      status: 409,
      code: 'unknown_version',
      message: /this gateway does not register place_order@3/,
    },
  ];

  test('each bad request, as an operator and for real', async () => {
    const before = await snapshot();
    for (const c of cases) {
      const r = await migrate(c.body);
      assert.equal(r.statusCode, c.status, `${c.name}: ${r.body}`);
      const body = json(r);
      assert.equal(body.error, c.code, c.name);
      if (c.message) assert.match(body.message, c.message, c.name);
    }
    assert.equal(await snapshot(), before);
  });

  test('a viewer may not migrate for real (403), and nothing is written', async () => {
    const before = await snapshot();
    const r = await migrate({ ...base }, bearer(VIEWER));
    assert.equal(r.statusCode, 403, r.body);
    assert.equal(json(r).error, 'forbidden');
    assert.match(json(r).message, /victor is a viewer.*dry run/);
    assert.equal(await snapshot(), before);
  });

  test('with the session cookie: refused without its X-CSRF-Token, whatever the role', async () => {
    const before = await snapshot();
    const op = await signIn(g.admin, OPERATOR);
    const r = await migrate({ ...base }, { cookie: op.cookie });
    assert.equal(r.statusCode, 403, r.body);
    assert.equal(json(r).error, 'csrf_rejected');
    const wrong = await migrate({ ...base }, { cookie: op.cookie, 'x-csrf-token': 'not-the-token' });
    assert.equal(json(wrong).error, 'csrf_rejected');
    assert.equal(await snapshot(), before);
  });
});

describe('POST /api/migrations', () => {
  test('a dry run (a viewer may) lists what would move and what stays, with reasons, and writes nothing', async () => {
    const before = await snapshot();
    const r = await migrate({ definition: 'place_order', from: 1, to: 2, dry_run: true }, bearer(VIEWER));
    assert.equal(r.statusCode, 200, r.body);
    const report = json(r);
    assert.match(report.action_id, /^migrate_[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.deepEqual(
      { ...report, action_id: 'x', items: undefined },
      {
        definition: 'place_order',
        from: 1,
        to: 2,
        dry_run: true,
        action_id: 'x',
        scanned: 3,
        moved: 2,
        stayed: 1,
        changed: 0,
        by_code: { finishing: 1 },
        items: undefined,
        items_omitted: 0,
        truncated: false,
      },
    );
    // The ones that stay come first.
    const [stay, ...move] = report.items;
    assert.deepEqual(stay, {
      saga_id: finishing,
      status: 'COMPENSATING',
      outcome: 'stay',
      from_step: 'reserve_stock',
      to_step: null,
      added: [],
      replayed: [],
      unrun: [],
      code: 'finishing',
      reason: 'it has nothing left to compensate and is finishing',
    });
    const byId = new Map(move.map((i: { saga_id: string }) => [i.saga_id, i]));
    assert.deepEqual(byId.get(afterPivot), {
      saga_id: afterPivot,
      status: 'PARKED',
      outcome: 'would_move',
      from_step: 'commit_stock',
      to_step: 'commit_stock',
      added: [],
      replayed: [],
      unrun: [],
    });
    assert.deepEqual(byId.get(compensating), {
      saga_id: compensating,
      status: 'PARKED',
      outcome: 'would_move',
      from_step: 'reserve_stock',
      to_step: 'create_order',
      added: [],
      replayed: [],
      unrun: [],
    });
    assert.equal(await snapshot(), before);
    // The other saga versions are untouched by any of it.
    assert.equal((await g.log.get(newer))?.version, 3);
  });

  test('an operator (cookie and X-CSRF-Token) migrates: the PARKED sagas move to v2, audited, and once only', async () => {
    const op = await signIn(g.admin, OPERATOR);
    const headers = { cookie: op.cookie, 'x-csrf-token': op.csrf };
    const body = {
      definition: 'place_order',
      from: 1,
      to: 2,
      dry_run: false,
      map: {},
      note: 'v2 rollout',
      action_id: 'migrate_test_1',
    };
    const r = await migrate(body, headers);
    assert.equal(r.statusCode, 200, r.body);
    const report = json(r);
    assert.equal(report.dry_run, false);
    assert.equal(report.action_id, 'migrate_test_1');
    assert.deepEqual([report.scanned, report.moved, report.stayed], [3, 2, 1]);
    assert.deepEqual(
      report.items.map((i: { saga_id: string; outcome: string }) => [i.saga_id, i.outcome]).sort(),
      [
        [afterPivot, 'moved'],
        [compensating, 'moved'],
        [finishing, 'stay'],
      ].sort(),
    );

    // The saga's detail says v2, still PARKED where it was, and the timeline has the migration.
    const d = await g.admin.inject({ method: 'GET', url: `/api/sagas/${afterPivot}`, headers: bearer(VIEWER) });
    const detail = json(d);
    assert.equal(detail.version, 2);
    assert.equal(detail.status, 'PARKED');
    const acts = detail.events.filter((e: { type: string }) => e.type === 'OPERATOR_ACTION');
    assert.equal(acts.length, 1);
    assert.deepEqual(
      {
        action: acts[0].data.action,
        action_id: acts[0].data.action_id,
        actor: acts[0].data.actor,
        note: acts[0].data.note,
        from_version: acts[0].data.from_version,
        to_version: acts[0].data.to_version,
      },
      {
        action: 'migrate',
        action_id: 'migrate_test_1',
        actor: 'alice',
        note: 'v2 rollout',
        from_version: 1,
        to_version: 2,
      },
    );
    const comp = await g.log.get(compensating);
    assert.deepEqual([comp?.version, comp?.status, comp?.currentStep], [2, 'PARKED', 'create_order']);

    assert.deepEqual(await versions(), [
      version('place_order', 1, 'driven', true, [0, 1, 0]),
      version('place_order', 2, 'driven', false, [0, 0, 2]),
      version('place_order', 3, 'left_to_others', false, [1, 0, 0]),
    ]);

    // The same again (a retried request): no saga moves twice, no second event.
    const again = json(await migrate(body, headers));
    assert.deepEqual([again.scanned, again.moved, again.stayed], [1, 0, 1]);
    const events = await g.log.events(afterPivot, { afterSeq: 0, limit: 1000 });
    assert.equal(events.filter((e) => e.type === 'OPERATOR_ACTION').length, 1);
  });

  test('the answer is capped at 1,000 lines, its counts exact', async () => {
    // A dry run's report over more sagas than lines: written into the log as RUNNING v2 sagas
    // held by another gateway (a dry run never takes them over).
    const made = 1_005;
    for (let i = 0; i < made; i++) await leftInLog({ version: 2, status: 'RUNNING', stepIndex: 2 });
    const r = await migrate({ definition: 'place_order', from: 2, to: 1, dry_run: true }, bearer(VIEWER));
    assert.equal(r.statusCode, 200, r.body);
    const report = json(r);
    assert.equal(report.scanned, made + 2);
    assert.equal(report.moved + report.stayed, made + 2);
    assert.equal(report.items.length, 1_000);
    assert.equal(report.items_omitted, made + 2 - 1_000);
    const limited = json(
      await migrate({ definition: 'place_order', from: 2, to: 1, dry_run: true, limit: 10 }, bearer(VIEWER)),
    );
    assert.deepEqual([limited.scanned, limited.items.length, limited.truncated], [10, 10, true]);
  });
});
