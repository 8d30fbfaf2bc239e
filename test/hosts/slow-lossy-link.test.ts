import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { allTerminal, checkInvariants } from '../helpers/invariants.js';
import { Lab, whyNoNamespaces } from '../helpers/netns.js';
import { NO_SHAPE } from '../helpers/tcp-proxy.js';
import { CATALOG, Load, ORDERS, percentile, startHosts, until, whyNoBuild, type HostSystem } from '../helpers/hosts.js';

// A bad link between the gateway and the payment service: the gateway reaches payment only through
// the test's TCP proxy on host `link` (its direct packets to payment are dropped in the hub), which
// delays every chunk, each way, by 200 ms ± 100 ms, and "loses" 5 % of them: TCP cannot lose
// bytes, so a lost segment is modelled as a retransmission, 200 ms more (Linux's minimum RTO).
// This kernel has no netem qdisc, hence the proxy. Orders must still complete, only slower, with
// every invariant holding and nothing charged twice.

const SHAPE = { delayMs: 200, jitterMs: 100, lossRate: 0.05, lossPenaltyMs: 200 };

const skip = (await whyNoNamespaces()) ?? whyNoBuild();

describe('hosts: 200 ms ± 100 ms and 5 % loss on the gateway ↔ payment link', { skip }, () => {
  let sys: HostSystem;

  before(async () => {
    sys = await startHosts({ gateways: 1, shapedLink: { participant: 'payment' } });
  });

  after(async () => {
    await sys?.stop();
    assert.deepEqual(Lab.leftovers(), [], 'every namespace of the test is removed');
  });

  /**
   * `count` orders from 6 clients (every fourth one declined by payment): their latencies, and the
   * answers that made a client send its key again.
   */
  async function orders(prefix: string, count: number): Promise<{ ms: number[]; retried: Map<string, number> }> {
    const load = new Load(sys, {
      clients: 6,
      gateways: [0],
      order: (_key, n) => (n % 4 === 3 ? ORDERS.declined : ORDERS.happy),
      waitSeconds: 60,
      timeoutMs: 70_000,
      keyPrefix: prefix,
    });
    load.start();
    try {
      await until(`${count} orders to finish`, async () => (load.finished >= count ? true : undefined), 120_000);
      await load.stop();
    } finally {
      await load.abandon();
    }
    const placed = [...load.placed.values()];
    for (const p of placed) assert.ok(['CONFIRMED', 'CANCELLED'].includes(p.status), `order ${p.id} is ${p.status}`);
    return { ms: placed.map((p) => p.ms), retried: load.retried };
  }

  test('orders still complete, slower; the books agree and nothing is charged twice', async () => {
    const { ms: direct } = await orders('link-direct', 24);
    await sys.shapeLink(SHAPE);
    const { ms: shaped, retried } = await orders('link-shaped', 36);
    const stats = await sys.linkStats();
    await until('every saga to end', async () => ((await allTerminal(sys.apis(0))) ? true : undefined), 60_000);
    // The books are read once the link is plain again: every page of payment's books through
    // 200 ms each way can pass the reads' deadline (a 503 of the reconciliation, not a breach of
    // an invariant), and what is judged is the state the shaped link left, which the proxy does not change.
    await sys.shapeLink(NO_SHAPE);
    const report = await checkInvariants(sys.apis(0), CATALOG);

    const p50 = { direct: percentile(direct, 50), shaped: percentile(shaped, 50) };
    console.log(
      `# link gw ↔ payment: p50 of an order ${p50.direct.toFixed(0)} ms unshaped, ${p50.shaped.toFixed(0)} ms through the proxy ` +
        `(p95 ${percentile(shaped, 95).toFixed(0)} ms; ${shaped.length} orders); the proxy delayed ${stats.chunks} chunks, ` +
        `p50 ${stats.p50DelayMs.toFixed(0)} ms, p95 ${stats.p95DelayMs.toFixed(0)} ms, ${stats.lost} "lost" (+${SHAPE.lossPenaltyMs} ms); ` +
        `keys sent again after ${JSON.stringify(Object.fromEntries(retried))}; ` +
        `invariants hold over ${report.sagas} sagas: ${JSON.stringify(report.byStatus)}`,
    );
    // Calls of several sagas share a chunk when they meet on the connection: at least one each way.
    assert.ok(stats.chunks >= 2, 'the payment calls went through the proxy');
    assert.ok(
      stats.p50DelayMs >= 100 && stats.p50DelayMs <= 320,
      `the proxy's median delay was ${stats.p50DelayMs} ms`,
    );
    // A charge is a request one way and an answer the other: at least two delayed chunks.
    assert.ok(
      p50.shaped >= p50.direct + 200,
      `orders were not slower through the proxy (${p50.shaped} vs ${p50.direct} ms)`,
    );
  });
});
