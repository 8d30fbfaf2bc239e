// The gateway's client of a participant with several addresses (replicas): calls spread over the
// addresses that answer, move off one that dies as soon as its connection closes, come back to it
// once it is restarted, and fail UNAVAILABLE at once when none answers. Real gRPC servers on
// loopback (grpc-js, the participants' server library), over mutual TLS and plaintext.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Server, ServerCredentials, connectivityState, status, type sendUnaryData } from '@grpc/grpc-js';
import {
  HealthService,
  HealthCheckResponse_ServingStatus,
  type HealthCheckResponse,
  type HealthClient,
} from '../../src/gen/health/v1/health.js';
import { callUnary, isServiceError, serverCredentials } from '../../src/platform/grpc/grpc.js';
import { dialerAs, unaryClient, UnaryChannel } from '../../src/platform/grpc/grpc-client.js';
import { BalancedChannel, channelTo, type AddressChange } from '../../src/platform/grpc/grpc-balancer.js';
import { connectParticipants } from '../../src/gateway/participants.js';
import type { GrpcSecurity } from '../../src/platform/grpc/tls.js';
import { eventually, freePort } from '../helpers/system.js';
import { testTls } from '../helpers/tls.js';

/** A health service on a fixed port that counts the calls it answers; stopped and started again on that port. */
class Replica {
  calls = 0;
  /** How long its health check takes to answer, and what it answers. */
  answerAfterMs = 0;
  answer = HealthCheckResponse_ServingStatus.SERVING;
  private server: Server | undefined;
  private constructor(
    readonly port: number,
    private readonly creds: () => ServerCredentials,
  ) {}

  static async start(creds: () => ServerCredentials): Promise<Replica> {
    const r = new Replica(await freePort(), creds);
    await r.restart();
    return r;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  async restart(): Promise<void> {
    const server = new Server();
    server.addService(HealthService, {
      check: (_c: unknown, cb: sendUnaryData<HealthCheckResponse>) => {
        this.calls++;
        const reply = () => cb(null, { status: this.answer });
        if (this.answerAfterMs > 0) setTimeout(reply, this.answerAfterMs);
        else reply();
      },
    });
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(this.address, this.creds(), (err) => (err ? reject(err) : resolve())),
    );
    this.server = server;
  }

  /** As a crash looks from the client: every connection closed at once, nothing said. */
  kill(): void {
    this.server?.forceShutdown();
    this.server = undefined;
  }

  /** As SIGTERM does: GOAWAY on each connection, then the listener closes. */
  async drain(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s) await new Promise<void>((r) => s.tryShutdown(() => r()));
  }
}

const insecure: GrpcSecurity = { kind: 'insecure' };

/** An address change, and when it was told (performance.now()). */
type Change = AddressChange & { at: number };

function balanced(
  addresses: string[],
  security: GrpcSecurity,
  changes: Change[] = [],
): { channel: BalancedChannel; client: HealthClient & { close(): void } } {
  const channel = new BalancedChannel(addresses, dialerAs(security, 'gateway')('payment'), {
    onAddressChange: (c) => changes.push({ ...c, at: performance.now() }),
  });
  return { channel, client: unaryClient<HealthClient>(HealthService, channel) };
}

const check = (c: HealthClient, timeoutMs = 2_000) => callUnary(c.check.bind(c), { service: '' }, { timeoutMs });

/** The status a call failed with, or 'OK'. */
async function outcome(p: Promise<unknown>): Promise<number | 'OK'> {
  try {
    await p;
    return 'OK';
  } catch (err) {
    assert.ok(isServiceError(err), String(err));
    return err.code;
  }
}

/** `n` calls, `inFlight` at a time; their outcomes. */
async function calls(c: HealthClient, n: number, inFlight = 8): Promise<(number | 'OK')[]> {
  const out: (number | 'OK')[] = [];
  let left = n;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (left-- > 0) out.push(await outcome(check(c)));
    }),
  );
  return out;
}

