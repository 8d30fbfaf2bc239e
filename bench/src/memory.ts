/**
 * `--memory`: the memory of each process of the system the bench started, sampled at idle, every
 * N sagas of the system phase and at its end. RSS and its parts from /proc/<pid>/status (anon:
 * the heap, malloc and SQLite's page cache; file: mapped code; shmem: SQLite's WAL index), V8's
 * heap from the process itself through the memory probe (a test hook: the children run with
 * SAGAS_TEST_HOOKS=1, see src/platform/process/memory-probe.ts). Printed as it goes, and written
 * as CSV and JSON next to the result. With a snapshot folder, each sample also writes a heap
 * snapshot of every process (slow: seconds of pause per process).
 */
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { LiveState } from './load.js';
import { everyProcess, type ManagedProcess, type RunningSystem } from '../../src/supervisor/supervisor.js';
import type { MemoryUsage } from '../../src/platform/process/memory-probe.js';

const MIB = 1024 * 1024;
const mib = (b: number | undefined) => (b === undefined ? null : Math.round((b / MIB) * 10) / 10);

export interface ProcessMemory {
  name: string;
  pid: number;
  /** MiB, from /proc/<pid>/status. */
  rss: number | null;
  rss_anon: number | null;
  rss_file: number | null;
  rss_shmem: number | null;
  /** MiB of rss_anon in glibc's main malloc arena (the [heap] mapping of /proc/<pid>/smaps): SQLite's page cache, nghttp2, OpenSSL, buffers. */
  malloc_brk: number | null;
  /**
   * read(2)-family calls and bytes since the process started (/proc/<pid>/io syscr, rchar): sockets
   * and SQLite's page reads from the OS. Between two runs of the same load, the difference is what a
   * smaller page cache reads back.
   */
  read_calls: number | null;
  read_mib: number | null;
  /** MiB, from the process (process.memoryUsage(), v8.getHeapStatistics()). */
  heap_used: number | null;
  heap_total: number | null;
  external: number | null;
  array_buffers: number | null;
  malloced: number | null;
  /** Live MiB per V8 space. */
  spaces: Record<string, number> | null;
  /** Committed MiB per V8 space. */
  space_sizes: Record<string, number> | null;
  /** Collections since the process started answering (the probe's start): count and pause ms, by kind. */
  gc: MemoryUsage['gc'] | null;
  snapshot?: string;
}

export interface MemorySample {
  /** idle | <n> sagas | end */
  label: string;
  /** Terminal answers so far (warm-up included). */
  sagas: number;
  at_s: number;
  processes: ProcessMemory[];
}

/** VmRSS, RssAnon, RssFile, RssShmem of a process in bytes; empty when unreadable (it exited). */
export function procStatusMemory(pid: number): Partial<Record<'rss' | 'anon' | 'file' | 'shmem', number>> {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return {};
  }
  const kb = (key: string) => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : undefined;
  };
  return { rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile'), shmem: kb('RssShmem') };
}

