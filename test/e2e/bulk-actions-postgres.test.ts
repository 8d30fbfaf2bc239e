/**
 * A bulk job on a PostgreSQL saga log shared by two gateways (issue 26 item 4): the job is
 * started on the first, which is killed (SIGKILL) mid-run; the second takes the job over once its
 * lease expires and finishes it. Every selected saga is acted on exactly once, whichever gateway
 * did it, and the books agree.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTempDatabase, type TempDatabase } from '../helpers/postgres.js';
import { eventually, freshSystem, http, type Reply } from '../helpers/system.js';

const TOKEN = 'op-bulk-pg-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
const PARKED = 12;
const CAP = 10;

let db: TempDatabase | undefined;
let sys: Awaited<ReturnType<typeof freshSystem>> | undefined;
const parked: string[] = [];

const on = (gateway: 0 | 1) => (m: string, u: string, b?: unknown) =>
  http(sys!.adminUrls[gateway] as string, m, u, b, auth);

before(async () => {
  db = await createTempDatabase('sagas_bulk');
  sys = await freshSystem(
    {
      SAGA_LOG_URL: db.url,
      SAGA_LOG_POOL_SIZE: '4',
      FAULTS_ENABLED: '1',
      ADMIN_TOKENS: `olga:operator:${TOKEN}`,
      SAGA_COMPENSATION_MAX_ATTEMPTS: '2',
      SAGA_COMPENSATION_MAX_BACKOFF_MS: '50',
      SAGA_LEASE_MS: '2000',
    },
    { gateways: 2 },
  );
  // Each gateway has its own switchboard: both refuse, so that a saga parks whichever drives it.
  for (const g of [0, 1] as const) {
    const plan = await on(g)('PUT', '/api/faults', {
      rules: [
        { id: 'refuse-confirm', kind: 'error', target: { step: 'confirm_order' }, phase: 'action' },
        { id: 'refuse-refund', kind: 'error', target: { step: 'charge_payment' }, phase: 'compensation' },
      ],
    });
    assert.equal(plan.status, 200, JSON.stringify(plan.body));
  }
  for (let i = 0; i < PARKED; i++) {
    const r: Reply = await sys.api('POST', '/orders', {
      customer_id: 'bulk_pg',
      items: [{ product_id: 'prod_1', quantity: 1, price: 10 }],
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    parked.unshift(r.body.id as string);
  }
  await eventually(
    'every saga to park',
    async () => {
      const r: Reply = await on(0)('GET', '/api/sagas?status=PARKED&limit=100');
      return r.body.sagas.length === PARKED ? true : undefined;
    },
    60_000,
  );
  for (const g of [0, 1] as const) assert.equal((await on(g)('PUT', '/api/faults', { rules: [] })).status, 200);
});

after(async () => {
  await sys?.stop();
  await db?.drop();
});

test(
  'a job whose gateway dies is finished by the other gateway sharing the log, each saga acted on once',
  { timeout: 120_000 },
  async () => {
    const started = await on(0)('POST', '/api/bulk', {
      action: 'retry',
      filter: { status: 'PARKED', customer: 'bulk_pg' },
      cap: CAP,
      rate: 5,
    });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    const id = started.body.id as string;
    const job = async (g: 0 | 1) => {
      const r: Reply = await on(g)('GET', `/api/bulk/${id}?limit=100`);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return r.body as {
        job: { state: string; total: number; counts: Record<string, number>; runner: string | null };
        items: Array<{ saga_id: string; result: string }>;
      };
    };
    // The other gateway reads the same job, paced by the first.
    await eventually('three sagas acted on', async () => {
      const j = await job(1);
      return j.job.total - (j.job.counts.pending ?? 0) >= 3 ? j : undefined;
    });
    const paced = (await job(1)).job.runner;
    // The gateway the job was started on paces it (its runner was nudged at once; the other looks every second).
    assert.match(paced ?? '', new RegExp(`:${sys!.gateways[0]?.pid}:`), `paced by ${paced}`);
    assert.equal((await sys!.killGateway(0)).signal, 'SIGKILL');
    const end = await eventually(
      'the second gateway to finish the job',
      async () => {
        const j = await job(1);
        return j.job.state === 'done' ? j : undefined;
      },
      60_000,
    );
    assert.equal((end.job.counts.applied ?? 0) + (end.job.counts.replayed ?? 0), CAP, JSON.stringify(end.job.counts));
    assert.deepEqual(
      end.items.map((i) => i.saga_id),
      parked.slice(0, CAP),
    );
    for (const sagaId of parked) {
      const t: Reply = await on(1)('GET', `/api/sagas/${sagaId}?limit=1000`);
      const acts = (t.body.events as Array<{ type: string; data: { bulk_id?: string } }>).filter(
        (e) => e.type === 'OPERATOR_ACTION',
      );
      assert.deepEqual(
        acts.map((e) => e.data.bulk_id),
        parked.indexOf(sagaId) < CAP ? [id] : [],
        sagaId,
      );
    }
    await eventually(
      'every retried saga to compensate',
      async () => {
        const r: Reply = await on(1)('GET', '/api/sagas?status=COMPENSATED&limit=100');
        return r.body.sagas.length === CAP ? true : undefined;
      },
      60_000,
    );
    const books: Reply = await on(1)('GET', '/api/reconcile?settled=true');
    assert.equal(books.status, 200, JSON.stringify(books.body));
    assert.deepEqual(books.body.disagreements, []);
  },
);
