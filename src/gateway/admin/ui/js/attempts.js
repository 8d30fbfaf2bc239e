// A saga's attempts, from its timeline's events as the admin API sends them: each event of an
// attempt carries its `phase`, `attempt`, `idempotency_key`, and whether the fault switchboard
// injected its failure (`injected`, `fault_rule`). Pure: no DOM, so it is unit-tested in Node.

const STARTS = new Set(['STEP_STARTED', 'COMPENSATION_STARTED']);
const SUCCEEDS = new Set(['STEP_SUCCEEDED', 'COMPENSATION_SUCCEEDED']);

/** The fault mark of an event: `{rule}` when the switchboard injected its failure, else null. */
export function faultOf(e) {
  return e?.injected ? { rule: typeof e.fault_rule === 'string' ? e.fault_rule : null } : null;
}

/**
 * One bar per attempt: each start event opens one, the next outcome of the same step and phase
 * closes it. An attempt never closed was cut short by a crash (a later attempt or a resume
 * followed) or is still running.
 */
export function attemptsOf(events) {
  const bars = [];
  const open = new Map();
  for (const e of events) {
    const key = `${e.phase}:${e.step}`;
    if (e.phase && STARTS.has(e.type)) {
      const stale = open.get(key);
      if (stale) stale.outcome = 'interrupted';
      const bar = {
        seq: e.seq,
        step: e.step,
        display: e.display_name,
        phase: e.phase,
        attempt: e.attempt,
        key: e.idempotency_key ?? null,
        start: Date.parse(e.time),
        end: null,
        outcome: 'running',
        error: null,
        fault: null,
      };
      bars.push(bar);
      open.set(key, bar);
    } else if (e.phase) {
      const bar = open.get(key);
      if (!bar) continue; // e.g. a deadline's STEP_FAILED with no attempt in flight
      open.delete(key);
      bar.end = Date.parse(e.time);
      bar.outcome = SUCCEEDS.has(e.type) ? 'succeeded' : e.retryable ? 'failed-retryable' : 'failed';
      bar.error = e.error ?? null;
      bar.fault = faultOf(e);
    } else if (e.type === 'SAGA_RESUMED') {
      for (const bar of open.values()) bar.outcome = 'interrupted';
      open.clear();
    }
  }
  return bars;
}
