/**
 * Runs the gateway's share of bulk jobs (src/saga/bulk.ts): every tick it leases the running
 * jobs nobody paces (one started here, one resumed, one whose gateway stopped or died), then
 * takes each job's sagas one at a time at the job's rate through `engine.act`, with the job's id
 * as the action id — a saga acted on before a crash is a replay the second time, never a second
 * action — and records each outcome. A pause or a cancel, written by any gateway, is read before
 * every saga, so it takes effect before the next one.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../platform/telemetry/logger.js';
import {
  EngineStoppingError,
  OperatorActionError,
  SagaLogUnavailableError,
  delayBefore,
  type BulkItem,
  type BulkJob,
  type BulkJobStore,
  type BulkOutcome,
  type SagaEngine,
} from '../saga/index.js';

export interface BulkRunnerOptions {
  store: BulkJobStore;
  engine: Pick<SagaEngine, 'act' | 'owner'>;
  logger: Logger;
  /** How often to look for jobs to pace (started or resumed elsewhere, or left by a dead gateway). */
  tickMs?: number;
  /**
   * A job's lease lasts this long past its next saga's due time (the gateway: SAGA_LEASE_MS, as a
   * saga's); a dead runner's job is taken over after it. Default 10 s.
   */
  leaseMs?: number;
  now?: () => number;
}

type Step = { outcome: BulkOutcome; code: string | null; message: string | null } | 'stop';

export class BulkRunner {
  private readonly store: BulkJobStore;
  private readonly engine: BulkRunnerOptions['engine'];
  private readonly logger: Logger;
  private readonly tickMs: number;
  private readonly leaseMs: number;
  private readonly now: () => number;
  private readonly active = new Map<string, Promise<void>>();
  private readonly stopping = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private again = false;

  constructor(opts: BulkRunnerOptions) {
    this.store = opts.store;
    this.engine = opts.engine;
    this.logger = opts.logger;
    this.tickMs = opts.tickMs ?? 1_000;
    this.leaseMs = opts.leaseMs ?? 10_000;
    this.now = opts.now ?? Date.now;
  }

  start(): void {
    if (this.timer || this.stopping.signal.aborted) return;
    this.timer = setInterval(() => this.poke(), this.tickMs);
    this.timer.unref();
    this.poke();
  }

  /** Looks for jobs to pace now (after a job is made or resumed here), not at the next tick. */
  poke(): void {
    if (this.stopping.signal.aborted) return;
    // A poke during a tick (whose claim may have been read before the new job) asks for one more.
    if (this.ticking) {
      this.again = true;
      return;
    }
    this.ticking = this.tick().finally(() => {
      this.ticking = undefined;
      if (this.again) {
        this.again = false;
        this.poke();
      }
    });
  }

  /** The jobs this runner paces now. */
  get running(): string[] {
    return [...this.active.keys()];
  }

  /** Stops pacing: the saga being acted on finishes, then each job's lease is given back for the next runner. */
  async stop(): Promise<void> {
    this.stopping.abort();
    clearInterval(this.timer);
    while (this.ticking) await this.ticking;
    await Promise.allSettled(this.active.values());
  }

  private lease(job: BulkJob): number {
    return this.leaseMs + Math.ceil(1000 / job.rate);
  }

  private async tick(): Promise<void> {
    let jobs: BulkJob[];
    try {
      // The longest lease any job needs: one at the slowest rate waits 10 s between sagas.
      jobs = await this.store.claim(this.engine.owner, this.leaseMs + 10_000);
    } catch (err) {
      this.logger.warn({ err }, 'bulk jobs: could not look for jobs to run; trying again at the next tick');
      return;
    }
    for (const job of jobs) {
      if (this.active.has(job.id) || this.stopping.signal.aborted) continue;
      this.logger.info(
        { bulk_id: job.id, action: job.action, total: job.total, pending: job.counts.pending },
        'bulk job: pacing',
      );
      const run = this.run(job).finally(() => this.active.delete(job.id));
      this.active.set(job.id, run);
    }
  }

  private async run(job: BulkJob): Promise<void> {
    const owner = this.engine.owner;
    const signal = this.stopping.signal;
    let last = job.lastActedAt;
    try {
      // The claim's lease covers the slowest rate; this job's is set from its own.
      if (!(await this.store.renew(job.id, owner, this.lease(job)))) return;
      for (;;) {
        if (signal.aborted) return;
        const [item] = await this.store.pending(job.id, 1);
        if (!item) {
          const done = await this.store.setState(job.id, ['running'], 'done');
          if (done) this.logger.info({ bulk_id: job.id, ...done.counts }, 'bulk job done');
          return;
        }
        const wait = delayBefore(last, this.now(), job.rate);
        if (wait > 0) await sleep(wait, undefined, { signal }).catch(() => undefined);
        if (signal.aborted) return;
        // Paused or cancelled (here or by another gateway) since the last saga: stop before this one.
        const current = await this.store.get(job.id);
        if (current?.state !== 'running') return;
        if (!(await this.store.renew(job.id, owner, this.lease(job)))) return;
        const step = await this.actOn(job, item);
        if (step === 'stop') return;
        await this.store.record(job.id, item.position, step.outcome, step.code, step.message);
        // Paced from the end of one saga to the start of the next: never faster than the rate,
        // however long an action takes (as its recorded `at` shows, and as a restart resumes from).
        last = this.now();
      }
    } catch (err) {
      this.logger.warn({ err, bulk_id: job.id }, 'bulk job interrupted; it goes on at a later tick');
    } finally {
      await this.store.release(job.id, owner).catch(() => undefined);
    }
  }

  private async actOn(job: BulkJob, item: BulkItem): Promise<Step> {
    try {
      const r = await this.engine.act({
        sagaId: item.sagaId,
        action: job.action,
        actionId: job.id,
        actor: job.actor,
        ...(job.note === null ? {} : { note: job.note }),
        bulkId: job.id,
      });
      return { outcome: r.replayed ? 'replayed' : 'applied', code: null, message: `now ${r.saga.status}` };
    } catch (err) {
      if (err instanceof OperatorActionError) return { outcome: 'refused', code: err.code, message: err.message };
      // Nothing was decided for this saga: it stays pending, for this runner's next tick or another's.
      if (err instanceof EngineStoppingError || err instanceof SagaLogUnavailableError) {
        this.logger.info({ bulk_id: job.id, saga_id: item.sagaId, err: String(err) }, 'bulk job: saga left pending');
        return 'stop';
      }
      const e = err instanceof Error ? err : new Error(String(err));
      this.logger.error({ err: e, bulk_id: job.id, saga_id: item.sagaId }, 'bulk job: the action failed');
      return { outcome: 'failed', code: e.name, message: e.message };
    }
  }
}