for (const kind of ['mutual TLS', 'plaintext'] as const) {
  describe(`a participant with two addresses (${kind})`, () => {
    let security: GrpcSecurity;
    let a: Replica;
    let b: Replica;
    before(async () => {
      security = kind === 'plaintext' ? insecure : await testTls();
      const creds = () =>
        security.kind === 'mtls' ? serverCredentials(security, 'payment') : ServerCredentials.createInsecure();
      [a, b] = await Promise.all([Replica.start(creds), Replica.start(creds)]);
    });
    after(() => {
      a?.kill();
      b?.kill();
    });

    test('calls spread over both; one killed: calls move off it within a second and keep succeeding; restarted: spread again', async () => {
      const changes: Change[] = [];
      const { channel, client } = balanced([a.address, b.address], security, changes);
      try {
        assert.deepEqual(new Set(await calls(client, 40)), new Set(['OK']), 'every call succeeds while both answer');
        await eventually('both addresses connected', async () =>
          channel.members().every((m) => m.getConnectivityState() === connectivityState.READY) ? true : undefined,
        );
        a.calls = 0;
        b.calls = 0;
        assert.deepEqual(new Set(await calls(client, 40)), new Set(['OK']));
        assert.ok(a.calls >= 10 && b.calls >= 10, `spread: ${a.calls} and ${b.calls} of 40`);

        // Killed under load: calls keep going the whole time.
        const load = (async () => {
          const outs: (number | 'OK')[] = [];
          const until = Date.now() + 1_500;
          while (Date.now() < until) outs.push(...(await calls(client, 8, 8)));
          return outs;
        })();
        const killedAt = performance.now();
        a.kill();
        const down = await eventually('the killed address to leave the rotation', async () =>
          changes.find((c) => c.address === a.address && !c.up),
        );
        const movedOffMs = down.at - killedAt;
        console.log(`# moved off the killed address after ${movedOffMs.toFixed(1)} ms (${down.reason})`);
        assert.ok(movedOffMs < 1_000, `moved off after ${movedOffMs} ms`);
        assert.equal(down.upCount, 1);
        const during = await load;
        const failed = during.filter((o) => o !== 'OK');
        // A call already on the dying connection may fail UNAVAILABLE (the saga retries it); no other.
        assert.ok(failed.length <= 8, `${failed.length} of ${during.length} failed: ${failed.join(',')}`);
        assert.ok(
          failed.every((o) => o === Number(status.UNAVAILABLE)),
          `only UNAVAILABLE: ${failed.join(',')}`,
        );
        b.calls = 0;
        assert.deepEqual(new Set(await calls(client, 40)), new Set(['OK']), 'every call after the move succeeds');
        assert.equal(b.calls, 40, 'all on the one left');

        const restartedAt = performance.now();
        await a.restart();
        await eventually('the restarted address back in the rotation', async () =>
          changes.find((c) => c.address === a.address && c.up),
        );
        const backMs = (changes.find((c) => c.address === a.address && c.up) as Change).at - restartedAt;
        console.log(`# the restarted address was back after ${backMs.toFixed(1)} ms`);
        assert.ok(backMs < 2_500, `back after ${backMs} ms (reconnect backoff capped at 1 s)`);
        a.calls = 0;
        b.calls = 0;
        assert.deepEqual(new Set(await calls(client, 40)), new Set(['OK']));
        assert.ok(a.calls >= 10 && b.calls >= 10, `spread again: ${a.calls} and ${b.calls} of 40`);
      } finally {
        client.close();
      }
    });
  });
}

describe('a participant with two addresses, more ways to go', () => {
  test('a replica drained (GOAWAY, as on SIGTERM) leaves the rotation; the calls go on on the other', async () => {
    const creds = () => ServerCredentials.createInsecure();
    const [a, b] = await Promise.all([Replica.start(creds), Replica.start(creds)]);
    const changes: Change[] = [];
    const { channel, client } = balanced([a.address, b.address], insecure, changes);
    try {
      await calls(client, 20);
      await eventually('both connected', async () =>
        channel.members().every((m) => m.getConnectivityState() === connectivityState.READY) ? true : undefined,
      );
      await a.drain();
      await eventually('the drained address out', async () => changes.find((c) => c.address === a.address && !c.up));
      b.calls = 0;
      assert.deepEqual(new Set(await calls(client, 30)), new Set(['OK']));
      assert.equal(b.calls, 30);
    } finally {
      client.close();
      a.kill();
      b.kill();
    }
  });

  test('both dead: UNAVAILABLE at once, naming each address; one back: calls succeed again', async () => {
    const creds = () => ServerCredentials.createInsecure();
    const [a, b] = await Promise.all([Replica.start(creds), Replica.start(creds)]);
    const changes: Change[] = [];
    const { channel, client } = balanced([a.address, b.address], insecure, changes);
    try {
      await calls(client, 20);
      await eventually('both connected', async () =>
        channel.members().every((m) => m.getConnectivityState() === connectivityState.READY) ? true : undefined,
      );
      a.kill();
      b.kill();
      await eventually('both out', async () => (changes.filter((c) => !c.up).length === 2 ? true : undefined));
      assert.notEqual(channel.getConnectivityState(), connectivityState.READY);
      for (let i = 0; i < 5; i++) {
        const started = performance.now();
        const err = await check(client, 5_000).catch((e: unknown) => e);
        const took = performance.now() - started;
        assert.ok(isServiceError(err), String(err));
        assert.equal(err.code, status.UNAVAILABLE);
        assert.ok(took < 200, `failed after ${took} ms, not at the deadline`);
        if (i === 0) {
          assert.match(err.details, new RegExp(`${a.address}.*${b.address}`), err.details);
        }
      }
      await b.restart();
      await eventually('a call succeeds again', async () =>
        (await outcome(check(client))) === 'OK' ? true : undefined,
      );
      assert.equal(channel.getConnectivityState(), connectivityState.READY);
    } finally {
      client.close();
      a.kill();
      b.kill();
    }
  });

  test('an address where nothing listens never fails a call: the first call goes to the one that answers', async () => {
    const creds = () => ServerCredentials.createInsecure();
    const live = await Replica.start(creds);
    const dead = `127.0.0.1:${await freePort()}`;
    const { client } = balanced([dead, live.address], insecure);
    try {
      assert.deepEqual(new Set(await calls(client, 50)), new Set(['OK']));
      assert.equal(live.calls, 50);
    } finally {
      client.close();
      live.kill();
    }
  });

  test('a peer that accepts and hangs up at once is called back with a growing backoff, not in a loop', async () => {
    let accepted = 0;
    const rude = net.createServer((s) => {
      accepted++;
      s.destroy();
    });
    await new Promise<void>((r) => rude.listen(0, '127.0.0.1', () => r()));
    const creds = () => ServerCredentials.createInsecure();
    const live = await Replica.start(creds);
    const rudeAddress = `127.0.0.1:${(rude.address() as net.AddressInfo).port}`;
    const { channel, client } = balanced([rudeAddress, live.address], insecure);
    try {
      await eventually('a call answered', async () => ((await outcome(check(client))) === 'OK' ? true : undefined));
      // Its backoff doubles (100 ms, 200, 400, 800, then 1 s): about 6 attempts in 1.5 s; a loop would make thousands.
      const from = performance.now();
      await eventually('1.5 s of background reconnects', async () =>
        performance.now() - from >= 1_500 ? true : undefined,
      );
      assert.ok(accepted <= 12, `${accepted} connections in 1.5 s`);
      assert.equal(channel.getConnectivityState(), connectivityState.READY);
    } finally {
      client.close();
      rude.close();
      live.kill();
    }
  });

  test('one address is a plain channel; several a balanced one; closing stops every background attempt', async () => {
    const dial = dialerAs(insecure, 'gateway')('payment');
    assert.ok(channelTo(['127.0.0.1:1'], dial) instanceof UnaryChannel);
    const port = await freePort();
    const many = channelTo([`127.0.0.1:${port}`, '127.0.0.1:1'], dial);
    assert.ok(many instanceof BalancedChannel);
    const c = unaryClient<HealthClient>(HealthService, many);
    assert.equal(await outcome(check(c)), status.UNAVAILABLE);
    c.close();
    assert.equal(many.getConnectivityState(), connectivityState.SHUTDOWN);
    // Nothing left to keep this process alive or to dial again: a server started now sees no connection.
    let connections = 0;
    const late = net.createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((r) => late.listen(port, '127.0.0.1', () => r()));
    try {
      const from = performance.now();
      await eventually('1.2 s (past the longest backoff)', async () =>
        performance.now() - from >= 1_200 ? true : undefined,
      );
      assert.equal(connections, 0);
    } finally {
      late.close();
    }
  });
});