/** Resident anonymous bytes of the [heap] mapping (glibc's main arena), from /proc/<pid>/smaps. */
export function brkAnon(pid: number): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/smaps`, 'utf8');
  } catch {
    return undefined;
  }
  const at = text.indexOf(' [heap]\n');
  if (at < 0) return 0;
  const m = /^Anonymous:\s+(\d+) kB/m.exec(text.slice(at));
  return m ? Number(m[1]) * 1024 : undefined;
}

/** syscr and rchar of /proc/<pid>/io. */
export function procIo(pid: number): { calls?: number; bytes?: number } {
  try {
    const text = fs.readFileSync(`/proc/${pid}/io`, 'utf8');
    const get = (k: string) => {
      const m = new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(text);
      return m ? Number(m[1]) : undefined;
    };
    return { calls: get('syscr'), bytes: get('rchar') };
  } catch {
    return {};
  }
}

let nextId = 1;

/** Sends one probe message to a child and resolves with its answer (undefined after `timeoutMs`). */
function ask<T>(p: ManagedProcess, msg: Record<string, unknown>, timeoutMs: number): Promise<T | undefined> {
  const id = nextId++;
  return new Promise((resolve) => {
    const done = (v: T | undefined) => {
      clearTimeout(timer);
      p.child.off('message', onMessage);
      resolve(v);
    };
    const onMessage = (m: unknown) => {
      const o = m as { type?: unknown; id?: unknown } | null;
      if (o && o.type === msg.type && o.id === id) done(m as T);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    p.child.on('message', onMessage);
    try {
      p.child.send({ ...msg, id });
    } catch {
      done(undefined);
    }
  });
}

async function sampleProcess(p: ManagedProcess, snapshotDir: string | undefined): Promise<ProcessMemory> {
  const answer = await ask<{ usage: MemoryUsage }>(p, { type: 'memory-usage' }, 5_000);
  const st = procStatusMemory(p.pid);
  const io = procIo(p.pid);
  const u = answer?.usage;
  const row: ProcessMemory = {
    name: p.name,
    pid: p.pid,
    rss: mib(st.rss),
    rss_anon: mib(st.anon),
    rss_file: mib(st.file),
    rss_shmem: mib(st.shmem),
    malloc_brk: mib(brkAnon(p.pid)),
    read_calls: io.calls ?? null,
    read_mib: mib(io.bytes),
    heap_used: mib(u?.heapUsed),
    heap_total: mib(u?.heapTotal),
    external: mib(u?.external),
    array_buffers: mib(u?.arrayBuffers),
    malloced: mib(u?.mallocedMemory),
    spaces: u ? Object.fromEntries(Object.entries(u.spaces).map(([k, v]) => [k, mib(v) as number])) : null,
    gc: u?.gc ?? null,
    space_sizes: u?.spaceSizes
      ? Object.fromEntries(Object.entries(u.spaceSizes).map(([k, v]) => [k, mib(v) as number]))
      : null,
  };
  if (snapshotDir) {
    const s = await ask<{ file?: string; error?: string }>(p, { type: 'heap-snapshot', dir: snapshotDir }, 120_000);
    row.snapshot = s?.file ?? `failed: ${s?.error ?? 'no answer'}`;
  }
  return row;
}

/** One sample of every process of the system, one after the other (a snapshot pauses its process). */
export async function sampleMemory(
  system: RunningSystem,
  label: string,
  sagas: number,
  t0: number,
  snapshotDir?: string,
): Promise<MemorySample> {
  const processes: ProcessMemory[] = [];
  for (const p of everyProcess(system)) if (p.running) processes.push(await sampleProcess(p, snapshotDir));
  return { label, sagas, at_s: Math.round(performance.now() - t0) / 1000, processes };
}

/** One line per sample: `gateway 312.4 (heap 80.1/95.0)` for each process, MiB. */
export function sampleLine(s: MemorySample): string {
  const each = s.processes.map((p) => `${p.name} ${p.rss ?? '?'} (heap ${p.heap_used ?? '?'}/${p.heap_total ?? '?'})`);
  return `${s.label.padEnd(14)} RSS MiB: ${each.join(', ')}`;
}

export interface MemoryWatch {
  /** Resolves once the idle sample is in: start the load after it. */
  ready: Promise<void>;
  /** Resolves with every sample taken, once the last one (the end's) is in. */
  finish(): Promise<MemorySample[]>;
}

/**
 * Samples `system` at once (idle), then each time the answered sagas of `live` pass a multiple of
 * `every`, and once more on `finish`. `onSample` sees each as it comes.
 */
export function watchMemory(o: {
  system: RunningSystem;
  live: LiveState;
  every: number;
  snapshotDir?: string;
  onSample(s: MemorySample): void;
}): MemoryWatch {
  const t0 = performance.now();
  const samples: MemorySample[] = [];
  let chain: Promise<void> = Promise.resolve();
  const take = (label: string, sagas: number) => {
    chain = chain.then(async () => {
      const s = await sampleMemory(o.system, label, sagas, t0, o.snapshotDir);
      samples.push(s);
      o.onSample(s);
    });
  };
  take('idle', 0);
  const ready = chain;
  let next = o.every;
  const check = () => {
    const n = o.live.answered;
    if (n < next) return;
    const mark = Math.floor(n / o.every) * o.every;
    take(`${mark} sagas`, n);
    next = mark + o.every;
  };
  const timer = setInterval(check, 50);
  return {
    ready,
    async finish() {
      clearInterval(timer);
      check(); // a mark passed since the last tick is not skipped
      take('end', o.live.answered);
      await chain;
      return samples;
    },
  };
}

const COLUMNS = [
  'rss',
  'rss_anon',
  'rss_file',
  'rss_shmem',
  'malloc_brk',
  'read_calls',
  'read_mib',
  'heap_used',
  'heap_total',
  'external',
  'array_buffers',
  'malloced',
] as const;

/** One CSV row per process per sample (MiB). */
export function memoryCsv(samples: readonly MemorySample[]): string {
  const head = [
    'label',
    'sagas',
    'at_s',
    'process',
    'pid',
    ...COLUMNS.map((c) => (c === 'read_calls' ? c : `${c}_mib`)),
  ].join(',');
  const rows = samples.flatMap((s) =>
    s.processes.map((p) => [s.label, s.sagas, s.at_s, p.name, p.pid, ...COLUMNS.map((c) => p[c] ?? '')].join(',')),
  );
  return `${[head, ...rows].join('\n')}\n`;
}

/** The report's table: one row per sample, RSS and heap used per process (MiB). */
export function memoryTable(samples: readonly MemorySample[]): string {
  const names = samples[0]?.processes.map((p) => p.name) ?? [];
  const head = `| sample | ${names.map((n) => `${n} RSS (heap used/total)`).join(' | ')} |`;
  const sep = `|---|${names.map(() => '---|').join('')}`;
  const rows = samples.map((s) => {
    const cell = (n: string) => {
      const p = s.processes.find((q) => q.name === n);
      return p ? `${p.rss ?? '?'} (${p.heap_used ?? '?'}/${p.heap_total ?? '?'})` : '';
    };
    return `| ${s.label} | ${names.map(cell).join(' | ')} |`;
  });
  return `${[head, sep, ...rows].join('\n')}\n`;
}
