import type { Db } from './db.js';

type Op = { run: () => unknown; resolve: (value: unknown) => void; reject: (e: unknown) => void };

/**
 * Group commit on one SQLite connection: every write queued during one turn of the event loop is
 * committed in one transaction on the next (setImmediate), and each caller's promise settles
 * when its own write is durable — with what its function returned — or failed, alone.
 *
 * Why: a commit writes every page the transaction dirtied to the WAL. Writes that arrive
 * together (many sagas in flight) share their pages — the last leaf of the table and of each
 * index — when they commit together, and pay one BEGIN/COMMIT between them; at 64 sagas in
 * flight the saga log commits ~20 writes at a time (bench/README.md).
 *
 * The fast path runs the batch in one plain transaction. A write that throws (a lost lease, a
 * broken constraint, a refused request) rolls the batch back; then each write runs again in its
 * own savepoint, so that only the failing one fails. A write must therefore be synchronous
 * database work whose outcome depends only on the database (it may run twice, the first time
 * undone). IMMEDIATE: the write lock is taken (waiting out busy_timeout) before the first read,
 * so another process's commit in between cannot make the transaction fail with SQLITE_BUSY when
 * it comes to write.
 */
export class GroupCommit {
  private queue: Op[] = [];
  private scheduled = false;

  constructor(private readonly db: Db) {}

  /** Queues `write` for the next commit; resolves with what it returned once that commit is done. */
  run<T>(write: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ run: write, resolve: resolve as (value: unknown) => void, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Writes still waiting for their commit. */
  get pending(): number {
    return this.queue.length;
  }

  /** Commits what is queued now (the next turn's flush then finds nothing); close() calls it. */
  flush(): void {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    const results: unknown[] = new Array(batch.length);
    try {
      this.db
        .transaction(() => {
          for (let i = 0; i < batch.length; i++) results[i] = batch[i]!.run();
        })
        .immediate();
      for (let i = 0; i < batch.length; i++) batch[i]!.resolve(results[i]);
      return;
    } catch {
      // fall through to the careful path
    }
    const failures: unknown[] = new Array(batch.length);
    const failed: boolean[] = batch.map(() => false);
    try {
      this.db
        .transaction(() => {
          batch.forEach((op, i) => {
            try {
              results[i] = this.db.transaction(op.run)();
            } catch (err) {
              failed[i] = true;
              failures[i] = err ?? new Error('write failed');
            }
          });
        })
        .immediate();
    } catch (err) {
      for (const op of batch) op.reject(err);
      return;
    }
    batch.forEach((op, i) => (failed[i] ? op.reject(failures[i]) : op.resolve(results[i])));
  }
}
