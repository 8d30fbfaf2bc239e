/**
 * Bulk operator actions with a bounded blast radius: one action (retry, compensate, resolve) on
 * the sagas a filter selects, at most `cap` of them, frozen when the job is made, taken one at a
 * time at a set rate, each through `SagaEngine.act` with the job's id as its action id (so a job
 * run twice, by a restarted gateway or by two sharing the log, replays instead of acting twice)
 * and recorded as an OPERATOR_ACTION carrying `bulk_id`.
 *
 * This file holds the contract (the job, its per-saga results, the store's interface) and the
 * pure parts: request validation, the job's state machine, the pacing arithmetic, the filter's
 * in-memory part, and the sum of a dry run. The stores are stores/sqlite-bulk.ts and
 * stores/postgres-bulk.ts; the runner that paces a job lives with the process that runs it.
 */
import type { ActionPreview, StockMove } from './preview.js';
import type { SagaDefinition } from './definition.js';
import type { Cursor, SagaReads, SagaRecord, SagaStatus } from './model.js';
import { SAGA_STATUSES } from './model.js';
import { MAX_NOTE_LENGTH, OPERATOR_ACTIONS, normalizeNote, type OperatorActionKind } from './operator.js';

/** The most sagas one job may act on. */
export const BULK_MAX_CAP = 10_000;
/** Sagas per second: the default, and the most a job may ask. */
export const BULK_DEFAULT_RATE = 5;
export const BULK_MAX_RATE = 50;
/** The slowest a job may go: one saga every ten seconds. */
export const BULK_MIN_RATE = 0.1;
/** A failure code as the engine and the steps write them (e.g. payment_declined, operator_compensate). */
const FAILURE_CODE = /^[A-Za-z0-9_.:-]{1,100}$/;

/**
 * The job's life: running ⇄ paused → done | cancelled. ("Planned" is the dry run, which stores
 * nothing: a job is stored when it is started, its selection frozen then.)
 */
export type BulkJobState = 'running' | 'paused' | 'done' | 'cancelled';
export const BULK_JOB_STATES: readonly BulkJobState[] = ['running', 'paused', 'done', 'cancelled'];

/** What happened to one saga of a job; `pending` until the runner reaches it. */
export type BulkResult = 'pending' | 'applied' | 'replayed' | 'refused' | 'failed';
export const BULK_RESULTS: readonly BulkResult[] = ['pending', 'applied', 'replayed', 'refused', 'failed'];

/** Which sagas a job selects; the criteria combine (AND). */
export interface BulkFilter {
  status?: SagaStatus;
  /** The saga's current step (RUNNING, COMPENSATING or PARKED sagas only). */
  step?: string;
  /** The code of the saga's failure (e.g. payment_declined); read from each listed saga. */
  failureCode?: string;
  /** Whom the saga acts for (the place-order saga: the customer id). */
  subject?: string;
  /** Created at or after / at or before (epoch ms). */
  createdFrom?: number;
  createdTo?: number;
}

/** What a caller asks for; checked by validateBulkRequest. */
export interface BulkRequest {
  action: string;
  note?: string | null;
  filter: BulkFilter;
  /** Sagas per second (default BULK_DEFAULT_RATE). */
  rate?: number;
  /** The most sagas the job may act on; required. */
  cap?: number;
}

/** A request that passed validateBulkRequest. */
export interface BulkPlan {
  action: OperatorActionKind;
  note: string | null;
  filter: BulkFilter;
  rate: number;
  cap: number;
}

export interface BulkCounts {
  pending: number;
  applied: number;
  replayed: number;
  refused: number;
  failed: number;
}

export interface BulkJob extends BulkPlan {
  id: string;
  actor: string;
  state: BulkJobState;
  /** How many sagas were selected (frozen at creation, at most `cap`). */
  total: number;
  counts: BulkCounts;
  createdAt: number;
  updatedAt: number;
  /** When it reached done or cancelled. */
  finishedAt: number | null;
  /** When its latest saga was acted on (what pacing goes on from after a restart). */
  lastActedAt: number | null;
  leaseOwner: string | null;
  leaseExpiresAt: number;
}

