/**
 * One conformance suite for the participants' store ports (src/services/<name>/store-port.ts), run
 * against each implementation: SQLite (test/unit/participant-stores-sqlite.test.ts) and
 * PostgreSQL (test/integration/participant-stores-postgres.test.ts). What a port promises is
 * checked here once: the domain's outcomes as stored, the books' pages, the inbox's exactly-once
 * (also for one key raced from two replicas), and the stock never oversold by two replicas
 * racing on its last units.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { AppError } from '../../src/platform/errors.js';
import { fingerprint, inboxOver } from '../../src/platform/storage/inbox.js';
import { MemoryKv } from '../../src/platform/storage/fast-kv.js';
import { createIdempotencyGuard, type UntrustedReason } from '../../src/platform/storage/idempotency.js';
import { validateCreate, type ValidCreate } from '../../src/services/order/domain.js';
import { validateCharge } from '../../src/services/payment/domain.js';
import { validateReserve, type Catalog, type ReserveInput } from '../../src/services/inventory/domain.js';
import type { OrderStorePort } from '../../src/services/order/store-port.js';
import type { PaymentStorePort } from '../../src/services/payment/store-port.js';
import type { InventoryStorePort } from '../../src/services/inventory/store-port.js';
import { openOrderDatabase, sqliteOrderStore } from '../../src/services/order/store.js';
import { openPaymentDatabase, sqlitePaymentStore } from '../../src/services/payment/store.js';
import { openInventoryDatabase, sqliteInventoryStore } from '../../src/services/inventory/store.js';
import { tempDir } from './participants.js';
import { createTempDatabase } from './postgres.js';

export interface OpenOptions {
  now?: () => number;
}

/** One fresh database for one test; each open is one more store on it: one more replica. */
export interface TestDatabase {
  order(o?: OpenOptions): Promise<OrderStorePort>;
  payment(o: OpenOptions & { chargeLimitCents: number }): Promise<PaymentStorePort>;
  inventory(o: OpenOptions & { catalog: Catalog }): Promise<InventoryStorePort>;
  /** Closes every store opened on it and removes it. */
  drop(): Promise<void>;
}

export interface StoreBackend {
  name: 'sqlite' | 'postgres';
  database(): Promise<TestDatabase>;
}

/** Each store a connection of its own to one file (under a fresh folder per database). */
export function sqliteBackend(): StoreBackend {
  return {
    name: 'sqlite',
    async database() {
      const dir = tempDir('participant-store');
      const open: { close(): Promise<void> }[] = [];
      const keep = <S extends { close(): Promise<void> }>(s: S) => (open.push(s), s);
      return {
        order: async (o = {}) => keep(sqliteOrderStore(openOrderDatabase(path.join(dir, 'order.db')), o)),
        payment: async (o) => keep(sqlitePaymentStore(openPaymentDatabase(path.join(dir, 'payment.db')), o)),
        inventory: async (o) => keep(sqliteInventoryStore(openInventoryDatabase(path.join(dir, 'inventory.db')), o)),
        async drop() {
          await Promise.all(open.map((s) => s.close()));
          fs.rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  };
}

/** Each store a pool of its own (a replica) on one temporary database of the machine's PostgreSQL, dropped after. */
export function postgresBackend(poolSize = 4): StoreBackend {
  return {
    name: 'postgres',
    async database() {
      const db = await createTempDatabase('participant_store_test');
      const open: { close(): Promise<void> }[] = [];
      const keep = <S extends { close(): Promise<void> }>(s: S) => (open.push(s), s);
      const base = { url: db.url, poolSize };
      return {
        async order(o = {}) {
          const { openPostgresOrderStore } = await import('../../src/services/order/postgres-store.js');
          return keep(await openPostgresOrderStore({ ...base, ...o }));
        },
        async payment(o) {
          const { openPostgresPaymentStore } = await import('../../src/services/payment/postgres-store.js');
          return keep(await openPostgresPaymentStore({ ...base, ...o }));
        },
        async inventory(o) {
          const { openPostgresInventoryStore } = await import('../../src/services/inventory/postgres-store.js');
          return keep(await openPostgresInventoryStore({ ...base, ...o }));
        },
        async drop() {
          await Promise.all(open.map((s) => s.close()));
          await db.drop();
        },
      };
    },
  };
}

/** Runs `fn` on a fresh database, dropped afterwards whatever happens. */
export async function withDatabase(backend: StoreBackend, fn: (db: TestDatabase) => Promise<void>): Promise<void> {
  const db = await backend.database();
  try {
    await fn(db);
  } finally {
    await db.drop();
  }
}

const NOW = 1_700_000_000_000;
const clock = () => NOW;

const createInput = (orderId: string, over: Partial<Parameters<typeof validateCreate>[0]> = {}): ValidCreate =>
  validateCreate(
    {
      orderId,
      customerId: 'cust-1',
      items: [
        { productId: 'prod_1', quantity: 2, unitPriceCents: 1_050 },
        { productId: 'prod_2', quantity: 1, unitPriceCents: 999 },
      ],
      createdAtMs: NOW - 1_000,
      ...over,
    },
    NOW,
  );

const reserveInput = (orderId: string, items: ReserveInput['items']) => validateReserve({ orderId, items });

async function appErrorCode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof AppError, `expected an AppError, got ${String(err)}`);
    return err.code;
  }
  throw new Error('expected a failure');
}

