/**
 * The PostgreSQL saga log's group commit: the writes (create, append, take-over) issued during one
 * turn of the event loop form a batch, committed at once on one pooled connection; each caller's
 * promise settles when it has committed. The creates and appends of a batch of several are the
 * rows of one statement (postgres-batch.ts): one round trip, and atomic without BEGIN/COMMIT. A
 * lost lease or a taken idempotency key is a row not returned, never an error, so one write's
 * refusal never aborts the others (a create that met a taken key then reads the holder). A batch
 * with a take-over runs its writes one statement each in one transaction (a lone write needs no
 * BEGIN/COMMIT). A statement the database refuses (a value out of range) aborts the batch; then it
 * runs again with a savepoint per write, and only that write fails. A deadlock (or serialization
 * failure) reruns the whole batch. Up to poolSize - 1 batches are in flight at once, on as many
 * connections; writes issued meanwhile wait for the next free slot and go together. A batch holds
 * one write of a saga at most: the saga's next writes wait for a later batch, so they commit in
 * the order they were issued. Rows are locked in saga id order (creates insert by idempotency
 * key), the order renewLeases locks rows in too, so concurrent transactions do not deadlock on
 * each other.
 *
 * What the writes are (their statements) is postgres-writes.ts's; this file only batches,
 * commits, retries and settles them.
 */
import type pg from 'pg';
import {
  batchResult,
  batchSql,
  batchValues,
  type BatchResult,
  type BatchRow,
  type BatchRows,
} from './postgres-batch.js';
import { isConnectionError, isRetryable, reason } from '../../platform/storage/pg-errors.js';
import type { PostgresPool } from './postgres-pool.js';
import { EVENT_COLUMNS, FINISHED_CHANNEL, NOW_MS, SAGA_COLUMNS } from './postgres-sql.js';

/** What a write did once its transaction committed: settle its caller, and which saga it ended, if any. */
export interface Settlement {
  settle(): void;
  finished: string | null;
}

interface PendingWrite {
  /** The saga written: a saga has writes in one batch in flight at most, so they commit in the order issued. */
  sagaId: string;
  /** Writes run in this order inside a batch, so that concurrent batches take row locks in one order. */
  order: string;
  /**
   * Runs the write's statements on the batch's connection. Expected refusals (a lost lease, a
   * taken key) are results, not errors; a thrown error aborts the transaction. Run again from
   * scratch when the batch is retried, so it keeps no state between runs.
   */
  run(c: pg.ClientBase): Promise<Settlement>;
  /**
   * The write as rows of the batch statement (creates and appends; a take-over has none), and how
   * it settles from what that statement returned.
   */
  batched?: { rows: BatchRows; settle(c: pg.ClientBase, result: BatchResult): Promise<Settlement> };
  fail(err: unknown): void;
}

type Outcome = { ok: true; settlement: Settlement } | { ok: false; error: unknown };

/** Builds a write's settlement once it has committed: its value, and the saga it ended, if any. */
export type Done<T> = ((value: T, finished?: string | null) => Settlement) & { reject: (err: unknown) => void };

const BATCH_SQL = batchSql({
  now: NOW_MS,
  sagaColumns: SAGA_COLUMNS,
  eventColumns: EVENT_COLUMNS,
  finishedChannel: FINISHED_CHANNEL,
});

export class GroupCommit {
  private readonly maxBatches: number;
  private queue: PendingWrite[] = [];
  private scheduled = false;
  private readonly batches = new Set<Promise<void>>();
  /** Sagas written by a batch in flight: their next writes wait for the next batch. */
  private readonly busy = new Set<string>();

  constructor(
    private readonly db: PostgresPool,
    poolSize: number,
    /** Hears of each saga a committed write ended, right after its commit. */
    private readonly onEnded: (sagaId: string) => void,
  ) {
    this.maxBatches = Math.max(1, poolSize - 1);
  }

  /** Sends the pending writes and waits for every batch in flight (new writes are still taken meanwhile). */
  async drain(): Promise<void> {
    while (this.queue.length > 0 || this.batches.size > 0) {
      this.startBatch();
      await Promise.race(this.batches);
    }
  }

