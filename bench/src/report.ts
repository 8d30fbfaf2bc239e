/**
 * What a run leaves behind: the result JSON (schema sagas-bench/1), the chart's titles and the
 * text report printed on stdout — all built from the figures of the two phases.
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import type { BenchOptions } from './args.js';
import type { CpuReport } from './cpu.js';
import type { LoadResult } from './load.js';
import type { BenchDatabase } from './postgres.js';
import { r1, r3 } from './stats.js';
import { REPO_ROOT } from '../../src/supervisor/supervisor.js';

/** A latency in ms with as many decimals as it deserves. */
export const ms = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

export function describePlan(o: BenchOptions): string {
  const load = o.loop === 'open' ? `open loop, ${o.rate} orders/s` : `closed loop, ${o.concurrency} in flight`;
  const length = o.durationS !== undefined ? `${o.durationS} s` : `${o.count} orders`;
  const warm = o.warmupS > 0 ? ` (+${o.warmupS} s warm-up)` : '';
  const gateways =
    (o.gateways > 1 ? `, ${o.gateways} gateways` : '') +
    (o.replicas > 1
      ? `, ${o.replicas} replicas of each participant on PostgreSQL`
      : o.participants === 'postgres'
        ? ', participants on PostgreSQL'
        : '');
  const target = o.url
    ? `target ${o.url}`
    : o.sagaLog === 'postgres'
      ? `saga log PostgreSQL${gateways}`
      : `saga log sync ${o.sync}${gateways}`;
  return `${load}, ${length}${warm}, mix ${o.mix}, ${target}`;
}

function phaseLines(r: LoadResult, timed: boolean): string[] {
  const l = r.latency_ms;
  const lines = [
    `  completed      ${r.completed} of ${r.sent} sent; ${r.sagas_per_s} sagas/s over ${r.window_s} s${r.drain_s > 0 ? ` (then ${r.drain_s} s draining)` : ''}`,
    `  latency ms     p50 ${ms(l.p50)}  p95 ${ms(l.p95)}  p99 ${ms(l.p99)}  max ${ms(l.max)}  (mean ${ms(l.mean)})`,
    `  outcomes       ${
      Object.entries(r.outcomes)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ') || 'none'
    }`,
  ];
  const detail = Object.entries(r.outcome_detail);
  if (detail.length > 1 || detail.some(([k]) => k.includes('unexpected')))
    for (const [k, v] of detail) lines.push(`                   ${k}: ${v}`);
  lines.push(
    `  errors         ${r.errors.total}${
      r.errors.total
        ? ` (${Object.entries(r.errors.by_kind)
            .map(([k, v]) => `${k} ×${v}`)
            .join(', ')})`
        : ''
    }`,
  );
  if (r.max_send_lag_ms !== null)
    lines.push(
      `  sender lag     at worst ${ms(r.max_send_lag_ms)} ms behind the timetable; ${r.max_in_flight} in flight at most`,
    );
  if (timed && r.rate !== null && r.sagas_per_s < 0.95 * r.rate) {
    lines.push(
      `  saturated      ${r.sagas_per_s} sagas/s < ${r.rate} offered: orders queued, and the latency above is mostly that queue`,
    );
  }
  return lines;
}

function cpuLines(system: CpuReport | null, floor: CpuReport | null): string[] {
  if (!system && !floor) return [];
  // The rows in the order the reports have them, `bench` last.
  const keys = [...new Set([...Object.keys(system?.processes ?? {}), ...Object.keys(floor?.processes ?? {})])];
  const names = [...keys.filter((k) => k !== 'bench'), 'bench'];
  const LABELS: Record<string, string> = {
    bench: 'bench (load gen.)',
    gateways: 'gateways (sum)',
    postgres: 'postgres backends',
  };
  const cell = (c: CpuReport | null, n: string) => {
    const f = n === 'total' ? c?.total : c?.processes[n];
    const per = f?.ms_per_saga != null ? `${f.ms_per_saga.toFixed(3).padStart(7)} ms` : '';
    return f
      ? `${f.total_s.toFixed(2).padStart(6)} s ${String(Math.round(f.pct_of_core)).padStart(4)} %${per}`
      : '         -    ';
  };
  const lines = [
    'CPU (user+system seconds over the window, % of one core, and ms per saga ended in the window)',
    `  ${'process'.padEnd(20)}${'system phase'.padEnd(28)}${floor ? 'floor phase' : ''}`,
  ];
  const onlyBench = !names.some((n) => n !== 'bench' && (system?.processes[n] || floor?.processes[n]));
  for (const n of onlyBench ? names : [...names, 'total']) {
    if (!system?.processes[n] && !floor?.processes[n] && n !== 'total') continue;
    const label = LABELS[n] ?? n;
    lines.push(`  ${label.padEnd(20)}${cell(system, n).padEnd(28)}${floor ? cell(floor, n) : ''}`);
  }
  const pgNote = system?.postgres ?? floor?.postgres;
  if (pgNote && !pgNote.measured) lines.push(`  ${'postgres backends'.padEnd(20)}not measured: ${pgNote.reason}`);
  const per = (c: CpuReport | null) => (c?.cpu_ms_per_saga != null ? `${c.cpu_ms_per_saga.toFixed(2)} ms` : '-');
  if (!onlyBench) lines.push(`  ${'CPU per saga'.padEnd(20)}${per(system).padEnd(28)}${floor ? per(floor) : ''}`);
  const others = (c: CpuReport | null) =>
    c?.machine
      ? `${c.machine.others_core_s.toFixed(2).padStart(6)} s ${String(Math.round((c.machine.others_core_s / c.window_s) * 100)).padStart(4)} %`
      : '-';
  const busy = (c: CpuReport | null) =>
    c?.machine ? `${String(Math.round(c.machine.busy_pct_of_all_cores)).padStart(13)} %` : '-';
  if (system?.machine || floor?.machine) {
    lines.push(`  ${'other processes'.padEnd(20)}${others(system).padEnd(28)}${floor ? others(floor) : ''}`);
    lines.push(
      `  ${`machine busy (${system?.machine?.cores ?? floor?.machine?.cores} cores)`.padEnd(20)}${busy(system).padEnd(28)}${floor ? busy(floor) : ''}`,
    );
  }
  return lines;
}