describe("the gateway's participants with replicas", () => {
  test('a probe slower than its deadline on a live connection is slow, not down; NOT_SERVING and a dead one are down', async () => {
    const creds = () => ServerCredentials.createInsecure();
    const [o, i, pay] = await Promise.all([Replica.start(creds), Replica.start(creds), Replica.start(creds)]);
    const p = connectParticipants({ order: o.address, inventory: [i.address], payment: pay.address }, insecure, {
      probeTimeoutMs: 100,
    });
    try {
      const all = { order: true, inventory: true, payment: true };
      assert.deepEqual(await p.reachable(true), all);
      o.answerAfterMs = 400;
      i.answerAfterMs = 400;
      const from = performance.now();
      assert.deepEqual(await p.reachable(true), all, 'connected but slow: up');
      assert.ok(performance.now() - from < 390, 'answered at the deadline, not when the slow answers came');
      assert.deepEqual(
        (await p.probeAddresses()).inventory.map((a) => a.up),
        [true],
      );
      pay.answer = HealthCheckResponse_ServingStatus.NOT_SERVING;
      assert.equal((await p.reachable(true)).payment, false, 'NOT_SERVING: down');
      o.kill();
      assert.equal((await p.reachable(true)).order, false, 'no connection: down');
    } finally {
      p.close();
      o.kill();
      i.kill();
      pay.kill();
    }
  });

  test('probeAddresses says how many addresses of each participant answer', async () => {
    const creds = () => ServerCredentials.createInsecure();
    const [a, b, c] = await Promise.all([Replica.start(creds), Replica.start(creds), Replica.start(creds)]);
    const p = connectParticipants(
      { order: [a.address, b.address], inventory: c.address, payment: [c.address] },
      insecure,
    );
    try {
      const up = async () =>
        Object.fromEntries(
          Object.entries(await p.probeAddresses()).map(([n, list]) => [n, list.filter((x) => x.up).length]),
        );
      assert.deepEqual(await up(), { order: 2, inventory: 1, payment: 1 });
      a.kill();
      await eventually('order: 1 of 2', async () => ((await up()).order === 1 ? true : undefined));
      assert.deepEqual(await p.reachable(true), { order: true, inventory: true, payment: true });
      b.kill();
      assert.deepEqual((await p.probeAddresses()).order, [
        { address: a.address, up: false },
        { address: b.address, up: false },
      ]);
      assert.equal((await p.reachable(true)).order, false);
    } finally {
      p.close();
      a.kill();
      b.kill();
      c.kill();
    }
  });
});