  /**
   * Queues a write for this turn's batch. `run` gets a `done(value, finishedId?)` that builds the
   * write's settlement; the promise settles after the batch's COMMIT.
   */
  write<T>(
    sagaId: string,
    order: string,
    run: (c: pg.ClientBase, done: Done<T>) => Promise<Settlement>,
    batched?: { rows: BatchRows; settle(c: pg.ClientBase, result: BatchResult, done: Done<T>): Promise<Settlement> },
  ): Promise<T> {
    if (this.db.closed) return Promise.reject(this.db.closedError());
    return new Promise<T>((resolve, reject) => {
      const done = Object.assign(
        (value: T, finished: string | null = null): Settlement => ({ settle: () => resolve(value), finished }),
        {
          reject,
        },
      );
      this.queue.push({
        sagaId,
        order,
        run: (c) => run(c, done),
        ...(batched && { batched: { rows: batched.rows, settle: (c, result) => batched.settle(c, result, done) } }),
        fail: (err) => reject(this.db.wrap(err)),
      });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.queue.length === 0 || this.batches.size >= this.maxBatches) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.startBatch();
    });
  }

  private startBatch(): void {
    if (this.queue.length === 0 || this.batches.size >= this.maxBatches) return;
    const batch: PendingWrite[] = [];
    const later: PendingWrite[] = [];
    // One write per saga in a batch: its next one waits for the next batch (the batch statement
    // sees one snapshot, so a second write of a saga could not see the first).
    for (const w of this.queue) {
      if (this.busy.has(w.sagaId)) later.push(w);
      else {
        batch.push(w);
        this.busy.add(w.sagaId);
      }
    }
    this.queue = later;
    if (batch.length === 0) return; // the batch in flight reschedules when it ends
    const p: Promise<void> = this.runBatch(batch)
      .catch((err: unknown) => batch.forEach((w) => w.fail(err)))
      .finally(() => {
        for (const w of batch) this.busy.delete(w.sagaId);
        this.batches.delete(p);
        this.schedule();
      });
    this.batches.add(p);
  }

  private async runBatch(batch: PendingWrite[]): Promise<void> {
    // Stable sort: two writes to one saga keep their order.
    batch.sort((a, b) => (a.order < b.order ? -1 : a.order > b.order ? 1 : 0));
    let c: pg.PoolClient;
    try {
      c = await this.db.pool.connect();
    } catch (err) {
      batch.forEach((w) => w.fail(err));
      return;
    }
    let outcomes: Outcome[];
    try {
      outcomes = await this.commit(c, batch);
      c.release();
    } catch (err) {
      // The connection broke (or could not even roll back): the batch's fate is unknown to us.
      c.release(err instanceof Error ? err : true);
      batch.forEach((w) => w.fail(err));
      return;
    }
    const ended: string[] = [];
    outcomes.forEach((o, i) => {
      if (!o.ok) return batch[i]?.fail(o.error);
      o.settlement.settle();
      if (o.settlement.finished !== null) ended.push(o.settlement.finished);
    });
    for (const id of ended) this.onEnded(id);
  }

  /**
   * Runs a batch to its commit; throws only when the connection is unusable with the batch's fate
   * unknown. Creates and appends go as one batch statement; a batch holding a take-over, or one
   * whose statement the database refused, runs write by write.
   */
  private async commit(c: pg.ClientBase, batch: PendingWrite[]): Promise<Outcome[]> {
    const batched = batch.map((w) => w.batched).filter((b) => b !== undefined);
    let lastError: unknown;
    // A lone write runs its own statement: one round trip too, and ~0.6 ms cheaper than the
    // batch statement with one row (bench/README.md, "PostgreSQL saga log, one statement per batch").
    if (batched.length === batch.length && batch.length > 1) {
      let result: BatchResult | undefined;
      for (let attempt = 0; attempt < 3 && result === undefined; attempt++) {
        try {
          const { rows } = await c.query<BatchRow>({
            name: 'batch',
            text: BATCH_SQL,
            values: batchValues(batched.map((b) => b.rows)),
          });
          result = batchResult(rows[0]);
        } catch (err) {
          if (isConnectionError(err)) throw err;
          lastError = err;
          if (!isRetryable(err)) break;
        }
      }
      // Committed: each write settles on its own (a create that met a taken key reads its
      // holder, and only that create fails if the read does).
      if (result !== undefined) return this.settleBatch(c, batched, result);
      // A value the database refused (or a deadlock that kept coming back) aborted the whole
      // statement: each write again on its own, so that only the culprit fails.
      this.db.logger?.debug(
        { err: reason(lastError), writes: batch.length },
        'saga log: batch statement failed; writing one by one',
      );
      return this.oneByOne(c, batch);
    }
    // A single write is one statement (or two, the second only reading): no BEGIN/COMMIT round trips.
    const single = batch.length === 1;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        if (!single) await c.query('BEGIN');
        const outcomes: Outcome[] = [];
        for (const w of batch) outcomes.push({ ok: true, settlement: await w.run(c) });
        if (!single) await c.query('COMMIT');
        return outcomes;
      } catch (err) {
        if (isConnectionError(err)) throw err;
        if (!single) await c.query('ROLLBACK');
        lastError = err;
        if (!isRetryable(err)) break;
      }
    }
    if (single) return [{ ok: false, error: lastError }];
    return this.oneByOne(c, batch);
  }

  private async settleBatch(
    c: pg.ClientBase,
    batched: ReadonlyArray<NonNullable<PendingWrite['batched']>>,
    result: BatchResult,
  ): Promise<Outcome[]> {
    const outcomes: Outcome[] = [];
    for (const b of batched) {
      try {
        outcomes.push({ ok: true, settlement: await b.settle(c, result) });
      } catch (err) {
        outcomes.push({ ok: false, error: err });
      }
    }
    return outcomes;
  }

  /** The slow path: each write in its own savepoint, so that only the refused one fails. */
  private async oneByOne(c: pg.ClientBase, batch: PendingWrite[]): Promise<Outcome[]> {
    await c.query('BEGIN');
    const outcomes: Outcome[] = [];
    for (const w of batch) {
      await c.query('SAVEPOINT w');
      try {
        outcomes.push({ ok: true, settlement: await w.run(c) });
        await c.query('RELEASE SAVEPOINT w');
      } catch (err) {
        if (isConnectionError(err)) throw err;
        await c.query('ROLLBACK TO SAVEPOINT w');
        outcomes.push({ ok: false, error: err });
      }
    }
    await c.query('COMMIT');
    return outcomes;
  }
}
