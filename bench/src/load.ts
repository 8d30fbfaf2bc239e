/**
 * The load loops of the bench, independent of what one request is:
 *
 * - closed loop: `concurrency` workers, each sends its next order when the previous one answered;
 * - open loop: arrivals on a fixed timetable (`rate` a second) whatever the answers, and each
 *   latency counted from the *scheduled* time, so a stalled system cannot hide its stall by
 *   slowing the sender down (coordinated omission).
 *
 * A warm-up (not recorded) may precede the measurement. With a duration, throughput is the
 * terminal sagas that *ended* in the window divided by its length, and the latency figures cover
 * every order *sent* in the window (the loop waits for all of them, so none is left out). With a
 * count, exactly that many orders are measured and the window ends with the last answer.
 */
import { performance } from 'node:perf_hooks';
import { LogHistogram, Samples, perSecondSeries, summarize, type LatencySummary, type SeriesPoint } from './stats.js';

/** What one order came to: a terminal saga (with a label for the outcome mix) or an error. */
export type Attempt = { ok: true; status: string; label: string } | { ok: false; kind: string };
export type Job = (seq: number) => Promise<Attempt>;

export interface LoadPlan {
  loop: 'closed' | 'open';
  /** Closed loop: the number of workers. */
  concurrency: number;
  /** Open loop: arrivals a second. */
  rate?: number;
  /** Either a duration (s) or a count. */
  durationS?: number;
  count?: number;
  warmupS: number;
}

export interface LoadHooks {
  /** When the measurement window opens (after the warm-up). */
  onMeasureStart?(): void;
  /** When it closes (end of the duration, or the last answer of a count). */
  onMeasureEnd?(): void;
}

/** Read by the progress line while the loop runs. */
export interface LiveState {
  stage: 'warmup' | 'measure' | 'drain' | 'done';
  /** performance.now() of the window's start (undefined during warm-up). */
  measureStart: number | undefined;
  /** Measured orders that reached a terminal state / errored. */
  completed: number;
  errors: number;
  /** Terminal answers of any kind, warm-up included (for the current rate). */
  answered: number;
  inFlight: number;
  hist: LogHistogram;
}

export interface LoadResult {
  loop: 'closed' | 'open';
  concurrency: number | null;
  rate: number | null;
  warmup_s: number;
  /** Length of the measurement window in seconds (the denominator of sagas_per_s). */
  window_s: number;
  /** Time the loop took after the window closed, waiting for orders still in flight. */
  drain_s: number;
  /** Orders sent in the window. */
  sent: number;
  /** Of those, how many reached a terminal state (CONFIRMED or CANCELLED). */
  completed: number;
  /** Terminal sagas that ended inside the window, per second of window. */
  sagas_per_s: number;
  latency_ms: LatencySummary;
  /** Terminal status → count (CONFIRMED, CANCELLED). */
  outcomes: Record<string, number>;
  /** What each kind of order came to, e.g. "declined → CANCELLED payment_declined". */
  outcome_detail: Record<string, number>;
  errors: { total: number; by_kind: Record<string, number> };
  /** Open loop: how late the sender fired an arrival, at worst (ms). */
  max_send_lag_ms: number | null;
  max_in_flight: number;
  series: SeriesPoint[];
}

const inc = (m: Record<string, number>, k: string) => {
  m[k] = (m[k] ?? 0) + 1;
};

export function newLiveState(): LiveState {
  return {
    stage: 'warmup',
    measureStart: undefined,
    completed: 0,
    errors: 0,
    answered: 0,
    inFlight: 0,
    hist: new LogHistogram(),
  };
}

