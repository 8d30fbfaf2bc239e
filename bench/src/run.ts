/**
 * `sagas bench` (`npm run bench`): load-tests the place-order saga end to end over HTTP, then
 * measures the floor — the same gRPC calls straight to the participants, without the gateway and
 * its saga log — and reports throughput, latency, outcomes, errors and the CPU of every process.
 * Writes a JSON result and an SVG chart under bench/results/. See bench/README.md.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { floorClients, floorJob } from './floor.js';
import { httpClient, httpJob, roundRobin } from './http.js';
import { newLiveState, runLoad, type Job, type LiveState, type LoadPlan, type LoadResult } from './load.js';
import { ownCatalog, ownPool, poolFromProducts, type Mix, type ProductPool } from './orders.js';
import { DEFAULT_BENCH_SERVER_URL, createBenchDatabase, type BenchDatabase } from './postgres.js';
import { redactPassword } from '../../src/platform/config.js';
import { renderSvg } from './svg.js';
import { REPO_ROOT, SERVICE_NAMES, describeExit, dialableAddr, everyProcess, parseGatewayCount, startSystem, type RunningSystem } from '../../src/cli/supervisor.js';

export const BENCH_USAGE = `Usage: sagas bench [options]        (npm run bench -- [options])

Places orders through POST /orders (Prefer: wait=30) and reports completed sagas/s, latency,
outcomes, errors and CPU per process; then measures the floor: the same gRPC calls straight to
the participants from this process, without the gateway and its saga log.

Target:
  --url <url>            Bench a running gateway (no floor, no process CPU: the bench cannot
                         see the participants). Default: start a fresh system on ephemeral
                         ports with a temporary data folder and 1000 products, stop it after.
  --saga-log sqlite|postgres
                         The saga log of the system it starts (default sqlite). postgres: a
                         fresh database sagas_bench_<time> on the server of SAGA_LOG_URL
                         (default ${DEFAULT_BENCH_SERVER_URL}),
                         dropped after the run.
  --gateways <n>         Gateways of the system it starts (default 1; more than one needs
                         --saga-log postgres). Orders go to them in turn; the CPU of each, and
                         their sum, are reported.
  --sync normal|full     SAGA_LOG_SYNC of the system it starts (default normal; SQLite only).
  --log-level L          LOG_LEVEL of the system it starts (default info, the default setting).

Load:
  --concurrency <n>      Closed loop: n orders in flight, each sent when one answers (default 64).
  --rate <r>             Open loop: r orders a second on a fixed timetable, whatever the answers;
                         latency counts from the scheduled time. The floor runs closed-loop at
                         --concurrency.
  --duration <s>         Measure for s seconds (default 10), after --warmup.
  --count <n>            Or measure exactly n orders.
  --warmup <s>           Unmeasured load first (default 3 with --duration, 0 with --count).
  --mix happy|mixed      happy (default), or ~80 % happy, 10 % declined (> $500), 10 % short
                         of stock.
  --no-floor             Skip the floor.

Output:
  --out <file>           Result JSON (default bench/results/<timestamp>-<mode>.json); an SVG
                         chart is written next to it with the same name.
  --quiet                No progress bar and no status lines (the report still goes to stdout).
  --profile <dir>        Sample the CPU of the system's processes (V8 profiler) and write
                         <dir>/*.cpuprofile when they stop (node bench/profile-summary.mjs).
  -h, --help             This text.
`;

export interface BenchDeps {
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  env?: NodeJS.ProcessEnv;
}

export interface BenchOptions {
  url: string | undefined;
  loop: 'closed' | 'open';
  concurrency: number;
  rate: number | undefined;
  durationS: number | undefined;
  count: number | undefined;
  warmupS: number;
  mix: Mix;
  sync: 'normal' | 'full';
  sagaLog: 'sqlite' | 'postgres';
  gateways: number;
  logLevel: string;
  floor: boolean;
  out: string;
  quiet: boolean;
  profileDir: string | undefined;
}

class UsageError extends Error {}

function num(name: string, v: string | undefined, { integer = false, min = 0, exclusive = true } = {}): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || (exclusive ? n <= min : n < min)) {
    throw new UsageError(`--${name} must be a ${integer ? 'whole ' : ''}number ${exclusive ? '>' : '>='} ${min}, got "${v}"`);
  }
  return n;
}

function stamp(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z').replace(/[-:]/g, '').replace('T', '-');
}

/** Parses the command line; throws UsageError. `now` names the default output file. */
export function parseBenchArgs(argv: readonly string[], now = new Date()): BenchOptions | 'help' {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        url: { type: 'string' },
        concurrency: { type: 'string' },
        rate: { type: 'string' },
        duration: { type: 'string' },
        count: { type: 'string' },
        warmup: { type: 'string' },
        mix: { type: 'string' },
        sync: { type: 'string' },
        'saga-log': { type: 'string' },
        gateways: { type: 'string' },
        'log-level': { type: 'string' },
        'no-floor': { type: 'boolean' },
        out: { type: 'string' },
        quiet: { type: 'boolean' },
        profile: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  if (values.help) return 'help';
  const str = (k: string) => values[k] as string | undefined;
  const concurrency = num('concurrency', str('concurrency'), { integer: true, min: 0 }) ?? 64;
  const rate = num('rate', str('rate'));
  let durationS = num('duration', str('duration'));
  const count = num('count', str('count'), { integer: true });
  if (durationS !== undefined && count !== undefined) throw new UsageError('give --duration or --count, not both');
  if (durationS === undefined && count === undefined) durationS = 10;
  const warmupS = num('warmup', str('warmup'), { min: 0, exclusive: false }) ?? (durationS !== undefined ? 3 : 0);
  const mix = str('mix') ?? 'happy';
  if (mix !== 'happy' && mix !== 'mixed') throw new UsageError(`--mix must be happy or mixed, got "${mix}"`);
  const sync = (str('sync') ?? 'normal').toLowerCase();
  if (sync !== 'normal' && sync !== 'full') throw new UsageError(`--sync must be normal or full, got "${sync}"`);
  const sagaLog = (str('saga-log') ?? 'sqlite').toLowerCase();
  if (sagaLog !== 'sqlite' && sagaLog !== 'postgres') throw new UsageError(`--saga-log must be sqlite or postgres, got "${sagaLog}"`);
  const gatewaysRaw = str('gateways');
  let gateways = 1;
  try {
    if (gatewaysRaw !== undefined) gateways = parseGatewayCount(gatewaysRaw);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (gateways > 1 && sagaLog !== 'postgres') throw new UsageError(`--gateways ${gateways} needs --saga-log postgres: the SQLite saga log is one gateway's file`);
  const logLevel = (str('log-level') ?? 'info').toLowerCase();
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(logLevel)) throw new UsageError(`--log-level must be a pino level, got "${logLevel}"`);
  const url = str('url');
  if (url !== undefined) {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new UsageError(`--url must be a URL like http://localhost:8080, got "${url}"`);
    }
    if (u.protocol !== 'http:') throw new UsageError(`--url must be http://, got "${url}"`);
  }
  const loop = rate !== undefined ? 'open' : 'closed';
  const target = url ? 'url' : sagaLog === 'postgres' ? 'pg' : sync;
  const mode = [loop === 'open' ? `open-r${rate}` : `closed-c${concurrency}`, target, !url && gateways > 1 ? `g${gateways}` : undefined, mix === 'mixed' ? 'mixed' : undefined]
    .filter(Boolean)
    .join('-');
  const out = path.resolve(str('out') ?? path.join(REPO_ROOT, 'bench', 'results', `${stamp(now)}-${mode}.json`));
  const profile = str('profile');
  return {
    url: url?.replace(/\/+$/, ''),
    loop,
    concurrency,
    rate,
    durationS,
    count,
    warmupS,
    mix,
    sync,
    sagaLog,
    gateways,
    logLevel,
    floor: !values['no-floor'],
    out,
    quiet: values.quiet === true,
    profileDir: profile ? path.resolve(profile) : undefined,
  };
}

