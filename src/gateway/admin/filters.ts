/**
 * The saga list's filters as the admin API takes them (`GET /api/sagas?status=&q=&customer=&step=&from=&to=`),
 * checked and turned into the saga log's ListQuery. Every refusal is `invalid_request` (400)
 * naming the parameter and what it takes.
 */
import { isCustomerId, isOrderId } from '../../contracts/ids.js';
import { LIMITS } from '../../contracts/limits.js';
import { SAGA_STATUSES, type ListQuery, type SagaStatus } from '../../saga/index.js';
import { HttpError } from '../http/errors.js';

export interface SagaFilterParams {
  status?: string;
  q?: string;
  customer?: string;
  step?: string;
  from?: string;
  to?: string;
}

export type SagaFilters = Omit<ListQuery, 'limit' | 'cursor'>;

const bad = (message: string) => new HttpError('invalid_request', message);

/** Date, or date and time with seconds and fraction optional, and a zone: what `Date.parse` reads the same everywhere. */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/;

/**
 * A time as epoch milliseconds: digits are milliseconds; otherwise an ISO 8601 date (UTC
 * midnight) or date and time with its zone (`Z` or `±hh:mm`: a time without one would mean the
 * server's zone, which the caller cannot know).
 */
export function parseTime(name: string, value: string): number {
  const v = value.trim();
  if (/^\d{1,15}$/.test(v)) return Number(v);
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?$/.test(v)) {
    throw bad(`${name} has no time zone: add Z (UTC) or an offset such as +01:00, e.g. ${v}Z`);
  }
  const ms = ISO_TIME.test(v) ? Date.parse(v) : Number.NaN;
  if (!Number.isFinite(ms) || ms < 0)
    throw bad(`${name} must be an ISO 8601 time (e.g. 2026-11-27T21:00:00Z, or a date) or epoch milliseconds`);
  return ms;
}

/** The filters of a listing; `steps` are the step names the registered definitions have. */
export function sagaFilters(p: SagaFilterParams, steps: readonly string[]): SagaFilters {
  const f: SagaFilters = {};
  const status = p.status?.trim().toUpperCase();
  if (status) {
    if (!SAGA_STATUSES.includes(status as SagaStatus)) throw bad(`status must be one of ${SAGA_STATUSES.join(', ')}`);
    f.status = status as SagaStatus;
  }
  const q = p.q?.trim();
  if (q) {
    if (!isOrderId(q))
      throw bad(`q must be a saga (= order) id or its beginning: 1-${LIMITS.orderIdMax} letters, digits, _ . : -`);
    f.idPrefix = q;
  }
  const customer = p.customer?.trim();
  if (customer) {
    if (!isCustomerId(customer))
      throw bad(`customer must be a customer id: 1-${LIMITS.customerIdMax} printable ASCII characters without spaces`);
    f.subject = customer;
  }
  const step = p.step?.trim();
  if (step) {
    if (!steps.includes(step)) throw bad(`step must be one of ${steps.join(', ')}`);
    f.step = step;
  }
  if (p.from !== undefined && p.from.trim() !== '') f.createdFrom = parseTime('from', p.from);
  if (p.to !== undefined && p.to.trim() !== '') f.createdTo = parseTime('to', p.to);
  if (f.createdFrom !== undefined && f.createdTo !== undefined && f.createdFrom > f.createdTo)
    throw bad('from must not be after to');
  return f;
}
