/**
 * The saga log's two tables as rows, and their mapping to the port's records: the same columns in
 * every store. A driver returns some columns in its own form (SQLite: JSON as text, booleans as
 * 0/1; pg: bigints as strings, JSON parsed), so each store passes a codec for those.
 */
import type { Json, SagaFailure } from '../definition.js';
import type { SagaEvent, SagaPatch, SagaRecord, SagaStatus } from '../model.js';
import { refName, type VersionCount } from '../versions.js';

/** `J`: how a JSON column comes back; `N`: how a bigint (epoch ms) column does. */
export interface SagaRow<J, N> {
  seq: N;
  id: string;
  definition: string;
  version: number;
  status: SagaStatus;
  step_index: number;
  comp_index: number;
  attempt: number;
  input: J;
  results: J;
  failure: J | null;
  traceparent: string | null;
  idempotency_key: string | null;
  lease_owner: string | null;
  lease_expires_at: N;
  deadline_at: N;
  created_at: N;
  updated_at: N;
  subject: string | null;
  current_step: string | null;
  /** NULL on a row finished before the column existed (and absent from an older log's rows): updated_at then. */
  progress_at?: N | null;
}

/** `B`: how a boolean column comes back. */
export interface EventRow<J, N, B> {
  saga_id: string;
  seq: number;
  type: SagaEvent['type'];
  step: string | null;
  attempt: number | null;
  error: string | null;
  retryable: B | null;
  data: J | null;
  trace_id: string | null;
  span_id: string | null;
  at: N;
}

export interface RowCodec<J, N, B> {
  json(v: J): Json;
  num(v: N): number;
  bool(v: B): boolean;
}

export function toRecord<J, N, B>(r: SagaRow<J, N>, c: RowCodec<J, N, B>): SagaRecord {
  return {
    id: r.id,
    definition: r.definition,
    version: r.version,
    status: r.status,
    stepIndex: r.step_index,
    compIndex: r.comp_index,
    attempt: r.attempt,
    input: c.json(r.input),
    results: c.json(r.results) as Record<string, Json>,
    failure: r.failure === null ? null : (c.json(r.failure) as unknown as SagaFailure),
    traceparent: r.traceparent,
    idempotencyKey: r.idempotency_key,
    leaseOwner: r.lease_owner,
    leaseExpiresAt: c.num(r.lease_expires_at),
    deadlineAt: c.num(r.deadline_at),
    createdAt: c.num(r.created_at),
    updatedAt: c.num(r.updated_at),
    // Absent from a row read by a read-only tool on a log not yet migrated: none.
    subject: r.subject ?? null,
    currentStep: r.current_step ?? null,
    progressAt: c.num(r.progress_at ?? r.updated_at),
  };
}

export function toEvent<J, N, B>(r: EventRow<J, N, B>, c: RowCodec<J, N, B>): SagaEvent {
  return {
    sagaId: r.saga_id,
    seq: r.seq,
    type: r.type,
    step: r.step,
    attempt: r.attempt,
    error: r.error,
    retryable: r.retryable === null ? null : c.bool(r.retryable),
    data: r.data === null ? null : c.json(r.data),
    traceId: r.trace_id,
    spanId: r.span_id,
    at: c.num(r.at),
  };
}

/** The column of each patchable field. */
export const PATCH_COLUMNS: Record<keyof SagaPatch, string> = {
  status: 'status',
  stepIndex: 'step_index',
  compIndex: 'comp_index',
  attempt: 'attempt',
  results: 'results',
  failure: 'failure',
  leaseOwner: 'lease_owner',
  leaseExpiresAt: 'lease_expires_at',
  currentStep: 'current_step',
  version: 'version',
};

/**
 * The patched fields whose change is progress (SagaRecord.progressAt): a write moves progress_at
 * when it changes one of them, compared with the row as it was (an intent that sets the same
 * compIndex again is no progress).
 */
export const PROGRESS_KEYS: ReadonlyArray<keyof SagaPatch> = ['status', 'stepIndex', 'compIndex'];

/** A patch value as a statement parameter: JSON fields as their text. */
export function patchValue(key: keyof SagaPatch, value: unknown): unknown {
  if (key === 'results' || key === 'failure')
    return value === null || value === undefined ? null : JSON.stringify(value);
  return value ?? null;
}

/** Rows of (definition, version, status, count) as one count per version. */
export function foldVersionCounts(
  rows: readonly { definition: string; version: number | string; status: string; n: number | string }[],
): VersionCount[] {
  const byRef = new Map<string, VersionCount>();
  for (const r of rows) {
    const ref = { definition: r.definition, version: Number(r.version) };
    const key = refName(ref);
    const c = byRef.get(key) ?? { ...ref, running: 0, compensating: 0, parked: 0 };
    if (r.status === 'RUNNING') c.running += Number(r.n);
    else if (r.status === 'COMPENSATING') c.compensating += Number(r.n);
    else if (r.status === 'PARKED') c.parked += Number(r.n);
    byRef.set(key, c);
  }
  return [...byRef.values()].sort((a, b) => a.definition.localeCompare(b.definition) || a.version - b.version);
}
