import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { InjectOptions } from 'fastify';
import { ResilientKv } from '../../src/platform/storage/fast-kv.js';
import { createIdempotencyGuard, type UntrustedReason } from '../../src/platform/storage/idempotency.js';
import { fingerprint } from '../../src/platform/storage/inbox.js';
import { toOrderRequest } from '../../src/gateway/order-request.js';
import { createPaymentService } from '../../src/services/payment/server.js';
import { openPaymentDatabase } from '../../src/services/payment/store.js';
import { ChargeOutcome } from '../../src/gen/payment/v1/payment.js';
import { TestRedis } from '../helpers/redis.js';
import { gatewayApp, type GatewayApp } from '../helpers/gateway-app.js';
import { invoke, silentLogger, tempDir } from '../helpers/participants.js';

/**
 * Redis is never trusted for an outcome (DESIGN.md §6b, issue 11 part 3): forged, malformed and
 * stale values put into a real Redis change no answer; each is ignored and reported.
 */

let redis: TestRedis;
/** The forger: one raw client of the private Redis. */
let forge: ReturnType<TestRedis['client']>;
before(async () => {
  redis = await TestRedis.start();
  forge = redis.client();
});
after(async () => {
  forge.disconnect();
  await redis.kill();
});

/**
 * A fast path on the private Redis, once it is connected (until then it would serve from memory).
 * These tests are about what the guards make of the values they read, so a command gets 5 s
 * instead of the gateway's 250 ms: on a loaded machine (a CI run) one Redis answer took longer, the
 * fast path rightly went to memory, and the forgeries after it were never read (9 tests failed).
 * Falling back on a slow Redis is test/integration/fast-kv.test.ts's subject.
 */
async function connectedKv(): Promise<ResilientKv> {
  const kv = new ResilientKv({ url: redis.url, logger: silentLogger, commandTimeoutMs: 5_000 });
  const until = Date.now() + 10_000;
  while (kv.mode() !== 'redis') {
    if (Date.now() > until) throw new Error('the fast path never connected to the test Redis');
    await new Promise((r) => setTimeout(r, 10));
  }
  return kv;
}

/** Forgeries that expire as the guards' own values do (no later than the 60 s they set): only their content is false. */
const FORGED_TTL_MS = 30_000;

const body = { customer_id: 'cust_1', items: [{ product_id: 'prod_1', quantity: 1, price: 25 }] };
const fp = fingerprint('POST /orders', toOrderRequest(body));
const post = (key: string): InjectOptions => ({
  method: 'POST',
  url: '/orders',
  payload: body,
  headers: { 'x-idempotency-key': key },
});

