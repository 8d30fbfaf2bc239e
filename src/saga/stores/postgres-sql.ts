/**
 * What every part of the PostgreSQL saga log (reads, leases, writes, notifications) says the same
 * way: the database's clock, the column lists, the notification channel, and how a row becomes a
 * record.
 */
import type pg from 'pg';
import type { Json } from '../definition.js';
import type { SagaEvent, SagaRecord } from '../model.js';
import { toEvent, toRecord, type EventRow, type RowCodec, type SagaRow } from './rows.js';

/** The database's clock, in epoch milliseconds: every lease and every `at` is stamped by it. */
export const NOW_MS = `(extract(epoch from clock_timestamp()) * 1000)::bigint`;

/** The channel on which a commit that ends a saga announces its id to every process sharing the log. */
export const FINISHED_CHANNEL = 'saga_finished';

/** Named explicitly (not `*`): a prepared statement keeps working when a later migration adds a column. */
export const SAGA_COLUMNS = `seq, id, definition, version, status, step_index, comp_index, attempt, input, results, failure,
  traceparent, idempotency_key, lease_owner, lease_expires_at, deadline_at, created_at, updated_at, subject, current_step,
  progress_at`;
export const EVENT_COLUMNS = 'saga_id, seq, type, step, attempt, error, retryable, data, trace_id, span_id, at';

/** pg returns bigint columns as strings (numbers inside the batch statement's json) and json columns already parsed. */
export type Row = SagaRow<Json, string | number>;
export type EventRowPg = EventRow<Json, string, boolean>;
const CODEC: RowCodec<Json, string | number, boolean> = { json: (v) => v, num: (v) => Number(v), bool: (v) => v };
export const record = (r: Row): SagaRecord => toRecord(r, CODEC);
export const event = (r: EventRowPg): SagaEvent => toEvent(r, CODEC);

/**
 * One statement on any pooled connection, prepared once per connection under `name`; a lost
 * connection is SagaLogUnavailableError, and a closed log refuses (postgres-pool.ts).
 */
export type Query = <R extends pg.QueryResultRow>(name: string, sql: string, values?: unknown[]) => Promise<R[]>;
