// Two replicas of each participant, each pair sharing its PostgreSQL database (a fresh one each on
// the machine's server, dropped after), one gateway dialling both addresses of each. Under a load
// of concurrent orders, one replica of each participant is killed with SIGKILL: every saga still
// ends, the books reconcile (no double charge, no stock lost or invented), and the gateway's own
// log says how long it took to move off each dead replica. Restarted, they are counted up again.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CATALOG, crashSystem } from '../helpers/crash.js';
import { allTerminal, checkInvariants } from '../helpers/invariants.js';
import { createTempDatabase, type TempDatabase } from '../helpers/postgres.js';
import { eventually, http, type Reply } from '../helpers/system.js';
import { PARTICIPANT_NAMES, type ParticipantServiceName } from '../../src/supervisor/supervisor.js';

let dbs: TempDatabase[] = [];
let sys: Awaited<ReturnType<typeof crashSystem>>;

before(async () => {
  dbs = await Promise.all(PARTICIPANT_NAMES.map(() => createTempDatabase('sagas_replicas')));
  const [order, inventory, payment] = dbs as [TempDatabase, TempDatabase, TempDatabase];
  sys = await crashSystem(
    {
      ORDER_DB_URL: order.url,
      INVENTORY_DB_URL: inventory.url,
      PAYMENT_DB_URL: payment.url,
      SERVICE_DB_POOL_SIZE: '4',
    },
    { replicas: 2 },
  );
});
after(async () => {
  await sys?.stop();
  await Promise.all(dbs.map((d) => d.drop()));
});

const HAPPY = { customer_id: 'cust_replicas', items: [{ product_id: 'prod_1', quantity: 1, price: 10 }] };
// Above the payment service's limit: declined, so its order is cancelled and its stock released.
const DECLINED = { customer_id: 'cust_replicas', items: [{ product_id: 'prod_2', quantity: 1, price: 600 }] };

/** How many addresses of each participant the gateway's /readyz counts up. */
async function upCounts(): Promise<Record<string, number>> {
  const r = await sys.api('GET', '/readyz');
  const parts = r.body.details.participants as Record<string, { up: number; addresses: number }>;
  return Object.fromEntries(Object.entries(parts).map(([n, c]) => [n, c.up]));
}

/** One client: orders with its own keys, one after the other, each until the gateway accepts it. */
async function client(n: number, stop: () => boolean, placed: string[]): Promise<void> {
  for (let i = 0; !stop(); i++) {
    const key = `replicas-${n}-${i}`;
    const body = i % 5 === 4 ? DECLINED : HAPPY;
    const r: Reply = await eventually(`order ${key} accepted`, async () => {
      const a = await http(sys.url, 'POST', '/orders', body, { 'X-Idempotency-Key': key });
      return a.status === 201 ? a : undefined;
    });
    placed.push(r.body.id as string);
  }
}

test('kill -9 of one replica of each participant under load: every saga ends, the books agree, calls move off at once', async () => {
  assert.deepEqual(await upCounts(), { order: 2, inventory: 2, payment: 2 });
  const placed: string[] = [];
  let stopAt = Infinity;
  const clients = Array.from({ length: 8 }, (_, n) => client(n, () => Date.now() > stopAt, placed));

  // Mid-load: once the sagas are flowing through both replicas of each.
  await eventually('50 orders placed', async () => (placed.length >= 50 ? true : undefined), 30_000);
  const victims = PARTICIPANT_NAMES.map((n) => ({ name: n, proc: sys.replicas[n][0] }));
  const killedAt = Date.now();
  const placedAtKill = placed.length;
  const exits = await Promise.all(PARTICIPANT_NAMES.map((n) => sys.killReplica(n, 0)));
  for (const e of exits) assert.equal(e.signal, 'SIGKILL');
  stopAt = Date.now() + 2_000; // the load goes on on the replicas left
  await Promise.all(clients);
  assert.ok(placed.length > placedAtKill + 20, `orders went on after the kill: ${placed.length - placedAtKill}`);

  // The gateway's own account of when each dead replica left its rotation.
  const lines = sys.gateways[0]?.output() ?? [];
  const movedOff: Record<string, number> = {};
  for (const { name, proc } of victims) {
    const address = proc?.address as string;
    const line = lines
      .map((l) => {
        try {
          return JSON.parse(l) as { participant?: string; address?: string; up?: number; time?: string; msg?: string };
        } catch {
          return undefined;
        }
      })
      .find((l) => l?.participant === name && l.address === address && /is down/.test(l.msg ?? ''));
    assert.ok(line?.time, `the gateway logged ${name} at ${address} down:\n${lines.slice(-20).join('\n')}`);
    movedOff[name] = Date.parse(line.time) - killedAt;
    assert.equal(line.up, 1, `one ${name} replica left up`);
  }
  console.log(
    `# the gateway moved off the killed replicas after ${PARTICIPANT_NAMES.map((n) => `${n} ${movedOff[n]} ms`).join(', ')} (from the kill, by its log)`,
  );
  for (const n of PARTICIPANT_NAMES)
    assert.ok((movedOff[n] as number) < 1_000, `${n}: moved off after ${movedOff[n]} ms`);
  assert.deepEqual(await upCounts(), { order: 1, inventory: 1, payment: 1 });

  await eventually('every saga to end', async () => ((await allTerminal(sys)) ? true : undefined), 60_000);
  const report = await checkInvariants(sys, CATALOG);
  assert.equal(report.sagas, placed.length);
  assert.deepEqual(Object.keys(report.byStatus).sort(), ['COMPENSATED', 'COMPLETED'], JSON.stringify(report.byStatus));
  console.log(`# ${report.sagas} sagas: ${JSON.stringify(report.byStatus)}; the books agree`);

  // Restarted on their addresses: counted up again, and the gateway's calls reach them again.
  const restartedAt = Date.now();
  const restarted = await Promise.all(PARTICIPANT_NAMES.map((n: ParticipantServiceName) => sys.restartReplica(n, 0)));
  await eventually('both replicas of each counted up again', async () => {
    const c = await upCounts();
    return c.order === 2 && c.inventory === 2 && c.payment === 2 ? true : undefined;
  });
  console.log(
    `# the restarted replicas answered the gateway's probes ${Date.now() - restartedAt} ms after their restart began`,
  );
  await eventually(
    'orders to reach every restarted replica',
    async () => {
      const r = await http(sys.url, 'POST', '/orders', HAPPY, { Prefer: 'wait=10' });
      assert.equal(r.status, 201);
      assert.equal(r.body.status, 'CONFIRMED');
      const served = await Promise.all(restarted.map((p) => callsServed(p.metricsAddress)));
      return served.every((n) => n > 0) ? true : undefined;
    },
    20_000,
  );
});

/** gRPC calls a participant process has served since it started (its rpc.server.duration count, all methods). */
async function callsServed(metrics: string | undefined): Promise<number> {
  assert.ok(metrics, 'the replica serves metrics');
  const text = await (await fetch(`http://${metrics}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => /^rpc_server_duration\w*_count\b/.test(l))
    .reduce((sum, l) => sum + Number(l.trim().split(/\s+/).at(-1)), 0);
}