/** One saga of a job: its place in the selection, and what the action did to it. */
export interface BulkItem {
  position: number;
  sagaId: string;
  result: BulkResult;
  /** refused: the engine's code (action_not_allowed...); failed: an error's name. */
  code: string | null;
  message: string | null;
  at: number | null;
}

export type BulkOutcome = Exclude<BulkResult, 'pending'>;

export interface NewBulkJob extends BulkPlan {
  id: string;
  actor: string;
}

/** What stores a job: in the saga log's database, so a restarted gateway (or another) resumes it. */
export interface BulkJobStore {
  /** Stores the job (running) with its frozen selection, in one transaction. */
  create(job: NewBulkJob, sagaIds: readonly string[]): Promise<BulkJob>;
  get(id: string): Promise<BulkJob | undefined>;
  /** Newest first; `before` is the id of the last job of the previous page. */
  list(limit: number, before?: string): Promise<BulkJob[]>;
  /** The job's sagas in selection order, after `afterPosition` (default -1), at most `limit`. */
  items(id: string, afterPosition: number, limit: number): Promise<BulkItem[]>;
  /** The first `limit` sagas not yet acted on, in selection order. */
  pending(id: string, limit: number): Promise<BulkItem[]>;
  /** Records a saga's outcome if it is still pending (a second runner's replay does not overwrite it); true if it was. */
  record(
    id: string,
    position: number,
    outcome: BulkOutcome,
    code: string | null,
    message: string | null,
  ): Promise<boolean>;
  /** Moves the job to `to` if its state is one of `from`; the job as it then is, or undefined when it did not match. */
  setState(id: string, from: readonly BulkJobState[], to: BulkJobState): Promise<BulkJob | undefined>;
  /**
   * Leases to `owner` for `leaseMs` (by the store's clock) the running jobs nobody holds (or whose
   * lease expired, or that `owner` holds already), so that one runner paces a job at a time.
   */
  claim(owner: string, leaseMs: number): Promise<BulkJob[]>;
  /** Extends `owner`'s lease; false when it no longer holds it. */
  renew(id: string, owner: string, leaseMs: number): Promise<boolean>;
  release(id: string, owner: string): Promise<void>;
}

/** A request refused before anything is read or written; `field` names what to fix. */
export class BulkRequestError extends Error {
  constructor(
    readonly code: 'invalid_request' | 'note_required',
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = 'BulkRequestError';
  }
}

/** The plan a request asks for, or BulkRequestError naming the first thing wrong. */
export function validateBulkRequest(r: BulkRequest): BulkPlan {
  const bad = (field: string, message: string) => new BulkRequestError('invalid_request', field, message);
  if (!OPERATOR_ACTIONS.includes(r.action as OperatorActionKind))
    throw bad('action', `action must be one of ${OPERATOR_ACTIONS.join(', ')}`);
  const action = r.action as OperatorActionKind;
  if (r.cap === undefined || r.cap === null)
    throw bad('cap', `cap is required: the most sagas the job may act on (1-${BULK_MAX_CAP})`);
  if (!Number.isInteger(r.cap) || r.cap < 1 || r.cap > BULK_MAX_CAP)
    throw bad('cap', `cap must be an integer from 1 to ${BULK_MAX_CAP}`);
  const rate = r.rate ?? BULK_DEFAULT_RATE;
  if (!Number.isFinite(rate) || rate < BULK_MIN_RATE || rate > BULK_MAX_RATE)
    throw bad('rate', `rate must be from ${BULK_MIN_RATE} to ${BULK_MAX_RATE} sagas per second`);
  const note = normalizeNote(r.note);
  if (action === 'resolve' && note === null)
    throw new BulkRequestError('note_required', 'note', 'resolve needs a note saying what was repaired by hand');
  if (note !== null && note.length > MAX_NOTE_LENGTH)
    throw bad('note', `a note is at most ${MAX_NOTE_LENGTH} characters`);
  const f = r.filter;
  if (f.status !== undefined && !SAGA_STATUSES.includes(f.status))
    throw bad('status', `status must be one of ${SAGA_STATUSES.join(', ')}`);
  if (f.failureCode !== undefined && !FAILURE_CODE.test(f.failureCode))
    throw bad('failure_code', 'failure_code must be 1-100 letters, digits, _ . : -');
  if (f.createdFrom !== undefined && f.createdTo !== undefined && f.createdFrom > f.createdTo)
    throw bad('from', 'from must not be after to');
  return { action, note, filter: { ...f }, rate, cap: r.cap };
}

