/**
 * The PostgreSQL saga log's connections: the pool every read and write batch borrows from, the
 * session settings each connection starts with, one-statement queries, and what a failure of
 * theirs becomes (SagaLogUnavailableError when the server is out of reach or the log closed).
 */
import pg from 'pg';
import { SAGA_LOG_TIMEOUT_DEFAULT_MS, redactPassword } from '../../platform/config/config.js';
import type { Logger } from '../../platform/telemetry/logger.js';
import { SagaLogError, SagaLogUnavailableError } from '../model.js';
import { isConnectionError, isQueryDeadline, reason } from '../../platform/storage/pg-errors.js';
import { IDLE_IN_TRANSACTION_MS, withSessionSettings } from '../../platform/storage/pg.js';

export type SynchronousCommit = 'on' | 'off' | 'local' | 'remote_write' | 'remote_apply';

export const SYNCHRONOUS_COMMIT: readonly SynchronousCommit[] = ['on', 'off', 'local', 'remote_write', 'remote_apply'];

export interface PostgresSagaLogOptions {
  url: string;
  /** Connections in the pool; write batches use at most poolSize - 1 of them at once, so reads always find one. */
  poolSize: number;
  /** The session's synchronous_commit: `on` waits for the WAL flush (and the synchronous standbys, if any). */
  synchronousCommit: SynchronousCommit;
  /**
   * How long the log waits for a connection, and for a statement's answer before it gives up on the
   * statement and its connection (default SAGA_LOG_TIMEOUT_DEFAULT_MS). Tools that only read wait for answers
   * without a bound.
   */
  timeoutMs?: number;
  /** For tools that only read (sagas inspect): no migrations, and the sessions refuse writes. */
  readonly?: boolean;
  logger?: Logger;
}

export class PostgresPool {
  readonly pool: pg.Pool;
  /** The log's URL without its password, for messages. */
  readonly where: string;
  readonly logger: Logger | undefined;
  /** Backend pids of this pool's connections: a notification from one of them is an echo of our own commit. */
  readonly ownBackends = new Set<number>();
  /** Set by the log's close, once its pending writes went out: every later call is refused. */
  closed = false;

  constructor(private readonly opts: PostgresSagaLogOptions) {
    this.where = redactPassword(opts.url);
    this.logger = opts.logger;
    this.pool = new pg.Pool({ ...this.clientConfig(), max: Math.max(1, opts.poolSize), idleTimeoutMillis: 30_000 });
    // An idle connection that breaks (server restarted) is dropped by the pool; without a
    // listener its error would crash the process.
    this.pool.on('error', (err) =>
      this.logger?.warn({ err: reason(err) }, 'saga log: an idle PostgreSQL connection broke'),
    );
    this.pool.on('connect', (client) => {
      // A connection in use by a batch also reports its breakage as an event; the batch's own
      // query fails with it too, and that is what callers see.
      client.on('error', () => {});
      const pid = backendPid(client);
      if (pid !== null) this.ownBackends.add(pid);
    });
    this.pool.on('remove', (client) => {
      const pid = backendPid(client);
      if (pid !== null) this.ownBackends.delete(pid);
    });
  }

  /** Session settings go in the startup packet (no extra round trip); see withSessionSettings. */
  clientConfig(): pg.ClientConfig {
    const settings = [
      `synchronous_commit=${this.opts.synchronousCommit}`,
      // A gateway cut from the log mid-batch must not hold its sagas' rows past the cut.
      `idle_in_transaction_session_timeout=${IDLE_IN_TRANSACTION_MS}`,
      ...(this.opts.readonly ? ['default_transaction_read_only=on'] : []),
    ];
    return {
      ...withSessionSettings(this.opts.url, settings),
      application_name: 'ecommerce-sagas',
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      connectionTimeoutMillis: this.deadlineMs,
      ...(this.opts.readonly ? {} : { query_timeout: this.deadlineMs }),
    };
  }

  /**
   * A server cut off by a silent partition answers nothing, and TCP takes minutes to say so: without
   * a deadline a write (and the POST /orders behind it) would wait that long. At the deadline pg
   * fails the statement and its connection is thrown away (the pool's release with an error ends
   * it, destroying the socket of a statement still on the wire): the write's fate is unknown, as
   * with a connection lost at COMMIT, and is handled as that is (SagaLogUnavailableError). A
   * connection attempt has the same bound, so a request is refused within it whether it found an
   * open connection or needed a new one.
   */
  get deadlineMs(): number {
    return this.opts.timeoutMs ?? SAGA_LOG_TIMEOUT_DEFAULT_MS;
  }

  private unavailable(err: unknown): SagaLogUnavailableError {
    const why = isQueryDeadline(err) ? `no answer within ${this.deadlineMs} ms` : reason(err);
    return new SagaLogUnavailableError(`saga log at ${this.where} unavailable: ${why}`, { cause: err });
  }

  wrap(err: unknown): Error {
    if (err instanceof SagaLogError) return err;
    if (isConnectionError(err)) return this.unavailable(err);
    return err instanceof Error ? err : new Error(String(err));
  }

  closedError(): SagaLogUnavailableError {
    return new SagaLogUnavailableError(`saga log at ${this.where} is closed`);
  }

  /** One statement on any pooled connection; prepared once per connection under `name`. */
  readonly query = async <R extends pg.QueryResultRow>(
    name: string,
    sql: string,
    values: unknown[] = [],
  ): Promise<R[]> => {
    if (this.closed) throw this.closedError();
    try {
      return (await this.pool.query<R>({ name, text: sql, values })).rows;
    } catch (err) {
      throw this.wrap(err);
    }
  };
}

/** The server process id of a connection (pg sets it at connect; its types do not declare it). */
function backendPid(client: pg.ClientBase): number | null {
  const pid = (client as unknown as { processID?: number | null }).processID;
  return typeof pid === 'number' ? pid : null;
}