export async function runLoad(
  job: Job,
  plan: LoadPlan,
  opts: { signal: AbortSignal; hooks?: LoadHooks; live?: LiveState },
): Promise<LoadResult> {
  const { signal, hooks = {} } = opts;
  const live = opts.live ?? newLiveState();
  const durationMs = plan.durationS !== undefined ? plan.durationS * 1000 : undefined;
  const count = durationMs === undefined ? (plan.count ?? 1) : undefined;
  const warmupMs = plan.warmupS * 1000;

  const t0 = performance.now();
  const measureStart = t0 + warmupMs;
  let windowOpen = false;
  let windowClosedAt: number | undefined;

  const latency = new Samples();
  const seriesDone = new Samples();
  const seriesLatency = new Samples();
  const errorsAt = new Samples();
  const outcomes: Record<string, number> = {};
  const detail: Record<string, number> = {};
  const errorKinds: Record<string, number> = {};
  let sent = 0;
  let completed = 0;
  let errors = 0;
  let inWindowDone = 0;
  let lastDoneRel = 0;
  let maxInFlight = 0;
  let maxLag = 0;
  let issuedCounted = 0;

  const openWindow = () => {
    if (windowOpen) return;
    windowOpen = true;
    live.stage = 'measure';
    live.measureStart = measureStart;
    hooks.onMeasureStart?.();
  };
  const closeWindow = () => {
    if (windowClosedAt !== undefined) return;
    windowClosedAt = performance.now();
    hooks.onMeasureEnd?.();
  };
  const timers: NodeJS.Timeout[] = [];
  if (warmupMs > 0) timers.push(setTimeout(openWindow, warmupMs));
  else openWindow();
  if (durationMs !== undefined)
    timers.push(
      setTimeout(() => {
        closeWindow();
        live.stage = 'drain';
      }, warmupMs + durationMs),
    );

  /** May this order (sent or scheduled at `at`) go, and is it measured? */
  const admit = (at: number): 'stop' | 'warmup' | 'measured' => {
    const rel = at - measureStart;
    if (rel < 0) return 'warmup';
    if (durationMs !== undefined) return rel < durationMs ? 'measured' : 'stop';
    if (issuedCounted >= (count as number)) return 'stop';
    issuedCounted++;
    return 'measured';
  };

  const one = async (seq: number, start: number, measured: boolean): Promise<void> => {
    if (measured) sent++;
    live.inFlight++;
    maxInFlight = Math.max(maxInFlight, live.inFlight);
    let a: Attempt;
    try {
      a = await job(seq);
    } catch (err) {
      a = { ok: false, kind: `exception:${err instanceof Error ? err.name : typeof err}` };
    }
    const done = performance.now();
    live.inFlight--;
    const ms = done - start;
    const doneRel = done - measureStart;
    if (a.ok) {
      live.answered++;
      if (doneRel >= 0) {
        seriesDone.push(doneRel);
        seriesLatency.push(ms);
      }
      if (durationMs !== undefined ? doneRel >= 0 && doneRel <= durationMs : measured) inWindowDone++;
      if (measured) {
        completed++;
        latency.push(ms);
        inc(outcomes, a.status);
        inc(detail, a.label);
        live.completed++;
        live.hist.record(ms);
      }
    } else {
      if (doneRel >= 0) errorsAt.push(doneRel);
      if (measured) {
        errors++;
        inc(errorKinds, a.kind);
        live.errors++;
      }
    }
    if (measured) lastDoneRel = Math.max(lastDoneRel, doneRel);
  };

  let seq = 0;
  if (plan.loop === 'closed') {
    const worker = async () => {
      while (!signal.aborted) {
        const start = performance.now();
        const verdict = admit(start);
        if (verdict === 'stop') break;
        await one(seq++, start, verdict === 'measured');
      }
    };
    await Promise.all(Array.from({ length: plan.concurrency }, worker));
  } else {
    const interval = 1000 / (plan.rate as number);
    const pending = new Set<Promise<void>>();
    await new Promise<void>((resolve) => {
      const onAbort = () => resolve();
      signal.addEventListener('abort', onAbort, { once: true });
      const finish = () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      const tick = () => {
        if (signal.aborted) return;
        const now = performance.now();
        for (;;) {
          const scheduled = t0 + seq * interval;
          if (scheduled > now) break;
          const verdict = admit(scheduled);
          if (verdict === 'stop') return finish();
          maxLag = Math.max(maxLag, now - scheduled);
          const p = one(seq++, scheduled, verdict === 'measured');
          pending.add(p);
          void p.finally(() => pending.delete(p));
        }
        setTimeout(tick, Math.max(0, t0 + seq * interval - performance.now()));
      };
      tick();
    });
    live.stage = 'drain';
    await Promise.all(pending);
  }
  closeWindow(); // (already closed by its timer with a duration)
  const end = performance.now();
  for (const t of timers) clearTimeout(t);
  live.stage = 'done';

  const windowMs = durationMs ?? Math.max(1, lastDoneRel);
  const endRel = end - measureStart;
  return {
    loop: plan.loop,
    concurrency: plan.loop === 'closed' ? plan.concurrency : null,
    rate: plan.loop === 'open' ? (plan.rate as number) : null,
    warmup_s: plan.warmupS,
    window_s: Math.round(windowMs) / 1000,
    drain_s: Math.max(0, Math.round(endRel - windowMs)) / 1000,
    sent,
    completed,
    sagas_per_s: Math.round((inWindowDone / (windowMs / 1000)) * 10) / 10,
    latency_ms: summarize(latency.values()),
    outcomes,
    outcome_detail: detail,
    errors: { total: errors, by_kind: errorKinds },
    max_send_lag_ms: plan.loop === 'open' ? Math.round(maxLag * 1000) / 1000 : null,
    max_in_flight: maxInFlight,
    series: perSecondSeries(seriesDone.values(), seriesLatency.values(), errorsAt.values(), windowMs, endRel),
  };
}
