import { AppError } from '../errors.js';

/**
 * What a participant's store reports when its database is the problem, in a file of their own so
 * that a process on SQLite, which never loads `pg`, can still tell them apart (runMain).
 */

/** The database cannot be reached (or the store is closed): nothing was done, or the outcome of a commit is unknown. */
export class StoreUnavailableError extends AppError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('store_unavailable', message);
    this.name = 'StoreUnavailableError';
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

/**
 * The database answered but cannot be used as it is: a refused password, a missing database,
 * another service's tables in it, a failed migration. The deployment's to fix; the message names
 * the URL without its password.
 */
export class StoreOpenError extends AppError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('store_refused', message);
    this.name = 'StoreOpenError';
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}
