/**
 * The participants as their own processes (main.ts) with ORDER_DB_URL, PAYMENT_DB_URL and
 * INVENTORY_DB_URL set: an order taken through every step over real gRPC (mutual TLS) with its
 * books in PostgreSQL, two payment replicas sharing one database, /readyz following the database,
 * and a database out of reach at start. The store ports themselves: participant-stores-postgres.test.ts.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { callUnary } from '../../src/platform/grpc/grpc.js';
import { CreateOutcome, OrderServiceClient, OrderStatus, ConfirmOutcome } from '../../src/gen/order/v1/order.js';
import { CommitOutcome, InventoryServiceClient, ReserveOutcome } from '../../src/gen/inventory/v1/inventory.js';
import { ChargeOutcome, PaymentServiceClient, PaymentStatus } from '../../src/gen/payment/v1/payment.js';
import { createOrderRequest, errorCode, startMain, tempDir, type RunningMain } from '../helpers/participants.js';
import { issuedUnder, tlsUnder, asGateway } from '../helpers/tls.js';
import { createTempDatabase, TestPostgres, type TempDatabase } from '../helpers/postgres.js';
import { eventually, freePort } from '../helpers/system.js';

const running: RunningMain[] = [];
after(async () => {
  for (const p of running) p.stop();
  await Promise.all(running.map((p) => p.exit));
});

function start(service: string, env: Record<string, string>): RunningMain {
  const proc = startMain(service, env);
  running.push(proc);
  return proc;
}

async function rows<R extends pg.QueryResultRow>(url: string, sql: string): Promise<R[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<R>(sql)).rows;
  } finally {
    await c.end();
  }
}

async function readyz(metrics: unknown): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`http://${String(metrics)}/readyz`);
  return { status: res.status, body: await res.json() };
}

const opts = (key?: string) => ({ timeoutMs: 5_000, ...(key ? { idempotencyKey: key } : {}) });

describe('participants on PostgreSQL, each its own process', () => {
  test('an order through every step over gRPC, its books in PostgreSQL, no SQLite file made; ready with its database; a clean stop', async () => {
    const dir = tempDir('participants-pg');
    await issuedUnder(dir);
    const dbs: Record<'order' | 'inventory' | 'payment', TempDatabase> = {
      order: await createTempDatabase('participants_pg_test'),
      inventory: await createTempDatabase('participants_pg_test'),
      payment: await createTempDatabase('participants_pg_test'),
    };
    try {
      const procs = Object.fromEntries(
        await Promise.all(
          (['order', 'inventory', 'payment'] as const).map(async (name) => {
            const upper = name.toUpperCase();
            // Trust authentication takes any password: one is given, to see it kept out of the log.
            const url = new URL(dbs[name].url);
            url.password = 'pw-never-logged';
            const proc = start(name, {
              DATA_DIR: dir,
              [`${upper}_SERVICE_ADDR`]: '127.0.0.1:0',
              [`${upper}_DB_URL`]: url.toString(),
              METRICS_ADDR: `127.0.0.1:${await freePort()}`,
              LOG_LEVEL: 'info',
            });
            return [name, { proc, ready: await proc.ready }] as const;
          }),
        ),
      ) as Record<'order' | 'inventory' | 'payment', { proc: RunningMain; ready: Awaited<RunningMain['ready']> }>;
      const sec = tlsUnder(dir);
      const order = await asGateway(OrderServiceClient, procs.order.ready.address, 'order', sec);
      const inventory = await asGateway(InventoryServiceClient, procs.inventory.ready.address, 'inventory', sec);
      const payment = await asGateway(PaymentServiceClient, procs.payment.ready.address, 'payment', sec);
      try {
        // The place-order saga's steps, as the gateway calls them.
        const req = createOrderRequest({ orderId: 'pg-1' });
        const created = await callUnary(order.createOrder.bind(order), req, opts('saga-1:create_order'));
        assert.equal(created.outcome, CreateOutcome.CREATE_OUTCOME_CREATED);
        const items = req.items.map(({ productId, quantity }) => ({ productId, quantity }));
        const reserved = await callUnary(
          inventory.reserve.bind(inventory),
          { orderId: 'pg-1', items },
          opts('saga-1:reserve'),
        );
        assert.equal(reserved.outcome, ReserveOutcome.RESERVE_OUTCOME_RESERVED);
        const charge = { orderId: 'pg-1', amountCents: 3_099 };
        const charged = await callUnary(payment.charge.bind(payment), charge, opts('saga-1:charge'));
        assert.equal(charged.outcome, ChargeOutcome.CHARGE_OUTCOME_CHARGED);
        // A retry of a step replays its answer; another request under its key is refused.
        assert.deepEqual(await callUnary(payment.charge.bind(payment), charge, opts('saga-1:charge')), charged);
        assert.equal(
          await errorCode(
            callUnary(payment.charge.bind(payment), { ...charge, amountCents: 1 }, opts('saga-1:charge')),
          ),
          'idempotency_key_reused',
        );
        const committed = await callUnary(inventory.commit.bind(inventory), { orderId: 'pg-1' }, opts('saga-1:commit'));
        assert.equal(committed.outcome, CommitOutcome.COMMIT_OUTCOME_COMMITTED);
        const confirmed = await callUnary(order.confirmOrder.bind(order), { orderId: 'pg-1' }, opts('saga-1:confirm'));
        assert.equal(confirmed.outcome, ConfirmOutcome.CONFIRM_OUTCOME_CONFIRMED);

        const got = await callUnary(order.getOrder.bind(order), { orderId: 'pg-1' }, opts());
        assert.equal(got.order?.status, OrderStatus.ORDER_STATUS_CONFIRMED);
        const books = await callUnary(payment.listPayments.bind(payment), { pageSize: 0, pageToken: '' }, opts());
        assert.deepEqual(
          books.entries.map((e) => [e.orderId, e.status, e.amountCents]),
          [['pg-1', PaymentStatus.PAYMENT_STATUS_CHARGED, 3_099]],
        );
        const products = await callUnary(inventory.listProducts.bind(inventory), { productIds: ['prod_1'] }, opts());
        assert.deepEqual(
          products.products.map((p) => [p.productId, p.available, p.reserved, p.sold]),
          [['prod_1', 13, 0, 2]],
        );
      } finally {
        order.close();
        inventory.close();
        payment.close();
      }

      // What the services answered is what their PostgreSQL databases hold.
      assert.deepEqual(await rows(dbs.order.url, 'SELECT id, status FROM orders'), [
        { id: 'pg-1', status: 'CONFIRMED' },
      ]);
      assert.deepEqual(await rows(dbs.payment.url, 'SELECT order_id, status FROM payments'), [
        { order_id: 'pg-1', status: 'CHARGED' },
      ]);
      assert.equal((await rows(dbs.payment.url, 'SELECT key FROM inbox')).length, 1);
      assert.deepEqual(await rows(dbs.inventory.url, "SELECT status FROM reservations WHERE order_id = 'pg-1'"), [
        { status: 'COMMITTED' },
      ]);
      for (const name of ['order', 'inventory', 'payment'] as const) {
        assert.equal(fs.existsSync(path.join(dir, `${name}.db`)), false, `no ${name}.db made`);
        assert.deepEqual(await readyz(procs[name].ready.metrics), {
          status: 200,
          body: { status: 'ready', checks: { database: 'ok' } },
        });
        procs[name].proc.stop();
        assert.equal((await procs[name].proc.exit).code, 0, `${name} stops cleanly, its pool closed`);
        const log = procs[name].proc.stdout();
        const listening = log.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'listening');
        assert.equal(listening?.store, 'postgres');
        assert.match(String(listening?.db), /^postgres:\/\/postgres:\*\*\*@127\.0\.0\.1/);
        assert.ok(!log.some((l) => l.includes('pw-never-logged')), `${name}: no password in its log`);
      }
    } finally {
      await Promise.all(Object.values(dbs).map((d) => d.drop()));
    }
  });

  test('two payment replicas on one database, the Redis fast path in front: one key asked of both at once is one charge, one answer', async () => {
    const dir = tempDir('participants-pg');
    await issuedUnder(dir);
    const db = await createTempDatabase('participants_pg_test');
    try {
      const env = {
        DATA_DIR: dir,
        PAYMENT_SERVICE_ADDR: '127.0.0.1:0',
        PAYMENT_DB_URL: db.url,
        METRICS_ADDR: 'off',
        // The fast path is for replicas sharing a database; without Redis it falls back to memory, still correct.
        INBOX_FAST_PATH: 'redis',
        REDIS_KEY_PREFIX: `test-${db.name}`,
      };
      // Started together: their migrations take turns under the advisory lock.
      const replicas = [start('payment', env), start('payment', env)];
      const addresses = await Promise.all(replicas.map(async (r) => (await r.ready).address));
      const clients = await Promise.all(
        addresses.map((a) => asGateway(PaymentServiceClient, a, 'payment', tlsUnder(dir))),
      );
      try {
        const answers = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            Promise.all(
              clients.map((c) =>
                callUnary(c.charge.bind(c), { orderId: `twin-${i}`, amountCents: 500 + i }, opts(`twin-${i}:charge`)),
              ),
            ),
          ),
        );
        for (const [a, b] of answers) {
          assert.equal(a?.outcome, ChargeOutcome.CHARGE_OUTCOME_CHARGED);
          assert.deepEqual(b, a);
        }
      } finally {
        for (const c of clients) c.close();
      }
      assert.deepEqual(await rows(db.url, 'SELECT count(*)::int AS n FROM payments'), [{ n: 20 }]);
      assert.deepEqual(await rows(db.url, 'SELECT count(*)::int AS n FROM inbox'), [{ n: 20 }]);
      for (const r of replicas) r.stop();
      for (const r of replicas) assert.equal((await r.exit).code, 0);
    } finally {
      await db.drop();
    }
  });

  test('/readyz follows the database: 503 {"database": "unavailable"} while PostgreSQL is down, a write UNAVAILABLE; both back with it', async () => {
    const server = await TestPostgres.start();
    try {
      const dir = tempDir('participants-pg');
      await issuedUnder(dir);
      const metrics = `127.0.0.1:${await freePort()}`;
      const proc = start('payment', {
        DATA_DIR: dir,
        PAYMENT_SERVICE_ADDR: '127.0.0.1:0',
        PAYMENT_DB_URL: server.url,
        METRICS_ADDR: metrics,
      });
      const client = await asGateway(PaymentServiceClient, (await proc.ready).address, 'payment', tlsUnder(dir));
      try {
        assert.equal((await readyz(metrics)).status, 200);
        await server.stop();
        assert.deepEqual(await readyz(metrics), {
          status: 503,
          body: { status: 'not_ready', checks: { database: 'unavailable' } },
        });
        const refused = callUnary(client.charge.bind(client), { orderId: 'down-1', amountCents: 100 }, opts('down-1'));
        assert.equal(await errorCode(refused), 'store_unavailable');
        await server.restart();
        await eventually('readyz to be 200 again', async () =>
          (await readyz(metrics)).status === 200 ? true : undefined,
        );
        const charged = await callUnary(
          client.charge.bind(client),
          { orderId: 'down-1', amountCents: 100 },
          opts('down-1'),
        );
        assert.equal(charged.outcome, ChargeOutcome.CHARGE_OUTCOME_CHARGED);
      } finally {
        client.close();
      }
      proc.stop();
      assert.equal((await proc.exit).code, 0);
    } finally {
      await server.destroy();
    }
  });

  test('a database out of reach at start: exit 1 with one line naming it, never its password', async () => {
    const port = await freePort();
    const proc = start('order', {
      DATA_DIR: tempDir('participants-pg'),
      ORDER_SERVICE_ADDR: '127.0.0.1:0',
      ORDER_DB_URL: `postgres://app:pa55word-secret@127.0.0.1:${port}/orders`,
    });
    const { code, stderr } = await proc.exit;
    assert.equal(code, 1);
    assert.match(
      stderr,
      new RegExp(`^order: cannot open the order database at postgres://app:\\*\\*\\*@127\\.0\\.0\\.1:${port}/orders: `),
    );
    assert.doesNotMatch(stderr, /pa55word/);
    assert.equal(stderr.trim().split('\n').length, 1, stderr);
  });

  test('a bad ORDER_DB_URL is a configuration error naming it, its password masked', async () => {
    const proc = start('order', {
      DATA_DIR: tempDir('participants-pg'),
      ORDER_SERVICE_ADDR: '127.0.0.1:0',
      ORDER_DB_URL: 'mysql://app:pa55word-secret@db/orders',
    });
    const { code, stderr } = await proc.exit;
    assert.equal(code, 1);
    assert.match(stderr, /^order: invalid configuration: ORDER_DB_URL: expected postgres:\/\//);
    assert.doesNotMatch(stderr, /pa55word/);
  });
});
