import type { Meter } from '@opentelemetry/api';
import type { SagaObserver } from './engine.js';
import type { SagaStore } from './model.js';

const SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/**
 * The saga engine's metrics: counters and histograms fed by the engine's observer hooks, and
 * gauges read from the saga log at scrape time (so they are right after a restart too).
 */
export function sagaMetrics(meter: Meter, store: SagaStore, now: () => number = Date.now): SagaObserver {
  const started = meter.createCounter('saga_started', { description: 'Sagas started' });
  const finished = meter.createCounter('saga_finished', { description: 'Sagas that reached a terminal state, by outcome' });
  const duration = meter.createHistogram('saga_duration_seconds', {
    unit: 's',
    description: 'Time from a saga start to its terminal state',
    advice: { explicitBucketBoundaries: SECONDS_BUCKETS },
  });
  const stepDuration = meter.createHistogram('saga_step_duration_seconds', {
    unit: 's',
    description: 'Duration of one attempt of a step (phase=action) or of its compensation (phase=compensation)',
    advice: { explicitBucketBoundaries: SECONDS_BUCKETS },
  });
  const recoveries = meter.createCounter('saga_recoveries', { description: 'Sagas resumed after their owner stopped or died' });
  const retries = meter.createCounter('saga_step_retries', { description: 'Retries of a step or compensation after an uncertain outcome' });

  const inflight = meter.createObservableGauge('saga_inflight', { description: 'Sagas not yet terminal' });
  const parked = meter.createObservableGauge('saga_parked', { description: 'Sagas parked for an operator' });
  const oldest = meter.createObservableGauge('saga_oldest_inflight_age_seconds', { unit: 's', description: 'Age of the oldest saga not yet terminal' });
  // One read of the log per collection for the three gauges.
  meter.addBatchObservableCallback(
    (r) => {
      const live = store.liveStats(now());
      r.observe(inflight, live.inflight);
      r.observe(parked, live.parked);
      r.observe(oldest, live.oldestAgeSeconds);
    },
    [inflight, parked, oldest],
  );

  return {
    started: (s) => started.add(1, { definition: s.definition }),
    finished: (s, ms) => {
      const outcome = s.status.toLowerCase();
      finished.add(1, { definition: s.definition, outcome });
      duration.record(ms / 1000, { definition: s.definition, outcome });
    },
    step: (step, phase, ms, outcome) => stepDuration.record(ms / 1000, { step, phase, outcome }),
    retry: (step, phase) => retries.add(1, { step, phase }),
    recovered: (s) => recoveries.add(1, { definition: s.definition }),
  };
}
