/**
 * A bulk job on a PostgreSQL saga log shared by two gateways (issue 26 item 4): the job is
 * started on the first; the gateway pacing it (whichever claimed it) is killed (SIGKILL) mid-run;
 * the other takes the job over once its lease expires and finishes it. Every selected saga is acted
 * on exactly once, whichever gateway did it, and the books agree.
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
    // Both gateways read the same job. A new job is nobody's until a runner claims it: the one it
    // was started on is nudged at once, the other looks every second, so on a loaded machine
    // either may be pacing it (a CI run saw the second). The one pacing it is killed.
    const paced = await eventually('three sagas acted on, by one runner', async () => {
      const j = await job(0);
      return j.job.total - (j.job.counts.pending ?? 0) >= 3 && j.job.runner ? j.job.runner : undefined;
    });
    const pids = [0, 1].map((g) => sys!.gateways[g]?.pid);
    const victim = pids.findIndex((pid) => paced.includes(`:${pid}:`));
    assert.ok(victim === 0 || victim === 1, `paced by ${paced}, not by one of the gateways ${pids.join(', ')}`);
    const survivor = victim === 0 ? 1 : 0;
    assert.equal((await sys!.killGateway(victim)).signal, 'SIGKILL');
    const end = await eventually(
      'the other gateway to finish the job',
      async () => {
        const j = await job(survivor);
        return j.job.state === 'done' ? j : undefined;
      },
      60_000,
    );
    console.log(
      `# the job was paced by gateway ${victim + 1} (started on gateway 1), killed; gateway ${survivor + 1} finished it`,
    );
    assert.equal((end.job.counts.applied ?? 0) + (end.job.counts.replayed ?? 0), CAP, JSON.stringify(end.job.counts));
    assert.deepEqual(
      end.items.map((i) => i.saga_id),
      parked.slice(0, CAP),
    );
    for (const sagaId of parked) {
      const t: Reply = await on(survivor)('GET', `/api/sagas/${sagaId}?limit=1000`);
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
        const r: Reply = await on(survivor)('GET', '/api/sagas?status=COMPENSATED&limit=100');
        return r.body.sagas.length === CAP ? true : undefined;
      },
      60_000,
    );
    const books: Reply = await on(survivor)('GET', '/api/reconcile?settled=true');
    assert.equal(books.status, 200, JSON.stringify(books.body));
    assert.deepEqual(books.body.disagreements, []);
  },
);
