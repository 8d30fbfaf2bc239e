import type { Json, SagaFailure } from './definition.js';

export type SagaStatus = 'RUNNING' | 'COMPENSATING' | 'COMPLETED' | 'COMPENSATED' | 'PARKED';

export const TERMINAL_STATUSES: readonly SagaStatus[] = ['COMPLETED', 'COMPENSATED', 'PARKED'];

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
  | 'SAGA_PARKED';

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

/** The fields an event may change on the saga row, written in the same transaction. */
export type SagaPatch = Partial<
  Pick<SagaRecord, 'status' | 'stepIndex' | 'compIndex' | 'attempt' | 'results' | 'failure' | 'leaseOwner' | 'leaseExpiresAt'>
>;

export interface ListQuery {
  status?: SagaStatus;
  limit: number;
  /** Opaque cursor from a previous page. */
  cursor?: string;
}

export interface ListPage {
  sagas: SagaRecord[];
  nextCursor: string | null;
}

export type CreateResult = { created: true } | { created: false; existingId: string };

/** The durable saga log. Writes resolve once they are committed. */
export interface SagaStore {
  create(saga: SagaRecord, started: NewEvent): Promise<CreateResult>;
  /** Applies `patch` and appends `events` atomically, if `owner` still holds the lease. */
  append(id: string, owner: string, patch: SagaPatch, events: NewEvent[]): Promise<void>;
  get(id: string): SagaRecord | undefined;
  getByIdempotencyKey(key: string): SagaRecord | undefined;
  events(id: string): SagaEvent[];
  list(q: ListQuery): ListPage;
  /** Takes over up to `limit` unfinished sagas whose lease has expired. */
  claimExpired(owner: string, now: number, leaseMs: number, limit: number): SagaRecord[];
  renewLeases(owner: string, ids: readonly string[], until: number): void;
  releaseLeases(owner: string, ids: readonly string[]): void;
  /** Every status with its count: a scan of the whole log, for tools, not for probes. */
  countByStatus(): Record<SagaStatus, number>;
  /** Unfinished and parked sagas and the age of the oldest unfinished one, read through indexes. */
  liveStats(now: number): { inflight: number; parked: number; oldestAgeSeconds: number };
  close(): void;
}

export class LeaseLostError extends Error {
  readonly code = 'lease_lost';
  constructor(readonly sagaId: string) {
    super(`lease on saga ${sagaId} is held by another owner`);
  }
}
