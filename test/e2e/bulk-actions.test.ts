/**
 * A bulk retry over a whole system (issue 26 item 4): real processes, real gRPC, the gateway's
 * SQLite saga log. 24 sagas are parked for real (the fault switchboard refuses the pivot, then
 * the refund that undoes the charge); a job retries the newest 22 of them at 10 a second, is
 * paused and resumed, and its gateway is killed (SIGKILL) mid-run and started again. Then: every
 * selected saga was acted on exactly once (one OPERATOR_ACTION with the job's bulk_id), the two
 * outside the cap never, the pacing held, every retried saga compensated, and the books agree.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, freshSystem, type Reply } from '../helpers/system.js';

const TOKEN = 'op-bulk-e2e-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
const RATE = 10;
const PARKED = 24;
const CAP = 22;

let sys: Awaited<ReturnType<typeof freshSystem>> | undefined;
/** The parked sagas, newest first. */
const parked: string[] = [];

const admin = (m: string, u: string, b?: unknown) => sys!.admin(m, u, b, auth);

interface Item {
  position: number;
  saga_id: string;
  result: string;
  at: string | null;
}
interface Job {
  id: string;
  state: string;
  total: number;
  counts: Record<string, number>;
  runner: string | null;
}

async function job(id: string): Promise<{ job: Job; items: Item[] }> {
  const r = await admin('GET', `/api/bulk/${id}?limit=1000`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

const acted = (j: Job) => j.total - (j.counts.pending ?? 0);

/** The OPERATOR_ACTION events of a saga, from its timeline. */
async function operatorActions(id: string): Promise<Array<{ action_id: string; bulk_id?: string }>> {
  const r = await admin('GET', `/api/sagas/${id}?limit=1000`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return (r.body.events as Array<{ type: string; data: { action_id: string; bulk_id?: string } }>)
    .filter((e) => e.type === 'OPERATOR_ACTION')
    .map((e) => e.data);
}

before(async () => {
  sys = await freshSystem({
    FAULTS_ENABLED: '1',
    ADMIN_TOKENS: `olga:operator:${TOKEN}`,
    SAGA_COMPENSATION_MAX_ATTEMPTS: '2',
    SAGA_COMPENSATION_MAX_BACKOFF_MS: '50',
    // A killed gateway's sagas and bulk job are taken over within seconds.
    SAGA_LEASE_MS: '2000',
  });
  // Set through the API, not FAULTS_FILE: the restarted gateway must come back without them.
  const plan = await admin('PUT', '/api/faults', {
    rules: [
      { id: 'refuse-confirm', kind: 'error', target: { step: 'confirm_order' }, phase: 'action' },
      { id: 'refuse-refund', kind: 'error', target: { step: 'charge_payment' }, phase: 'compensation' },
    ],
  });
  assert.equal(plan.status, 200, JSON.stringify(plan.body));
  for (let i = 0; i < PARKED; i++) {
    const r: Reply = await sys.api('POST', '/orders', {
      customer_id: `bulk_e2e_${i % 3}`,
      // The catalog holds 15 × prod_1 and 10 × prod_2; a parked saga keeps its reservation.
      items: [{ product_id: i < 14 ? 'prod_1' : 'prod_2', quantity: 1, price: 10 }],
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    parked.unshift(r.body.id as string);
  }
  await eventually(
    'every saga to park',
    async () => {
      const r: { body: { sagas: unknown[] } } = await admin('GET', `/api/sagas?status=PARKED&limit=100`);
      return r.body.sagas.length === PARKED ? true : undefined;
    },
    60_000,
  );
  assert.equal((await admin('PUT', '/api/faults', { rules: [] })).status, 200);
});

after(async () => {
  await sys?.stop();
});

test(
  'a bulk retry at 10/s: capped, paused and resumed, its gateway killed mid-run; each saga acted on exactly once',
  { timeout: 180_000 },
  async () => {
    const body = {
      action: 'retry',
      filter: { status: 'PARKED', failure_code: 'fault_injected' },
      cap: CAP,
      rate: RATE,
    };
    const dry = await admin('POST', '/api/bulk/dry-run', body);
    assert.equal(dry.status, 200, JSON.stringify(dry.body));
    assert.equal(dry.body.count, CAP);
    assert.equal(dry.body.truncated, true);
    assert.equal(dry.body.allowed, CAP);
    assert.deepEqual(dry.body.totals, {
      charge_cents: 0,
      refund_cents: CAP * 1000,
      // The newest 22: orders 2-13 of prod_1, 14-23 of prod_2.
      stock: [
        { item: 'prod_1', direction: 'release', quantity: 12 },
        { item: 'prod_2', direction: 'release', quantity: 10 },
      ],
    });

    const started = await admin('POST', '/api/bulk', body);
    assert.equal(started.status, 201, JSON.stringify(started.body));
    const id = started.body.id as string;
    assert.equal(started.body.total, CAP);

    // Paused after a few; nothing moves while paused.
    await eventually('five sagas acted on', async () => (acted((await job(id)).job) >= 5 ? true : undefined));
    assert.equal((await admin('POST', `/api/bulk/${id}/pause`)).body.state, 'paused');
    await eventually('the runner to let go of it', async () =>
      (await job(id)).job.runner === null ? true : undefined,
    );
    const atPause = await job(id);
    await new Promise((r) => setTimeout(r, 1_000)); // ten of its intervals
    assert.deepEqual((await job(id)).job.counts, atPause.job.counts);
    // The pacing before the pause: k sagas took at least (k-1)/rate.
    const before = atPause.items.filter((i) => i.at !== null).map((i) => Date.parse(i.at as string));
    assert.ok(before.length >= 5);
    const span = Math.max(...before) - Math.min(...before);
    assert.ok(span >= ((before.length - 1) * 1000) / RATE, `${before.length} sagas in ${span} ms`);

    // Resumed, then the gateway dies mid-run and starts again: the job goes on from where it was.
    assert.equal((await admin('POST', `/api/bulk/${id}/resume`)).body.state, 'running');
    await eventually('more sagas after the resume', async () =>
      acted((await job(id)).job) >= acted(atPause.job) + 5 ? true : undefined,
    );
    const killed = await sys!.kill('gateway');
    assert.equal(killed.signal, 'SIGKILL');
    await sys!.restart('gateway');
    const end = await eventually(
      'the job to finish on the restarted gateway',
      async () => {
        const j = await job(id);
        return j.job.state === 'done' ? j : undefined;
      },
      60_000,
    );
    assert.equal(end.job.total, CAP);
    assert.equal((end.job.counts.applied ?? 0) + (end.job.counts.replayed ?? 0), CAP, JSON.stringify(end.job.counts));
    assert.deepEqual(
      end.items.map((i) => i.saga_id),
      parked.slice(0, CAP),
    );
    const all = end.items.map((i) => Date.parse(i.at as string));
    assert.ok(Math.max(...all) - Math.min(...all) >= ((CAP - 1) * 1000) / RATE);

    // Exactly one action per selected saga, under the job's id; none on the two beyond the cap.
    for (const sagaId of parked.slice(0, CAP)) {
      const actions = await operatorActions(sagaId);
      assert.deepEqual(
        actions.map((a) => [a.action_id, a.bulk_id]),
        [[id, id]],
        sagaId,
      );
    }
    for (const sagaId of parked.slice(CAP)) assert.deepEqual(await operatorActions(sagaId), [], sagaId);

    await eventually(
      'every retried saga to compensate',
      async () => {
        const r = await admin('GET', `/api/sagas?status=COMPENSATED&limit=100`);
        return r.body.sagas.length === CAP ? true : undefined;
      },
      60_000,
    );
    const still = await admin('GET', `/api/sagas?status=PARKED&limit=100`);
    assert.deepEqual(still.body.sagas.map((s: { id: string }) => s.id).sort(), parked.slice(CAP).sort());
    const books = await admin('GET', '/api/reconcile?settled=true');
    assert.equal(books.status, 200, JSON.stringify(books.body));
    assert.deepEqual(books.body.disagreements, []);
  },
);
