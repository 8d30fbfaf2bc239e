import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { allTerminal, checkInvariants } from '../helpers/invariants.js';
import { Lab, whyNoNamespaces } from '../helpers/netns.js';
import { CATALOG, Load, ORDERS, startHosts, until, whyNoBuild, type HostSystem } from '../helpers/hosts.js';

// A partition that heals: the gateway is cut from the inventory service for a few seconds while
// orders flow (a silent one: packets dropped, calls hang to their deadline). The sagas caught in it
// retry their inventory steps under the same keys and end once it heals; every invariant holds.

const STEP_TIMEOUT_MS = 1_000;

const skip = (await whyNoNamespaces()) ?? whyNoBuild();

describe('hosts: a partition between the gateway and inventory that heals', { skip }, () => {
  let sys: HostSystem;

  before(async () => {
    sys = await startHosts({
      gateways: 1,
      gatewayEnv: {
        SAGA_STEP_TIMEOUT_MS: String(STEP_TIMEOUT_MS),
        // Patient retries (as the crash tests'): a few seconds of partition must not compensate
        // an order that would succeed.
        SAGA_STEP_MAX_ATTEMPTS: '1000',
        SAGA_RETRY_MAX_BACKOFF_MS: '200',
        SAGA_COMPENSATION_MAX_ATTEMPTS: '1000',
        SAGA_COMPENSATION_MAX_BACKOFF_MS: '200',
        SAGA_FORWARD_MAX_ATTEMPTS: '1000',
        SAGA_FORWARD_MAX_BACKOFF_MS: '200',
      },
    });
  });

  after(async () => {
    await sys?.stop();
    assert.deepEqual(Lab.leftovers(), [], 'every namespace of the test is removed');
  });

  test('sagas caught in the partition retry and end once it heals; the books agree', async () => {
    const db = sys.sagaDb;
    const load = new Load(sys, {
      clients: 8,
      gateways: [0],
      order: (_key, n) => (n % 4 === 3 ? ORDERS.declined : ORDERS.happy),
      waitSeconds: 60,
      timeoutMs: 70_000,
      keyPrefix: 'heal',
      // 3 in 4 orders take 2 of prod_1's 1,000 units: 400 orders leave stock for every one of them.
      limit: 400,
    });
    load.start();
    let retried: string[] = [];
    try {
      await until('orders to flow', async () => (load.finished >= 24 ? true : undefined));
      await sys.lab.cut('gw1', 'inventory');
      const cutAt = Date.now();
      // The cut bites (inventory calls fail past their deadline and are retried), and lasts 3 s at least.
      await until('inventory calls to fail for 3 s', async () => {
        const [r] = await sys.pg.query<{ n: number }>(
          db,
          `SELECT count(DISTINCT saga_id)::int AS n FROM saga_events
           WHERE type IN ('STEP_FAILED', 'COMPENSATION_FAILED') AND step IN ('reserve_stock', 'commit_stock') AND at > $1`,
          [cutAt],
        );
        return (r?.n ?? 0) >= 3 && Date.now() - cutAt >= 3_000 ? true : undefined;
      });
      const finishedAtHeal = load.finished;
      await sys.lab.heal('gw1', 'inventory');
      const healAt = Date.now();
      const rows = await sys.pg.query<{ saga_id: string }>(
        db,
        `SELECT DISTINCT saga_id FROM saga_events
         WHERE type IN ('STEP_FAILED', 'COMPENSATION_FAILED') AND step IN ('reserve_stock', 'commit_stock') AND at > $1`,
        [cutAt],
      );
      retried = rows.map((r) => r.saga_id);
      await until(
        'the sagas caught in the partition to end',
        async () => {
          const [r] = await sys.pg.query<{ n: number }>(
            db,
            `SELECT count(*)::int AS n FROM sagas WHERE id = ANY($1) AND status IN ('RUNNING', 'COMPENSATING')`,
            [retried],
          );
          return r?.n === 0 ? true : undefined;
        },
        60_000,
        50,
      );
      const endedAt = Date.now();
      await until(
        'orders to flow again',
        async () => (load.finished >= finishedAtHeal + 16 ? true : undefined),
        60_000,
      );
      const ends = await sys.pg.query<{ at: string }>(
        db,
        `SELECT max(at) AS at FROM saga_events WHERE saga_id = ANY($1) GROUP BY saga_id ORDER BY 1`,
        [retried],
      );
      console.log(
        `# partition gw ↔ inventory for ${healAt - cutAt} ms: ${retried.length} sagas retried inventory calls; ` +
          `they ended ${ends.map((e) => Number(e.at) - healAt).join(', ')} ms after the heal (seen ${endedAt - healAt} ms after); ` +
          `${load.finished - finishedAtHeal} orders finished since`,
      );
      await load.stop();
    } finally {
      await load.abandon();
    }
    await until('every saga to end', async () => ((await allTerminal(sys.apis(0))) ? true : undefined), 60_000);
    const report = await checkInvariants(sys.apis(0), CATALOG);
    console.log(`# invariants hold over ${report.sagas} sagas: ${JSON.stringify(report.byStatus)}`);
    // Patient retries: the partition made nobody give up on an order that could succeed.
    const happy = [...load.placed.entries()].filter(([key]) => Number(key.split('-')[1]) % 4 !== 3);
    for (const [key, p] of happy) assert.equal(p.status, 'CONFIRMED', `order ${key} (${p.id}) ended ${p.status}`);
    assert.equal(report.byStatus.PARKED ?? 0, 0);
  });
});
