/**
 * Retention on the SQLite saga log: pruning finished sagas in bounded batches, and giving the
 * freed pages back to the file system with incremental vacuum, a few pages at a time.
 *
 * A file made with auto_vacuum=NONE (SQLite's default) keeps every freed page on its free list
 * for ever: new rows reuse them, but the file never shrinks. INCREMENTAL can only be switched on
 * before the first table exists or by a VACUUM, which rewrites the whole file (and needs as much
 * free disk again) while nothing else writes. So the log switches it on at open, with a VACUUM,
 * when the file is small enough for that to take a moment (a new log, whose tables the
 * migrations just made, is a few pages); a larger existing file is left as it is (its pruned
 * pages are reused, it stops growing) until an operator converts it with the gateway stopped
 * (docs/retention.md).
 */
import type { Db, Statement } from '../../platform/storage/db.js';
import type { PruneResult } from '../model.js';
import { PRUNABLE_STATUSES, cutoffsAt, type RetentionAges } from '../retention.js';

/** Files up to this size are converted to incremental vacuum at open (~1 s of VACUUM here). */
export const VACUUM_AT_OPEN_MAX_BYTES = 64 * 1024 * 1024;

/** Pages given back after each batch, at most: ~8 MiB of 4 KiB pages, a few ms of work. */
export const VACUUM_PAGES_PER_BATCH = 2_048;

const AUTO_VACUUM_INCREMENTAL = 2;

function pragma(db: Db, name: string): number {
  const row = db.prepare<[], Record<string, number>>(`PRAGMA ${name}`).get();
  return row ? (Object.values(row)[0] ?? 0) : 0;
}

/**
 * Switches a writable log to auto_vacuum=INCREMENTAL if it is not and the file is at most
 * `maxBytes`; returns whether the file is (now) in incremental mode. Best effort: a VACUUM that
 * cannot run now (another connection busy past busy_timeout) leaves the file as it was, to be
 * tried again at the next open.
 */
export function enableIncrementalVacuum(db: Db, maxBytes = VACUUM_AT_OPEN_MAX_BYTES): boolean {
  if (pragma(db, 'auto_vacuum') === AUTO_VACUUM_INCREMENTAL) return true;
  if (pragma(db, 'page_count') * pragma(db, 'page_size') > maxBytes) return false;
  try {
    db.exec('PRAGMA auto_vacuum = INCREMENTAL');
    db.exec('VACUUM');
  } catch {
    return false;
  }
  return pragma(db, 'auto_vacuum') === AUTO_VACUUM_INCREMENTAL;
}

interface Doomed {
  seq: number;
  id: string;
}

type Cutoffs = { completed: number | null; compensated: number | null; resolved: number | null; limit: number };

export class SqliteRetention {
  private stmt:
    | {
        doomed: Statement<[Cutoffs], Doomed>;
        deleteEvents: Statement<[string]>;
        deleteSaga: Statement<[number]>;
      }
    | undefined;

  constructor(
    private readonly db: Db,
    private readonly now: () => number,
    private readonly vacuumPages = VACUUM_PAGES_PER_BATCH,
  ) {}

  /** Prepared at the first prune: a read-only tool may open a log without the sagas_ended index. */
  private statements(): NonNullable<SqliteRetention['stmt']> {
    // Each outcome's oldest ends through the partial index (status, updated_at, seq), then the
    // oldest `limit` of the three. A NULL cutoff (an outcome kept for ever) matches nothing. The
    // index's own WHERE is repeated: SQLite uses a partial index only for a query that says it.
    const oldest = (status: string, param: string) =>
      `SELECT * FROM (SELECT seq, id, updated_at FROM sagas INDEXED BY sagas_ended
        WHERE status IN ('COMPLETED', 'COMPENSATED', 'RESOLVED') AND status = '${status}'
        AND updated_at <= @${param} ORDER BY updated_at, seq LIMIT @limit)`;
    this.stmt ??= {
      doomed: this.db.prepare<[Cutoffs], Doomed>(
        `SELECT seq, id FROM (${oldest('COMPLETED', 'completed')} UNION ALL ${oldest('COMPENSATED', 'compensated')}
          UNION ALL ${oldest('RESOLVED', 'resolved')}) ORDER BY updated_at, seq LIMIT @limit`,
      ),
      deleteEvents: this.db.prepare<[string]>('DELETE FROM saga_events WHERE saga_id = ?'),
      deleteSaga: this.db.prepare<[number]>('DELETE FROM sagas WHERE seq = ?'),
    };
    return this.stmt;
  }

  /**
   * One batch: at most `limit` sagas and their events in one IMMEDIATE transaction (the group
   * commit's batches wait for it, as for a claim), then, a turn of the event loop later (both
   * are synchronous work that holds it), up to `vacuumPages` freed pages given back to the file
   * system, in a transaction of their own.
   */
  async prune(ages: RetentionAges, limit: number): Promise<PruneResult> {
    if (limit <= 0 || !PRUNABLE_STATUSES.some((s) => ages[s] !== undefined)) return { sagas: 0, events: 0 };
    const st = this.statements();
    const c = cutoffsAt(ages, this.now());
    const removed = this.db
      .transaction(() => {
        let events = 0;
        const doomed = st.doomed.all({
          completed: c.COMPLETED ?? null,
          compensated: c.COMPENSATED ?? null,
          resolved: c.RESOLVED ?? null,
          limit,
        });
        for (const d of doomed) {
          events += st.deleteEvents.run(d.id).changes;
          st.deleteSaga.run(d.seq);
        }
        return { sagas: doomed.length, events };
      })
      .immediate();
    if (removed.sagas > 0) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      // Closed meanwhile: the pages wait on the free list for the next batch.
      if (this.db.open) this.vacuum();
    }
    return removed;
  }

  /** Gives back at most `vacuumPages` free pages (a no-op on a file not in incremental mode). */
  private vacuum(): void {
    const free = pragma(this.db, 'freelist_count');
    if (free > 0) this.db.exec(`PRAGMA incremental_vacuum(${Math.min(free, this.vacuumPages)})`);
  }
}