/** available + reserved + sold = total for every product, and the reserved stock is what the HELD reservations hold. */
async function assertBooksAddUp(store: InventoryStorePort): Promise<void> {
  const products = await store.listProducts();
  for (const p of products) {
    assert.equal(p.available + p.reserved + p.sold, p.total, `${p.productId}: available + reserved + sold = total`);
    assert.ok(p.available >= 0 && p.reserved >= 0 && p.sold >= 0, `${p.productId}: no counter below zero`);
  }
  const held = new Map<string, number>();
  const sold = new Map<string, number>();
  for (
    let after = '', page;
    (page = await store.listReservations(after, 500)).length > 0;
    after = page.at(-1)!.orderId
  ) {
    for (const e of page) {
      const into = e.reservation?.status === 'HELD' ? held : e.reservation?.status === 'COMMITTED' ? sold : undefined;
      for (const l of e.reservation?.lines ?? []) into?.set(l.productId, (into.get(l.productId) ?? 0) + l.quantity);
    }
  }
  for (const p of products) {
    assert.equal(p.reserved, held.get(p.productId) ?? 0, `${p.productId}: reserved = Σ HELD reservations`);
    assert.equal(p.sold, sold.get(p.productId) ?? 0, `${p.productId}: sold = Σ COMMITTED reservations`);
  }
}