describe('the gateway', () => {
  let g: GatewayApp;
  let kv: ResilientKv;
  const reports: Array<[string, UntrustedReason]> = [];
  before(async () => {
    kv = await connectedKv();
    g = await gatewayApp({ kv, onUntrusted: (key, why) => reports.push([key, why]) });
  });
  after(() => g.close());

  test('a forged finished answer is not replayed: the order is placed for real, and the forgery reported', async () => {
    const forged = {
      s: 'done',
      fp,
      r: { status: 201, body: { id: 'forged-order', status: 'CONFIRMED', total: 0.01 } },
    };
    await forge.set('gateway:forged-key', JSON.stringify(forged), 'PX', FORGED_TTL_MS);
    const res = await g.app.inject(post('forged-key'));
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(res.headers['idempotent-replayed'], undefined);
    assert.notEqual(res.json().id, 'forged-order');
    assert.ok(await g.log.get(res.json().id as string), 'a real saga');
    assert.deepEqual(
      reports.filter(([k]) => k === 'forged-key'),
      [['forged-key', 'unbacked']],
    );
    // Its real answer replaces the forgery: the next repeat is a replay of the real order.
    const again = await g.app.inject(post('forged-key'));
    assert.equal(again.headers['idempotent-replayed'], 'true');
    assert.equal(again.json().id, res.json().id);
  });

  for (const [name, value] of [
    ['null', 'null'],
    ['not JSON', 'not json {'],
    ['an array', '[1,2]'],
    ['a number for the fingerprint', JSON.stringify({ s: 'done', fp: 5, r: {} })],
    ['an unknown state', JSON.stringify({ s: 'confirmed', fp })],
    ['a finished answer without its response', JSON.stringify({ s: 'done', fp })],
  ] as const) {
    test(`a malformed value (${name}) is ignored: the order is placed, nothing throws`, async () => {
      const key = `malformed-${name.replace(/\W+/g, '-')}`;
      await forge.set(`gateway:${key}`, value);
      const res = await g.app.inject(post(key));
      assert.equal(res.statusCode, 201, res.body);
      assert.equal(res.headers['idempotent-replayed'], undefined);
      assert.ok(await g.log.get(res.json().id as string));
      assert.equal(kv.mode(), 'redis', 'the fast path still reads Redis (else no value of it was read)');
      assert.deepEqual(
        reports.filter(([k]) => k === key),
        [[key, 'malformed']],
      );
    });
  }

  test('a stale or foreign "other request" or "in flight" mark does not refuse an order the log never saw', async () => {
    await forge.set(
      'gateway:foreign-mismatch',
      JSON.stringify({ s: 'done', fp: 'another-request', r: { status: 201, body: {} } }),
      'PX',
      FORGED_TTL_MS,
    );
    const refused = await g.app.inject(post('foreign-mismatch'));
    // No saga holds the key: the mark says another request is in flight, so the client retries…
    assert.equal(refused.statusCode, 409, refused.body);
    // …and a real order under a key makes the log the judge of a mismatch from then on.
    const real = await g.app.inject(post('real-key'));
    assert.equal(real.statusCode, 201);
    await forge.set(
      'gateway:real-key',
      JSON.stringify({ s: 'done', fp: 'forged-fp', r: { status: 201, body: { id: 'x' } } }),
      'PX',
      FORGED_TTL_MS,
    );
    const replay = await g.app.inject(post('real-key'));
    assert.equal(replay.statusCode, 201, replay.body);
    assert.equal(replay.json().id, real.json().id, 'answered from the saga log, not from Redis');
  });

  for (const [name, value] of [
    ['an "in flight" mark', JSON.stringify({ s: 'in_flight', fp })],
    ["another request's answer", JSON.stringify({ s: 'done', fp: 'another-request', r: { status: 201, body: {} } })],
  ] as const) {
    test(`${name} with no expiry, or one longer than the gateway ever sets, cannot pin its key: ignored, reported, the order placed`, async () => {
      for (const [suffix, ttl] of [
        ['forever', undefined],
        ['a-year', 365 * 24 * 3_600_000],
      ] as const) {
        const key = `pinned-${name.replace(/\W+/g, '-')}-${suffix}`;
        if (ttl === undefined) await forge.set(`gateway:${key}`, value);
        else await forge.set(`gateway:${key}`, value, 'PX', ttl);
        const res = await g.app.inject(post(key));
        assert.equal(res.statusCode, 201, res.body);
        assert.equal(res.headers['idempotent-replayed'], undefined);
        assert.ok(await g.log.get(res.json().id as string), 'a real saga');
        assert.deepEqual(
          reports.filter(([k]) => k === key),
          [[key, 'no_expiry']],
        );
        const held = await forge.pttl(`gateway:${key}`);
        assert.ok(held > 0 && held <= 60_000, `the key now expires like any the gateway sets (${held} ms)`);
      }
    });
  }
});

describe('a participant', () => {
  test('a forged CHARGED in Redis does not answer a charge the database never made', async () => {
    const dir = tempDir('payment-untrusted-');
    const db = openPaymentDatabase(path.join(dir, 'payment.db'));
    const kv = await connectedKv();
    const reports: UntrustedReason[] = [];
    const fastPath = createIdempotencyGuard<unknown>(kv, {
      namespace: 'payment:',
      ttlMs: 60_000,
      lockMs: 10_000,
      onUntrusted: (_k, why) => reports.push(why),
    });
    const service = createPaymentService({ db, logger: silentLogger, chargeLimitCents: 50_000, fastPath });
    try {
      // Over the limit: the real answer is DECLINED. Redis is made to say CHARGED.
      const request = { orderId: 'o-forged', amountCents: 60_000 };
      const forged = {
        s: 'done',
        fp: fingerprint('Charge', request),
        r: { outcome: ChargeOutcome.CHARGE_OUTCOME_CHARGED, amountCents: 60_000 },
      };
      await forge.set('payment:o-forged:charge_payment', JSON.stringify(forged), 'PX', FORGED_TTL_MS);
      const res = await invoke(service.charge, request, 'o-forged:charge_payment');
      assert.equal(res.outcome, ChargeOutcome.CHARGE_OUTCOME_DECLINED);
      assert.deepEqual(reports, ['unbacked']);
      // A repeat is answered from the database's inbox: still DECLINED.
      assert.equal(
        (await invoke(service.charge, request, 'o-forged:charge_payment')).outcome,
        ChargeOutcome.CHARGE_OUTCOME_DECLINED,
      );
      // Malformed values do not throw either.
      await forge.set('payment:o-null:charge_payment', 'null');
      const fresh = await invoke(service.charge, { orderId: 'o-null', amountCents: 100 }, 'o-null:charge_payment');
      assert.equal(fresh.outcome, ChargeOutcome.CHARGE_OUTCOME_CHARGED);
      assert.deepEqual(reports, ['unbacked', 'malformed']);
    } finally {
      await kv.close();
      db.close();
    }
  });
});
