/**
 * How a PostgreSQL store (the saga log's, a participant's) tells a lost connection, and a
 * transaction worth running again, from a statement's own error.
 */

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '53300', // too_many_connections
]);

/**
 * Whether pg gave up waiting for a statement's answer (its `query_timeout`): the server may still
 * run it, so its fate is unknown, as when the connection breaks. pg gives this error no code.
 */
export function isQueryDeadline(err: unknown): boolean {
  return err instanceof Error && err.message === 'Query read timeout';
}

/** Whether an error says the server cannot be reached or the connection broke (not what a statement did). */
export function isConnectionError(err: unknown): boolean {
  if (err instanceof AggregateError && err.errors.some(isConnectionError)) return true;
  if (!(err instanceof Error)) return false;
  if (isQueryDeadline(err)) return true;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (CONNECTION_CODES.has(code) || code.startsWith('08'))) return true;
  return /Connection terminated|connection error and is not queryable|Client was closed and is not queryable|timeout exceeded when trying to connect|Connection timeout|Cannot use a pool after calling end/i.test(
    err.message,
  );
}

/** Errors after which the whole transaction is simply run again: nothing of it was committed (deadlock, serialization). */
export function isRetryable(err: unknown): boolean {
  const code = err instanceof Error ? (err as { code?: unknown }).code : undefined;
  return code === '40P01' || code === '40001';
}

export function reason(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return err.errors.map(reason).join('; ');
  return err instanceof Error ? err.message : String(err);
}
