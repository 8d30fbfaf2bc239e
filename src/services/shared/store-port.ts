import type { Awaitable, InboxRecords } from '../../platform/storage/inbox.js';

export type { Awaitable };

/**
 * What every participant's store port has besides its own reads and writes: the inbox's records
 * in the same database, so that a write RPC's effect (given `W`, the store's writes bound to the
 * transaction) commits with its idempotency record; the database's identity; a readiness check;
 * and its close. Each participant has two implementations, SQLite (store.ts: synchronous inside,
 * group-committed) and PostgreSQL (postgres-store.ts), checked by one conformance suite
 * (test/helpers/participant-store-conformance.ts).
 */
export interface ParticipantStore<W> extends StoreHandle {
  /** The inbox's records; an effect writes through `W`, in the record's transaction. */
  readonly inbox: InboxRecords<W>;
}

/** What the process's life needs of a store (run.ts): what it is, its identity, its check, its close. */
export interface StoreHandle {
  readonly kind: 'sqlite' | 'postgres';
  /** Where the data is, for the log: a file, or a URL without its password. */
  readonly where: string;
  /**
   * A random id given to the database when it was made: what is kept elsewhere on its behalf (the
   * Redis fast path) is namespaced by it, so a database made anew never sees its predecessor's.
   */
  databaseId(): Promise<string>;
  /** Whether the database answers now (readiness). */
  check(): Promise<boolean>;
  close(): Promise<void>;
}