// ---------------------------------------------------------------------------------------------
// CPU accounting

let clockTicks: number | undefined;
function clkTck(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** utime and stime of a process in seconds, from /proc/<pid>/stat; undefined when unreadable. */
export function procCpu(pid: number): { user: number; system: number } | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const tck = clkTck();
    return { user: Number(fields[11]) / tck, system: Number(fields[12]) / tck };
  } catch {
    return undefined;
  }
}

/** Busy and total CPU seconds of the whole machine (all cores), from the first line of /proc/stat. */
export function machineCpu(): { busy: number; total: number } | undefined {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    const v = line.trim().split(/\s+/).slice(1, 9).map(Number); // user nice system idle iowait irq softirq steal
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    const total = v.reduce((a, b) => a + b, 0);
    const tck = clkTck();
    return { busy: (total - idle) / tck, total: total / tck };
  } catch {
    return undefined;
  }
}

type Cpu = { user: number; system: number };

interface CpuSnapshot {
  at: number;
  /** By process name: order, inventory, payment, then gateway (or gateway-1, gateway-2…). */
  procs: Record<string, Cpu>;
  /** The gateways' names, in order. */
  gateways: string[];
  /**
   * The PostgreSQL backends serving the bench database, by pid, or why they are not measured;
   * undefined without one. Filled in a few milliseconds after `at` (a query finds the pids).
   */
  pg?: Map<number, Cpu> | { notMeasured: string };
  self: NodeJS.CpuUsage;
  machine: { busy: number; total: number } | undefined;
}