/** Whether a listed saga passes the criteria the log's listing does not apply (the failure code). */
export function matchesInMemory(filter: BulkFilter, saga: SagaRecord): boolean {
  return filter.failureCode === undefined || saga.failure?.code === filter.failureCode;
}

export type BulkCommand = 'pause' | 'resume' | 'cancel' | 'finish';

/**
 * The job's state machine: the state a command leads to, `same` when it is already there (a
 * repeated pause is no error), or `refused` (a finished job does not move).
 */
export function nextState(
  state: BulkJobState,
  command: BulkCommand,
): { kind: 'move'; to: BulkJobState } | { kind: 'same' } | { kind: 'refused'; message: string } {
  const finished = state === 'done' || state === 'cancelled';
  if (finished)
    return {
      kind: 'refused',
      message: `the job is ${state}: it can no longer ${command === 'finish' ? 'finish' : command}`,
    };
  switch (command) {
    case 'pause':
      return state === 'paused' ? { kind: 'same' } : { kind: 'move', to: 'paused' };
    case 'resume':
      return state === 'running' ? { kind: 'same' } : { kind: 'move', to: 'running' };
    case 'cancel':
      return { kind: 'move', to: 'cancelled' };
    case 'finish':
      return state === 'running'
        ? { kind: 'move', to: 'done' }
        : { kind: 'refused', message: 'only a running job finishes' };
  }
}

/** The states from which `command` moves a job (for the store's conditional update). */
export function statesFrom(command: BulkCommand): BulkJobState[] {
  return BULK_JOB_STATES.filter((s) => nextState(s, command).kind === 'move');
}

/**
 * How long to wait before the next saga: 1/rate seconds after the previous one ended (a bucket of
 * one token, so no burst after a pause, and never faster than the rate however long an action
 * takes), none when nothing was acted on yet.
 */
export function delayBefore(lastActedAt: number | null, now: number, rate: number): number {
  if (lastActedAt === null) return 0;
  return Math.max(0, Math.ceil(lastActedAt + 1000 / rate - now));
}

/** A dry run's answer: what the job would select and, for those the action allows, what it would move. */
export interface BulkDryRun {
  /** Sagas selected (at most cap). */
  count: number;
  /** True when the filter matched more sagas than the cap: only the newest `cap` are selected. */
  truncated: boolean;
  allowed: number;
  /** Those the engine would refuse, by code, with one example message each. */
  refused: Array<{ code: string; count: number; example: string }>;
  /** Sums over the allowed sagas' certain effects. */
  totals: { chargeCents: number; refundCents: number; stock: StockMove[] };
  /** The first selected sagas, for a look before acting. */
  sample: string[];
}

