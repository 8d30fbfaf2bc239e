import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ServiceStartError } from '../../src/supervisor/supervisor.js';
import { crashSystem, CATALOG } from '../helpers/crash.js';
import { allTerminal, checkInvariants } from '../helpers/invariants.js';
import { createTempDatabase, type TempDatabase } from '../helpers/postgres.js';
import { eventually, freePort, http } from '../helpers/system.js';

// Two versions of place_order in flight across a rolling restart of two gateways sharing one
// PostgreSQL saga log. v1: create_order, reserve_stock, charge_payment, ...; v2 reserves stock
// first. Every charge is answered "unknown" by each gateway's fault switchboard while they are
// restarted (a charge nobody hears back from), so that sagas of both versions wait at
// charge_payment, retrying, through every restart; a gateway started without the plan lets them go on.

const LEASE_MS = 1_500;
let db: TempDatabase;
let sys: Awaited<ReturnType<typeof crashSystem>>;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sagas-versions-'));
const holdCharges = path.join(dir, 'hold-charges.yaml');
fs.writeFileSync(
  holdCharges,
  'rules:\n  - id: hold-charge\n    kind: uncertain\n    target: { step: charge_payment }\n    phase: action\n',
);
const HOLD = { FAULTS_ENABLED: '1', FAULTS_FILE: holdCharges };
const RELEASE = { FAULTS_ENABLED: '0' };

const V1_ONLY = { PLACE_ORDER_VERSIONS: '1', PLACE_ORDER_START_VERSION: '1', ...HOLD };
const BOTH_START_1 = { PLACE_ORDER_VERSIONS: '1,2', PLACE_ORDER_START_VERSION: '1', ...HOLD };
const BOTH_START_2 = { PLACE_ORDER_VERSIONS: '1,2', PLACE_ORDER_START_VERSION: '2', ...HOLD };

