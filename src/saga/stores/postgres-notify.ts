/**
 * The PostgreSQL saga log's notifications of finished sagas. A commit that moves a saga to a
 * terminal status runs pg_notify('saga_finished', id) in the same transaction (PostgreSQL delivers
 * it only if, and once, it commits). A dedicated connection (not from the pool) LISTENs and calls
 * the `onFinished` listeners; the process's own commits call them directly after the commit (so it
 * hears its own sagas even while LISTEN is down), and their echo through LISTEN is skipped. When
 * the LISTEN connection drops it reconnects with backoff; what was announced meanwhile is lost,
 * which a waiter survives because its own timeout reads the saga again (see the engine's waitFor).
 */
import pg from 'pg';
import { reason } from '../../platform/storage/pg-errors.js';
import type { PostgresPool } from './postgres-pool.js';
import { FINISHED_CHANNEL } from './postgres-sql.js';

const LISTEN_BACKOFF_MIN_MS = 100;
const LISTEN_BACKOFF_MAX_MS = 5_000;

export class FinishedNotifier {
  private readonly finished = new Set<(sagaId: string) => void>();
  private listener: pg.Client | undefined;
  private listenTimer: NodeJS.Timeout | undefined;
  private listenBackoffMs = LISTEN_BACKOFF_MIN_MS;

  constructor(private readonly db: PostgresPool) {}

  onFinished(listener: (sagaId: string) => void): () => void {
    this.finished.add(listener);
    return () => this.finished.delete(listener);
  }

  /** Calls every listener with a saga that ended (a listener that throws is logged, and the others still hear). */
  emit(id: string): void {
    for (const l of this.finished) {
      try {
        l(id);
      } catch (err) {
        this.db.logger?.error({ err, saga_id: id }, 'saga log: an onFinished listener threw');
      }
    }
  }

  /** Connects the LISTEN connection; a failure is thrown (at open) or retried with backoff (after a loss). */
  async listen(): Promise<void> {
    const client = new pg.Client(this.db.clientConfig());
    const lost = (err?: unknown) => this.listenLost(client, err);
    client.on('error', lost);
    client.on('end', () => lost());
    client.on('notification', (n) => {
      if (n.channel !== FINISHED_CHANNEL || !n.payload) return;
      // Our own commits already called the listeners, right after their COMMIT.
      if (this.db.ownBackends.has(n.processId)) return;
      this.emit(n.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${FINISHED_CHANNEL}`);
    } catch (err) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
      throw err;
    }
    if (this.db.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.listener = client;
  }

  private listenLost(client: pg.Client, err?: unknown): void {
    if (this.listener !== client) return;
    this.listener = undefined;
    client.end().catch(() => undefined);
    if (this.db.closed) return;
    this.db.logger?.warn(
      { err: err === undefined ? undefined : reason(err) },
      'saga log: LISTEN connection lost; reconnecting',
    );
    this.listenBackoffMs = LISTEN_BACKOFF_MIN_MS;
    this.relisten();
  }

  /** Reconnects the LISTEN connection with capped, jittered exponential backoff. */
  private relisten(): void {
    const delay = this.listenBackoffMs * (0.5 + Math.random() / 2);
    this.listenBackoffMs = Math.min(LISTEN_BACKOFF_MAX_MS, this.listenBackoffMs * 2);
    this.listenTimer = setTimeout(() => {
      this.listenTimer = undefined;
      if (this.db.closed) return;
      this.listen().then(
        () => this.db.logger?.info('saga log: listening for finished sagas again'),
        () => this.relisten(),
      );
    }, delay);
    this.listenTimer.unref();
  }

  /** Stops reconnecting, ends the LISTEN connection and forgets the listeners (the log is closed by then). */
  async close(): Promise<void> {
    clearTimeout(this.listenTimer);
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => undefined);
    this.finished.clear();
  }
}
