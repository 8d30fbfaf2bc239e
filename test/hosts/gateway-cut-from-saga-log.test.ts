import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { allTerminal, checkInvariants } from '../helpers/invariants.js';
import { Lab, whyNoNamespaces } from '../helpers/netns.js';
import { CATALOG, Load, ORDERS, startHosts, until, whyNoBuild, type HostSystem } from '../helpers/hosts.js';

// Two gateways on one PostgreSQL saga log, each on a host of its own, and the three participants on
// theirs. Gateway 1 carries the load; then it is cut from PostgreSQL while it still reaches the
// participants (a silent partition: its packets to PostgreSQL are dropped). It must stop driving
// once its leases are gone and never write after; gateway 2 takes over every saga it held. Then
// the cut heals and gateway 1 serves again.

const LEASE_MS = 3_000;
/** How long a gateway waits for PostgreSQL (SAGA_LOG_TIMEOUT_MS): a request to gw1 during the cut is refused within it. */
const LOG_TIMEOUT_MS = 2_000;
/**
 * A packet from gw1 to a participant at least this long carries a call (a gRPC request over TLS);
 * a bare ACK is 52 bytes and an HTTP/2 keepalive ping about 90.
 */
const CALL_MIN_LENGTH = 150;
const UNFINISHED = `status IN ('RUNNING', 'COMPENSATING')`;

const skip = (await whyNoNamespaces()) ?? whyNoBuild();