function gitInfo(): { commit: string | null; dirty: boolean | null } {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    const dirty =
      execFileSync('git', ['status', '--porcelain'], {
        cwd: REPO_ROOT,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim() !== '';
    return { commit, dirty };
  } catch {
    return { commit: null, dirty: null };
  }
}

/** What one phase measured. */
export interface Phase {
  result: LoadResult;
  cpu: CpuReport | null;
}

/** Everything a finished run knows, for the JSON and the report. */
export interface RunFacts {
  argv: readonly string[];
  opts: BenchOptions;
  db: BenchDatabase | undefined;
  /** The participants' databases, when on PostgreSQL. */
  participantDbs: readonly BenchDatabase[];
  startedAt: Date;
  finishedAt: Date;
  system: Phase;
  floor: Phase | undefined;
  /** By gateway name, the orders sent to it; null against --url. */
  requestsPerGateway: Record<string, number> | null;
  logLines: Record<string, { count: number; last: string[] }>;
}

export function resultJson(f: RunFacts) {
  const { opts, system: sys, floor, db } = f;
  const ratio = floor && floor.result.sagas_per_s > 0 ? r3(sys.result.sagas_per_s / floor.result.sagas_per_s) : null;
  const cpus = os.cpus();
  return {
    schema: 'sagas-bench/1',
    command: ['npm run bench --', ...f.argv].join(' '),
    argv: [...f.argv],
    options: {
      url: opts.url ?? null,
      own_system: !opts.url,
      loop: opts.loop,
      concurrency: opts.concurrency,
      rate: opts.rate ?? null,
      duration_s: opts.durationS ?? null,
      count: opts.count ?? null,
      warmup_s: opts.warmupS,
      mix: opts.mix,
      saga_log: opts.url ? null : opts.sagaLog,
      gateways: opts.url ? null : opts.gateways,
      replicas: opts.url ? null : opts.replicas,
      participants: opts.url ? null : opts.participants,
      saga_log_database: db ? { server: db.server, name: db.name, dropped_after: true } : null,
      participant_databases: f.participantDbs.length
        ? f.participantDbs.map((d) => ({ server: d.server, name: d.name, dropped_after: true }))
        : null,
      saga_log_sync: opts.url || opts.sagaLog !== 'sqlite' ? null : opts.sync,
      log_level: opts.url ? null : opts.logLevel,
      floor: opts.floor,
      prefer_wait_s: 30,
      catalog: opts.url ? null : { products: 1000, stock_each: 1_000_000_000, empty_product: true },
    },
    machine: {
      cpu_model: cpus[0]?.model ?? null,
      nproc: os.availableParallelism(),
      total_memory_bytes: os.totalmem(),
      total_memory_gib: r1(os.totalmem() / 2 ** 30),
      load_average_at_start: os.loadavg(),
      os: `${os.type()} ${os.release()} ${os.arch()}`,
      node: process.version,
      hostname: os.hostname(),
    },
    git: gitInfo(),
    started_at: f.startedAt.toISOString(),
    finished_at: f.finishedAt.toISOString(),
    summary: {
      sagas_per_s: sys.result.sagas_per_s,
      p50_ms: sys.result.latency_ms.p50,
      p95_ms: sys.result.latency_ms.p95,
      p99_ms: sys.result.latency_ms.p99,
      max_ms: sys.result.latency_ms.max,
      completed: sys.result.completed,
      errors: sys.result.errors.total,
      floor_sagas_per_s: floor?.result.sagas_per_s ?? null,
      floor_p50_ms: floor?.result.latency_ms.p50 ?? null,
      floor_p99_ms: floor?.result.latency_ms.p99 ?? null,
      ratio_system_to_floor: ratio,
      cpu_ms_per_saga: sys.cpu?.cpu_ms_per_saga ?? null,
      // All gateways together when there are several.
      gateway_cpu_pct_of_core: (sys.cpu?.processes.gateways ?? sys.cpu?.processes.gateway)?.pct_of_core ?? null,
      gateway_cpu_ms_per_saga: (sys.cpu?.processes.gateways ?? sys.cpu?.processes.gateway)?.ms_per_saga ?? null,
      postgres_cpu_pct_of_core: sys.cpu?.processes.postgres?.pct_of_core ?? null,
      postgres_cpu_ms_per_saga: sys.cpu?.processes.postgres?.ms_per_saga ?? null,
      // The system's latency over the floor's, same run, same load plan (the floor runs the same rate in open loop).
      p50_over_floor:
        floor && floor.result.latency_ms.p50 > 0 ? r3(sys.result.latency_ms.p50 / floor.result.latency_ms.p50) : null,
      p99_over_floor:
        floor && floor.result.latency_ms.p99 > 0 ? r3(sys.result.latency_ms.p99 / floor.result.latency_ms.p99) : null,
      machine_busy_pct: sys.cpu?.machine?.busy_pct_of_all_cores ?? null,
      other_processes_pct_of_core: sys.cpu?.machine
        ? r1((sys.cpu.machine.others_core_s / sys.cpu.window_s) * 100)
        : null,
    },
    // `completed` and `sagas_per_s` of the system phase, at the top for quick checks.
    completed: sys.result.completed,
    sagas_per_s: sys.result.sagas_per_s,
    system: { ...sys.result, cpu: sys.cpu, requests_per_gateway: f.requestsPerGateway },
    floor: floor ? { ...floor.result, cpu: floor.cpu } : null,
    ratio_system_to_floor: ratio,
    process_log_lines: f.logLines,
  };
}

export type BenchResult = ReturnType<typeof resultJson>;

export function chartTitles(f: RunFacts, r: BenchResult): { title: string; subtitle: string } {
  const { system: sys, floor } = f;
  return {
    title: `sagas bench — ${sys.result.sagas_per_s} sagas/s, p50 ${ms(sys.result.latency_ms.p50)} ms, p99 ${ms(sys.result.latency_ms.p99)} ms${floor ? `; floor ${floor.result.sagas_per_s} sagas/s (ratio ${r.ratio_system_to_floor})` : ''}`,
    subtitle: `${describePlan(f.opts)} — ${r.machine.cpu_model ?? 'unknown CPU'} ×${r.machine.nproc}, Node ${process.version} — ${f.startedAt.toISOString()}`,
  };
}

/** The text report; `files` are where the JSON and the chart went. */
export function reportText(f: RunFacts, r: BenchResult, files: { json: string; svg: string }): string {
  const { opts, system: sys, floor } = f;
  const timed = opts.durationS !== undefined;
  const rel = (file: string) =>
    path.relative(process.cwd(), file).startsWith('..') ? file : path.relative(process.cwd(), file);
  const lines = [
    `sagas bench — ${describePlan(opts)}`,
    `machine: ${r.machine.cpu_model} ×${r.machine.nproc}, ${r.machine.total_memory_gib} GiB, Node ${process.version}; ${f.startedAt.toISOString()}`,
    '',
    'system (HTTP → gateway → saga log → participants)',
    ...phaseLines(sys.result, timed),
  ];
  if (floor) {
    const load =
      opts.loop === 'open' ? `open loop, ${opts.rate} orders/s` : `closed loop, ${opts.concurrency} in flight`;
    lines.push(
      '',
      `floor (the saga's gRPC calls straight to the participants; ${load})`,
      ...phaseLines(floor.result, timed),
    );
    lines.push(
      `  system / floor ${r.ratio_system_to_floor ?? '-'}  (${sys.result.sagas_per_s} / ${floor.result.sagas_per_s} sagas/s); latency p50 ×${r.summary.p50_over_floor ?? '-'}, p99 ×${r.summary.p99_over_floor ?? '-'} the floor's`,
    );
  }
  const cpu = cpuLines(sys.cpu, floor?.cpu ?? null);
  if (cpu.length) lines.push('', ...cpu);
  const noisy = Object.entries(f.logLines).filter(([, v]) => v.count > 0);
  if (noisy.length)
    lines.push(
      '',
      `log lines at LOG_LEVEL=${opts.logLevel}: ${noisy.map(([k, v]) => `${k} ${v.count}`).join(', ')} (last ones in the JSON)`,
    );
  lines.push('', `results: ${rel(files.json)}`, `chart:   ${rel(files.svg)}`, '');
  return lines.map((l) => l.trimEnd()).join('\n');
}
