/**
 * The nemesis behind `sagas chaos --nemesis`: searches for violations instead of replaying known
 * cases. It plays a seeded schedule (nemesis-schedule.ts) against a system — fault plans put on
 * and taken off, processes SIGKILLed and started again, participants kept down past their
 * budgets, operator actions on PARKED sagas — while the seeded order mix runs; then it ends every
 * fault, starts whatever is down, lets every saga settle, repairs what is PARKED as an operator
 * would, and checks the books (nemesis-books.ts). The run's figures and every disagreement, with
 * its saga's timeline, make the report (nemesis-report.ts).
 */
import { randomBytes } from 'node:crypto';
import type { FaultKind } from '../faults/plan.js';
import type { JsonCall } from '../platform/json-client.js';
import { listSagas, TERMINAL_STATUSES, type Apis, type SagaRow } from './invariants.js';
import { BooksCheckError, checkBooks, sagaTimeline, type Disagreement } from './nemesis-books.js';
import { carryOver, FaultTally } from './nemesis-faults.js';
import { OrderLoad, pause } from './nemesis-load.js';
import type { NemesisReport } from './nemesis-report.js';
import {
  nemesisSchedule,
  type FaultRuleSpec,
  type NemesisEvent,
  type NemesisSchedule,
  type Participant,
} from './nemesis-schedule.js';
import {
  runningSystem,
  startNemesisSystem,
  stepBudgetMs,
  type NemesisEndpoints,
  type SagaLogKind,
  type StartedNemesisSystem,
} from './nemesis-system.js';

export interface NemesisOptions {
  /** Unset: a random one (printed first, to replay the run). */
  seed?: number;
  /** How long the nemesis acts (the load runs as long); settling and the check come after. */
  durationMs: number;
  /** A system the nemesis starts: how many gateways (more than one needs sagaLog postgres). */
  gateways?: number;
  sagaLog?: SagaLogKind;
  /** Where the PostgreSQL database is created (default postgres://postgres@127.0.0.1:5432/postgres). */
  postgresServer?: string;
  /** Orders a second (default DEFAULT_RATE). */
  ratePerSecond?: number;
  /** A running system (FAULTS_ENABLED=1): its admin listener, public API and operator token. Unset: the nemesis starts one. */
  adminUrl?: string;
  apiUrl?: string;
  token?: string;
  /** How long the end may wait for every saga to settle, each time (default 120 s). */
  settleTimeoutMs?: number;
  /** Progress lines. */
  log?: (line: string) => void;
  /** Every line of every process of a started system. */
  onLine?: (name: string, line: string) => void;
  /** Aborting stops the run and cleans up (no books check): NemesisError 'aborted'. */
  signal?: AbortSignal;
}

/** The run could not be made (no switchboard, a system that would not start, aborted): not a finding. */
export class NemesisError extends Error {
  constructor(
    readonly code: 'faults_disabled' | 'aborted' | 'system_unreachable',
    message: string,
  ) {
    super(message);
    this.name = 'NemesisError';
  }
}

/** Orders a second: a light load for two shared cores, enough that kills and faults meet sagas. */
export const DEFAULT_RATE = 10;

/** Async work run one at a time, in order: the fault board's changes and its counts. */
class Lane {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.tail.then(fn, fn);
    this.tail = p.catch(() => undefined);
    return p;
  }
}

const inc = (o: Record<string, number>, k: string, n = 1) => void (o[k] = (o[k] ?? 0) + n);

/** The schedule a run with these options plays (what `--seed` replays). */
export function scheduleFor(seed: number, durationMs: number, killable: readonly string[]): NemesisSchedule {
  return nemesisSchedule({ seed, durationMs, killable, longOutageMs: stepBudgetMs() + 1000 });
}

