/**
 * The gateway's pruner: every interval, one pass of bounded batches through SagaLog.prune,
 * letting the event loop run between batches so orders in flight are not held up, until a batch
 * comes back short (the backlog is gone) or the pass has done its share. Counted in
 * saga_pruned_total, and a log line per pass that pruned something.
 *
 * Every gateway runs one. Two pruning the same log at once is harmless (each saga is deleted by
 * one of them: the stores lock or serialize the rows they delete); the second mostly finds
 * nothing left.
 */
import type { Meter } from '@opentelemetry/api';
import type { Logger } from '../platform/telemetry/logger.js';
import {
  describeRetention,
  prunesAnything,
  type PruneResult,
  type RetentionAges,
  type RetentionPolicy,
  type SagaLog,
} from '../saga/index.js';

/** Sagas per batch: one short transaction (a few ms on SQLite, bench/README.md "Retention"). */
export const PRUNE_BATCH = 500;
/** Between passes: pruning is days behind the policy's edge by design, a minute more is nothing. */
export const PRUNE_INTERVAL_MS = 60_000;
/** A pass stops after this many batches (100,000 sagas) and leaves the rest to the next. */
export const PRUNE_MAX_BATCHES_PER_PASS = 200;

export interface PrunerOptions {
  log: Pick<SagaLog, 'prune'>;
  policy: RetentionPolicy;
  logger: Logger;
  meter?: Meter;
  batch?: number;
  intervalMs?: number;
  maxBatchesPerPass?: number;
}

export interface PassResult extends PruneResult {
  batches: number;
}

export interface Pruner {
  /** One pass now (after the one running, if any): batches until one comes back short or the pass's cap. */
  runPass(): Promise<PassResult>;
  /** Stops the timer and waits for the batch in progress; no batch starts after. */
  stop(): Promise<void>;
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Starts the pruner, or returns undefined (and says so) when the policy prunes nothing. */
export function startPruner(opts: PrunerOptions): Pruner | undefined {
  const { log, logger, policy } = opts;
  if (!prunesAnything(policy)) {
    logger.info({ retention: describeRetention(policy) }, 'saga retention is off: finished sagas are kept for ever');
    return undefined;
  }
  const ages: RetentionAges = policy.ages;
  const batch = opts.batch ?? PRUNE_BATCH;
  const intervalMs = opts.intervalMs ?? PRUNE_INTERVAL_MS;
  const maxBatches = opts.maxBatchesPerPass ?? PRUNE_MAX_BATCHES_PER_PASS;
  const pruned = opts.meter?.createCounter('saga_pruned', {
    description: 'Finished sagas deleted from the saga log by the retention policy',
  });
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<PassResult> = Promise.resolve({ sagas: 0, events: 0, batches: 0 });

  const pass = async (): Promise<PassResult> => {
    const started = performance.now();
    const total: PassResult = { sagas: 0, events: 0, batches: 0 };
    try {
      while (!stopped && total.batches < maxBatches) {
        const r = await log.prune(ages, batch);
        total.batches++;
        total.sagas += r.sagas;
        total.events += r.events;
        if (r.sagas > 0) pruned?.add(r.sagas);
        if (r.sagas < batch) break;
        await yieldToEventLoop();
      }
    } catch (err) {
      // The log unreachable, most likely: what was pruned stays pruned; the next pass goes on.
      logger.warn({ err, pruned_sagas: total.sagas }, `saga retention: a prune failed: ${(err as Error).message}`);
    }
    if (total.sagas > 0) {
      logger.info(
        {
          pruned_sagas: total.sagas,
          pruned_events: total.events,
          batches: total.batches,
          duration_ms: Math.round(performance.now() - started),
          retention: describeRetention(policy),
        },
        `saga retention: pruned ${total.sagas} finished sagas (${total.events} events)`,
      );
    }
    return total;
  };

  const runPass = (): Promise<PassResult> => {
    running = running.then(pass, pass);
    return running;
  };

  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => void runPass().finally(schedule), intervalMs);
    // The pruner alone never keeps the process alive.
    timer.unref();
  };
  schedule();
  logger.info({ retention: describeRetention(policy), interval_ms: intervalMs, batch }, 'saga retention on');

  return {
    runPass,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running.catch(() => undefined);
    },
  };
}