/** A snapshot now; `done` resolves once the PostgreSQL part (if any) is in. */
function snapshot(system: RunningSystem | undefined, db: BenchDatabase | undefined): { snap: CpuSnapshot; done: Promise<void> } {
  const procs: CpuSnapshot['procs'] = {};
  const list = system ? everyProcess(system) : [];
  for (const p of list) {
    const c = procCpu(p.pid);
    if (c) procs[p.name] = c;
  }
  const snap: CpuSnapshot = { at: performance.now(), procs, gateways: system ? system.gateways.map((g) => g.name) : [], self: process.cpuUsage(), machine: machineCpu() };
  const done = db
    ? db.backends().then((r) => {
        snap.pg = Array.isArray(r) ? new Map(r.flatMap((pid) => ((c) => (c ? [[pid, c] as const] : []))(procCpu(pid)))) : r;
      })
    : Promise.resolve();
  return { snap, done };
}

export interface CpuFigure {
  user_s: number;
  system_s: number;
  total_s: number;
  /** Of one core, over the measurement window. */
  pct_of_core: number;
}

export interface CpuReport {
  window_s: number;
  /**
   * By process: the services, each gateway, `gateways` (their sum, when several), `postgres`
   * (the server backends serving the bench database, when measured) and `bench`.
   */
  processes: Record<string, CpuFigure>;
  /** All the processes above together (the `gateways` sum counted once). */
  total: CpuFigure;
  /** With --saga-log postgres: whether its backends were measured, how many, or why not. */
  postgres: { measured: true; backends: number; note: string } | { measured: false; reason: string } | null;
  /** CPU of all processes per completed saga. */
  cpu_ms_per_saga: number | null;
  /**
   * The whole machine over the window: how busy all its cores were, and the CPU seconds of
   * processes other than the ones above (other work on the machine competing with the bench).
   */
  machine: { cores: number; busy_pct_of_all_cores: number; busy_core_s: number; others_core_s: number } | null;
}

const r3 = (v: number) => Math.round(v * 1000) / 1000;
const r1 = (v: number) => Math.round(v * 10) / 10;

function cpuReport(a: CpuSnapshot, b: CpuSnapshot, completed: number): CpuReport {
  const wall = (b.at - a.at) / 1000;
  const fig = (user: number, system: number): CpuFigure => ({
    user_s: r3(user),
    system_s: r3(system),
    total_s: r3(user + system),
    pct_of_core: wall > 0 ? r1(((user + system) / wall) * 100) : 0,
  });
  const processes: Record<string, CpuFigure> = {};
  let u = 0;
  let s = 0;
  let gu = 0;
  let gs = 0;
  let measuredGateways = 0;
  for (const [n, y] of Object.entries(b.procs)) {
    const x = a.procs[n];
    if (!x) continue;
    processes[n] = fig(y.user - x.user, y.system - x.system);
    u += y.user - x.user;
    s += y.system - x.system;
    if (b.gateways.includes(n)) {
      gu += y.user - x.user;
      gs += y.system - x.system;
      measuredGateways++;
    }
  }
  if (b.gateways.length > 1 && measuredGateways > 0) processes.gateways = fig(gu, gs);
  let postgres: CpuReport['postgres'] = null;
  if (a.pg instanceof Map && b.pg instanceof Map) {
    let pu = 0;
    let ps = 0;
    // A backend that appeared during the window counts from zero; one gone before its end is lost.
    for (const [pid, y] of b.pg) {
      const x = a.pg.get(pid) ?? { user: 0, system: 0 };
      pu += Math.max(0, y.user - x.user);
      ps += Math.max(0, y.system - x.system);
    }
    processes.postgres = fig(pu, ps);
    u += pu;
    s += ps;
    postgres = { measured: true, backends: b.pg.size, note: 'the server backends connected to the bench database at the end of the window (not the WAL writer, checkpointer or other server processes)' };
  } else if (a.pg || b.pg) {
    const why = [a.pg, b.pg].find((p): p is { notMeasured: string } => p !== undefined && !(p instanceof Map));
    postgres = { measured: false, reason: why?.notMeasured ?? 'not measured' };
  }
  const su = (b.self.user - a.self.user) / 1e6;
  const ss = (b.self.system - a.self.system) / 1e6;
  processes.bench = fig(su, ss);
  u += su;
  s += ss;
  let machine: CpuReport['machine'] = null;
  if (a.machine && b.machine && b.machine.total > a.machine.total) {
    const busy = b.machine.busy - a.machine.busy;
    machine = {
      cores: os.cpus().length,
      busy_pct_of_all_cores: r1((busy / (b.machine.total - a.machine.total)) * 100),
      busy_core_s: r3(busy),
      others_core_s: r3(Math.max(0, busy - (u + s))),
    };
  }
  return { window_s: r3(wall), processes, total: fig(u, s), postgres, cpu_ms_per_saga: completed > 0 ? r3(((u + s) * 1000) / completed) : null, machine };
}