before(async () => {
  db = await createTempDatabase('sagas_versions');
  sys = await crashSystem(
    {
      SAGA_LOG_URL: db.url,
      SAGA_LOG_POOL_SIZE: '4',
      SAGA_LEASE_MS: String(LEASE_MS),
      SAGA_RECOVERY_INTERVAL_MS: '300',
      SAGA_DEADLINE_MS: '600000',
      REDIS_URL: `redis://127.0.0.1:${await freePort()}`,
      ...V1_ONLY,
    },
    { gateways: 2 },
  );
});
after(async () => {
  await sys?.stop();
  await db?.drop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const ORDER = { customer_id: 'cust_versions', items: [{ product_id: 'prod_1', quantity: 1, price: 10 }] };

interface SagaView {
  id: string;
  version: number;
  status: string;
  step_index: number;
}

async function place(gw: number, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await http(sys.urls[gw] as string, 'POST', '/orders', ORDER);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    ids.push(r.body.id as string);
  }
  return ids;
}

async function saga(
  id: string,
): Promise<SagaView & { events: Array<{ type: string; step: string | null; data: unknown }> }> {
  // Through gw1's admin listener: gw0 is killed on the way.
  const r = await http(sys.adminUrls[1] as string, 'GET', `/api/sagas/${id}`);
  assert.equal(r.status, 200);
  return r.body;
}

/** The steps a saga started, in order (its STEP_STARTED events, each step once). */
function stepsRun(events: Array<{ type: string; step: string | null }>): string[] {
  return [...new Set(events.filter((e) => e.type === 'STEP_STARTED').map((e) => e.step as string))];
}

async function waitingAtCharge(ids: string[]): Promise<void> {
  await eventually(
    `${ids.length} sagas waiting at charge_payment`,
    async () => {
      const all = await Promise.all(ids.map((id) => saga(id)));
      // charge_payment is the third step of both versions.
      return all.every((s) => s.status === 'RUNNING' && s.step_index === 2) ? true : undefined;
    },
    30_000,
  );
}

test(
  'v1 and v2 sagas run to their ends on their own versions across a rolling restart',
  { timeout: 240_000 },
  async () => {
    // Old code everywhere: v1 only.
    const v1 = [...(await place(0, 3)), ...(await place(1, 3))];
    await waitingAtCharge(v1);

    // A gateway whose code dropped v1 while v1 sagas are in flight refuses to start, and says why.
    await assert.rejects(
      sys.restartGateway(0, { ...HOLD, PLACE_ORDER_VERSIONS: '2', PLACE_ORDER_START_VERSION: '2' }),
      (err: unknown) => {
        assert.ok(err instanceof ServiceStartError, String(err));
        assert.equal(err.status?.code, 1);
        assert.match(
          err.output.join('\n'),
          /6 saga\(s\) of place_order@1 in flight \(RUNNING 6, COMPENSATING 0, PARKED 0\)/,
        );
        return true;
      },
    );
    // Step 1 of the upgrade: every gateway learns v2, still starting v1.
    await sys.restartGateway(0, BOTH_START_1);
    // Step 2, on gw0 only: new orders start on v2; gw1 is still the old code (v1 only).
    await sys.restartGateway(0, BOTH_START_2);
    const v2 = await place(0, 4);
    const v1Late = await place(1, 2);
    await waitingAtCharge([...v2, ...v1Late]);
    for (const id of v2) assert.equal((await saga(id)).version, 2);
    for (const id of v1Late) assert.equal((await saga(id)).version, 1);

    // The old gateway leaves v2 to those that have it, and says so.
    const ready = await http(sys.urls[1] as string, 'GET', '/readyz');
    const left = (ready.body.definitions?.left_to_others ?? []) as Array<{ definition: string; version: number }>;
    assert.ok(
      left.some((l) => l.definition === 'place_order' && l.version === 2),
      `gw1's /readyz: ${JSON.stringify(ready.body.definitions)}`,
    );

    // gw0 dies: gw1 (v1 only) takes over gw0's v1 sagas once their leases expire, never its v2 ones.
    await sys.killGateway(0);
    const gw1Owner = async (id: string) =>
      (await saga(id)).events.some(
        (e) =>
          e.type === 'SAGA_RESUMED' &&
          String((e.data as { owner?: string }).owner).includes(`${sys.gateways[1]?.child.pid}`),
      );
    await eventually(
      "gw1 to resume gw0's v1 sagas",
      async () => ((await Promise.all(v1.slice(0, 3).map(gw1Owner))).every(Boolean) ? true : undefined),
      30_000,
    );
    for (const id of v2) assert.equal(await gw1Owner(id), false, `gw1 must not drive ${id}, a v2 saga`);

    // The rest of the upgrade: both gateways on v1+v2 starting v2, charges let through. Everything ends.
    await sys.restartGateway(0, { ...BOTH_START_2, ...RELEASE });
    await sys.restartGateway(1, { ...BOTH_START_2, ...RELEASE });
    await eventually('every saga to end', async () => ((await allTerminal(sys)) ? true : undefined), 90_000);
    for (const id of [...v1, ...v1Late]) {
      const s = await saga(id);
      assert.equal(s.status, 'COMPLETED', id);
      assert.deepEqual(stepsRun(s.events), [
        'create_order',
        'reserve_stock',
        'charge_payment',
        'confirm_order',
        'commit_stock',
      ]);
    }
    for (const id of v2) {
      const s = await saga(id);
      assert.equal(s.status, 'COMPLETED', id);
      assert.deepEqual(stepsRun(s.events), [
        'reserve_stock',
        'create_order',
        'charge_payment',
        'confirm_order',
        'commit_stock',
      ]);
    }
    await checkInvariants(sys, CATALOG);

    // Nothing of v1 in flight any more: a gateway that dropped v1 may start now.
    const versions = (await sys.admin('GET', '/api/versions')).body.versions as Array<{
      version: number;
      in_flight: number;
    }>;
    assert.deepEqual(
      versions.map((v) => [v.version, v.in_flight]),
      [
        [1, 0],
        [2, 0],
      ],
    );
    await sys.restartGateway(1, { ...RELEASE, PLACE_ORDER_VERSIONS: '2', PLACE_ORDER_START_VERSION: '2' });
  },
);
