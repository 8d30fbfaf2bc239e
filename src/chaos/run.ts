/**
 * The chaos runner behind `sagas chaos`: applies a scenario's faults to a system (a running one
 * through its admin API, or one it starts with FAULTS_ENABLED=1), drives mixed load, removes the
 * faults, waits for every saga to end, runs the operator's fix when the scenario says so, checks
 * the invariants and reports.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startSystem, type RunningSystem } from '../supervisor/supervisor.js';
import { freePort, jsonClient } from '../platform/json-client.js';
import type { FaultRule } from '../faults/plan.js';
import {
  baselineFrom,
  baselineOf,
  checkInvariants,
  listSagas,
  readStock,
  TERMINAL_STATUSES,
  type ApiReply,
  type Apis,
  type StockBaseline,
} from './invariants.js';
import { CHAOS_CATALOG, chaosOrder, seededRandom } from './orders.js';
import type { Scenario } from './scenario.js';

export interface ChaosOptions {
  orders?: number;
  concurrency?: number;
  /** A running system: its admin listener and its public API. Unset: the runner starts one. */
  adminUrl?: string;
  apiUrl?: string;
  token?: string;
  seed?: number;
  /** How long to wait for every saga to end (ms). Default 120 s. */
  settleTimeoutMs?: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

export interface ChaosReport {
  scenario: string;
  system: 'started' | 'running';
  seed: number;
  orders: number;
  accepted: number;
  client_retries: number;
  outcomes: Record<string, number>;
  /** Attempts after the first, of steps and of compensations (from the sagas' timelines). */
  retries: number;
  /** Sagas resumed by a gateway's recovery (saga_recoveries_total of the gateway now running). */
  recoveries: number;
  gateway_restarts: number;
  parked: number;
  /** Sagas retried by the operator's fix, and what they ended as. */
  fix: { action: string; sagas: number; outcomes: Record<string, number> } | null;
  duration_ms: { p50: number; p95: number; p99: number; max: number };
  faults: Array<{ id: string; kind: string; fired: number }>;
  invariants: { ok: boolean; violations: string[] };
  expectations: { ok: boolean; failures: string[] };
  seconds: number;
  ok: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Retries `call` while the process behind it restarts (connection refused). */
async function patiently(call: () => Promise<ApiReply>, what: string, timeoutMs = 30_000): Promise<ApiReply> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await call();
    } catch (err) {
      if (Date.now() > until) throw new Error(`${what}: ${(err as Error).message}`, { cause: err });
      await sleep(200);
    }
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

/**
 * What every system a chaos run starts in `dir` has (`sagas chaos`, the nemesis): the fault
 * switchboard on, quiet logs, the chaos catalog (written into `dir`), Redis keys of its own.
 */
export function chaosSystemEnv(dir: string, keyPrefix: string): NodeJS.ProcessEnv {
  const catalog = path.join(dir, 'catalog.json');
  fs.writeFileSync(catalog, JSON.stringify(CHAOS_CATALOG));
  return {
    FAULTS_ENABLED: '1',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    INVENTORY_CATALOG: catalog,
    REDIS_KEY_PREFIX: `${keyPrefix}-${path.basename(dir)}`,
    // The load comes from one address, faster than any one customer: the default limit is off.
    RATE_LIMIT_PER_MINUTE: '0',
  };
}

/** The environment of a system the runner starts: the switchboard on, patient retries, quick recovery. */
function systemEnv(scenario: Scenario, dir: string, redisUrl: string | undefined): NodeJS.ProcessEnv {
  return {
    ...chaosSystemEnv(dir, 'chaos'),
    SAGA_LEASE_MS: '1000',
    SAGA_RECOVERY_INTERVAL_MS: '200',
    SAGA_STEP_MAX_ATTEMPTS: '1000',
    SAGA_RETRY_MAX_BACKOFF_MS: '250',
    SAGA_COMPENSATION_MAX_ATTEMPTS: '1000',
    SAGA_COMPENSATION_MAX_BACKOFF_MS: '250',
    SAGA_FORWARD_MAX_ATTEMPTS: '1000',
    SAGA_FORWARD_MAX_BACKOFF_MS: '250',
    IDEMPOTENCY_LOCK_TTL: '2s',
    ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
    ...scenario.system.env,
  };
}

