/**
 * A small TCP proxy of the hosts tests' own, run as a process inside a lab's namespace
 * (test/helpers/netns.ts): each route listens on a TCP address or a Unix socket and pipes every
 * connection to its target. Two uses:
 *
 * - a relay: a Unix socket in the run's folder (reachable from the test process, which lives in the
 *   machine's own namespace) to a gateway's address inside the lab, crossing the hub as any client
 *   of the lab would;
 * - a bad link: placed on the path between two hosts, it delays every chunk it forwards, each way,
 *   by `delayMs` ± `jitterMs` (uniform), keeping the stream's order. The kernel here has no netem
 *   qdisc, and TCP cannot lose bytes: a lost segment is a segment retransmitted later, so "loss"
 *   is modelled as that — with probability `lossRate` a chunk waits `lossPenaltyMs` more (Linux's
 *   minimum retransmission timeout is 200 ms).
 *
 * Started as a script (`node --import tsx tcp-proxy.ts '<json>'`, the JSON a ProxyConfig), it
 * sends the `ready` message over IPC once every route listens, takes `{type: 'shape', shape}` to
 * change the shaping and `{type: 'stats'}` to answer `{type: 'stats', stats}`, and exits when its
 * parent goes.
 */
import fs from 'node:fs';
import net from 'node:net';
import { pathToFileURL } from 'node:url';

export interface Shape {
  delayMs: number;
  jitterMs: number;
  lossRate: number;
  lossPenaltyMs: number;
}

export const NO_SHAPE: Shape = { delayMs: 0, jitterMs: 0, lossRate: 0, lossPenaltyMs: 0 };

export interface ProxyRoute {
  /** `unix:/path/to.sock` or `host:port`. */
  listen: string;
  /** `host:port`. */
  target: string;
  /** Shaped (a bad link) or not (a relay). Default false. */
  shaped?: boolean;
}

export interface ProxyConfig {
  routes: ProxyRoute[];
  shape?: Shape;
}

export interface ProxyStats {
  connections: number;
  /** Chunks forwarded through shaped routes, both ways. */
  chunks: number;
  /** Chunks that waited the loss penalty. */
  lost: number;
  /** The delay each shaped chunk waited (ms), median and 95th percentile. */
  p50DelayMs: number;
  p95DelayMs: number;
}

function hostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

export class TcpProxy {
  private shape: Shape;
  private readonly servers: net.Server[] = [];
  private readonly sockets = new Set<net.Socket>();
  private connections = 0;
  private lost = 0;
  private delays: number[] = [];

  constructor(
    private readonly routes: readonly ProxyRoute[],
    shape: Shape = NO_SHAPE,
    private readonly random: () => number = Math.random,
  ) {
    this.shape = shape;
  }

  setShape(shape: Shape): void {
    this.shape = shape;
    this.delays = [];
    this.lost = 0;
  }

  stats(): ProxyStats {
    const sorted = [...this.delays].sort((a, b) => a - b);
    return {
      connections: this.connections,
      chunks: sorted.length,
      lost: this.lost,
      p50DelayMs: percentile(sorted, 50),
      p95DelayMs: percentile(sorted, 95),
    };
  }

  /** Listens on every route; resolves with where each listens. */
  async start(): Promise<string[]> {
    const where: string[] = [];
    for (const route of this.routes) {
      const server = net.createServer((client) => this.accept(client, route));
      server.on('error', () => {});
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        if (route.listen.startsWith('unix:')) {
          const file = route.listen.slice('unix:'.length);
          fs.rmSync(file, { force: true });
          server.listen(file, () => resolve());
        } else {
          const { host, port } = hostPort(route.listen);
          server.listen(port, host, () => resolve());
        }
      });
      this.servers.push(server);
      const a = server.address();
      where.push(typeof a === 'string' ? `unix:${a}` : `${a?.address}:${a?.port}`);
    }
    return where;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await Promise.all(this.servers.map((s) => new Promise((r) => s.close(r))));
  }

  private accept(client: net.Socket, route: ProxyRoute): void {
    this.connections++;
    const { host, port } = hostPort(route.target);
    const upstream = net.connect({ host, port });
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.setNoDelay(true);
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
      s.on('close', () => {
        this.sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    if (route.shaped) {
      this.pipeShaped(client, upstream);
      this.pipeShaped(upstream, client);
    } else {
      client.pipe(upstream);
      upstream.pipe(client);
    }
  }

  /** The delay of one chunk: delay ± jitter, and the loss penalty with probability lossRate. */
  private delayOf(): number {
    const { delayMs, jitterMs, lossRate, lossPenaltyMs } = this.shape;
    let d = delayMs + (this.random() * 2 - 1) * jitterMs;
    if (lossRate > 0 && this.random() < lossRate) {
      this.lost++;
      d += lossPenaltyMs;
    }
    return Math.max(0, d);
  }

  /**
   * Forwards `from`'s chunks to `to`, each after its delay, in order: a chunk never overtakes the
   * one before it (TCP delivers in order; a late segment holds back the ones behind it).
   */
  private pipeShaped(from: net.Socket, to: net.Socket): void {
    let lastDue = 0;
    let end = false;
    let pending = 0;
    from.on('data', (chunk: Buffer) => {
      const delay = this.delayOf();
      this.delays.push(delay);
      const now = performance.now();
      const due = Math.max(lastDue, now + delay);
      lastDue = due;
      pending++;
      setTimeout(() => {
        pending--;
        if (!to.destroyed) to.write(chunk);
        if (end && pending === 0) to.end();
      }, due - now);
    });
    from.on('end', () => {
      end = true;
      if (pending === 0) to.end();
    });
  }
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as ProxyConfig;
  const proxy = new TcpProxy(config.routes, config.shape ?? NO_SHAPE);
  const where = await proxy.start();
  process.on('message', (m: { type?: string; shape?: Shape }) => {
    if (m?.type === 'shape' && m.shape) {
      proxy.setShape(m.shape);
      process.send?.({ type: 'shaped' });
    } else if (m?.type === 'stats') {
      process.send?.({ type: 'stats', stats: proxy.stats() });
    }
  });
  // Its parent (the test) gone: nothing is left to relay for.
  process.once('disconnect', () => void proxy.close().then(() => process.exit(0)));
  process.once('SIGTERM', () => void proxy.close().then(() => process.exit(0)));
  process.send?.({ type: 'ready', address: where.join(',') });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
