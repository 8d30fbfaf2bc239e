import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CommitOutcome, ReleaseOutcome, ReserveOutcome } from '../../src/gen/inventory/v1/inventory.js';
import { sumLines, type Catalog, type StockLine } from '../../src/services/inventory/domain.js';
import { createInventoryService } from '../../src/services/inventory/server.js';
import { openInventoryDatabase } from '../../src/services/inventory/store.js';
import { invoke, silentLogger } from '../helpers/participants.js';
import { KeyedCalls, nextRun, tempDb } from '../helpers/keyed-calls.js';

/**
 * Random interleavings of Reserve (random line sets), Release and Commit for ONE order, with keys
 * drawn from a small pool, against the real service, inbox and store on a SQLite file. Runs share
 * the file (each its own order id), so stock is judged per run by its changes: what this order
 * moved must be exactly the lines it was granted.
 */

// a: plenty; b: runs out over the runs (commits keep it), so shortages happen; c: none; zz: unknown.
const CATALOG: Catalog = { a: 1_000_000, b: 150, c: 0 };
const PRODUCTS = Object.keys(CATALOG);

type Cmd =
  | { kind: 'reserve'; key: string; items: StockLine[] }
  | { kind: 'release'; key: string }
  | { kind: 'commit'; key: string };

const key = fc.constantFrom('k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7');
const line = fc.record({
  productId: fc.constantFrom('a', 'a', 'b', 'b', 'c', 'zz'),
  quantity: fc.integer({ min: 1, max: 3 }),
});
// A few fixed sets make "the same lines again, under another key" common; random ones contradict.
const items = fc.oneof(
  fc.constantFrom<StockLine[]>(
    [{ productId: 'a', quantity: 2 }],
    [
      { productId: 'a', quantity: 1 },
      { productId: 'a', quantity: 1 },
    ],
    [
      { productId: 'b', quantity: 1 },
      { productId: 'a', quantity: 2 },
    ],
  ),
  fc.array(line, { minLength: 1, maxLength: 3 }),
);
const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('reserve' as const), key, items }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('release' as const), key }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('commit' as const), key }) },
);

type Stock = Map<string, { available: number; reserved: number; sold: number }>;

test('inventory: one reservation per order, of the first accepted lines; contradictions never succeed; stock conserved; replays answer as stored', async () => {
  const svc = createInventoryService({
    db: tempDb(openInventoryDatabase, 'inventory'),
    logger: silentLogger,
    catalog: CATALOG,
  });
  const stock = async (): Promise<Stock> =>
    new Map(
      (await invoke(svc.listProducts, { productIds: [] })).products.map((p) => [
        p.productId,
        { available: p.available, reserved: p.reserved, sold: p.sold },
      ]),
    );

  await fc.assert(
    fc.asyncProperty(fc.array(cmd, { minLength: 1, maxLength: 20 }), async (cmds) => {
      const orderId = nextRun();
      const calls = new KeyedCalls(orderId);
      const before = await stock();
      /** The lines of the first Reserve answered RESERVED. */
      let granted: StockLine[] | undefined;
      /** A release took effect (gave back, or left a tombstone): no reserve may succeed after it. */
      let released = false;
      let committed = false;

      for (const c of cmds) {
        if (c.kind === 'reserve') {
          const res = await calls.send('Reserve', svc.reserve, { orderId, items: c.items }, c.key);
          if (res === undefined) continue;
          const lines = sumLines(c.items);
          switch (res.outcome) {
            case ReserveOutcome.RESERVE_OUTCOME_RESERVED:
              assert.equal(released, false, 'RESERVED after a release');
              if (granted !== undefined) assert.deepEqual(lines, granted, 'RESERVED for other lines');
              granted ??= lines;
              break;
            case ReserveOutcome.RESERVE_OUTCOME_CONFLICT:
              assert.ok(granted !== undefined && !released, 'CONFLICT only against a standing reservation');
              assert.notDeepEqual(lines, granted, 'CONFLICT for the same lines');
              break;
            case ReserveOutcome.RESERVE_OUTCOME_RELEASED:
              assert.ok(released, 'RELEASED (refused) only after a release');
              break;
            case ReserveOutcome.RESERVE_OUTCOME_UNKNOWN_PRODUCT:
              assert.ok(granted === undefined && !released);
              assert.ok(res.productIds.length > 0 && res.productIds.every((p) => !PRODUCTS.includes(p)));
              break;
            case ReserveOutcome.RESERVE_OUTCOME_INSUFFICIENT_STOCK:
              assert.ok(granted === undefined && !released);
              break;
            default:
              assert.fail(`unexpected reserve outcome ${res.outcome}`);
          }
        } else if (c.kind === 'release') {
          const res = await calls.send('Release', svc.release, { orderId }, c.key);
          if (res === undefined) continue;
          switch (res.outcome) {
            case ReleaseOutcome.RELEASE_OUTCOME_RELEASED:
              assert.ok(granted !== undefined && !committed, 'RELEASED only a reservation not sold');
              released = true;
              break;
            case ReleaseOutcome.RELEASE_OUTCOME_NOTHING_RESERVED:
              assert.equal(granted, undefined, 'NOTHING_RESERVED while a reservation stands');
              released = true;
              break;
            case ReleaseOutcome.RELEASE_OUTCOME_ALREADY_COMMITTED:
              assert.ok(committed);
              break;
            default:
              assert.fail(`unexpected release outcome ${res.outcome}`);
          }
        } else {
          const res = await calls.send('Commit', svc.commit, { orderId }, c.key);
          if (res === undefined) continue;
          if (res.outcome === CommitOutcome.COMMIT_OUTCOME_COMMITTED) {
            assert.ok(granted !== undefined && !released, 'COMMITTED only a standing reservation');
            committed = true;
          } else {
            assert.equal(res.outcome, CommitOutcome.COMMIT_OUTCOME_NOT_RESERVED);
            assert.ok(granted === undefined || released, 'NOT_RESERVED while a reservation stands');
          }
        }

        // Stock: conserved overall, and this order moved exactly its granted lines, to where its state says.
        const now = await stock();
        for (const [productId, initial] of Object.entries(CATALOG)) {
          const p = now.get(productId);
          const b = before.get(productId);
          assert.ok(p && b);
          assert.equal(p.available + p.reserved + p.sold, initial, `${productId} conserved`);
          const q: number = granted?.find((l) => l.productId === productId)?.quantity ?? 0;
          const held: boolean = granted !== undefined && !released && !committed;
          assert.equal(p.reserved - b.reserved, held ? q : 0, `${productId} reserved`);
          assert.equal(p.sold - b.sold, committed ? q : 0, `${productId} sold`);
        }
      }
    }),
    { numRuns: 100 },
  );
});
