// The overview strip above every view: throughput, latency, in flight, parked, oldest in flight.
import { api } from './api.js';
import { $ } from './dom.js';
import { fmtAge, fmtDuration, fmtRate } from './format.js';

export async function refreshOverview() {
  const o = await api('GET', '/api/overview');
  const show = (id, text) => ($(`[data-testid="${id}"]`).textContent = text);
  show('ov-rate', fmtRate(o.sagas_per_second));
  show('ov-p50', fmtDuration(o.p50_ms));
  show('ov-p99', fmtDuration(o.p99_ms));
  show('ov-inflight', o.in_flight ?? '–');
  show('ov-parked', o.parked ?? '–');
  show('ov-oldest', o.in_flight ? fmtAge(o.oldest_in_flight_age_seconds) : '–');
}
