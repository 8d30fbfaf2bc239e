import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { crashSystem, CATALOG } from '../helpers/crash.js';
import { allTerminal, checkInvariants } from '../helpers/invariants.js';
import { createTempDatabase, type TempDatabase } from '../helpers/postgres.js';
import { eventually, freePort, http, type Reply } from '../helpers/system.js';

// Three gateways sharing one PostgreSQL saga log (a database of its own on the machine's server).
// Redis is pointed at a closed port: every gateway falls back to its own in-memory fast path, so
// the saga log alone must keep one idempotency key to one saga across gateways.

const LEASE_MS = 3_000;
let db: TempDatabase;
let sys: Awaited<ReturnType<typeof crashSystem>>;

before(async () => {
  db = await createTempDatabase('sagas_multi');
  sys = await crashSystem(
    {
      SAGA_LOG_URL: db.url,
      SAGA_LOG_POOL_SIZE: '4',
      SAGA_LEASE_MS: String(LEASE_MS),
      SAGA_RECOVERY_INTERVAL_MS: '1000',
      REDIS_URL: `redis://127.0.0.1:${await freePort()}`,
    },
    { gateways: 3 },
  );
});
after(async () => {
  await sys?.stop();
  await db?.drop();
});

const HAPPY = { customer_id: 'cust_multi', items: [{ product_id: 'prod_1', quantity: 1, price: 10 }] };

test('any gateway answers for a saga another gateway drives: order, timeline, listing', async () => {
  const [g0, g1, g2] = sys.urls as [string, string, string];
  const placed = await http(g0, 'POST', '/orders', HAPPY, { Prefer: 'wait=10' });
  assert.equal(placed.status, 201);
  assert.equal(placed.body.status, 'CONFIRMED');
  const id: string = placed.body.id;
  for (const g of [g1, g2]) {
    const o = await http(g, 'GET', `/orders/${id}`);
    assert.equal(o.status, 200);
    assert.equal(o.body.status, 'CONFIRMED');
    assert.equal(o.body.saga_status, 'COMPLETED');
  }
  const [, a1, a2] = sys.adminUrls as [string, string, string];
  const timeline = await http(a2, 'GET', `/api/sagas/${id}`);
  assert.equal(timeline.status, 200);
  assert.equal(timeline.body.events.at(-1).type, 'SAGA_COMPLETED');
  const listed = await http(a1, 'GET', '/api/sagas?limit=500');
  assert.ok(listed.body.sagas.some((s: { id: string }) => s.id === id));
});

test('the same X-Idempotency-Key sent to three gateways at once gives one saga, and each waits for its end', async () => {
  const before = (await sys.admin('GET', '/api/sagas?limit=500')).body.sagas.length as number;
  const key = `multi-${Date.now()}`;
  const answers = await Promise.all(
    sys.urls.map((g) => http(g, 'POST', '/orders', HAPPY, { 'X-Idempotency-Key': key, Prefer: 'wait=10' })),
  );
  for (const a of answers) assert.equal(a.status, 201, JSON.stringify(a.body));
  const ids = new Set(answers.map((a) => a.body.id as string));
  assert.equal(ids.size, 1, `one key, one order: ${[...ids].join(', ')}`);
  // Those that found another gateway's saga waited for it through the log's notifications.
  for (const a of answers) assert.equal(a.body.status, 'CONFIRMED');
  assert.equal(answers.filter((a) => a.headers.get('idempotent-replayed') === 'true').length, 2);
  const after = (await sys.admin('GET', '/api/sagas?limit=500')).body.sagas.length as number;
  assert.equal(after - before, 1);
});

/** One client: posts orders with its own keys, moving to the next gateway when one does not answer. */
async function client(n: number, stop: () => boolean): Promise<void> {
  for (let i = 0; !stop(); i++) {
    const key = `load-${n}-${i}`;
    let r: Reply | undefined;
    for (let g = (n + i) % 3, tries = 0; r?.status !== 201; g = (g + 1) % 3, tries++) {
      if (tries > 30) throw new Error(`order ${key} was never accepted: ${JSON.stringify(r?.body)}`);
      r = await http(sys.urls[g] as string, 'POST', '/orders', HAPPY, { 'X-Idempotency-Key': key }).catch(
        () => undefined,
      );
      if (r?.status !== 201) await new Promise((res) => setTimeout(res, 20));
    }
  }
}

test(`kill -9 of one of three gateways under load: another resumes each of its sagas within 5 s (lease ${LEASE_MS} ms)`, async () => {
  // Gateway 1 dies (SIGKILL) with a charge in flight, after letting 40 charges pass.
  const armed = await sys.restartGateway(1, {
    CRASH_AT: 'saga.charge_payment.after_intent',
    CRASH_AFTER: '40',
    SAGAS_TEST_HOOKS: '1',
  });
  let diedAt = 0;
  const died = armed.exited.then((s) => {
    diedAt = Date.now();
    return s;
  });
  let stopAt = Infinity;
  void died.then(() => (stopAt = Date.now() + 1_500)); // load goes on for a while after the kill
  const clients = Array.from({ length: 12 }, (_, n) => client(n, () => Date.now() > stopAt));
  const exit = await died;
  assert.equal(exit.signal, 'SIGKILL');
  await Promise.all(clients);
  await eventually('every saga to end', async () => ((await allTerminal(sys)) ? true : undefined), 20_000);

  // Read the takeovers from the log itself.
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    const { rows } = await c.query<{ saga_id: string; type: string; at: string; data: { owner?: string } | null }>(
      `SELECT saga_id, type, at, data FROM saga_events
       WHERE saga_id IN (SELECT saga_id FROM saga_events WHERE type = 'SAGA_RESUMED') ORDER BY saga_id, seq`,
    );
    const bySaga = new Map<string, typeof rows>();
    for (const r of rows) bySaga.set(r.saga_id, [...(bySaga.get(r.saga_id) ?? []), r]);
    assert.ok(bySaga.size >= 1, 'the killed gateway had sagas in flight');
    let worst = 0;
    let worstSinceExitSeen = -Infinity;
    for (const [id, events] of bySaga) {
      const i = events.findIndex((e) => e.type === 'SAGA_RESUMED');
      const resumedAt = Number(events[i]?.at);
      const lastBefore = Number(events[i - 1]?.at);
      // The kill came after the dead owner's last write: this bounds the takeover from above.
      worst = Math.max(worst, resumedAt - lastBefore);
      worstSinceExitSeen = Math.max(worstSinceExitSeen, resumedAt - diedAt);
      assert.ok(
        ['SAGA_COMPLETED', 'SAGA_COMPENSATED'].includes(events.at(-1)?.type ?? ''),
        `saga ${id} ended ${events.at(-1)?.type}`,
      );
    }
    console.log(
      `takeover: ${bySaga.size} sagas of the killed gateway resumed; worst ${worst} ms after its last write (${worstSinceExitSeen} ms after its exit was seen)`,
    );
    assert.ok(worst < 5_000, `a saga was resumed ${worst} ms after its owner's last write`);
  } finally {
    await c.end();
  }
  await checkInvariants(sys, CATALOG);
  await sys.restartGateway(1);
});
