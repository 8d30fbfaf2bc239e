/**
 * The live progress line of a phase on a terminal: a bar, where the phase is, answers a second
 * (over the last second), the running p99, errors and orders in flight. Redrawn 4 times a second.
 */
import { performance } from 'node:perf_hooks';
import type { LiveState, LoadPlan } from './load.js';
import { ms } from './report.js';

/** A terminal stream: `columns` keeps the line on one row. */
export type Terminal = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

/** Draws until the returned function is called, which clears the line. */
export function progress(stderr: Terminal, label: string, plan: LoadPlan, live: LiveState): () => void {
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
      where =
        live.stage === 'drain'
          ? `draining ${live.inFlight}`
          : `${Math.min(el, plan.durationS).toFixed(1)}/${plan.durationS} s`;
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