describe('hosts: a gateway cut from PostgreSQL while it still reaches the participants', { skip }, () => {
  let sys: HostSystem;

  before(async () => {
    sys = await startHosts({
      gateways: 2,
      gatewayEnv: (i, lab) => {
        const env: NodeJS.ProcessEnv = {
          SAGA_LEASE_MS: String(LEASE_MS),
          SAGA_RECOVERY_INTERVAL_MS: '500',
          SAGA_LOG_POOL_SIZE: '4',
          SAGA_LOG_TIMEOUT_MS: String(LOG_TIMEOUT_MS),
        };
        if (i !== 0) return env;
        // Gateway 1's charges take 400 ms (a slow payment provider): there are always sagas in
        // flight on it, to be taken over, when the cut comes.
        const plan = path.join(lab.dir, 'faults-gw1.json');
        fs.writeFileSync(
          plan,
          JSON.stringify({
            rules: [{ id: 'slow-charge', target: { step: 'charge_payment' }, kind: 'latency', latency_ms: 400 }],
          }),
        );
        return { ...env, FAULTS_ENABLED: '1', FAULTS_FILE: plan };
      },
    });
  });

  after(async () => {
    await sys?.stop();
    assert.deepEqual(Lab.leftovers(), [], 'every namespace of the test is removed');
  });

  test('gw1 loses its leases and goes quiet; gw2 resumes each of its sagas; the heal brings gw1 back', async () => {
    const db = sys.sagaDb;
    const owner1 = sys.ownerOf(0);
    const owner2 = sys.ownerOf(1);
    await sys.lab.count('gw1-calls', 'gw1', ['order', 'payment', 'inventory'], CALL_MIN_LENGTH);

    const load = new Load(sys, {
      clients: 8,
      gateways: [0, 1],
      order: (_key, n) => (n % 4 === 3 ? ORDERS.declined : ORDERS.happy),
      waitSeconds: 20,
      timeoutMs: 2_500,
      keyPrefix: 'cut-gw1',
    });
    load.start();
    try {
      const inFlight = await until('orders finishing through gw1, with sagas in flight on it', async () => {
        if (load.finished < 24) return undefined;
        const [r] = await sys.pg.query<{ n: number }>(
          db,
          `SELECT count(*)::int AS n FROM sagas WHERE ${UNFINISHED} AND lease_owner LIKE $1`,
          [`${owner1}%`],
        );
        return (r?.n ?? 0) >= 3 ? r?.n : undefined;
      });
      const callsBefore = await sys.lab.packets('gw1-calls');
      assert.ok(
        callsBefore >= load.finished,
        `the counter sees gw1's calls (${callsBefore} packets for ${load.finished} sagas)`,
      );

      await sys.lab.cut('gw1', 'pg');
      const cutAt = Date.now();

      // The lease PostgreSQL holds for each saga gw1 drove, as long as gw1 holds it (a renewal sent
      // just before the cut may still land): the last one seen is when gw1's lease ran out.
      const expiry = new Map<string, number>();
      let quiet: { from: number; calls: number } | undefined;
      await until(
        "gw1's leases to run out and gw2 to take its sagas",
        async () => {
          const rows = await sys.pg.query<{ id: string; lease_expires_at: string }>(
            db,
            `SELECT id, lease_expires_at FROM sagas WHERE ${UNFINISHED} AND lease_owner LIKE $1`,
            [`${owner1}%`],
          );
          for (const r of rows) expiry.set(r.id, Math.max(expiry.get(r.id) ?? 0, Number(r.lease_expires_at)));
          const lastExpiry = Math.max(...expiry.values());
          // From a second past its last lease, gw1 must make no call at all.
          if (!quiet && Date.now() > lastExpiry + 1_000)
            quiet = { from: Date.now(), calls: await sys.lab.packets('gw1-calls') };
          return rows.length === 0 && quiet ? true : undefined;
        },
        30_000,
        50,
      );
      assert.ok(expiry.size >= 1, 'gw1 held sagas when it was cut');
      await load.stop();
      await until('every saga to end', async () => ((await allTerminal(sys.apis(1))) ? true : undefined), 60_000);

      // A window of at least two seconds past gw1's last lease, in which it must not have called anyone.
      const q = quiet as { from: number; calls: number };
      await until('two seconds of watching gw1', async () => (Date.now() >= q.from + 2_000 ? true : undefined));
      const callsQuiet = (await sys.lab.packets('gw1-calls')) - q.calls;
      assert.equal(callsQuiet, 0, `gw1 sent ${callsQuiet} call-sized packets to participants after its leases ran out`);

      // The log's own record: each saga gw1 held has no event after gw1's lease on it ran out, but
      // gw2's resumption and what followed it (every write is fenced by lease_owner).
      const ids = [...expiry.keys()];
      const events = await sys.pg.query<{ saga_id: string; seq: number; type: string; at: string; data: unknown }>(
        db,
        'SELECT saga_id, seq, type, at, data FROM saga_events WHERE saga_id = ANY($1) ORDER BY saga_id, seq',
        [ids],
      );
      let firstResume = Infinity;
      let lastResume = 0;
      let lastEnd = 0;
      for (const id of ids) {
        const evs = events.filter((e) => e.saga_id === id);
        const expiresAt = expiry.get(id) as number;
        const r = evs.findIndex(
          (e) =>
            e.type === 'SAGA_RESUMED' && String((e.data as { owner?: string } | null)?.owner ?? '').startsWith(owner2),
        );
        const byGw1 = r < 0 ? evs : evs.slice(0, r);
        for (const e of byGw1)
          assert.ok(
            Number(e.at) <= expiresAt,
            `saga ${id}: ${e.type} (seq ${e.seq}) stamped ${Number(e.at) - expiresAt} ms after gw1's lease ran out`,
          );
        const end = evs.at(-1) as (typeof evs)[number];
        assert.ok(['SAGA_COMPLETED', 'SAGA_COMPENSATED'].includes(end.type), `saga ${id} ended ${end.type}`);
        lastEnd = Math.max(lastEnd, Number(end.at));
        if (r < 0) continue;
        const at = Number(evs[r]?.at);
        assert.ok(at >= expiresAt, `saga ${id} was resumed by gw2 ${expiresAt - at} ms before gw1's lease ran out`);
        firstResume = Math.min(firstResume, at);
        lastResume = Math.max(lastResume, at);
      }
      const resumed = ids.filter((id) =>
        events.some((e) => e.saga_id === id && e.type === 'SAGA_RESUMED' && JSON.stringify(e.data).includes(owner2)),
      ).length;
      assert.ok(resumed >= 1, 'gw2 resumed sagas gw1 held');
      console.log(
        `# takeover (lease ${LEASE_MS} ms): gw1 held ${ids.length} sagas at the cut (${inFlight} seen just before), gw2 resumed ${resumed}; ` +
          `first resumed ${firstResume - cutAt} ms after the cut, last ${lastResume - cutAt} ms, all of them ended ${lastEnd - cutAt} ms after the cut; ` +
          `gw1 made 0 calls in the ${Date.now() - q.from} ms watched after its last lease; ` +
          `${load.placed.size} orders placed (clients left gw1 ${(load.down.get(0) ?? cutAt) - cutAt} ms after the cut)`,
      );

      // gw1 knows: its readiness says the saga log is out of reach.
      const ready = await sys.api(0, 10_000)('GET', '/readyz');
      assert.equal(ready.status, 503);
      assert.equal(ready.body.checks.saga_log, 'unavailable');
      // And an order sent to it is refused within the log's deadline, whether its write finds a
      // connection whose answers never come or has to open one: not left waiting for TCP's minutes.
      const refusals: number[] = [];
      for (let i = 0; i < 3; i++) {
        const t0 = Date.now();
        const r = await sys.api(0, 30_000)('POST', '/orders', ORDERS.happy, {
          'X-Idempotency-Key': `cut-gw1-during-cut-${i}`,
        });
        const took = Date.now() - t0;
        refusals.push(took);
        assert.equal(r.status, 503, JSON.stringify(r.body));
        assert.equal(r.body.error, 'saga_log_unavailable');
        assert.ok(took < LOG_TIMEOUT_MS + 1_500, `refused after ${took} ms`);
      }
      console.log(
        `# during the cut: 3 orders sent to gw1 refused 503 saga_log_unavailable after ${refusals.join(', ')} ms`,
      );

      const countBefore = events.length;
      await sys.lab.heal('gw1', 'pg');
      const healAt = Date.now();
      const back = await until(
        'gw1 to serve an order again',
        async () => {
          const r = await sys
            .api(0, 6_000)('POST', '/orders', ORDERS.happy, {
              'X-Idempotency-Key': 'cut-gw1-after-heal',
              Prefer: 'wait=5',
            })
            .catch(() => undefined);
          return r?.status === 201 && r.body.status === 'CONFIRMED' ? r.body : undefined;
        },
        90_000,
        200,
      );
      console.log(`# heal: gw1 placed and confirmed order ${back.id} ${Date.now() - healAt} ms after the heal`);
      const [after] = await sys.pg.query<{ n: number }>(
        db,
        'SELECT count(*)::int AS n FROM saga_events WHERE saga_id = ANY($1)',
        [ids],
      );
      assert.equal(after?.n, countBefore, "no write of gw1's landed on a saga gw2 took over once the cut healed");
    } finally {
      await load.abandon();
    }
    await until('every saga to end', async () => ((await allTerminal(sys.apis(1))) ? true : undefined), 30_000);
    const report = await checkInvariants(sys.apis(1), CATALOG);
    console.log(`# invariants hold over ${report.sagas} sagas: ${JSON.stringify(report.byStatus)}`);
  });
});