export async function runChaos(scenario: Scenario, opts: ChaosOptions = {}): Promise<ChaosReport> {
  const log = opts.log ?? (() => {});
  const t0 = Date.now();
  const seed = opts.seed ?? Math.floor(Math.random() * 2 ** 31);
  const random = seededRandom(seed);
  const orders = opts.orders ?? scenario.orders;
  const concurrency = opts.concurrency ?? scenario.concurrency;
  const own = opts.adminUrl === undefined;
  let sys: RunningSystem | undefined;
  let dir: string | undefined;
  let apis: Apis;
  let before: StockBaseline;
  let stopping = false;
  let gatewayRestarts = 0;
  let watcher: Promise<void> = Promise.resolve();

  if (own) {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sagas-chaos-'));
    const redisUrl = scenario.system.redis === 'down' ? `redis://127.0.0.1:${await freePort()}` : undefined;
    log(
      `starting a system in ${dir} (FAULTS_ENABLED=1${redisUrl ? `, REDIS_URL=${redisUrl}: nothing listens there` : ''})`,
    );
    sys = await startSystem({ dataDir: dir, ports: 'ephemeral', env: systemEnv(scenario, dir, redisUrl) });
    const running = sys;
    apis = {
      api: (m, u, b, h) => jsonClient(running.url)(m, u, b, h),
      admin: (m, u, b, h) => jsonClient(running.adminUrl as string)(m, u, b, h),
    };
    before = baselineOf(CHAOS_CATALOG);
    // A gateway that dies (a crash rule) is started again, as an orchestrator's supervisor would.
    const watch = async (): Promise<void> => {
      while (!stopping) {
        const gw = running.procs.gateway;
        await gw.exited;
        if (stopping) return;
        gatewayRestarts++;
        log(`the gateway died (${gw.exitStatus?.signal ?? gw.exitStatus?.code}); restarting it`);
        await running.restart('gateway');
      }
    };
    watcher = watch();
  } else {
    if (scenario.system.redis === 'down')
      throw new Error(`scenario ${scenario.name} takes Redis down: it needs a system the runner starts (no --url)`);
    if (Object.keys(scenario.system.env).length)
      log(
        `note: system.env (${Object.keys(scenario.system.env).join(', ')}) applies only to a system the runner starts`,
      );
    apis = {
      api: jsonClient((opts.apiUrl as string).replace(/\/+$/, '')),
      admin: jsonClient(opts.adminUrl!.replace(/\/+$/, ''), opts.token),
    };
    before = baselineFrom(await readStock(apis));
  }

  const firedTotal = new Map<string, number>();
  const snapshotFaults = async (): Promise<void> => {
    try {
      const r = await apis.admin('GET', '/api/faults');
      if (r.status === 200)
        for (const rule of r.body.rules as FaultRule[])
          firedTotal.set(rule.id, Math.max(firedTotal.get(rule.id) ?? 0, rule.fired));
    } catch {
      /* restarting */
    }
  };

  try {
    // Apply the faults.
    const put = await patiently(
      () => apis.admin('PUT', '/api/faults', { rules: scenario.rules.map(({ fired: _f, ...r }) => r) }),
      'PUT /api/faults',
    );
    if (put.status === 404)
      throw new Error('the admin API answers 404 for /api/faults: start the system with FAULTS_ENABLED=1');
    if (put.status !== 200) throw new Error(`PUT /api/faults answered ${put.status}: ${JSON.stringify(put.body)}`);
    log(`${scenario.rules.length} fault rule(s) applied; sending ${orders} orders (${concurrency} at a time)`);
    const applied = Date.now();
    let faultsOn = true;
    const removeFaults = async () => {
      if (!faultsOn) return;
      faultsOn = false;
      // Off one by one first (their counts kept), then counted, then the plan emptied: no firing
      // between the count and the PUT is lost.
      for (const r of scenario.rules)
        await patiently(
          () => apis.admin('POST', `/api/faults/${encodeURIComponent(r.id)}`, { enabled: false }),
          'POST /api/faults/:id',
        );
      await snapshotFaults();
      await patiently(() => apis.admin('PUT', '/api/faults', { rules: [] }), 'PUT /api/faults');
      log(`faults removed after ${((Date.now() - applied) / 1000).toFixed(1)} s`);
    };
    const timer =
      scenario.duration_s !== undefined ? setTimeout(() => void removeFaults(), scenario.duration_s * 1000) : undefined;

    // Drive the load.
    const run = randomUUID().slice(0, 8);
    const ids = new Set<string>();
    let next = 0;
    let clientRetries = 0;
    const client = async () => {
      while (next < orders) {
        const i = next++;
        const { body } = chaosOrder(i, random);
        const key = `chaos-${run}-${i}`;
        for (let attempt = 1; ; attempt++) {
          let status = 0;
          try {
            const r = await apis.api('POST', '/orders', body, { 'x-idempotency-key': key });
            status = r.status;
            if (r.status === 201) {
              ids.add(r.body.id as string);
              break;
            }
            if (r.status !== 503 && r.status !== 409 && r.status !== 429)
              throw new Error(`order ${i}: POST /orders answered ${r.status}: ${JSON.stringify(r.body).slice(0, 200)}`);
          } catch (err) {
            if (status !== 0) throw err;
          }
          clientRetries++;
          if (attempt >= 600) throw new Error(`order ${i} never accepted`);
          await sleep(100);
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, client));
    log(`${ids.size} orders accepted`);

    // Wait for every saga to end; the faults go when the scenario says.
    if (scenario.until === 'load' && scenario.duration_s === undefined) await removeFaults();
    const settleBy = Date.now() + (opts.settleTimeoutMs ?? 120_000);
    let rows = await patiently(
      () => listSagas(apis, ids).then((sagas) => ({ status: 200, body: sagas })),
      'GET /api/sagas',
    );
    for (;;) {
      const sagas = rows.body as Awaited<ReturnType<typeof listSagas>>;
      const ended = sagas.length === ids.size && sagas.every((s) => TERMINAL_STATUSES.has(s.status));
      const durationDone = scenario.duration_s === undefined || Date.now() - applied >= scenario.duration_s * 1000;
      if (ended && durationDone) break;
      if (Date.now() > settleBy) break;
      await snapshotFaults();
      await sleep(250);
      rows = await patiently(() => listSagas(apis, ids).then((s) => ({ status: 200, body: s })), 'GET /api/sagas');
    }
    clearTimeout(timer);
    await removeFaults();
    // Let a saga whose faults just went finish (the duration case), within the same bound.
    while (Date.now() < settleBy) {
      const sagas = await patiently(
        () => listSagas(apis, ids).then((s) => ({ status: 200, body: s })),
        'GET /api/sagas',
      );
      if ((sagas.body as Array<{ status: string }>).every((s) => TERMINAL_STATUSES.has(s.status))) break;
      await sleep(250);
    }

    let sagas = await listSagas(apis, ids);
    const outcomes: Record<string, number> = {};
    for (const s of sagas) outcomes[s.status] = (outcomes[s.status] ?? 0) + 1;
    const parkedIds = sagas.filter((s) => s.status === 'PARKED').map((s) => s.id);
    const durations = sagas
      .filter((s) => TERMINAL_STATUSES.has(s.status))
      .map((s) => Date.parse(s.updated_at) - Date.parse(s.created_at))
      .sort((a, b) => a - b);

    // Retries, from the timelines (before the fix, so the fix's attempts are not counted).
    let retries = 0;
    for (const s of sagas) {
      const t = await apis.admin('GET', `/api/sagas/${s.id}`);
      if (t.status !== 200) continue;
      for (const e of t.body.events as Array<{ type: string; attempt: number | null }>) {
        if ((e.type === 'STEP_STARTED' || e.type === 'COMPENSATION_STARTED') && (e.attempt ?? 1) > 1) retries++;
      }
    }

    const failures: string[] = [];
    const exp = scenario.expect;
    if (exp.parked === 'some' && parkedIds.length === 0) failures.push('expected some PARKED sagas, found none');
    if (typeof exp.parked === 'number' && parkedIds.length !== exp.parked)
      failures.push(`expected ${exp.parked} PARKED sagas, found ${parkedIds.length}`);
    for (const [id, n] of Object.entries(exp.fired ?? {}))
      if ((firedTotal.get(id) ?? 0) < n)
        failures.push(`expected rule ${id} to fire at least ${n} time(s), it fired ${firedTotal.get(id) ?? 0}`);
    if (exp.gateway_restarts !== undefined && gatewayRestarts < exp.gateway_restarts)
      failures.push(`expected at least ${exp.gateway_restarts} gateway restart(s), saw ${gatewayRestarts}`);

    // The operator's fix: the console's retry on every PARKED saga, faults gone.
    let fix: ChaosReport['fix'] = null;
    if (scenario.then === 'retry-parked' && parkedIds.length > 0) {
      log(`retrying ${parkedIds.length} PARKED saga(s) through the admin API`);
      for (const id of parkedIds) {
        const r = await apis.admin('POST', `/api/sagas/${id}/actions`, {
          action: 'retry',
          action_id: `chaos-${run}-${id}`,
          note: `sagas chaos ${scenario.name}: fault removed`,
        });
        if (r.status !== 200)
          failures.push(`retry of ${id} answered ${r.status}: ${JSON.stringify(r.body).slice(0, 200)}`);
      }
      const fixBy = Date.now() + (opts.settleTimeoutMs ?? 120_000);
      const parkedSet = new Set(parkedIds);
      for (;;) {
        const after = await listSagas(apis, parkedSet);
        // Retried sagas go RUNNING/COMPENSATING, then end; one still PARKED after a while stays so.
        if (after.every((s) => TERMINAL_STATUSES.has(s.status) && s.status !== 'PARKED') || Date.now() > fixBy) break;
        await sleep(250);
      }
      const after = await listSagas(apis, parkedSet);
      const fixed: Record<string, number> = {};
      for (const s of after) fixed[s.status] = (fixed[s.status] ?? 0) + 1;
      fix = { action: 'retry', sagas: parkedIds.length, outcomes: fixed };
      sagas = await listSagas(apis, ids);
    }

    const allowParked = scenario.then === undefined && exp.parked !== 0 && exp.parked !== undefined;
    const inv = await checkInvariants(apis, before, { ids: own ? undefined : ids, allowParked });
    if (inv.sagas !== ids.size)
      inv.violations.push(`one saga per idempotency key: ${ids.size} orders accepted, ${inv.sagas} sagas`);

    let recoveries = 0;
    if (sys) {
      try {
        const m = await (await fetch(`${sys.url}/metrics`)).text();
        for (const line of m.split('\n'))
          if (line.startsWith('saga_recoveries_total')) recoveries += Number(line.split(' ').at(-1)) || 0;
      } catch {
        /* no metrics */
      }
    }

    const report: ChaosReport = {
      scenario: scenario.name,
      system: own ? 'started' : 'running',
      seed,
      orders,
      accepted: ids.size,
      client_retries: clientRetries,
      outcomes,
      retries,
      recoveries,
      gateway_restarts: gatewayRestarts,
      parked: parkedIds.length,
      fix,
      duration_ms: {
        p50: percentile(durations, 50),
        p95: percentile(durations, 95),
        p99: percentile(durations, 99),
        max: durations.at(-1) ?? 0,
      },
      faults: scenario.rules.map((r) => ({ id: r.id, kind: r.kind, fired: firedTotal.get(r.id) ?? 0 })),
      invariants: { ok: inv.violations.length === 0, violations: inv.violations },
      expectations: { ok: failures.length === 0, failures },
      seconds: Math.round((Date.now() - t0) / 100) / 10,
      ok: inv.violations.length === 0 && failures.length === 0,
    };
    return report;
  } finally {
    stopping = true;
    if (sys) {
      await sys.stop();
      await watcher.catch(() => undefined);
      fs.rmSync(dir as string, { recursive: true, force: true });
    }
  }
}

/** The report as the command prints it. */
export function formatReport(r: ChaosReport): string {
  const lines = [
    `scenario ${r.scenario} (${r.system === 'started' ? 'a system started for it' : 'a running system'}, seed ${r.seed}): ${r.ok ? 'PASSED' : 'FAILED'} in ${r.seconds} s`,
    `  orders      ${r.accepted} accepted of ${r.orders} (${r.client_retries} client retries on 503/409)`,
    `  outcomes    ${
      Object.entries(r.outcomes)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ') || 'none'
    }`,
    `  retries     ${r.retries} attempts after the first (steps and compensations)`,
    `  recoveries  ${r.recoveries} sagas resumed by recovery; gateway restarts ${r.gateway_restarts}`,
    `  parked      ${r.parked}${
      r.fix
        ? `; fix: ${r.fix.action} of ${r.fix.sagas} → ${Object.entries(r.fix.outcomes)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')}`
        : ''
    }`,
    `  duration    p50 ${r.duration_ms.p50} ms, p95 ${r.duration_ms.p95} ms, p99 ${r.duration_ms.p99} ms, max ${r.duration_ms.max} ms`,
    `  faults      ${r.faults.map((f) => `${f.id} (${f.kind}) fired ${f.fired}`).join('; ') || 'none'}${r.gateway_restarts ? ' (as counted by the gateway now running: a restart loses the plan and its counts)' : ''}`,
    `  invariants  ${r.invariants.ok ? 'hold' : 'VIOLATED'}`,
    ...r.invariants.violations.slice(0, 20).map((v) => `    - ${v}`),
    `  expected    ${r.expectations.ok ? 'met' : 'NOT MET'}`,
    ...r.expectations.failures.map((v) => `    - ${v}`),
  ];
  return `${lines.join('\n')}\n`;
}
