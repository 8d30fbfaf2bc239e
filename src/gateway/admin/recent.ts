/**
 * What this gateway finished in the last minute, for the console's overview strip: sagas per
 * second and p50/p99 saga duration. An interceptor (like saga/metrics.ts, which feeds the same
 * numbers to Prometheus as a histogram) that keeps the durations of the sagas that reached a
 * terminal state here, in a window pruned as it goes; bounded, so a burst costs no more than
 * MAX_KEPT entries.
 */
import { type SagaInterceptor, isTerminal } from '../../saga/index.js';

const WINDOW_MS = 60_000;
const MAX_KEPT = 100_000;

export interface RecentStats {
  sagas_per_second: number;
  p50_ms: number | null;
  p99_ms: number | null;
}

export interface RecentSagas {
  readonly interceptor: SagaInterceptor;
  /** Records one saga's end (the interceptor's own way in; tests call it directly). */
  record(durationMs: number, at?: number): void;
  stats(now?: number): RecentStats;
}

export function recentSagas(now: () => number = Date.now): RecentSagas {
  // [end time, duration] pairs in end order.
  let ends: number[] = [];
  let durations: number[] = [];
  const prune = (t: number) => {
    let i = 0;
    while (i < ends.length && (ends[i] as number) <= t - WINDOW_MS) i++;
    if (ends.length - i > MAX_KEPT) i = ends.length - MAX_KEPT;
    if (i > 0) {
      ends = ends.slice(i);
      durations = durations.slice(i);
    }
  };
  const record = (durationMs: number, at = now()) => {
    ends.push(at);
    durations.push(durationMs);
    if (ends.length > MAX_KEPT * 1.1) prune(at);
  };
  const quantile = (sorted: number[], q: number) =>
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
  return {
    record,
    stats(t = now()) {
      prune(t);
      const sorted = [...durations].sort((a, b) => a - b);
      return {
        sagas_per_second: Math.round((sorted.length / (WINDOW_MS / 1000)) * 1000) / 1000,
        p50_ms: sorted.length ? Math.round(quantile(sorted, 0.5)) : null,
        p99_ms: sorted.length ? Math.round(quantile(sorted, 0.99)) : null,
      };
    },
    interceptor: {
      name: 'recent-sagas',
      async saga(op, next) {
        await next();
        if (op.kind === 'run' && op.final && isTerminal(op.final.status)) {
          const t = now();
          record(t - op.final.createdAt, t);
        }
      },
    },
  };
}