export async function runNemesis(opts: NemesisOptions): Promise<NemesisReport> {
  const log = opts.log ?? (() => {});
  const t0 = Date.now();
  const seed = opts.seed ?? Math.floor(Math.random() * 2 ** 31);
  log(`seed ${seed} (replay: --seed ${seed})`);
  const own = opts.adminUrl === undefined;
  const gatewayCount = own ? (opts.gateways ?? 1) : 1;
  const sagaLog: SagaLogKind = opts.sagaLog ?? 'sqlite';
  const runId = randomBytes(4).toString('hex');
  const settleTimeoutMs = opts.settleTimeoutMs ?? 120_000;
  const abort = new AbortController();
  const onAbort = () => abort.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  if (opts.signal?.aborted) abort.abort();
  const signal = abort.signal;

  let started: StartedNemesisSystem | undefined;
  let sys: NemesisEndpoints;
  if (own) {
    started = await startNemesisSystem({
      gateways: gatewayCount,
      sagaLog,
      postgresServer: opts.postgresServer,
      log,
      onLine: opts.onLine,
    });
    sys = started;
  } else {
    sys = runningSystem(opts.apiUrl ?? 'http://127.0.0.1:8080', opts.adminUrl as string, opts.token);
  }
  const control = started?.control;
  const schedule = scheduleFor(seed, opts.durationMs, control?.targets ?? []);

  // Figures of the report.
  const kills = {
    by_target: {} as Record<string, number>,
    skipped: {} as Record<string, number>,
    long_outages: 0,
    outages: {} as Record<string, number>,
  };
  const faultsFig = { plans_installed: 0, reinstalls: 0, rules: 0, drags: 0 };
  /** Every rule installed, by id: its kind, for the figures. */
  const rulesKind = new Map<string, FaultKind>();
  const operator = {
    applied: {} as Record<string, number>,
    refused: {} as Record<string, number>,
    refused_codes: {} as Record<string, number>,
  };
  const parkedSeen = new Set<string>();
  const notes: string[] = [];
  const tally = new FaultTally();
  const lane = new Lane();
  let monitor: NodeJS.Timeout | undefined;
  let monitorBusy = false;

  /** Any gateway whose process is up, for reads and operator actions. */
  const anyGateway = () => {
    const gws = sys.gateways();
    const gw = gws.find((g) => g.up) ?? gws[0];
    if (!gw) throw new Error('the nemesis system has no gateway');
    return gw;
  };
  const apis = (): Apis => ({ api: (...a) => anyGateway().api(...a), admin: (...a) => anyGateway().admin(...a) });

  try {
    // The switchboard must be on.
    let probe;
    try {
      probe = await anyGateway().admin('GET', '/api/faults');
    } catch (err) {
      throw new NemesisError('system_unreachable', `the admin API cannot be reached: ${(err as Error).message}`);
    }
    if (probe.status === 404)
      throw new NemesisError(
        'faults_disabled',
        'the admin API answers 404 for /api/faults: start the system with FAULTS_ENABLED=1',
      );
    if (probe.status !== 200)
      throw new NemesisError(
        'system_unreachable',
        `GET /api/faults answered ${probe.status}: ${JSON.stringify(probe.body).slice(0, 200)}`,
      );

    // ----- The fault board: one plan of the schedule at a time, plus switchboard outages.
    let plan: { id: number; rules: FaultRuleSpec[] } | null = null;
    const outages = new Map<Participant, FaultRuleSpec>();
    const drags = new Map<string, FaultRuleSpec>();
    // The first rule that matches acts: an outage before all, a drag after the plan's own rules.
    const desired = (): FaultRuleSpec[] => [...outages.values(), ...(plan?.rules ?? []), ...drags.values()];
    const observe = async (g: { index: number; admin: JsonCall }) => {
      try {
        const r = await g.admin('GET', '/api/faults');
        if (r.status === 200)
          tally.observe(g.index, r.body.rules as Array<{ id: string; kind: FaultKind; fired: number }>);
      } catch {
        /* down or restarting: its counts were read before, or are lost with it */
      }
    };
    /** Installs the plan on gateway g: counts first, then its board starts again with what is left of each rule. */
    const install = async (g: { index: number; admin: JsonCall }, fresh: boolean) => {
      if (!fresh) await observe(g);
      tally.reinstalled(g.index);
      const rules = carryOver(desired(), (id) => tally.firedOn(g.index, id), fresh);
      try {
        const r = await g.admin('PUT', '/api/faults', { rules });
        if (r.status !== 200)
          notes.push(
            `PUT /api/faults on gateway ${g.index + 1} answered ${r.status}: ${JSON.stringify(r.body).slice(0, 200)}`,
          );
      } catch {
        /* it went down: its restart installs the plan */
      }
    };
    const installEverywhere = () =>
      Promise.all(
        sys
          .gateways()
          .filter((g) => g.up)
          .map((g) => install(g, false)),
      );
    if (control) {
      control.onUp = (target) => {
        const g = sys.gateways().find((x) => x.name === target);
        if (!g || signal.aborted) return;
        // Its board came back empty: the plan again, for what is left of it (outside the keeper's lane).
        void lane.run(async () => {
          if (desired().length === 0) return;
          faultsFig.reinstalls++;
          await install(g, true);
        });
      };
    }

    // ----- Watching: fault counts every second, the PARKED queue every other.
    let tick = 0;
    const watchParked = async () => {
      try {
        const r = await anyGateway().admin('GET', '/api/sagas?status=PARKED&limit=500');
        if (r.status === 200) for (const s of r.body.sagas as SagaRow[]) parkedSeen.add(s.id);
      } catch {
        /* restarting */
      }
    };
    monitor = setInterval(() => {
      if (monitorBusy) return;
      monitorBusy = true;
      const parkedToo = tick++ % 2 === 0;
      void lane
        .run(() =>
          Promise.all(
            sys
              .gateways()
              .filter((g) => g.up)
              .map(observe),
          ),
        )
        .then(() => (parkedToo ? watchParked() : undefined))
        .finally(() => (monitorBusy = false));
    }, 1000);

    // ----- Operator sweeps.
    /** An operator action; `counted`: a sweep's (the end's repair has figures of its own). Resolves with the answer's status (0: no answer). */
    const act = async (
      id: string,
      action: 'retry' | 'compensate',
      actionId: string,
      note: string,
      counted = true,
    ): Promise<number> => {
      try {
        const r = await anyGateway().admin('POST', `/api/sagas/${encodeURIComponent(id)}/actions`, {
          action,
          action_id: actionId,
          note,
        });
        if (!counted) return r.status;
        if (r.status === 200) inc(operator.applied, action);
        else {
          inc(operator.refused, action);
          inc(operator.refused_codes, typeof r.body?.error === 'string' ? r.body.error : String(r.status));
        }
        return r.status;
      } catch {
        return 0;
      }
    };
    let sweeping = false;
    const sweep = async (e: Extract<NemesisEvent, { kind: 'operator' }>) => {
      if (sweeping) return;
      sweeping = true;
      try {
        const parked = await anyGateway().admin('GET', '/api/parked?limit=100');
        if (parked.status === 200) {
          const sagas = parked.body.sagas as Array<{ id: string }>;
          for (const s of sagas) parkedSeen.add(s.id);
          for (let k = 0; k < Math.min(e.actions.length, sagas.length); k++) {
            await act(
              (sagas[k] as { id: string }).id,
              e.actions[k] as 'retry' | 'compensate',
              `nemesis-${runId}-${e.sweep}-${k}`,
              `nemesis sweep ${e.sweep}`,
            );
          }
        }
        if (e.running !== null) {
          const running = await anyGateway().admin('GET', '/api/sagas?status=RUNNING&limit=50');
          const sagas = running.status === 200 ? (running.body.sagas as Array<{ id: string }>) : [];
          if (sagas.length)
            await act(
              (sagas[e.running % sagas.length] as { id: string }).id,
              'compensate',
              `nemesis-${runId}-${e.sweep}-running`,
              `nemesis sweep ${e.sweep}: stuck too long`,
            );
        }
      } catch {
        /* the gateway went down mid-sweep */
      } finally {
        sweeping = false;
      }
    };

    // ----- Playing the schedule.
    const ending = new AbortController();
    const endSignal = AbortSignal.any([signal, ending.signal]);
    const play = async (e: NemesisEvent): Promise<void> => {
      switch (e.kind) {
        case 'faults':
          await lane.run(async () => {
            plan = { id: e.plan, rules: e.rules };
            faultsFig.plans_installed++;
            faultsFig.rules += e.rules.length;
            for (const r of e.rules) rulesKind.set(r.id, r.kind);
            log(
              `plan ${e.plan}: ${e.rules.map((r) => `${r.kind} at ${r.target.step ?? ''}${r.target.participant ?? ''}${r.target.method ? `.${r.target.method}` : ''}${r.phase ? ` (${r.phase})` : ''} ×${r.limit?.count}`).join('; ')}`,
            );
            await installEverywhere();
          });
          return;
        case 'faults_clear':
          await lane.run(async () => {
            if (plan?.id !== e.plan) return;
            plan = null;
            await installEverywhere();
          });
          return;
        case 'outage': {
          const rule: FaultRuleSpec = {
            id: `outage-${e.participant}-${Math.round(e.at)}`,
            target: { participant: e.participant },
            kind: 'uncertain',
            probability: 1,
          };
          await lane.run(async () => {
            outages.set(e.participant, rule);
            rulesKind.set(rule.id, rule.kind);
            inc(kills.outages, e.participant);
            if (e.long) kills.long_outages++;
            log(`${e.participant} unreachable through the switchboard for ${e.downMs} ms`);
            await installEverywhere();
          });
          await pause(e.downMs, endSignal);
          await lane.run(async () => {
            if (outages.get(e.participant)?.id !== rule.id) return;
            outages.delete(e.participant);
            await installEverywhere();
          });
          return;
        }
        case 'drag':
          await lane.run(async () => {
            drags.set(e.rule.id, e.rule);
            faultsFig.drags++;
            await installEverywhere();
          });
          await pause(e.holdMs, endSignal);
          await lane.run(async () => {
            if (!drags.delete(e.rule.id)) return;
            await installEverywhere();
          });
          return;
        case 'kill': {
          if (!control || endSignal.aborted) return;
          const g = sys.gateways().find((x) => x.name === e.target);
          // Its fault counts before it dies with them.
          if (g) await lane.run(() => observe(g));
          const res = await control.kill(e.target);
          if (res !== 'killed') {
            inc(kills.skipped, e.target);
            return;
          }
          inc(kills.by_target, e.target);
          if (e.long) kills.long_outages++;
          log(`killed ${e.target} (SIGKILL); down for ${e.downMs} ms${e.long ? ", past a step's attempt budget" : ''}`);
          await pause(e.downMs, endSignal);
          await control
            .restart(e.target)
            .catch(
              (err: unknown) =>
                void notes.push(`${e.target} could not be started again: ${(err as Error).message.split('\n')[0]}`),
            );
          return;
        }
        case 'operator':
          await sweep(e);
          return;
      }
    };

    const load = new OrderLoad({
      seed,
      runId,
      ratePerSecond: opts.ratePerSecond ?? DEFAULT_RATE,
      maxInFlight: 64,
      gateways: () => sys.gateways().map((g) => ({ api: g.api, up: g.up })),
      log,
    });
    log(
      `${schedule.events.length} nemesis events over ${Math.round(opts.durationMs / 1000)} s; orders at ${opts.ratePerSecond ?? DEFAULT_RATE}/s`,
    );
    const runStart = Date.now();
    const loading = load.run(opts.durationMs, signal);
    const playing: Promise<void>[] = [];
    for (const e of schedule.events) {
      await pause(runStart + e.at - Date.now(), signal);
      if (signal.aborted) break;
      playing.push(
        play(e).catch((err: unknown) => void notes.push(`event ${e.kind} at ${e.at} ms: ${(err as Error).message}`)),
      );
    }
    await pause(runStart + opts.durationMs - Date.now(), signal);
    await loading;
    if (signal.aborted) throw new NemesisError('aborted', 'the run was stopped');

    // ----- The end: no faults, everything up, every order answered, every saga settled.
    log('the nemesis stops: clearing the faults, starting whatever is down');
    ending.abort();
    await lane.run(async () => {
      plan = null;
      outages.clear();
      drags.clear();
      await installEverywhere();
    });
    await Promise.all(playing);
    if (control) {
      for (const t of control.down())
        await control
          .restart(t)
          .catch(
            (err: unknown) =>
              void notes.push(`${t} could not be started again at the end: ${(err as Error).message.split('\n')[0]}`),
          );
    }
    // A gateway that came back after the plan was cleared installs an empty plan: nothing to wait for.
    await load.finish(Date.now() + 60_000, signal);

    const settle = async (): Promise<boolean> => {
      const until = Date.now() + settleTimeoutMs;
      for (;;) {
        try {
          if (await settled(apis(), own ? undefined : load.acceptedIds())) return true;
        } catch {
          /* a gateway restarting */
        }
        if (Date.now() > until || signal.aborted) return false;
        await pause(500, signal);
      }
    };
    log('waiting for every saga to settle');
    let allSettled = await settle();

    // The operator's pass: each PARKED saga retried (the faults are gone), or compensated when a retry is refused.
    const repair = { parked: 0, retried: 0, compensated: 0, refused: 0, still_parked: 0, settled: allSettled };
    for (let round = 1; round <= 2; round++) {
      const parked = (await listSagas(apis(), own ? undefined : load.acceptedIds())).filter(
        (s) => s.status === 'PARKED',
      );
      if (parked.length === 0) break;
      for (const s of parked) parkedSeen.add(s.id);
      if (round === 1) repair.parked = parked.length;
      log(`repair round ${round}: ${parked.length} PARKED saga(s), retried (or compensated) as an operator would`);
      for (const s of parked) {
        const retry = await act(
          s.id,
          'retry',
          `nemesis-${runId}-repair${round}`,
          'nemesis: faults cleared, every process up',
          false,
        );
        if (retry === 200) {
          repair.retried++;
          continue;
        }
        const comp = await act(s.id, 'compensate', `nemesis-${runId}-repair${round}c`, 'nemesis: retry refused', false);
        if (comp === 200) repair.compensated++;
        else repair.refused++;
      }
      allSettled = await settle();
    }
    repair.settled = allSettled;
    clearInterval(monitor);
    monitor = undefined;
    await lane.run(() =>
      Promise.all(
        sys
          .gateways()
          .filter((g) => g.up)
          .map(observe),
      ),
    );

    // ----- The books.
    log('checking the books');
    const accepted = load.acceptedIds();
    let books;
    try {
      books = await checkBooks(apis(), { ids: own ? undefined : accepted });
    } catch (err) {
      if (err instanceof BooksCheckError) throw err;
      throw new BooksCheckError(`the books check failed: ${(err as Error).message}`);
    }
    const sagas = await listSagas(apis(), own ? undefined : accepted);
    const statusOf = new Map(sagas.map((s) => [s.id, s.status]));
    const byStatus: Record<string, number> = {};
    for (const s of sagas) inc(byStatus, s.status);
    repair.still_parked = byStatus.PARKED ?? 0;
    const disagreements: Disagreement[] = [...books.disagreements, ...load.keyDisagreements()];
    // Every 201 names a saga of the log (an accepted order the log lost would be invisible to the books).
    for (const id of accepted)
      if (!statusOf.has(id))
        disagreements.push({
          kind: 'accepted_order_without_saga',
          order_id: id,
          saga_id: id,
          message: `order ${id} was answered 201 but the saga log has no saga for it`,
        });
    const unanswered = load.orders.filter((o) => o.answer === undefined).length;
    if (own && unanswered === 0) {
      for (const s of sagas)
        if (!accepted.has(s.id))
          disagreements.push({
            kind: 'saga_without_order',
            saga_id: s.id,
            message: `saga ${s.id} (${s.status}) is no order any customer was answered`,
          });
    }
    if (unanswered) notes.push(`${unanswered} order(s) never got an answer, even once every process was up again`);
    notes.push(...load.unexpected);
    if (control) for (const u of control.unexpectedExits) notes.push(`${u.target} exited by itself (${u.exit})`);

    const withTimelines: NemesisReport['disagreements'] = [];
    for (const [i, d] of disagreements.entries()) {
      const id = d.saga_id ?? d.order_id;
      const timeline = id && i < 20 ? await sagaTimeline(anyGateway().admin, id).catch(() => undefined) : undefined;
      withTimelines.push(timeline ? { ...d, timeline } : d);
    }

    const fired = tally.totals();
    const o = load.orders;
    return {
      seed,
      system: { mode: sys.mode, gateways: gatewayCount, saga_log: own ? sagaLog : 'unknown' },
      duration_ms: opts.durationMs,
      ran_ms: Date.now() - t0,
      orders: {
        sent: o.length,
        accepted: o.filter((x) => x.answer === 201).length,
        distinct: accepted.size,
        by_kind: load.byKind((id) => statusOf.get(id)),
        retried: { ...load.retried },
        unanswered,
      },
      sagas: { by_status: byStatus },
      kills: {
        ...kills,
        deaths: { ...(control?.deaths ?? {}) },
        unexpected_exits: [...(control?.unexpectedExits ?? [])],
      },
      faults: { ...faultsFig, ...firedFigures(fired.byRule, rulesKind) },
      parked_seen: parkedSeen.size,
      operator,
      repair,
      books: { ok: books.ok, checked: books.checked, by_status: books.by_status },
      disagreements: withTimelines,
      notes,
      ok: disagreements.length === 0,
    };
  } finally {
    if (monitor) clearInterval(monitor);
    opts.signal?.removeEventListener('abort', onAbort);
    if (started) {
      log('stopping the system');
      await started.stop();
    }
  }
}

