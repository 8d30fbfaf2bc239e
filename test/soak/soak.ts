/**
 * Soak: concurrent orders of every kind while random processes are killed (SIGKILL) at random
 * instants and restarted; then every invariant of DESIGN.md §6 is checked through the API.
 *
 *   npm run soak -- --runs 3 --orders 300 --concurrency 16 --kill-every-ms 400
 *   npm run soak -- --scenario scenarios/payment-after-effect.yaml
 *
 * With --scenario, the scenario's fault rules are on during the load (FAULTS_ENABLED=1, the rules in
 * FAULTS_FILE so that a gateway restarted after a kill has them again; its counts restart with it),
 * its system.env and Redis setting apply, and they are removed (PUT /api/faults) before the wait for
 * every saga to end; its operator fix (then: retry-parked) runs before the invariants are checked.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseScenario, type Scenario } from '../../src/chaos/scenario.js';
import { SERVICE_NAMES, type ServiceName } from '../../src/supervisor/supervisor.js';
import { crashSystem, CATALOG } from '../helpers/crash.js';
import { allTerminal, checkInvariants } from '../helpers/invariants.js';
import { eventually, freePort } from '../helpers/system.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '1' },
    orders: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '8' },
    'kill-every-ms': { type: 'string', default: '500' },
    seed: { type: 'string' },
    scenario: { type: 'string' },
  },
});

let scenario: Scenario | undefined;
if (values.scenario !== undefined) {
  try {
    scenario = parseScenario(fs.readFileSync(values.scenario, 'utf8'), values.scenario);
  } catch (err) {
    console.error(`--scenario: ${(err as Error).message}`);
    process.exit(2);
  }
}

const positive = (name: string, v: string | undefined): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`--${name} must be a positive integer, got ${v}`);
    process.exit(2);
  }
  return n;
};
const runs = positive('runs', values.runs);
const orders = positive('orders', values.orders);
const concurrency = positive('concurrency', values.concurrency);
const killEveryMs = positive('kill-every-ms', values['kill-every-ms']);

// A small seeded PRNG so that a failing run can be replayed with --seed.
let state = values.seed ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
const seed = state;
function random(): number {
  state = (state * 1103515245 + 12345) % 2 ** 31;
  return state / 2 ** 31;
}
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;

function orderBody(i: number) {
  const kind = pick(['happy', 'happy', 'happy', 'declined', 'no_stock', 'unknown'] as const);
  const items =
    kind === 'happy'
      ? [{ product_id: pick(['prod_1', 'prod_2']), quantity: 1 + Math.floor(random() * 3), price: 19.99 }]
      : kind === 'declined'
        ? [{ product_id: 'prod_1', quantity: 1, price: 600 }]
        : kind === 'no_stock'
          ? [{ product_id: 'prod_3', quantity: 1, price: 5 }]
          : [{ product_id: 'prod_nope', quantity: 1, price: 5 }];
  return { kind, body: { customer_id: `soak_${i}`, items } };
}

async function scenarioEnv(dir: string): Promise<NodeJS.ProcessEnv> {
  if (!scenario) return {};
  const file = path.join(dir, 'faults.json');
  fs.writeFileSync(file, JSON.stringify({ rules: scenario.rules.map(({ fired: _f, ...r }) => r) }));
  return {
    FAULTS_ENABLED: '1',
    FAULTS_FILE: file,
    ...(scenario.system.redis === 'down' ? { REDIS_URL: `redis://127.0.0.1:${await freePort()}` } : {}),
    ...scenario.system.env,
  };
}

async function oneRun(run: number) {
  const faultDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sagas-soak-faults-'));
  const sys = await crashSystem(await scenarioEnv(faultDir));
  const started = Date.now();
  let kills = 0;
  let retries = 0;
  let chaos = true;
  const chaosLoop = (async () => {
    while (chaos) {
      await new Promise((r) => setTimeout(r, killEveryMs * (0.5 + random())));
      if (!chaos) break;
      const victim: ServiceName = pick(SERVICE_NAMES);
      await sys.kill(victim);
      kills++;
      await new Promise((r) => setTimeout(r, Math.floor(random() * 300)));
      await sys.restart(victim);
      // A scenario's crash rule may have killed another one meanwhile.
      for (const name of SERVICE_NAMES) if (!sys.procs[name].running) await sys.restart(name);
    }
  })();

  let next = 0;
  const client = async () => {
    while (next < orders) {
      const i = next++;
      const { body } = orderBody(i);
      const key = `soak-${run}-${i}`;
      for (let attempt = 1; ; attempt++) {
        try {
          const res = await fetch(`${sys.url}/orders`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'x-idempotency-key': key },
            body: JSON.stringify(body),
          });
          await res.arrayBuffer();
          if (res.status === 201) break;
          // 503: a participant is down; 409: the key is held by a request whose gateway died
          // before its saga was durable, until the lock expires. Both mean: come back.
          if (res.status !== 503 && res.status !== 409) throw new Error(`order ${i}: unexpected ${res.status}`);
        } catch (err) {
          if (err instanceof Error && err.message.startsWith(`order ${i}:`)) throw err;
        }
        retries++;
        if (attempt >= 400) throw new Error(`order ${i} never accepted`);
        await new Promise((r) => setTimeout(r, 100));
      }
      // A client that retries an accepted order must get the same one back.
      if (random() < 0.1) {
        await fetch(`${sys.url}/orders`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-idempotency-key': key },
          body: JSON.stringify(body),
        }).then(
          (r) => r.arrayBuffer(),
          () => undefined,
        );
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, client));
  } finally {
    chaos = false;
    await chaosLoop;
  }
  let faultsFired: Array<{ id: string; fired: number }> = [];
  let retriedParked = 0;
  if (scenario) {
    for (const name of SERVICE_NAMES) if (!sys.procs[name].running) await sys.restart(name);
    // Until every saga has ended when the scenario says so (e.g. to let compensations park).
    if (scenario.until === 'settled')
      await eventually('every saga to end', async () => ((await allTerminal(sys)) ? true : undefined), 120_000);
    const got = await sys.admin('GET', '/api/faults');
    faultsFired = (got.body.rules as Array<{ id: string; fired: number }>).map((r) => ({ id: r.id, fired: r.fired }));
    const put = await sys.admin('PUT', '/api/faults', { rules: [] });
    if (put.status !== 200) throw new Error(`PUT /api/faults answered ${put.status}`);
  }
  await eventually('every saga to end', async () => ((await allTerminal(sys)) ? true : undefined), 120_000);
  if (scenario?.then === 'retry-parked') {
    const parked = (await sys.admin('GET', '/api/sagas?status=PARKED&limit=500')).body.sagas as Array<{ id: string }>;
    for (const s of parked) {
      const r = await sys.admin('POST', `/api/sagas/${s.id}/actions`, {
        action: 'retry',
        action_id: `soak-${run}-${s.id}`,
      });
      if (r.status !== 200) throw new Error(`retry of ${s.id} answered ${r.status}`);
    }
    retriedParked = parked.length;
    await eventually('every retried saga to end', async () => ((await allTerminal(sys)) ? true : undefined), 120_000);
  }
  const allowParked =
    scenario !== undefined &&
    scenario.then === undefined &&
    scenario.expect.parked !== undefined &&
    scenario.expect.parked !== 0;
  const report = await checkInvariants(sys, CATALOG, { allowParked });
  await sys.stop();
  fs.rmSync(faultDir, { recursive: true, force: true });
  const result = {
    run,
    seed,
    ...(scenario ? { scenario: scenario.name, faults_fired: faultsFired, retried_parked: retriedParked } : {}),
    orders,
    concurrency,
    kills,
    client_retries: retries,
    seconds: (Date.now() - started) / 1000,
    ...report,
  };
  if (report.sagas !== orders) throw new Error(`expected ${orders} sagas (one per key), found ${report.sagas}`);
  return result;
}

for (let run = 1; run <= runs; run++) {
  try {
    console.log(JSON.stringify(await oneRun(run)));
  } catch (err) {
    console.error(`run ${run} (seed ${seed}) FAILED:`, err);
    process.exit(1);
  }
}
console.log(`soak: ${runs} run(s) passed every invariant`);
