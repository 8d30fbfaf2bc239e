/**
 * A test hook (SAGAS_TEST_HOOKS=1 only, armed with the crash points): a supervisor (the bench's
 * `--memory`) asks a running process over its IPC channel how much memory it holds, and may ask
 * it for a heap snapshot, without a restart or a debugger. Off in deployments (DESIGN.md §6b):
 * nothing listens then.
 *
 * - `{ type: 'memory-usage', id }` → `{ type: 'memory-usage', id, usage }` (process.memoryUsage()
 *   and V8's heap statistics, bytes);
 * - `{ type: 'heap-snapshot', id, dir }` → `{ type: 'heap-snapshot', id, file }` once written
 *   (v8.writeHeapSnapshot: it collects garbage first, and pauses the process while it writes).
 */
import path from 'node:path';
import { PerformanceObserver, constants, type PerformanceEntry } from 'node:perf_hooks';
import v8 from 'node:v8';

export interface MemoryUsage {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  /** V8's own view: what the heap may grow to, and its malloc'ed memory. */
  heapSizeLimit: number;
  mallocedMemory: number;
  /** Live bytes per V8 space (new_space, old_space, code_space, large_object_space…). */
  spaces: Record<string, number>;
  /** Committed bytes per V8 space: what the heap holds for it, live or not. */
  spaceSizes: Record<string, number>;
  /** Collections since the probe started listening, by kind: how many, and their pauses in ms. */
  gc: Record<GcKind, { count: number; ms: number }>;
}

type GcKind = 'minor' | 'major' | 'incremental' | 'weakcb';
const gc: Record<GcKind, { count: number; ms: number }> = {
  minor: { count: 0, ms: 0 },
  major: { count: 0, ms: 0 },
  incremental: { count: 0, ms: 0 },
  weakcb: { count: 0, ms: 0 },
};
const GC_KINDS: Record<number, GcKind> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

function countGc(entry: PerformanceEntry): void {
  const kind = GC_KINDS[((entry as { detail?: unknown }).detail as { kind?: number } | undefined)?.kind ?? -1];
  if (!kind) return;
  gc[kind].count++;
  gc[kind].ms += entry.duration;
}

export function memoryUsage(): MemoryUsage {
  const m = process.memoryUsage();
  const h = v8.getHeapStatistics();
  const spaces = v8.getHeapSpaceStatistics().filter((s) => s.space_size > 0);
  return {
    rss: m.rss,
    heapTotal: m.heapTotal,
    heapUsed: m.heapUsed,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
    heapSizeLimit: h.heap_size_limit,
    mallocedMemory: h.malloced_memory,
    spaces: Object.fromEntries(spaces.map((s) => [s.space_name, s.space_used_size])),
    spaceSizes: Object.fromEntries(spaces.map((s) => [s.space_name, s.space_size])),
    gc: structuredClone(gc),
  };
}

type ProbeMessage = { type: 'memory-usage'; id: number } | { type: 'heap-snapshot'; id: number; dir: string };

function isProbeMessage(m: unknown): m is ProbeMessage {
  const o = m as { type?: unknown; id?: unknown; dir?: unknown } | null;
  if (typeof o !== 'object' || o === null || typeof o.id !== 'number') return false;
  return o.type === 'memory-usage' || (o.type === 'heap-snapshot' && typeof o.dir === 'string');
}

let listening = false;

/** Answers the supervisor's memory questions; a no-op without an IPC channel, or when already listening. */
export function listenForMemoryProbe(): void {
  if (listening || !process.send) return;
  listening = true;
  new PerformanceObserver((list) => list.getEntries().forEach(countGc)).observe({ entryTypes: ['gc'] });
  process.on('message', (m: unknown) => {
    if (!isProbeMessage(m)) return;
    if (m.type === 'memory-usage') {
      process.send?.({ type: 'memory-usage', id: m.id, usage: memoryUsage() });
      return;
    }
    const file = path.join(m.dir, `${process.pid}-${Date.now()}.heapsnapshot`);
    try {
      v8.writeHeapSnapshot(file);
      process.send?.({ type: 'heap-snapshot', id: m.id, file });
    } catch (err) {
      process.send?.({ type: 'heap-snapshot', id: m.id, error: err instanceof Error ? err.message : String(err) });
    }
  });
  // The listener must not keep a process alive that has nothing else to do.
  process.channel?.unref();
}
