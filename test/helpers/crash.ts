import assert from 'node:assert/strict';
import { describe, test, before, after } from 'node:test';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ManagedProcess, ServiceName } from '../../src/supervisor/supervisor.js';
import type { ArmCrashMessage } from '../../src/platform/process/crash.js';
import { freshSystem, eventually, type Reply } from './system.js';
import { checkInvariants } from './invariants.js';
import { compiledEntries } from './compiled.js';

export const CATALOG = { prod_1: 1_000, prod_2: 1_000, prod_3: 0 };

export const ORDERS = {
  happy: {
    customer_id: 'cust_crash',
    items: [
      { product_id: 'prod_1', quantity: 2, price: 50 },
      { product_id: 'prod_2', quantity: 1, price: 30 },
    ],
  },
  declined: { customer_id: 'cust_crash', items: [{ product_id: 'prod_1', quantity: 1, price: 600 }] },
} as const;

export interface CrashCase {
  process: ServiceName;
  point: string;
  order: keyof typeof ORDERS;
  expect: 'COMPLETED' | 'COMPENSATED';
}

/** kill -9 of the gateway before and after each step's intent and outcome, and mid-compensation. */
const STEPS = ['create_order', 'reserve_stock', 'charge_payment', 'confirm_order', 'commit_stock'];
const PHASES = ['before_intent', 'after_intent', 'before_outcome', 'after_outcome'];
export const GATEWAY_CRASH_CASES: readonly CrashCase[] = [
  ...STEPS.flatMap((s) =>
    PHASES.map((p): CrashCase => ({
      process: 'gateway',
      point: `saga.${s}.${p}`,
      order: 'happy',
      expect: 'COMPLETED',
    })),
  ),
  ...PHASES.map((p): CrashCase => ({
    process: 'gateway',
    point: `saga.charge_payment.${p}`,
    order: 'declined',
    expect: 'COMPENSATED',
  })),
  ...['reserve_stock', 'create_order'].flatMap((s) =>
    PHASES.map((p): CrashCase => ({
      process: 'gateway',
      point: `saga.${s}.undo.${p}`,
      order: 'declined',
      expect: 'COMPENSATED',
    })),
  ),
];

/**
 * A system whose gateway resumes a dead owner's sagas within a second and retries patiently.
 * `compiled`: its processes run the compiled product when dist/ is the current source
 * (test/helpers/compiled.ts), for tests that start one for every kill; through tsx otherwise.
 */
