import type { Meter } from '@opentelemetry/api';
import type { SagaInterceptor } from './interceptors.js';
import { isTerminal, type SagaLog } from './model.js';

const SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export interface SagaMetricsOptions {
  /** The threshold of the saga_stuck gauge (ms, SAGA_STUCK_AFTER); without it the gauge is not exported. */
  stuckAfterMs?: number;
}

/**
 * The saga engine's metrics as an interceptor: counters and histograms fed by the runs, attempts
 * and calls it wraps, and gauges read from the saga log at scrape time (so they are right after a
 * restart too, and the same on every gateway sharing the log).
 */
export function sagaMetrics(
  meter: Meter,
  log: SagaLog,
  now: () => number = Date.now,
  opts: SagaMetricsOptions = {},
): SagaInterceptor {
  const started = meter.createCounter('saga_started', { description: 'Sagas started' });
  const finished = meter.createCounter('saga_finished', {
    description: 'Sagas that reached a terminal state, by outcome',
  });
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
  const recoveries = meter.createCounter('saga_recoveries', {
    description: 'Sagas resumed after their owner stopped or died',
  });
  const operatorActions = meter.createCounter('saga_operator_actions', {
    description: 'Operator actions applied to sagas (retry, compensate, resolve)',
  });
  const retries = meter.createCounter('saga_step_retries', {
    description: 'Retries of a step or compensation after an uncertain outcome',
  });

  const inflight = meter.createObservableGauge('saga_inflight', { description: 'Sagas not yet terminal' });
  const parked = meter.createObservableGauge('saga_parked', { description: 'Sagas parked for an operator' });
  const oldest = meter.createObservableGauge('saga_oldest_inflight_age_seconds', {
    unit: 's',
    description: 'Age of the oldest saga not yet terminal',
  });
  const stuckAfterMs = opts.stuckAfterMs;
  const stuck =
    stuckAfterMs === undefined
      ? undefined
      : meter.createObservableGauge('saga_stuck', {
          description: `Sagas in flight without progress (a change of status, step or compensation) for longer than ${stuckAfterMs / 1000} s`,
        });
  // One read of the log per collection for the gauges; none observed while it is unreachable.
  meter.addBatchObservableCallback(
    async (r) => {
      const live = await log.liveStats(stuckAfterMs).catch(() => undefined);
      if (!live) return;
      r.observe(inflight, live.inflight);
      r.observe(parked, live.parked);
      r.observe(oldest, live.oldestAgeSeconds);
      if (stuck) r.observe(stuck, live.stuck);
    },
    stuck ? [inflight, parked, oldest, stuck] : [inflight, parked, oldest],
  );

  return {
    name: 'metrics',
    async saga(op, next) {
      if (op.kind === 'recovery') return next();
      if (op.kind === 'operator_action') {
        await next();
        // Applied actions, not replays (a refusal rejects next()).
        if (op.result && !op.result.replayed) operatorActions.add(1, { action: op.request.action });
        return;
      }
      if (op.cause === 'started') started.add(1, { definition: op.definition.name });
      else if (op.cause === 'recovered') recoveries.add(1, { definition: op.definition.name });
      await next();
      const final = op.final;
      if (final && isTerminal(final.status)) {
        const outcome = final.status.toLowerCase();
        finished.add(1, { definition: final.definition, outcome });
        duration.record((now() - final.createdAt) / 1000, { definition: final.definition, outcome });
      }
    },
    step(op, next) {
      if (op.kind === 'attempt')
        return next().then(() => {
          if (op.settlement?.verdict === 'retrying') retries.add(1, { step: op.step.name, phase: op.phase });
        });
      if (op.kind !== 'call') return next();
      const t0 = performance.now();
      return next().then(() =>
        stepDuration.record((performance.now() - t0) / 1000, {
          step: op.step.name,
          phase: op.phase,
          outcome: op.outcome?.kind ?? 'none',
        }),
      );
    },
  };
}