export function participantStoreConformance(backend: StoreBackend): void {
  const on = (fn: (db: TestDatabase) => Promise<void>) => () => withDatabase(backend, fn);

  describe(`order store port (${backend.name})`, () => {
    test(
      'create once: the same create again answers the stored order; another content is a conflict, shown nothing',
      on(async (db) => {
        const store = await db.order({ now: clock });
        const first = await store.create(createInput('ord-1'));
        assert.equal(first.outcome, 'created');
        assert.equal(first.order?.status, 'PENDING');
        assert.equal(first.order?.totalCents, 3_099);
        assert.deepEqual(await store.create(createInput('ord-1', { createdAtMs: 0 })), first);
        assert.deepEqual(await store.create(createInput('ord-1', { customerId: 'someone-else' })), {
          outcome: 'conflict',
          order: undefined,
        });
        assert.deepEqual(await store.get('ord-1'), first.order);
        assert.equal(await store.get('ord-2'), undefined);
      }),
    );

    test(
      'confirm: not_found, confirmed (twice, one transition), and a cancel after it is not_pending',
      on(async (db) => {
        let t = NOW;
        const store = await db.order({ now: () => t });
        assert.deepEqual(await store.confirm('ord-1'), { outcome: 'not_found', order: undefined });
        await store.create(createInput('ord-1'));
        t += 5;
        const confirmed = await store.confirm('ord-1');
        assert.equal(confirmed.outcome, 'confirmed');
        assert.equal(confirmed.order?.status, 'CONFIRMED');
        assert.equal(confirmed.order?.updatedAtMs, NOW + 5);
        t += 5;
        assert.deepEqual(await store.confirm('ord-1'), confirmed);
        const cancel = await store.cancel('ord-1', 'payment_declined');
        assert.equal(cancel.outcome, 'not_pending');
        assert.equal(cancel.order?.status, 'CONFIRMED');
      }),
    );

    test(
      'a cancel before the create tombstones (the first reason kept); the late create is born cancelled with it',
      on(async (db) => {
        const store = await db.order({ now: clock });
        assert.deepEqual(await store.cancel('ord-1', 'payment_declined'), { outcome: 'tombstoned', order: undefined });
        assert.deepEqual(await store.cancel('ord-1', 'other'), { outcome: 'tombstoned', order: undefined });
        assert.deepEqual(await store.tombstone('ord-1'), { reason: 'payment_declined', createdAt: NOW });
        const late = await store.create(createInput('ord-1'));
        assert.equal(late.outcome, 'cancelled');
        assert.equal(late.order?.status, 'CANCELLED');
        assert.equal(late.order?.reason, 'payment_declined');
        assert.ok((late.order?.updatedAtMs ?? 0) > (late.order?.createdAtMs ?? 0));
        // Cancelled is final: neither a confirm nor another cancel moves it.
        assert.equal((await store.confirm('ord-1')).outcome, 'not_pending');
        assert.equal((await store.cancel('ord-1', 'x')).order?.reason, 'payment_declined');
      }),
    );

    test(
      'the books: orders and tombstones in id order, a page after an id, at most a limit',
      on(async (db) => {
        const store = await db.order({ now: clock });
        await store.create(createInput('a'));
        await store.cancel('b', 'payment_declined');
        await store.create(createInput('c'));
        await store.cancel('c', 'inventory_unavailable');
        await store.cancel('d', 'x');
        await store.create(createInput('d'));
        const all = await store.list('', 10);
        assert.deepEqual(
          all.map((e) => [e.orderId, e.order?.status, e.tombstoned]),
          [
            ['a', 'PENDING', false],
            ['b', undefined, true],
            ['c', 'CANCELLED', false],
            ['d', 'CANCELLED', true],
          ],
        );
        assert.deepEqual(
          (await store.list('a', 2)).map((e) => e.orderId),
          ['b', 'c'],
        );
        assert.deepEqual(await store.list('d', 2), []);
        assert.deepEqual((await store.list('', 1))[0]?.order, await store.get('a'));
      }),
    );

    test(
      'its inbox: one effect per key, replayed; another request under the key refused; a failed effect leaves nothing',
      on(async (db) => {
        const store = await db.order({ now: clock });
        const inbox = inboxOver(store.inbox);
        const input = createInput('ord-1');
        let effects = 0;
        const create = () =>
          inbox.run('saga-1:create_order', 'CreateOrder', input, (tx) => {
            effects++;
            return tx.create(input);
          });
        const first = await create();
        const again = await create();
        assert.equal(effects, 1);
        assert.equal(first.replayed, false);
        assert.equal(again.replayed, true);
        assert.deepEqual(again.response, first.response);
        assert.equal(
          await appErrorCode(
            inbox.run('saga-1:create_order', 'ConfirmOrder', { orderId: 'ord-1' }, (tx) => tx.confirm('ord-1')),
          ),
          'idempotency_key_reused',
        );
        assert.equal((await store.get('ord-1'))?.status, 'PENDING');

        // Written as write-rpc.ts writes effects: synchronous on SQLite, a promise on PostgreSQL.
        const crash = (): never => {
          throw new Error('crash before commit');
        };
        await assert.rejects(
          inbox.run('k-crash', 'ConfirmOrder', { orderId: 'ord-1' }, (tx) => {
            const done = tx.confirm('ord-1');
            return done instanceof Promise ? done.then(crash) : crash();
          }),
          /crash before commit/,
        );
        assert.equal((await store.get('ord-1'))?.status, 'PENDING', 'the effect was rolled back with its record');
        const retry = await inbox.run('k-crash', 'ConfirmOrder', { orderId: 'ord-1' }, (tx) => tx.confirm('ord-1'));
        assert.equal(retry.replayed, false);
        assert.equal(retry.response.outcome, 'confirmed');
      }),
    );

    test(
      'identity and readiness: one id for every replica and every reopen; not ready once closed',
      on(async (db) => {
        const a = await db.order();
        const b = await db.order();
        const id = await a.databaseId();
        assert.match(id, /^[0-9a-f-]{36}$/);
        assert.equal(await b.databaseId(), id);
        assert.equal(await a.check(), true);
        await a.close();
        assert.equal(await a.check(), false);
        assert.equal(await (await db.order()).databaseId(), id);
      }),
    );
  });

  describe(`payment store port (${backend.name})`, () => {
    const LIMIT = 50_000;
    const charge = (store: PaymentStorePort, orderId: string, amountCents: number) =>
      store.charge(validateCharge({ orderId, amountCents }));

    test(
      'charge once; the same amount again is the same charge, another is a conflict; over the limit is declined, judged again',
      on(async (db) => {
        const store = await db.payment({ chargeLimitCents: LIMIT, now: clock });
        assert.deepEqual(await charge(store, 'o1', 2_500), { outcome: 'charged', declineReason: '' });
        assert.deepEqual(await charge(store, 'o1', 2_500), { outcome: 'charged', declineReason: '' });
        assert.deepEqual(await charge(store, 'o1', 2_400), { outcome: 'conflict', declineReason: '' });
        assert.deepEqual(await store.get('o1'), { status: 'CHARGED', amountCents: 2_500, declineReason: '' });
        assert.deepEqual(await charge(store, 'o2', LIMIT + 1), {
          outcome: 'declined',
          declineReason: 'amount_over_limit',
        });
        assert.deepEqual(await store.get('o2'), {
          status: 'DECLINED',
          amountCents: LIMIT + 1,
          declineReason: 'amount_over_limit',
        });
        assert.deepEqual(await charge(store, 'o2', LIMIT), { outcome: 'charged', declineReason: '' });
        assert.deepEqual(await store.get('o2'), { status: 'CHARGED', amountCents: LIMIT, declineReason: '' });
      }),
    );

    test(
      'refund: of a charge (twice, once); of nothing, a tombstone that refuses the late charge',
      on(async (db) => {
        const store = await db.payment({ chargeLimitCents: LIMIT, now: clock });
        await charge(store, 'o1', 2_500);
        assert.deepEqual(await store.refund('o1'), { outcome: 'refunded', amountCents: 2_500 });
        assert.deepEqual(await store.refund('o1'), { outcome: 'refunded', amountCents: 2_500 });
        assert.equal((await store.get('o1'))?.status, 'REFUNDED');
        assert.equal((await charge(store, 'o1', 2_500)).outcome, 'refunded');
        assert.equal(await store.isTombstoned('o1'), false);

        assert.deepEqual(await store.refund('o2'), { outcome: 'nothing_charged', amountCents: 0 });
        assert.equal(await store.isTombstoned('o2'), true);
        assert.equal((await charge(store, 'o2', 100)).outcome, 'refunded');
        assert.equal(await store.get('o2'), undefined);

        await charge(store, 'o3', LIMIT + 1);
        assert.deepEqual(await store.refund('o3'), { outcome: 'nothing_charged', amountCents: 0 });
        assert.equal((await store.get('o3'))?.status, 'DECLINED');
        assert.deepEqual(
          (await store.list('', 10)).map((e) => [e.orderId, e.payment?.status, e.tombstoned]),
          [
            ['o1', 'REFUNDED', false],
            ['o2', undefined, true],
            ['o3', 'DECLINED', true],
          ],
        );
        assert.deepEqual(
          (await store.list('o1', 1)).map((e) => e.orderId),
          ['o2'],
        );
      }),
    );

    test(
      'with the fast path in front: a repeat is confirmed by the inbox and replayed; a forged answer the inbox does not back is ignored',
      on(async (db) => {
        const store = await db.payment({ chargeLimitCents: LIMIT, now: clock });
        const kv = new MemoryKv();
        const ignored: UntrustedReason[] = [];
        const guard = createIdempotencyGuard<unknown>(kv, {
          namespace: `payment:${await store.databaseId()}:inbox:`,
          ttlMs: 60_000,
          lockMs: 10_000,
          onUntrusted: (_key, why) => ignored.push(why),
        });
        const inbox = inboxOver(store.inbox, guard);
        try {
          const req = validateCharge({ orderId: 'fp-1', amountCents: 900 });
          let effects = 0;
          const charge = (key: string) =>
            inbox.run(key, 'Charge', req, (tx) => {
              effects++;
              return tx.charge(req);
            });
          const first = await charge('fp-1:charge');
          await new Promise((r) => setImmediate(r)); // the fast-path copy is written after the answer
          assert.deepEqual(await charge('fp-1:charge'), { response: first.response, replayed: true });
          assert.equal(effects, 1);
          // A CHARGED planted in the fast path for a key the inbox never saw answers nothing.
          const other = validateCharge({ orderId: 'fp-2', amountCents: 900 });
          await kv.set(
            `payment:${await store.databaseId()}:inbox:fp-2:charge`,
            JSON.stringify({
              s: 'done',
              fp: fingerprint('Charge', other),
              r: { outcome: 'charged', declineReason: '' },
            }),
            60_000,
          );
          const real = await inbox.run('fp-2:charge', 'Charge', other, (tx) => tx.charge(other));
          assert.equal(real.replayed, false);
          assert.deepEqual(await store.get('fp-2'), { status: 'CHARGED', amountCents: 900, declineReason: '' });
          assert.deepEqual(ignored, ['unbacked']);
        } finally {
          await kv.close();
        }
      }),
    );

    test(
      'one key raced from two replicas: one charge, the other call replays its answer',
      on(async (db) => {
        const replicas = [
          await db.payment({ chargeLimitCents: LIMIT, now: clock }),
          await db.payment({ chargeLimitCents: LIMIT, now: clock }),
        ];
        const inboxes = replicas.map((r) => inboxOver(r.inbox));
        let effects = 0;
        const orders = Array.from({ length: 40 }, (_, i) => `race-${i}`);
        const calls = orders.flatMap((orderId) =>
          inboxes.map((inbox) => {
            const req = validateCharge({ orderId, amountCents: 1_234 });
            return inbox.run(`saga-${orderId}:charge`, 'Charge', req, (tx) => {
              effects++;
              return tx.charge(req);
            });
          }),
        );
        const answers = await Promise.all(calls);
        assert.equal(effects, orders.length, 'one effect per key');
        for (let i = 0; i < orders.length; i++) {
          const pair = [answers[2 * i]!, answers[2 * i + 1]!];
          assert.deepEqual(
            pair.map((a) => a.replayed).sort(),
            [false, true],
            `${orders[i]}: one applied, one replayed`,
          );
          assert.deepEqual(pair[0]!.response, { outcome: 'charged', declineReason: '' });
          assert.deepEqual(pair[1]!.response, pair[0]!.response);
          assert.deepEqual(await replicas[0]!.get(orders[i]!), {
            status: 'CHARGED',
            amountCents: 1_234,
            declineReason: '',
          });
        }
      }),
    );

    test(
      "a charge and its order's refund raced from two replicas end as one of their serial orders, never charged past a tombstone",
      on(async (db) => {
        const [a, b] = [
          await db.payment({ chargeLimitCents: LIMIT, now: clock }),
          await db.payment({ chargeLimitCents: LIMIT, now: clock }),
        ];
        const orders = Array.from({ length: 40 }, (_, i) => `cr-${i}`);
        const results = await Promise.all(
          orders.map(async (orderId, i) => {
            const [charger, refunder] = i % 2 === 0 ? [a, b] : [b, a];
            const [c, r] = await Promise.all([
              inboxOver(charger.inbox).run(`${orderId}:charge`, 'Charge', { orderId }, (tx) =>
                tx.charge(validateCharge({ orderId, amountCents: 700 })),
              ),
              inboxOver(refunder.inbox).run(`${orderId}:refund`, 'Refund', { orderId }, (tx) => tx.refund(orderId)),
            ]);
            return { orderId, charge: c.response.outcome, refund: r.response.outcome };
          }),
        );
        for (const { orderId, charge: c, refund: r } of results) {
          const payment = await a.get(orderId);
          const tombstoned = await a.isTombstoned(orderId);
          if (r === 'refunded') {
            // The charge ran first, the refund undid it.
            assert.equal(c, 'charged', orderId);
            assert.deepEqual([payment?.status, tombstoned], ['REFUNDED', false], orderId);
          } else {
            // The refund ran first and tombstoned: the charge was refused, nothing was taken.
            assert.equal(r, 'nothing_charged', orderId);
            assert.equal(c, 'refunded', orderId);
            assert.deepEqual([payment, tombstoned], [undefined, true], orderId);
          }
        }
      }),
    );
  });

  describe(`inventory store port (${backend.name})`, () => {
    const CATALOG: Catalog = { apple: 10, banana: 5, cherry: 0 };
    const stock = async (store: InventoryStorePort) =>
      Object.fromEntries((await store.listProducts()).map((p) => [p.productId, [p.available, p.reserved, p.sold]]));

    test(
      'the catalog: stock seeded once (a reopen keeps what moved), prices set on every open',
      on(async (db) => {
        const first = await db.inventory({ catalog: { apple: 10, banana: { stock: 5, priceCents: 125 } }, now: clock });
        assert.deepEqual(await first.listProducts(), [
          { productId: 'apple', available: 10, reserved: 0, sold: 0, total: 10 },
          { productId: 'banana', available: 5, reserved: 0, sold: 0, total: 5, priceCents: 125 },
        ]);
        await first.reserve(reserveInput('o1', [{ productId: 'apple', quantity: 4 }]));
        const reopened = await db.inventory({
          catalog: { apple: { stock: 999, priceCents: 200 }, durian: 1 },
          now: clock,
        });
        assert.deepEqual(await reopened.listProducts(['banana', 'apple', 'nope']), [
          { productId: 'apple', available: 6, reserved: 4, sold: 0, total: 10, priceCents: 200 },
          { productId: 'banana', available: 5, reserved: 0, sold: 0, total: 5 },
        ]);
      }),
    );

    test(
      'reserve: held once per order (lines summed); other lines conflict; unknown products before shortages',
      on(async (db) => {
        const store = await db.inventory({ catalog: CATALOG, now: clock });
        const lines = [
          { productId: 'banana', quantity: 1 },
          { productId: 'apple', quantity: 3 },
          { productId: 'apple', quantity: 3 },
        ];
        assert.deepEqual(await store.reserve(reserveInput('o1', lines)), { outcome: 'reserved', productIds: [] });
        assert.deepEqual(await store.reserve(reserveInput('o1', lines)), { outcome: 'reserved', productIds: [] });
        assert.deepEqual(await stock(store), { apple: [4, 6, 0], banana: [4, 1, 0], cherry: [0, 0, 0] });
        assert.deepEqual(await store.reservation('o1'), {
          orderId: 'o1',
          status: 'HELD',
          lines: [
            { productId: 'apple', quantity: 6 },
            { productId: 'banana', quantity: 1 },
          ],
        });
        assert.equal(
          (await store.reserve(reserveInput('o1', [{ productId: 'apple', quantity: 1 }]))).outcome,
          'conflict',
        );
        assert.deepEqual(
          await store.reserve(
            reserveInput('o2', [
              { productId: 'cherry', quantity: 1 },
              { productId: 'zzz', quantity: 1 },
              { productId: 'aaa', quantity: 1 },
            ]),
          ),
          { outcome: 'unknown_product', productIds: ['aaa', 'zzz'] },
        );
        assert.deepEqual(
          await store.reserve(
            reserveInput('o2', [
              { productId: 'cherry', quantity: 1 },
              { productId: 'apple', quantity: 5 },
            ]),
          ),
          { outcome: 'insufficient_stock', productIds: ['apple', 'cherry'] },
        );
        assert.equal(await store.reservation('o2'), undefined);
        assert.deepEqual(await stock(store), { apple: [4, 6, 0], banana: [4, 1, 0], cherry: [0, 0, 0] });
        await assertBooksAddUp(store);
      }),
    );

    test(
      'release and commit: HELD → RELEASED gives back, HELD → COMMITTED sells; neither undoes the other; a release of nothing tombstones',
      on(async (db) => {
        const store = await db.inventory({ catalog: CATALOG, now: clock });
        await store.reserve(reserveInput('o1', [{ productId: 'apple', quantity: 2 }]));
        await store.reserve(reserveInput('o2', [{ productId: 'banana', quantity: 5 }]));
        assert.deepEqual(await store.release('o1'), { outcome: 'released' });
        assert.deepEqual(await store.release('o1'), { outcome: 'released' });
        assert.deepEqual(await store.commit('o1'), { outcome: 'not_reserved' });
        assert.deepEqual(await store.commit('o2'), { outcome: 'committed' });
        assert.deepEqual(await store.commit('o2'), { outcome: 'committed' });
        assert.deepEqual(await store.release('o2'), { outcome: 'already_committed' });
        assert.deepEqual(await stock(store), { apple: [10, 0, 0], banana: [0, 0, 5], cherry: [0, 0, 0] });

        assert.deepEqual(await store.release('o3'), { outcome: 'nothing_reserved' });
        assert.equal(await store.isTombstoned('o3'), true);
        assert.equal(
          (await store.reserve(reserveInput('o3', [{ productId: 'apple', quantity: 1 }]))).outcome,
          'released',
        );
        assert.equal(await store.reservation('o3'), undefined);
        assert.deepEqual(
          (await store.listReservations('', 10)).map((e) => [e.orderId, e.reservation?.status, e.tombstoned]),
          [
            ['o1', 'RELEASED', false],
            ['o2', 'COMMITTED', false],
            ['o3', undefined, true],
          ],
        );
        assert.deepEqual(
          (await store.listReservations('o1', 1)).map((e) => e.orderId),
          ['o2'],
        );
        await assertBooksAddUp(store);
      }),
    );

    test(
      'the last units raced from two replicas through the inbox: never more reserved than there is, and the books add up',
      on(async (db) => {
        const catalog: Catalog = { apple: 7, banana: 5 };
        const replicas = [await db.inventory({ catalog, now: clock }), await db.inventory({ catalog, now: clock })];
        const inboxes = replicas.map((r) => inboxOver(r.inbox));
        // 60 orders for 12 units: single lines of 1 or 2, and pairs of both products.
        const orders = Array.from({ length: 60 }, (_, i) => {
          const items =
            i % 3 === 0
              ? [{ productId: 'apple', quantity: 1 + (i % 2) }]
              : i % 3 === 1
                ? [{ productId: 'banana', quantity: 1 }]
                : [
                    { productId: 'banana', quantity: 1 },
                    { productId: 'apple', quantity: 1 },
                  ];
          return reserveInput(`last-${String(i).padStart(2, '0')}`, items);
        });
        const answers = await Promise.all(
          orders.map((input, i) =>
            inboxes[i % 2]!.run(`${input.orderId}:reserve`, 'Reserve', input, (tx) => tx.reserve(input)),
          ),
        );
        const reserved = new Map<string, number>();
        answers.forEach(({ response }, i) => {
          assert.ok(['reserved', 'insufficient_stock'].includes(response.outcome), response.outcome);
          if (response.outcome !== 'reserved') return;
          for (const l of orders[i]!.lines) reserved.set(l.productId, (reserved.get(l.productId) ?? 0) + l.quantity);
        });
        assert.ok((reserved.get('apple') ?? 0) <= 7, `apple: ${reserved.get('apple')} reserved of 7`);
        assert.ok((reserved.get('banana') ?? 0) <= 5, `banana: ${reserved.get('banana')} reserved of 5`);
        // Every unit was sold out by someone (singles of 1 keep coming until the last).
        assert.equal(reserved.get('banana'), 5);
        const products = await replicas[1]!.listProducts();
        for (const p of products) assert.equal(p.reserved, reserved.get(p.productId) ?? 0, p.productId);
        await assertBooksAddUp(replicas[0]!);

        // Then every reservation is released or committed, from either replica, concurrently.
        const held = answers.flatMap(({ response }, i) =>
          response.outcome === 'reserved' ? [orders[i]!.orderId] : [],
        );
        await Promise.all(
          held.map((orderId, i) =>
            i % 2 === 0
              ? inboxes[(i >> 1) % 2]!.run(`${orderId}:commit`, 'Commit', { orderId }, (tx) => tx.commit(orderId))
              : inboxes[(i >> 1) % 2]!.run(`${orderId}:release`, 'Release', { orderId }, (tx) => tx.release(orderId)),
          ),
        );
        await assertBooksAddUp(replicas[1]!);
        const after = await replicas[0]!.listProducts();
        assert.ok(after.every((p) => p.reserved === 0));
      }),
    );
  });
}