// ---------------------------------------------------------------------------------------------
// Progress line

function progress(stderr: NonNullable<BenchDeps['stderr']>, label: string, plan: LoadPlan, live: LiveState): () => void {
  const started = performance.now();
  const history: { at: number; answered: number }[] = [];
  const width = 20;
  const draw = () => {
    const now = performance.now();
    history.push({ at: now, answered: live.answered });
    while (history.length > 2 && now - (history[1] as { at: number }).at >= 1000) history.shift();
    const first = history[0] as { at: number; answered: number };
    const rate = now - first.at > 50 ? ((live.answered - first.answered) * 1000) / (now - first.at) : 0;
    let frac: number;
    let where: string;
    if (live.stage === 'warmup') {
      frac = plan.warmupS > 0 ? Math.min(1, (now - started) / (plan.warmupS * 1000)) : 0;
      where = `warm-up ${((now - started) / 1000).toFixed(1)}/${plan.warmupS} s`;
    } else if (plan.durationS !== undefined) {
      const el = live.measureStart !== undefined ? (now - live.measureStart) / 1000 : 0;
      frac = Math.min(1, el / plan.durationS);
      where = live.stage === 'drain' ? `draining ${live.inFlight}` : `${Math.min(el, plan.durationS).toFixed(1)}/${plan.durationS} s`;
    } else {
      frac = Math.min(1, (live.completed + live.errors) / (plan.count ?? 1));
      where = `${live.completed + live.errors}/${plan.count}`;
    }
    const filled = Math.round(frac * width);
    const p99 = live.hist.percentile(99);
    const line = `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${where}  ${live.completed} done  ${Math.round(rate)}/s  p99 ${Number.isFinite(p99) ? ms(p99) : '-'} ms  ${live.errors} err  ${live.inFlight} in flight`;
    const cols = stderr.columns ?? 120;
    stderr.write(`\r${line.slice(0, cols - 1)}\u001b[K`);
  };
  draw();
  const timer = setInterval(draw, 250);
  return () => {
    clearInterval(timer);
    stderr.write('\r\u001b[K');
  };
}

// ---------------------------------------------------------------------------------------------
// Report

const ms = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

function describePlan(o: BenchOptions): string {
  const load = o.loop === 'open' ? `open loop, ${o.rate} orders/s` : `closed loop, ${o.concurrency} in flight`;
  const length = o.durationS !== undefined ? `${o.durationS} s` : `${o.count} orders`;
  const warm = o.warmupS > 0 ? ` (+${o.warmupS} s warm-up)` : '';
  const gateways = o.gateways > 1 ? `, ${o.gateways} gateways` : '';
  const target = o.url ? `target ${o.url}` : o.sagaLog === 'postgres' ? `saga log PostgreSQL${gateways}` : `saga log sync ${o.sync}${gateways}`;
  return `${load}, ${length}${warm}, mix ${o.mix}, ${target}`;
}