/** Adds the previews of a selection up (pure). */
export function sumPreviews(previews: readonly ActionPreview[], truncated: boolean, sampleSize = 20): BulkDryRun {
  const refused = new Map<string, { count: number; example: string }>();
  const stock = new Map<string, StockMove>();
  let chargeCents = 0;
  let refundCents = 0;
  let allowed = 0;
  for (const p of previews) {
    if (!p.allowed) {
      const code = p.refusal?.code ?? 'action_not_allowed';
      const r = refused.get(code) ?? { count: 0, example: p.refusal?.message ?? '' };
      r.count++;
      refused.set(code, r);
      continue;
    }
    allowed++;
    chargeCents += p.totals.chargeCents;
    refundCents += p.totals.refundCents;
    for (const m of p.totals.stock) {
      const key = `${m.item}\u0000${m.direction}`;
      const s = stock.get(key) ?? { item: m.item, direction: m.direction, quantity: 0 };
      s.quantity += m.quantity;
      stock.set(key, s);
    }
  }
  return {
    count: previews.length,
    truncated,
    allowed,
    refused: [...refused]
      .map(([code, r]) => ({ code, ...r }))
      .sort((a, b) => b.count - a.count || a.code.localeCompare(b.code)),
    totals: {
      chargeCents,
      refundCents,
      stock: [...stock.values()].sort((a, b) => a.item.localeCompare(b.item) || a.direction.localeCompare(b.direction)),
    },
    sample: previews.slice(0, sampleSize).map((p) => p.sagaId),
  };
}

/** Counts with every result present (the stores' GROUP BY leaves absent ones out). */
export function countsOf(rows: ReadonlyArray<{ result: string; n: number }>): BulkCounts {
  const c: BulkCounts = { pending: 0, applied: 0, replayed: 0, refused: 0, failed: 0 };
  for (const r of rows)
    if ((BULK_RESULTS as readonly string[]).includes(r.result)) c[r.result as BulkResult] = Number(r.n);
  return c;
}

/** The id of a new job: `bulk_` and a UUIDv7 (time-ordered, so listing by id is listing by age). */
export const BULK_ID = /^bulk_[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The most rows a selection reads from the listing (a failure code is matched in memory). */
export const BULK_MAX_SCAN = 200_000;
const PAGE = 500;

/**
 * The sagas a filter selects, newest first, at most `cap`: the log's listing (status, subject,
 * step, time range through its indexes), paged, with the failure code matched on each saga read.
 * `truncated` when more matched (or the scan stopped at BULK_MAX_SCAN rows).
 */
export async function selectSagas(
  reads: Pick<SagaReads, 'list'>,
  filter: BulkFilter,
  cap: number,
): Promise<{ sagas: SagaRecord[]; truncated: boolean }> {
  const { failureCode: _inMemory, ...listed } = filter;
  const sagas: SagaRecord[] = [];
  let cursor: Cursor | undefined;
  let scanned = 0;
  for (;;) {
    const page = await reads.list({ ...listed, limit: PAGE, ...(cursor ? { cursor } : {}) });
    for (const s of page.sagas) {
      if (!matchesInMemory(filter, s)) continue;
      if (sagas.length === cap) return { sagas, truncated: true };
      sagas.push(s);
    }
    scanned += page.sagas.length;
    if (!page.nextCursor) return { sagas, truncated: false };
    if (scanned >= BULK_MAX_SCAN) return { sagas, truncated: true };
    cursor = page.nextCursor;
  }
}

/** What a saga's action would do (preview.ts's previewAction, passed in). */
export type PreviewFn = (
  def: SagaDefinition<unknown> | undefined,
  saga: SagaRecord,
  action: OperatorActionKind,
) => ActionPreview;

/** The dry run of a plan: selects as the job would, previews each saga, adds them up. Writes nothing. */
export async function dryRunBulk(
  reads: Pick<SagaReads, 'list'>,
  /** The saga's definition, at its version (undefined when this process does not know it). */
  definitionOf: (saga: SagaRecord) => SagaDefinition<unknown> | undefined,
  preview: PreviewFn,
  plan: BulkPlan,
): Promise<BulkDryRun> {
  const { sagas, truncated } = await selectSagas(reads, plan.filter, plan.cap);
  return sumPreviews(
    sagas.map((s) => preview(definitionOf(s), s, plan.action)),
    truncated,
  );
}