export async function crashSystem(
  env: NodeJS.ProcessEnv = {},
  opts: { gateways?: number; replicas?: number; compiled?: boolean } = {},
) {
  const entries = opts.compiled ? compiledEntries() : undefined;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sagas-catalog-'));
  const catalog = path.join(dir, 'catalog.json');
  fs.writeFileSync(catalog, JSON.stringify(CATALOG));
  const sys = await freshSystem(
    {
      INVENTORY_CATALOG: catalog,
      SAGA_LEASE_MS: '500',
      SAGA_RECOVERY_INTERVAL_MS: '100',
      // A participant restarted on a loaded machine can take several seconds: every step and
      // compensation must outlast that (1000 attempts, 200 ms apart at most) rather than give up,
      // or a case expecting COMPLETED sees a saga compensated for nothing but the machine's load.
      SAGA_STEP_MAX_ATTEMPTS: '1000',
      SAGA_RETRY_MAX_BACKOFF_MS: '200',
      SAGA_COMPENSATION_MAX_ATTEMPTS: '1000',
      SAGA_COMPENSATION_MAX_BACKOFF_MS: '200',
      SAGA_FORWARD_MAX_BACKOFF_MS: '200',
      SAGA_FORWARD_MAX_ATTEMPTS: '1000',
      IDEMPOTENCY_LOCK_TTL: '2s',
      ...env,
    },
    { gateways: opts.gateways, replicas: opts.replicas, entries },
  );
  const stop = sys.stop.bind(sys);
  return Object.assign(sys, {
    stop: async () => {
      await stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  });
}

export type CrashSystem = Awaited<ReturnType<typeof crashSystem>>;
type Sys = CrashSystem;

/**
 * `cases` dealt round-robin into `lanes` lists, for as many systems run side by side: a case's
 * order, idempotency key, kill and restart touch its own system only, and every invariant is
 * checked against that system's participants after each of its cases. Most of a case is its
 * restarted process's start, which is CPU on one core: two lanes keep both cores of CI busy.
 */
export function inLanes<T>(cases: readonly T[], lanes: number): T[][] {
  return Array.from({ length: lanes }, (_, lane) => cases.filter((_, i) => i % lanes === lane));
}

/** Systems run side by side by a crash matrix (see inLanes). */
const LANES = 2;

/** What a matrix's systems need besides a crash system's defaults: databases of their own. */
export interface MatrixResources {
  env: NodeJS.ProcessEnv;
  drop(): Promise<void>;
}

/**
 * One crash matrix: `cases` dealt into two systems run side by side (inLanes), each started with
 * the compiled product when dist/ is current and with its own `resources`, its cases run one at a
 * time under `name`; `first` adds tests the first system runs before its cases.
 */
export function crashMatrix(opts: {
  title: string;
  cases: readonly CrashCase[];
  name: (c: CrashCase) => string;
  resources?: () => Promise<MatrixResources>;
  first?: (sys: () => CrashSystem) => void;
}): void {
  describe(opts.title, { concurrency: LANES }, () => {
    for (const [i, cases] of inLanes(opts.cases, LANES).entries())
      describe(`system ${i + 1} of ${LANES}`, { concurrency: 1 }, () => {
        let res: MatrixResources | undefined;
        let sys: CrashSystem | undefined;
        const running = (): CrashSystem => {
          assert.ok(sys, 'the crash system started');
          return sys;
        };
        before(async () => {
          res = await opts.resources?.();
          sys = await crashSystem(res?.env ?? {}, { compiled: true });
        });
        after(async () => {
          await sys?.stop();
          await res?.drop();
        });
        if (i === 0) opts.first?.(running);
        for (const c of cases) test(opts.name(c), () => runCrashCase(running(), c));
      });
  });
}

async function postUntilAnswered(sys: Sys, body: unknown, key: string): Promise<Reply> {
  return eventually('the gateway to answer the POST', async () => {
    const r = await sys.api('POST', '/orders', body, { 'X-Idempotency-Key': key });
    return r.status === 201 ? r : undefined;
  });
}

/**
 * Arms `point` in a running process (started with SAGAS_TEST_HOOKS=1) over its IPC channel, as
 * CRASH_AT at its start would; resolves with the process once it says it is armed.
 */
export async function armCrash(proc: ManagedProcess, point: string): Promise<ManagedProcess> {
  const acked = new Promise<void>((resolve, reject) => {
    const onMessage = (m: { type?: string }) => {
      if (m?.type !== 'crash-armed') return;
      proc.child.off('message', onMessage);
      resolve();
    };
    proc.child.on('message', onMessage);
    void proc.exited.then(() => reject(new Error(`${proc.name} exited before it armed ${point}`)));
  });
  const message: ArmCrashMessage = { type: 'arm-crash', points: [point] };
  proc.child.send(message);
  await acked;
  return proc;
}

/**
 * Arms a crash point in one process, sends an order, waits for the process to die there, restarts
 * it clean, and checks that the saga ends as expected and that every invariant holds.
 */
export async function runCrashCase(sys: Sys, c: CrashCase): Promise<void> {
  const armed = await armCrash(sys.procs[c.process], c.point);
  const key = `crash-${c.point}-${c.order}`;
  let firstId: string | undefined;
  try {
    const first = await sys.api('POST', '/orders', ORDERS[c.order], { 'X-Idempotency-Key': key });
    if (first.status === 201) firstId = first.body.id;
  } catch {
    // The gateway died before it answered: the client retries with its key below.
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const exit = await Promise.race([
    armed.exited,
    new Promise<undefined>((r) => {
      timer = setTimeout(() => r(undefined), 15_000);
    }),
  ]);
  clearTimeout(timer);
  assert.ok(exit, `crash point ${c.point} was never reached`);
  assert.equal(exit.signal, 'SIGKILL', `${c.process} should have died at ${c.point}`);
  await sys.restart(c.process);

  const again = await postUntilAnswered(sys, ORDERS[c.order], key);
  if (firstId) assert.equal(again.body.id, firstId, 'one idempotency key, one order');
  assert.equal(again.headers.get('idempotent-replayed'), 'true', 'the retry must replay, not start a second saga');
  const id: string = again.body.id;
  const saga = await eventually(`saga ${id} to end`, async () => {
    const r = await sys.api('GET', `/orders/${id}/saga`);
    return r.status === 200 && ['COMPLETED', 'COMPENSATED', 'PARKED'].includes(r.body.status) ? r.body : undefined;
  });
  assert.equal(
    saga.status,
    c.expect,
    `saga after a crash at ${c.point}: ${JSON.stringify(saga.events.map((e: { type: string; step: string }) => `${e.type}:${e.step ?? ''}`))}`,
  );
  await checkInvariants(sys, CATALOG);
}

/** kill -9 of each participant just before and just after it commits an effect: the cases of both participant crash suites. */
export const PARTICIPANT_CRASH_CASES: CrashCase[] = [
  ...(['create', 'confirm'] as const).map((m) => ({
    process: 'order' as const,
    method: m,
    order: 'happy' as const,
    expect: 'COMPLETED' as const,
  })),
  { process: 'order' as const, method: 'cancel', order: 'declined' as const, expect: 'COMPENSATED' as const },
  ...(['reserve', 'commit'] as const).map((m) => ({
    process: 'inventory' as const,
    method: m,
    order: 'happy' as const,
    expect: 'COMPLETED' as const,
  })),
  { process: 'inventory' as const, method: 'release', order: 'declined' as const, expect: 'COMPENSATED' as const },
  { process: 'payment' as const, method: 'charge', order: 'happy' as const, expect: 'COMPLETED' as const },
  { process: 'payment' as const, method: 'charge', order: 'declined' as const, expect: 'COMPENSATED' as const },
].flatMap((c) =>
  ['before_commit', 'after_commit'].map((when): CrashCase => ({
    process: c.process,
    point: `${c.process}.${c.method}.${when}`,
    order: c.order,
    expect: c.expect,
  })),
);