function phaseLines(r: LoadResult, timed: boolean): string[] {
  const l = r.latency_ms;
  const lines = [
    `  completed      ${r.completed} of ${r.sent} sent; ${r.sagas_per_s} sagas/s over ${r.window_s} s${r.drain_s > 0 ? ` (then ${r.drain_s} s draining)` : ''}`,
    `  latency ms     p50 ${ms(l.p50)}  p95 ${ms(l.p95)}  p99 ${ms(l.p99)}  max ${ms(l.max)}  (mean ${ms(l.mean)})`,
    `  outcomes       ${Object.entries(r.outcomes).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`,
  ];
  const detail = Object.entries(r.outcome_detail);
  if (detail.length > 1 || detail.some(([k]) => k.includes('unexpected'))) for (const [k, v] of detail) lines.push(`                   ${k}: ${v}`);
  lines.push(`  errors         ${r.errors.total}${r.errors.total ? ` (${Object.entries(r.errors.by_kind).map(([k, v]) => `${k} ×${v}`).join(', ')})` : ''}`);
  if (r.max_send_lag_ms !== null) lines.push(`  sender lag     at worst ${ms(r.max_send_lag_ms)} ms behind the timetable; ${r.max_in_flight} in flight at most`);
  if (timed && r.rate !== null && r.sagas_per_s < 0.95 * r.rate) {
    lines.push(`  saturated      ${r.sagas_per_s} sagas/s < ${r.rate} offered: orders queued, and the latency above is mostly that queue`);
  }
  return lines;
}

function cpuLines(system: CpuReport | null, floor: CpuReport | null): string[] {
  if (!system && !floor) return [];
  // The rows in the order the reports have them, `bench` last.
  const keys = [...new Set([...Object.keys(system?.processes ?? {}), ...Object.keys(floor?.processes ?? {})])];
  const names = [...keys.filter((k) => k !== 'bench'), 'bench'];
  const LABELS: Record<string, string> = { bench: 'bench (load gen.)', gateways: 'gateways (sum)', postgres: 'postgres backends' };
  const cell = (c: CpuReport | null, n: string) => {
    const f = n === 'total' ? c?.total : c?.processes[n];
    return f ? `${f.total_s.toFixed(2).padStart(6)} s ${String(Math.round(f.pct_of_core)).padStart(4)} %` : '         -    ';
  };
  const lines = ['CPU (user+system seconds over the window, and % of one core)', `  ${'process'.padEnd(20)}${'system phase'.padEnd(18)}${floor ? 'floor phase' : ''}`];
  const onlyBench = !names.some((n) => n !== 'bench' && (system?.processes[n] || floor?.processes[n]));
  for (const n of onlyBench ? names : [...names, 'total']) {
    if (!system?.processes[n] && !floor?.processes[n] && n !== 'total') continue;
    const label = LABELS[n] ?? n;
    lines.push(`  ${label.padEnd(20)}${cell(system, n).padEnd(18)}${floor ? cell(floor, n) : ''}`);
  }
  const pgNote = system?.postgres ?? floor?.postgres;
  if (pgNote && !pgNote.measured) lines.push(`  ${'postgres backends'.padEnd(20)}not measured: ${pgNote.reason}`);
  const per = (c: CpuReport | null) => (c?.cpu_ms_per_saga != null ? `${c.cpu_ms_per_saga.toFixed(2)} ms` : '-');
  if (!onlyBench) lines.push(`  ${'CPU per saga'.padEnd(20)}${per(system).padEnd(18)}${floor ? per(floor) : ''}`);
  const others = (c: CpuReport | null) => (c?.machine ? `${c.machine.others_core_s.toFixed(2).padStart(6)} s ${String(Math.round((c.machine.others_core_s / c.window_s) * 100)).padStart(4)} %` : '-');
  const busy = (c: CpuReport | null) => (c?.machine ? `${String(Math.round(c.machine.busy_pct_of_all_cores)).padStart(13)} %` : '-');
  if (system?.machine || floor?.machine) {
    lines.push(`  ${'other processes'.padEnd(20)}${others(system).padEnd(18)}${floor ? others(floor) : ''}`);
    lines.push(`  ${`machine busy (${system?.machine?.cores ?? floor?.machine?.cores} cores)`.padEnd(20)}${busy(system).padEnd(18)}${floor ? busy(floor) : ''}`);
  }
  return lines;
}

// ---------------------------------------------------------------------------------------------

function gitInfo(): { commit: string | null; dirty: boolean | null } {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain'], { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() !== '';
    return { commit, dirty };
  } catch {
    return { commit: null, dirty: null };
  }
}

async function fetchPool(url: string): Promise<ProductPool> {
  const client = httpClient(url, 1, 10_000);
  try {
    const r = await client.request('GET', '/products');
    if (r.status !== 200) throw new Error(`GET ${url}/products answered ${r.status}: ${r.body.slice(0, 200)}`);
    const { products } = JSON.parse(r.body) as { products: { product_id: string; available: number }[] };
    const pool = poolFromProducts(products);
    if (pool.stocked.length === 0) throw new Error(`no product of ${url} has stock to order`);
    return pool;
  } finally {
    client.destroy();
  }
}