/** Whether every saga (of `ids`, or all) has ended: for all, from the log's counts in one request. */
async function settled(apis: Apis, ids: ReadonlySet<string> | undefined): Promise<boolean> {
  if (ids) return (await listSagas(apis, ids)).every((s) => TERMINAL_STATUSES.has(s.status));
  const r = await apis.admin('GET', '/api/sagas?limit=1');
  if (r.status !== 200) return false;
  const counts = r.body.counts as Record<string, number>;
  return Object.entries(counts).every(([status, n]) => n === 0 || TERMINAL_STATUSES.has(status));
}

/**
 * Firings of the plans' rules and the outages (by kind), apart from the drags' latency (a
 * helper of the kills, firing at every saga it holds).
 */
function firedFigures(
  byRule: Record<string, number>,
  kinds: ReadonlyMap<string, FaultKind>,
): { fired: number; fired_by_kind: Record<string, number>; drag_fired: number } {
  const out = { fired: 0, fired_by_kind: {} as Record<string, number>, drag_fired: 0 };
  for (const [id, n] of Object.entries(byRule)) {
    const kind = kinds.get(id);
    if (kind === undefined) {
      out.drag_fired += n;
      continue;
    }
    out.fired += n;
    inc(out.fired_by_kind, kind, n);
  }
  return out;
}
