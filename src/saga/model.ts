import type { Json, SagaFailure } from './definition.js';
import type { BulkJobStore } from './bulk.js';
import type { DefinitionRef, VersionCount } from './versions.js';
import type { RetentionAges } from './retention.js';

/**
 * RESOLVED: closed by an operator after a repair by hand (a PARKED saga, with a mandatory note);
 * terminal like the others (DESIGN §6.1).
 */
export type SagaStatus = 'RUNNING' | 'COMPENSATING' | 'COMPLETED' | 'COMPENSATED' | 'PARKED' | 'RESOLVED';

export const TERMINAL_STATUSES: readonly SagaStatus[] = ['COMPLETED', 'COMPENSATED', 'PARKED', 'RESOLVED'];

export const SAGA_STATUSES: readonly SagaStatus[] = ['RUNNING', 'COMPENSATING', ...TERMINAL_STATUSES];

export function isTerminal(status: SagaStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

export type SagaEventType =
  | 'SAGA_STARTED'
  | 'SAGA_RESUMED'
  | 'STEP_STARTED'
  | 'STEP_SUCCEEDED'
  | 'STEP_FAILED'
  | 'COMPENSATION_STARTED'
  | 'COMPENSATION_SUCCEEDED'
  | 'COMPENSATION_FAILED'
  | 'SAGA_COMPLETED'
  | 'SAGA_COMPENSATED'
  | 'SAGA_PARKED'
  /** An operator's retry, compensate or resolve: data `{action, action_id, actor, note}`. */
  | 'OPERATOR_ACTION';

/** The current state of one saga: what recovery and listing read instead of replaying the log. */
export interface SagaRecord {
  id: string;
  definition: string;
  version: number;
  status: SagaStatus;
  /** Forward: index of the step to run next (or in flight). */
  stepIndex: number;
  /** Compensating: index of the step to compensate next, counting down; -1 when none is left. */
  compIndex: number;
  /** Attempts made of the current step or compensation; 0 when none has started. */
  attempt: number;
  input: Json;
  results: Record<string, Json>;
  failure: SagaFailure | null;
  traceparent: string | null;
  idempotencyKey: string | null;
  leaseOwner: string | null;
  leaseExpiresAt: number;
  deadlineAt: number;
  createdAt: number;
  updatedAt: number;
  /**
   * Whom the saga acts for, in its business's words (the place-order saga: the customer id),
   * from its definition's `subject` at creation; indexed, so that sagas can be listed by it. Null
   * when the definition names none.
   */
  subject: string | null;
  /**
   * The step the saga is at: RUNNING, the step to run (stepIndex's); COMPENSATING, the step to
   * compensate (compIndex's); PARKED, the step it is stuck on; null otherwise. Kept by the
   * engine in every patch that moves it (the log knows no step names); indexed for listing.
   */
  currentStep: string | null;
  /**
   * When the saga last made progress (epoch ms, the log's clock): its creation, or the last write
   * that changed its status, stepIndex or compIndex. A failed attempt is no progress. Set by the
   * log on every record it returns; absent on a record that was not read from a log.
   */
  progressAt?: number;
}

export interface NewEvent {
  type: SagaEventType;
  step?: string | null;
  attempt?: number | null;
  error?: string | null;
  /** For STEP_FAILED / COMPENSATION_FAILED: whether the outcome is uncertain and retried. */
  retryable?: boolean | null;
  data?: Json;
  traceId?: string | null;
  spanId?: string | null;
}

export interface SagaEvent extends Required<Omit<NewEvent, 'data'>> {
  sagaId: string;
  seq: number;
  data: Json;
  at: number;
}

/** A page of a saga's timeline: events are numbered 1, 2, ... per saga. */
export interface EventPage {
  afterSeq?: number;
  limit?: number;
}

/** The fields an event may change on the saga row, written in the same transaction. */
export type SagaPatch = Partial<
  Pick<SagaRecord, 'status' | 'stepIndex' | 'compIndex' | 'attempt' | 'results' | 'failure' | 'currentStep' | 'version'>
> & {
  /** A patch can only give the lease up (a terminal saga); taking and extending it is the log's, on its clock. */
  leaseOwner?: null;
  leaseExpiresAt?: 0;
};

/**
 * Which sagas to list; the filters combine (AND). Newest first: by creation order (seq), or, with
 * a time range, by creation time (createdAt, then seq). A cursor belongs to the query that issued
 * it: the next page is asked with the same filters.
 */
export interface ListQuery {
  status?: SagaStatus;
  /** Exactly this subject (e.g. a customer id). */
  subject?: string;
  /** Whose currentStep is this step name (so RUNNING, COMPENSATING or PARKED sagas only). */
  step?: string;
  /** Created at or after this time (epoch ms). */
  createdFrom?: number;
  /** Created at or before this time (epoch ms). */
  createdTo?: number;
  /** Whose id starts with this (case-sensitive). */
  idPrefix?: string;
  /**
   * Stuck: in flight (RUNNING or COMPENSATING) and without progress (see SagaRecord.progressAt)
   * for longer than this many ms, by the log's clock. Read through the index of unfinished sagas.
   */
  stuckForMs?: number;
  limit: number;
  /** Opaque cursor from a previous page. */
  cursor?: Cursor;
}

/** An opaque position in a listing, as handed out by `list`; only the log that issued it reads it. */
export type Cursor = string & { readonly __cursor?: never };

export interface ListPage {
  sagas: SagaRecord[];
  nextCursor: Cursor | null;
}

/** What a saga's row must still be for `takeOver` to commit. */
export interface TakeOverExpectation {
  status: SagaStatus;
  /** When given, the row's stepIndex must be this too. */
  stepIndex?: number;
  /** When given, the row's compIndex must be this too. */
  compIndex?: number;
  /** When given, the row's definition version must be this too (a migration's move). */
  version?: number;
}

export type CreateResult = { created: true; saga: SagaRecord } | { created: false; existingId: string };

/** What one prune removed. */
export interface PruneResult {
  sagas: number;
  events: number;
}

export interface LiveStats {
  inflight: number;
  parked: number;
  oldestAgeSeconds: number;
  /** In-flight sagas without progress for longer than the `stuckAfterMs` asked (0 when not asked). */
  stuck: number;
}

/**
 * The durable saga log: the engine's only window on storage. Every method is async; writes
 * resolve once committed. Leases are stamped by the log's clock (the database's, where there is
 * one), never by the caller's, so several processes on several machines agree on who owns what.
 */
export interface SagaLog {
  /** A random id given to the log when it was created; records kept elsewhere for it are namespaced by it. */
  identity(): Promise<string>;
  /**
   * Stores a new saga with its creation's events (SAGA_STARTED, then, from the engine, its first
   * step's STEP_STARTED), numbered from 1, all in one commit,
   * leased to `saga.leaseOwner` for `leaseMs` by the log's clock. An idempotency key (or a saga id)
   * already used returns the saga that holds it instead, and writes nothing, so a create retried
   * after a lost answer finds its saga.
   */
  create(saga: SagaRecord, events: readonly NewEvent[], leaseMs: number): Promise<CreateResult>;
  /** Applies `patch` and appends `events` atomically, if `owner` still holds the lease; else LeaseLostError. */
  append(id: string, owner: string, patch: SagaPatch, events: NewEvent[]): Promise<void>;
  /**
   * An operator's transition: applies `patch` and appends `events` atomically if the saga's row
   * still matches `expect`, whoever holds its lease, and leases the saga to `owner` for `leaseMs`
   * by the log's clock (a patch that gives the lease up, e.g. a terminal one, leaves it unleased).
   * Returns the saga as committed, or undefined when it does not exist or no longer matches
   * (nothing is written then). The previous owner's next append fails with LeaseLostError.
   * Serialized with the saga's other writes, as an append is.
   */
  takeOver(
    id: string,
    expect: TakeOverExpectation,
    owner: string,
    leaseMs: number,
    patch: SagaPatch,
    events: NewEvent[],
  ): Promise<SagaRecord | undefined>;
  get(id: string): Promise<SagaRecord | undefined>;
  getByIdempotencyKey(key: string): Promise<SagaRecord | undefined>;
  /** The saga's events in order: those after `afterSeq` (default 0), at most `limit` (default all). */
  events(id: string, page?: EventPage): Promise<SagaEvent[]>;
  /**
   * Newest first (see ListQuery). A cursor this log did not issue, or issued for a listing of
   * another order (with or without a time range), is InvalidCursorError; so is the empty string.
   */
  list(q: ListQuery): Promise<ListPage>;
  /** The PARKED queue: up to `limit` PARKED sagas, longest parked first (by updatedAt, then seq), read through an index. */
  parked(limit: number): Promise<SagaRecord[]>;
  /**
   * Takes over up to `limit` unfinished sagas whose lease has expired, oldest first, leasing them
   * to `owner` for `leaseMs`. With `definitions`, only sagas of those definitions: a process never
   * claims (and then sits on) a saga it cannot drive, e.g. during a rolling upgrade.
   */
  claimExpired(
    owner: string,
    leaseMs: number,
    limit: number,
    definitions?: readonly DefinitionRef[],
  ): Promise<SagaRecord[]>;
  /**
   * Sagas in flight (RUNNING, COMPENSATING, PARKED) per definition version: what `sagas versions`
   * shows and what a process checks before it starts. Read through the status index.
   */
  versionCounts(): Promise<VersionCount[]>;
  /** Extends `owner`'s leases on `ids` by `leaseMs`; returns the ids whose lease `owner` no longer holds. */
  renewLeases(owner: string, ids: readonly string[], leaseMs: number): Promise<string[]>;
  releaseLeases(owner: string, ids: readonly string[]): Promise<void>;
  /**
   * The log's own clock, in ms since the epoch: the one leases are stamped with. The engine judges
   * saga deadlines by it too (see SagaEngine.syncClock), so gateways with skewed clocks agree.
   */
  clock(): Promise<number>;
  /** Every status with its count: one pass over the (status) index, a few ms per 100,000 sagas. */
  countByStatus(): Promise<Record<SagaStatus, number>>;
  /**
   * Unfinished and parked sagas and the age of the oldest unfinished one, read through indexes;
   * with `stuckAfterMs`, also how many unfinished ones made no progress for longer than that (by
   * the log's clock), in the same pass.
   */
  liveStats(stuckAfterMs?: number): Promise<LiveStats>;
  /**
   * Deletes at most `limit` finished sagas whose outcome's age in `ages` has passed since they
   * ended (updatedAt, by the log's clock), each outcome's oldest end first, with their events, in
   * one bounded transaction; never a RUNNING, COMPENSATING or PARKED saga. Their idempotency
   * keys are free again. Several processes may prune at once: each saga is deleted by one of them.
   */
  prune(ages: RetentionAges, limit: number): Promise<PruneResult>;
  /**
   * Calls `listener` with the id of every saga that reaches a terminal status, whichever process
   * sharing this log drove it (after the commit). Returns the function that unsubscribes.
   * Best effort across processes: an end announced while the log's notification channel is down
   * is not heard (rarely, one is heard twice), so a waiter also reads the saga when it gives up.
   */
  onFinished(listener: (sagaId: string) => void): () => void;
  /** Bulk operator actions' jobs, kept in the log's database (src/saga/bulk.ts); absent: this log keeps none. */
  bulkJobs?(): BulkJobStore;
  /** Flushes pending writes and closes. */
  close(): Promise<void>;
}

/** The errors a SagaLog raises, each with a stable code. */
export abstract class SagaLogError extends Error {
  abstract readonly code: 'lease_lost' | 'invalid_cursor' | 'saga_log_unavailable';
}

export class LeaseLostError extends SagaLogError {
  readonly code = 'lease_lost';
  constructor(readonly sagaId: string) {
    super(`lease on saga ${sagaId} is held by another owner`);
  }
}

export class InvalidCursorError extends SagaLogError {
  readonly code = 'invalid_cursor';
  constructor(cursor: string) {
    super(`cursor "${cursor}" is not one this server issued`);
  }
}

/** The log cannot be reached (connection refused or lost): nothing of the failed call was committed, or it is unknown. */
export class SagaLogUnavailableError extends SagaLogError {
  readonly code = 'saga_log_unavailable';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Listing position ↔ cursor; the same encoding for every store, so cursors stay opaque to callers. */
export function encodeCursor(seq: number): Cursor {
  return Buffer.from(`s${seq}`).toString('base64url');
}

export function decodeCursor(cursor: string): number {
  const m = /^s(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!m) throw new InvalidCursorError(cursor);
  return Number(m[1]);
}

/** A position in a listing by creation time (a ListQuery with a time range): the last row's createdAt and seq. */
export function encodeTimeCursor(createdAt: number, seq: number): Cursor {
  return Buffer.from(`t${createdAt}.${seq}`).toString('base64url');
}

export function decodeTimeCursor(cursor: string): { createdAt: number; seq: number } {
  const m = /^t(\d{1,15})\.(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!m) throw new InvalidCursorError(cursor);
  return { createdAt: Number(m[1]), seq: Number(m[2]) };
}

/** Whether a listing is by creation time (it has a time range) rather than by creation order. */
export function listsByTime(q: ListQuery): boolean {
  return q.createdFrom !== undefined || q.createdTo !== undefined;
}

/**
 * The exclusive upper bound of the ids starting with `prefix`, in binary (code point / UTF-8
 * byte) order: no id with the prefix reaches prefix + U+10FFFF.
 */
export function prefixUpperBound(prefix: string): string {
  return `${prefix}\u{10FFFF}`;
}

/**
 * What a reader of sagas may do (the engine's `reads`): the log's read methods, none that writes,
 * leases or subscribes. The console, the public API and reconciliation read through it.
 */
export type SagaReads = Pick<
  SagaLog,
  'get' | 'getByIdempotencyKey' | 'events' | 'list' | 'parked' | 'countByStatus' | 'liveStats'
>;