/** Runs the command; resolves with the exit code. */
export async function runBench(argv: readonly string[], deps: BenchDeps = {}): Promise<number> {
  const stdout = deps.stdout ?? process.stdout;
  const stderr = deps.stderr ?? process.stderr;
  const env = deps.env ?? process.env;
  let opts: BenchOptions;
  try {
    const parsed = parseBenchArgs(argv);
    if (parsed === 'help') {
      stdout.write(BENCH_USAGE);
      return 0;
    }
    opts = parsed;
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    stderr.write(`sagas bench: ${err.message}\n\n${BENCH_USAGE}`);
    return 2;
  }

  const say = (s: string) => {
    if (!opts.quiet) stderr.write(`[bench] ${s}\n`);
  };
  const showProgress = !opts.quiet && stderr.isTTY === true;
  const startedAt = new Date();
  const runId = randomBytes(6).toString('hex');

  // Ctrl-C: the first stops the load and tears down; a second kills the system's processes.
  const abort = new AbortController();
  let system: RunningSystem | undefined;
  let sigints = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    sigints++;
    if (sigints === 1) {
      stderr.write(`\n[bench] ${sig}: stopping (again to kill)\n`);
      abort.abort();
    } else if (system) {
      for (const p of everyProcess(system)) void p.kill();
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let tmpDir: string | undefined;
  let db: BenchDatabase | undefined;
  let failure: string | undefined;
  let stopping = false;
  const logLines: Record<string, { count: number; last: string[] }> = {};
  let exitCode = 0;
  try {
    // ---- target
    let pool: ProductPool;
    let url: string;
    if (opts.url) {
      url = opts.url;
      for (const flag of ['--sync', '--saga-log', '--gateways']) {
        if (argv.some((a) => a === flag || a.startsWith(`${flag}=`))) say(`${flag} is ignored with --url: it applies to the system the bench starts`);
      }
      say(`target ${url}; reading its products`);
      pool = await fetchPool(url);
      if (pool.warning) stderr.write(`[bench] warning: ${pool.warning}\n`);
      say(`${pool.stocked.length} products with stock${pool.short ? `; short of stock: ${pool.short.productId} × ${pool.short.quantity}` : '; none short of stock (mixed "no stock" orders will confirm)'}`);
    } else {
      tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sagas-bench-'));
      const catalog = ownCatalog(1000, 1_000_000_000);
      const catalogFile = path.join(tmpDir, 'catalog.json');
      fs.writeFileSync(catalogFile, JSON.stringify(catalog));
      pool = ownPool(catalog);
      let sagaLogUrl = ''; // SQLite under the data folder, whatever the shell says
      if (opts.sagaLog === 'postgres') {
        const server = env.SAGA_LOG_URL || DEFAULT_BENCH_SERVER_URL;
        try {
          db = await createBenchDatabase(server, startedAt);
        } catch (err) {
          throw new Error(
            `cannot create the bench database on ${redactPassword(server)}: ${err instanceof Error ? err.message : String(err)}\n` +
              '(--saga-log postgres needs a PostgreSQL server where it may CREATE DATABASE: set SAGA_LOG_URL=postgres://user:password@host:5432/database)',
          );
        }
        sagaLogUrl = db.url;
        say(`created database ${db.name} on ${db.server}; it is dropped after the run`);
      }
      const childEnv: NodeJS.ProcessEnv = {
        LOG_LEVEL: opts.logLevel,
        INVENTORY_CATALOG: catalogFile,
        SAGA_LOG_URL: sagaLogUrl,
        SAGA_LOG_SYNC: opts.sync,
        // Its own keys in the shared Redis, gone soon after the run.
        REDIS_KEY_PREFIX: `bench-${path.basename(tmpDir)}`,
        IDEMPOTENCY_TTL: '10m',
        INBOX_FAST_PATH_TTL: '1m',
      };
      if (opts.profileDir) {
        fs.mkdirSync(opts.profileDir, { recursive: true });
        // Node refuses --cpu-prof in NODE_OPTIONS, and the supervisor fixes the children's execArgv:
        // a preloaded module runs the inspector's profiler instead.
        childEnv.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --import=${pathToFileURL(path.join(REPO_ROOT, 'bench', 'cpu-profile.mjs')).href}`.trim();
        childEnv.BENCH_CPU_PROF_DIR = opts.profileDir;
      }
      const log = db ? `saga log ${db.name}` : `SAGA_LOG_SYNC=${opts.sync}`;
      say(`starting a fresh system (${log}${opts.gateways > 1 ? `, ${opts.gateways} gateways` : ''}, data in ${tmpDir})`);
      system = await startSystem({
        dataDir: path.join(tmpDir, 'data'),
        ports: 'ephemeral',
        gateways: opts.gateways,
        env: childEnv,
        signal: abort.signal,
        onLine: (name, line) => {
          const l = (logLines[name] ??= { count: 0, last: [] });
          l.count++;
          l.last.push(line.slice(0, 500));
          if (l.last.length > 5) l.last.shift();
        },
      });
      url = system.url;
      say(`up: ${system.gateways.map((g, i) => `${g.name} ${system!.urls[i]}`).join(', ')}; ${SERVICE_NAMES.filter((n) => n !== 'gateway').map((n) => `${n} ${system!.addresses[n]}`).join(', ')}`);
      for (const p of everyProcess(system)) {
        void p.exited.then((s) => {
          if (stopping || abort.signal.aborted) return;
          failure = `${p.name} (pid ${p.pid}) ${describeExit(s)} during the run; its last lines:\n${p.output(15).join('\n')}`;
          abort.abort();
        });
      }
    }

    const plan: LoadPlan = {
      loop: opts.loop,
      concurrency: opts.concurrency,
      rate: opts.rate,
      durationS: opts.durationS,
      count: opts.count,
      warmupS: opts.warmupS,
    };
    const measure = async (label: string, job: Job, p: LoadPlan, onAbort?: () => void): Promise<{ result: LoadResult; cpu: CpuReport | null }> => {
      const live = newLiveState();
      let a: CpuSnapshot | undefined;
      let b: CpuSnapshot | undefined;
      const pending: Promise<void>[] = [];
      const take = () => {
        const { snap, done } = snapshot(system, db);
        pending.push(done);
        return snap;
      };
      const stopProgress = showProgress ? progress(stderr, label, p, live) : undefined;
      const abortListener = () => onAbort?.();
      abort.signal.addEventListener('abort', abortListener, { once: true });
      try {
        const result = await runLoad(job, p, {
          signal: abort.signal,
          live,
          hooks: { onMeasureStart: () => (a = take()), onMeasureEnd: () => (b = take()) },
        });
        await Promise.all(pending);
        // Per saga: the sagas that ended inside the window the CPU was measured over.
        const cpu = a && b ? cpuReport(a, b, Math.round(result.sagas_per_s * result.window_s)) : null;
        return { result, cpu };
      } finally {
        abort.signal.removeEventListener('abort', abortListener);
        stopProgress?.();
      }
    };

    // ---- system phase
    const sockets = opts.loop === 'closed' ? opts.concurrency : Math.max(opts.concurrency, 256);
    // Several gateways: orders go to each in turn.
    const client = roundRobin((system ? system.urls : [url]).map((u) => httpClient(u, sockets)));
    say(`system phase: ${describePlan(opts)}`);
    let sys: { result: LoadResult; cpu: CpuReport | null };
    try {
      sys = await measure('system', httpJob({ client, pool, mix: opts.mix, random: Math.random, runId }), plan, () => client.destroy());
    } finally {
      client.destroy();
    }
    if (abort.signal.aborted) throw new Error(failure ?? 'interrupted');

    // ---- floor phase
    let floor: { result: LoadResult; cpu: CpuReport | null } | undefined;
    if (opts.floor && system) {
      const floorPlan: LoadPlan = { ...plan, loop: 'closed', rate: undefined };
      const clients = floorClients({
        order: dialableAddr(system.addresses.order),
        inventory: dialableAddr(system.addresses.inventory),
        payment: dialableAddr(system.addresses.payment),
      });
      say(`floor phase: the same gRPC calls from this process, closed loop, ${opts.concurrency} in flight`);
      try {
        floor = await measure('floor ', floorJob({ clients, pool, mix: opts.mix, random: Math.random }), floorPlan);
      } finally {
        clients.close();
      }
      if (abort.signal.aborted) throw new Error(failure ?? 'interrupted');
    } else if (opts.floor) {
      say('no floor with --url: the bench does not know where the participants are');
    }

    // ---- stop the system before writing, so its CPU profile (if any) is flushed
    if (system) {
      say('stopping the system');
      stopping = true;
      await system.stop();
    }
    const finishedAt = new Date();

    const ratio = floor && floor.result.sagas_per_s > 0 ? r3(sys.result.sagas_per_s / floor.result.sagas_per_s) : null;
    const cpus = os.cpus();
    const result = {
      schema: 'sagas-bench/1',
      command: ['sagas', 'bench', ...argv].join(' '),
      argv: [...argv],
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
        saga_log_database: db ? { server: db.server, name: db.name, dropped_after: true } : null,
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
      started_at: startedAt.toISOString(),
      finished_at: finishedAt.toISOString(),
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
        postgres_cpu_pct_of_core: sys.cpu?.processes.postgres?.pct_of_core ?? null,
        machine_busy_pct: sys.cpu?.machine?.busy_pct_of_all_cores ?? null,
        other_processes_pct_of_core: sys.cpu?.machine ? r1((sys.cpu.machine.others_core_s / sys.cpu.window_s) * 100) : null,
      },
      // `completed` and `sagas_per_s` of the system phase, at the top for quick checks.
      completed: sys.result.completed,
      sagas_per_s: sys.result.sagas_per_s,
      system: { ...sys.result, cpu: sys.cpu, requests_per_gateway: system ? Object.fromEntries(system.gateways.map((g, i) => [g.name, client.sent[i] ?? 0])) : null },
      floor: floor ? { ...floor.result, cpu: floor.cpu } : null,
      ratio_system_to_floor: ratio,
      process_log_lines: logLines,
    };

    fs.mkdirSync(path.dirname(opts.out), { recursive: true });
    fs.writeFileSync(opts.out, `${JSON.stringify(result, null, 2)}\n`);
    const svgFile = opts.out.replace(/\.json$/i, '') + '.svg';
    fs.writeFileSync(
      svgFile,
      renderSvg({
        title: `sagas bench — ${sys.result.sagas_per_s} sagas/s, p50 ${ms(sys.result.latency_ms.p50)} ms, p99 ${ms(sys.result.latency_ms.p99)} ms${floor ? `; floor ${floor.result.sagas_per_s} sagas/s (ratio ${ratio})` : ''}`,
        subtitle: `${describePlan(opts)} — ${result.machine.cpu_model ?? 'unknown CPU'} ×${result.machine.nproc}, Node ${process.version} — ${startedAt.toISOString()}`,
        system: { series: sys.result.series, windowS: sys.result.window_s },
        floor: floor ? { series: floor.result.series, windowS: floor.result.window_s } : undefined,
      }),
    );

    // ---- report
    const rel = (f: string) => (path.relative(process.cwd(), f).startsWith('..') ? f : path.relative(process.cwd(), f));
    const lines = [
      `sagas bench — ${describePlan(opts)}`,
      `machine: ${result.machine.cpu_model} ×${result.machine.nproc}, ${result.machine.total_memory_gib} GiB, Node ${process.version}; ${startedAt.toISOString()}`,
      '',
      'system (HTTP → gateway → saga log → participants)',
      ...phaseLines(sys.result, opts.durationS !== undefined),
    ];
    if (floor) {
      lines.push('', `floor (the saga's gRPC calls straight to the participants; closed loop, ${opts.concurrency} in flight)`, ...phaseLines(floor.result, opts.durationS !== undefined));
      lines.push(`  system / floor ${ratio ?? '-'}  (${sys.result.sagas_per_s} / ${floor.result.sagas_per_s} sagas/s)`);
    }
    const cpu = cpuLines(sys.cpu, floor?.cpu ?? null);
    if (cpu.length) lines.push('', ...cpu);
    const noisy = Object.entries(logLines).filter(([, v]) => v.count > 0);
    if (noisy.length) lines.push('', `log lines at LOG_LEVEL=${opts.logLevel}: ${noisy.map(([k, v]) => `${k} ${v.count}`).join(', ')} (last ones in the JSON)`);
    lines.push('', `results: ${rel(opts.out)}`, `chart:   ${rel(svgFile)}`, '');
    stdout.write(lines.map((l) => l.trimEnd()).join('\n'));
    if (sys.result.completed === 0) exitCode = 1;
  } catch (err) {
    const interrupted = failure === undefined && abort.signal.aborted;
    const msg = failure ?? (err instanceof Error ? err.message : String(err));
    stderr.write(`sagas bench: ${interrupted ? 'interrupted; nothing written' : msg}\n`);
    exitCode = interrupted ? 130 : 1;
  } finally {
    stopping = true;
    if (system) await system.stop();
    if (db) {
      const name = db.name;
      await db.drop().then(
        () => say(`dropped database ${name}`),
        (err: unknown) => stderr.write(`[bench] warning: could not drop database ${name} on ${db!.server}: ${err instanceof Error ? err.message : String(err)}\n`),
      );
    }
    if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return exitCode;
}
