/**
 * CPU accounting of a bench phase, from /proc: each process of the system the bench started, the
 * PostgreSQL backends serving its database, the bench itself and the whole machine, as snapshots
 * taken when the measurement window opens and closes, and the report of their difference.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import type { BenchDatabase } from './postgres.js';
import { r1, r3 } from './stats.js';
import { everyProcess, type RunningSystem } from '../../src/supervisor/supervisor.js';

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

export interface CpuSnapshot {
  at: number;
  /** By process name: order, inventory, payment, then gateway (or gateway-1, gateway-2…). */
  procs: Record<string, Cpu>;
  /** The gateways' names, in order. */
  gateways: string[];
  /**
   * The PostgreSQL backends serving the bench's databases (the saga log's, the participants'), by
   * pid, or why they are not measured; undefined without any. Filled in a few milliseconds after
   * `at` (a query finds the pids).
   */
  pg?: Map<number, Cpu> | { notMeasured: string };
  self: NodeJS.CpuUsage;
  machine: { busy: number; total: number } | undefined;
}

/** A snapshot now; `done` resolves once the PostgreSQL part (if any) is in. */
export function snapshot(
  system: RunningSystem | undefined,
  dbs: readonly BenchDatabase[],
): { snap: CpuSnapshot; done: Promise<void> } {
  const procs: CpuSnapshot['procs'] = {};
  const list = system ? everyProcess(system) : [];
  for (const p of list) {
    const c = procCpu(p.pid);
    if (c) procs[p.name] = c;
  }
  const snap: CpuSnapshot = {
    at: performance.now(),
    procs,
    gateways: system ? system.gateways.map((g) => g.name) : [],
    self: process.cpuUsage(),
    machine: machineCpu(),
  };
  const done =
    dbs.length > 0
      ? Promise.all(dbs.map((db) => db.backends())).then((each) => {
          const why = each.find((r): r is { notMeasured: string } => !Array.isArray(r));
          snap.pg = why
            ? why
            : new Map(
                (each as number[][]).flat().flatMap((pid) => ((c) => (c ? [[pid, c] as const] : []))(procCpu(pid))),
              );
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
  /** CPU milliseconds per saga that ended in the window (null when none did). */
  ms_per_saga: number | null;
}

export interface CpuReport {
  window_s: number;
  /**
   * By process: the services (each replica, `order-1`, `order-2`…, when several), each gateway,
   * `gateways` (their sum, when several), `postgres` (the server backends serving the bench's
   * databases, when measured) and `bench`.
   */
  processes: Record<string, CpuFigure>;
  /** All the processes above together (the `gateways` sum counted once). */
  total: CpuFigure;
  /** With a database on PostgreSQL (--saga-log postgres, --participants postgres): whether its backends were measured, how many, or why not. */
  postgres: { measured: true; backends: number; note: string } | { measured: false; reason: string } | null;
  /** CPU of all processes per completed saga. */
  cpu_ms_per_saga: number | null;
  /**
   * The whole machine over the window: how busy all its cores were, and the CPU seconds of
   * processes other than the ones above (other work on the machine competing with the bench).
   */
  machine: { cores: number; busy_pct_of_all_cores: number; busy_core_s: number; others_core_s: number } | null;
}

export function cpuReport(a: CpuSnapshot, b: CpuSnapshot, completed: number): CpuReport {
  const wall = (b.at - a.at) / 1000;
  const fig = (user: number, system: number): CpuFigure => ({
    user_s: r3(user),
    system_s: r3(system),
    total_s: r3(user + system),
    pct_of_core: wall > 0 ? r1(((user + system) / wall) * 100) : 0,
    ms_per_saga: completed > 0 ? r3(((user + system) * 1000) / completed) : null,
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
    postgres = {
      measured: true,
      backends: b.pg.size,
      note: "the server backends connected to the bench's databases at the end of the window (not the WAL writer, checkpointer or other server processes)",
    };
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
  return {
    window_s: r3(wall),
    processes,
    total: fig(u, s),
    postgres,
    cpu_ms_per_saga: completed > 0 ? r3(((u + s) * 1000) / completed) : null,
    machine,
  };
}
