/**
 * Numbers for the bench: latency percentiles (exact, from every sample), a cheap log-bucket
 * histogram for the live progress line, and the per-second time series.
 */

export interface LatencySummary {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  p999: number;
  max: number;
}

/** A growable array of doubles (a few hundred thousand samples cost nothing). */
export class Samples {
  private data = new Float64Array(1024);
  private n = 0;

  push(v: number): void {
    if (this.n === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.n++] = v;
  }

  get length(): number {
    return this.n;
  }

  at(i: number): number {
    return this.data[i] as number;
  }

  values(): Float64Array {
    return this.data.subarray(0, this.n);
  }
}

/** Nearest-rank percentile of an ascending array; NaN when empty. */
export function percentileOfSorted(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] as number;
}

/** Rounded to 3 and to 1 decimal, for the result JSON and the report. */
export const r3 = (v: number) => Math.round(v * 1000) / 1000;
export const r1 = (v: number) => Math.round(v * 10) / 10;

const round = (v: number, digits = 3) => (Number.isFinite(v) ? Math.round(v * 10 ** digits) / 10 ** digits : 0);

/** Exact summary of latencies in ms (rounded to µs). Zeros when there are no samples. */
export function summarize(values: ArrayLike<number>): LatencySummary {
  const sorted = Float64Array.from(values).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  const n = sorted.length;
  return {
    count: n,
    min: round(n ? (sorted[0] as number) : 0),
    mean: round(n ? sum / n : 0),
    p50: round(percentileOfSorted(sorted, 50)),
    p90: round(percentileOfSorted(sorted, 90)),
    p95: round(percentileOfSorted(sorted, 95)),
    p99: round(percentileOfSorted(sorted, 99)),
    p999: round(percentileOfSorted(sorted, 99.9)),
    max: round(n ? (sorted[n - 1] as number) : 0),
  };
}

/**
 * Log-bucket histogram of milliseconds, ~0.5 % relative error, 1 µs … ~10 min. Used for the live
 * progress line, where sorting every sample four times a second would be wasteful.
 */
export class LogHistogram {
  private static readonly GROWTH = Math.log(1.005);
  private static readonly MIN_MS = 0.001;
  private readonly buckets = new Uint32Array(4200);
  private n = 0;

  record(ms: number): void {
    const i =
      ms <= LogHistogram.MIN_MS
        ? 0
        : Math.min(this.buckets.length - 1, Math.ceil(Math.log(ms / LogHistogram.MIN_MS) / LogHistogram.GROWTH));
    this.buckets[i] = (this.buckets[i] as number) + 1;
    this.n++;
  }

  get count(): number {
    return this.n;
  }

  /** Upper bound of the bucket holding the p-th percentile; NaN when empty. */
  percentile(p: number): number {
    if (this.n === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil((p / 100) * this.n));
    let seen = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      seen += this.buckets[i] as number;
      if (seen >= rank) return LogHistogram.MIN_MS * Math.exp(i * LogHistogram.GROWTH);
    }
    return Number.NaN;
  }
}

export interface SeriesPoint {
  /** Seconds since the start of the measurement, start of this bucket. */
  t: number;
  /** Width of the bucket in seconds (the last one may be shorter). */
  seconds: number;
  /**
   * The tail after a timed window, while the orders still in flight answer: no new load then,
   * so its rate says nothing about throughput.
   */
  drain: boolean;
  /** Sagas that reached a terminal state in this bucket. */
  completed: number;
  sagas_per_s: number;
  errors: number;
  p50_ms: number;
  p99_ms: number;
}

/**
 * One point per second of the window, and one for the drain after it (if any): completions whose
 * end falls in the bucket, and their latency percentiles. `doneAt` are ms since the start of the
 * measurement; negative ones (warm-up) are left out.
 */
export function perSecondSeries(
  doneAt: ArrayLike<number>,
  latency: ArrayLike<number>,
  errorsAt: ArrayLike<number>,
  windowMs: number,
  endMs: number,
): SeriesPoint[] {
  const edges: number[] = [];
  for (let t = 0; t < windowMs; t += 1000) edges.push(t);
  if (edges.length === 0) edges.push(0);
  const drain = endMs > windowMs + 1;
  if (drain) edges.push(windowMs);
  const last = Math.max(endMs, windowMs);
  const bucketOf = (t: number) => {
    if (drain && t > windowMs) return edges.length - 1;
    return Math.min(edges.length - (drain ? 2 : 1), Math.floor(t / 1000));
  };
  const buckets: number[][] = edges.map(() => []);
  const errors = edges.map(() => 0);
  for (let i = 0; i < doneAt.length; i++) {
    const t = doneAt[i] as number;
    if (t >= 0) buckets[bucketOf(t)]?.push(latency[i] as number);
  }
  for (let i = 0; i < errorsAt.length; i++) {
    const t = errorsAt[i] as number;
    if (t >= 0) errors[bucketOf(t)] = (errors[bucketOf(t)] ?? 0) + 1;
  }
  return buckets.map((lat, b) => {
    const from = edges[b] as number;
    const to = edges[b + 1] ?? last;
    const width = Math.max(0.001, (to - from) / 1000);
    const sorted = Float64Array.from(lat).sort();
    return {
      t: round(from / 1000),
      seconds: round(width),
      drain: drain && b === edges.length - 1,
      completed: lat.length,
      sagas_per_s: round(lat.length / width, 1),
      errors: errors[b] ?? 0,
      p50_ms: round(percentileOfSorted(sorted, 50)),
      p99_ms: round(percentileOfSorted(sorted, 99)),
    };
  });
}
