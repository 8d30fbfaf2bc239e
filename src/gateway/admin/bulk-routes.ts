/**
 * Bulk actions on the admin API (src/saga/bulk.ts): a dry run of a filter (what it selects, what
 * the engine would refuse, the money and stock the rest would move), a job that takes the action
 * on the selection at a set rate under a cap, its per-saga results, and pause, resume, cancel.
 * Reads are any caller's; everything that makes or moves a job is the operator's (the dry run
 * too: it is the first half of an action). Registered inside the admin API, so its caller and
 * CSRF checks (auth.ts) apply.
 */
import { createRequire } from 'node:module';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Static } from '@sinclair/typebox';
import { uuidv7 } from '../../platform/ids.js';
import {
  BULK_DEFAULT_RATE,
  BULK_JOB_STATES,
  BULK_MAX_CAP,
  BULK_MAX_RATE,
  BULK_MIN_RATE,
  BULK_RESULTS,
  BulkRequestError,
  MAX_NOTE_LENGTH,
  OPERATOR_ACTIONS,
  bulkStatesFrom,
  dryRunBulk,
  nextBulkState,
  previewAction,
  selectSagas,
  validateBulkRequest,
  type BulkCommand,
  type BulkFilter,
  type BulkItem,
  type BulkJob,
  type BulkJobStore,
  type BulkPlan,
  type SagaEngine,
} from '../../saga/index.js';
import { HttpError, toHttpError } from '../http/errors.js';
import { errorResponses, Nullable, stringEnum } from '../http/schemas.js';
import type { Caller } from './auth.js';
import { sagaFilters } from './filters.js';
import { AdminSagaQuery } from './schemas.js';

// TypeBox's CommonJS build, as in http/schemas.ts (start-up time under tsx).
const { Type } = createRequire(import.meta.url)('@sinclair/typebox') as typeof import('@sinclair/typebox');

const Timestamp = Type.String({ format: 'date-time' });

/** What an ajv error carries that the refusal reads. */
interface AjvError {
  keyword: string;
  params?: Record<string, unknown>;
}

export const BulkFilterBody = Type.Object(
  {
    status: Type.Optional(Type.String({ maxLength: 40, description: 'a saga status (any case), e.g. PARKED' })),
    step: Type.Optional(Type.String({ maxLength: 200, description: 'the step the saga is at or stuck on' })),
    failure_code: Type.Optional(
      Type.String({ maxLength: 100, description: "the code of the saga's failure, e.g. payment_declined" }),
    ),
    // The console's list filters, read the same way (filters.ts).
    customer: AdminSagaQuery.properties.customer,
    from: AdminSagaQuery.properties.from,
    to: AdminSagaQuery.properties.to,
  },
  { additionalProperties: false, description: 'which sagas; the criteria combine (AND)' },
);

export const BulkBody = Type.Object({
  action: Type.String({ description: `one of ${OPERATOR_ACTIONS.join(', ')}` }),
  note: Type.Optional(Type.String({ maxLength: MAX_NOTE_LENGTH, description: 'required for resolve' })),
  filter: BulkFilterBody,
  cap: Type.Integer({
    minimum: 1,
    maximum: BULK_MAX_CAP,
    description: `the most sagas the job may act on (required, 1-${BULK_MAX_CAP}); the newest are taken`,
  }),
  rate: Type.Optional(
    Type.Number({
      minimum: BULK_MIN_RATE,
      maximum: BULK_MAX_RATE,
      description: `sagas per second (${BULK_MIN_RATE}-${BULK_MAX_RATE}, default ${BULK_DEFAULT_RATE})`,
    }),
  ),
});
export type BulkBody = Static<typeof BulkBody>;

const StockMoveView = Type.Object({
  item: Type.String(),
  direction: stringEnum(['reserve', 'release', 'commit'] as const),
  quantity: Type.Integer(),
});

export const BulkDryRunView = Type.Object({
  action: stringEnum(OPERATOR_ACTIONS),
  count: Type.Integer({ description: 'sagas selected (at most cap)' }),
  truncated: Type.Boolean({ description: 'more sagas matched than the cap: only the newest cap are selected' }),
  allowed: Type.Integer({ description: 'of those, how many the engine would act on now' }),
  refused: Type.Array(Type.Object({ code: Type.String(), count: Type.Integer(), example: Type.String() })),
  totals: Type.Object({
    charge_cents: Type.Integer(),
    refund_cents: Type.Integer(),
    stock: Type.Array(StockMoveView),
  }),
  sample: Type.Array(Type.String(), { description: 'the first selected sagas' }),
});

const CountsView = Type.Object(Object.fromEntries(BULK_RESULTS.map((r) => [r, Type.Integer()])));

const FilterView = Type.Object({
  status: Nullable(Type.String()),
  step: Nullable(Type.String()),
  failure_code: Nullable(Type.String()),
  customer: Nullable(Type.String()),
  from: Nullable(Timestamp),
  to: Nullable(Timestamp),
});

export const BulkJobView = Type.Object({
  id: Type.String(),
  action: stringEnum(OPERATOR_ACTIONS),
  note: Nullable(Type.String()),
  filter: FilterView,
  rate: Type.Number(),
  cap: Type.Integer(),
  actor: Type.String(),
  state: stringEnum(BULK_JOB_STATES),
  total: Type.Integer(),
  counts: CountsView,
  created_at: Timestamp,
  updated_at: Timestamp,
  finished_at: Nullable(Timestamp),
  last_acted_at: Nullable(Timestamp),
  runner: Nullable(Type.String({ description: 'the gateway pacing it now, if any' })),
});

const BulkItemView = Type.Object({
  position: Type.Integer(),
  saga_id: Type.String(),
  result: stringEnum(BULK_RESULTS),
  code: Nullable(Type.String()),
  message: Nullable(Type.String()),
  at: Nullable(Timestamp),
});

export const BulkJobDetail = Type.Object({
  job: BulkJobView,
  items: Type.Array(BulkItemView),
  next_after: Nullable(Type.Integer({ description: 'the `after` of the next page of results' })),
});

export const BulkJobPage = Type.Object({
  jobs: Type.Array(BulkJobView),
  next_before: Nullable(Type.String({ description: 'the `before` of the next page' })),
});

const BulkIdParams = Type.Object({ id: Type.String({ maxLength: 100 }) });
const BulkCommandParams = Type.Object({
  id: Type.String({ maxLength: 100 }),
  command: stringEnum(['pause', 'resume', 'cancel'] as const),
});
const BulkItemsQuery = Type.Object({
  after: Type.Optional(Type.Integer({ minimum: -1, default: -1, description: 'results after this position' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
});
const BulkListQuery = Type.Object({
  before: Type.Optional(Type.String({ maxLength: 100, description: 'jobs older than this one' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
});

export interface BulkDeps {
  store: BulkJobStore;
  /** Called once a job is made or resumed: the runner looks for it now, not at its next tick. */
  onChange?: () => void;
}

export interface AdminBulkDeps {
  engine: Pick<SagaEngine, 'reads' | 'definitionOf' | 'registered' | 'clockOffsetMs'>;
  /** Unset (a saga log that keeps no jobs): every route answers 404 not_found, and is documented all the same. */
  bulk: BulkDeps | undefined;
}

const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());

function filterView(f: BulkFilter) {
  return {
    status: f.status ?? null,
    step: f.step ?? null,
    failure_code: f.failureCode ?? null,
    customer: f.subject ?? null,
    from: iso(f.createdFrom),
    to: iso(f.createdTo),
  };
}

export function jobView(j: BulkJob) {
  return {
    id: j.id,
    action: j.action,
    note: j.note,
    filter: filterView(j.filter),
    rate: j.rate,
    cap: j.cap,
    actor: j.actor,
    state: j.state,
    total: j.total,
    counts: { ...j.counts },
    created_at: iso(j.createdAt) as string,
    updated_at: iso(j.updatedAt) as string,
    finished_at: iso(j.finishedAt),
    last_acted_at: iso(j.lastActedAt),
    runner: j.state === 'running' ? j.leaseOwner : null,
  };
}

const itemView = (i: BulkItem) => ({
  position: i.position,
  saga_id: i.sagaId,
  result: i.result,
  code: i.code,
  message: i.message,
  at: iso(i.at),
});

const COMMANDS: Record<'pause' | 'resume' | 'cancel', BulkCommand> = {
  pause: 'pause',
  resume: 'resume',
  cancel: 'cancel',
};

export const adminBulk: FastifyPluginAsyncTypebox<AdminBulkDeps> = async (app, deps) => {
  const { engine } = deps;
  const jobs = (): BulkJobStore => {
    if (!deps.bulk) throw new HttpError('not_found', 'this gateway keeps no bulk jobs');
    return deps.bulk.store;
  };

  const operator = (req: { caller?: Caller }, what: string): Caller => {
    const who = req.caller;
    if (!who) throw new HttpError('unauthenticated', 'not signed in');
    if (who.role !== 'operator')
      throw new HttpError('forbidden', `${who.name} is a viewer: only an operator may ${what}`);
    return who;
  };
  const stepNames = (): string[] => [...new Set(engine.registered().flatMap((d) => d.steps.map((s) => s.name)))];

  /**
   * The body as a plan, or 400 naming what to fix; nothing is read before. The schema's own
   * refusals are attached (attachValidation) rather than thrown, so that a missing field is named
   * here rather than with the order API's "customer_id and items are required".
   */
  const planOf = (req: { body: BulkBody; validationError?: Error & { validation?: AjvError[] } }): BulkPlan => {
    const invalid = req.validationError;
    if (invalid) {
      const first = invalid.validation?.[0];
      const missing = first?.keyword === 'required' ? first.params?.missingProperty : undefined;
      if (typeof missing === 'string')
        throw new HttpError(
          'invalid_request',
          `${missing} is required${missing === 'cap' ? ` (1-${BULK_MAX_CAP})` : ''}`,
        );
      throw toHttpError(invalid);
    }
    const body = req.body;
    const { failure_code: failureCode, ...listed } = body.filter;
    const filters = sagaFilters(listed, stepNames());
    const filter: BulkFilter = {
      ...(filters.status ? { status: filters.status } : {}),
      ...(filters.step ? { step: filters.step } : {}),
      ...(filters.subject ? { subject: filters.subject } : {}),
      ...(filters.createdFrom !== undefined ? { createdFrom: filters.createdFrom } : {}),
      ...(filters.createdTo !== undefined ? { createdTo: filters.createdTo } : {}),
      ...(failureCode?.trim() ? { failureCode: failureCode.trim() } : {}),
    };
    try {
      return validateBulkRequest({ action: body.action, note: body.note, filter, rate: body.rate, cap: body.cap });
    } catch (err) {
      if (err instanceof BulkRequestError) throw new HttpError(err.code, err.message);
      throw err;
    }
  };

  const found = async (id: string): Promise<BulkJob> => {
    const job = await jobs().get(id);
    if (!job) throw new HttpError('bulk_job_not_found', `no bulk job ${id}`);
    return job;
  };

  app.post(
    '/api/bulk/dry-run',
    {
      schema: {
        operationId: 'dryRunBulk',
        summary:
          'What a bulk action would select and do: count, refusals by code, money and stock sums (operator role; writes nothing)',
        tags: ['bulk'],
        body: BulkBody,
        response: { 200: BulkDryRunView, ...errorResponses },
      },
      attachValidation: true,
    },
    async (req) => {
      operator(req, 'dry-run a bulk action');
      const plan = planOf(req);
      // Deadlines judged by the saga log's clock, as the engine will judge them.
      const logNow = Date.now() + engine.clockOffsetMs;
      const r = await dryRunBulk(
        engine.reads,
        (s) => engine.definitionOf(s.definition, s.version),
        (def, saga, action) => previewAction(def, saga, action, logNow),
        plan,
      );
      return {
        action: plan.action,
        count: r.count,
        truncated: r.truncated,
        allowed: r.allowed,
        refused: r.refused,
        totals: { charge_cents: r.totals.chargeCents, refund_cents: r.totals.refundCents, stock: r.totals.stock },
        sample: r.sample,
      };
    },
  );

  app.post(
    '/api/bulk',
    {
      schema: {
        operationId: 'startBulk',
        summary:
          'Start a bulk action: the selection is frozen now (at most cap sagas), then acted on at the rate (operator role)',
        tags: ['bulk'],
        body: BulkBody,
        response: { 201: BulkJobView, ...errorResponses },
      },
      attachValidation: true,
    },
    async (req, reply) => {
      const who = operator(req, 'start a bulk action');
      const plan = planOf(req);
      const { sagas, truncated } = await selectSagas(engine.reads, plan.filter, plan.cap);
      const job = await jobs().create(
        { ...plan, id: `bulk_${uuidv7()}`, actor: who.name },
        sagas.map((s) => s.id),
      );
      req.log.warn(
        {
          bulk_id: job.id,
          action: job.action,
          actor: who.name,
          via: who.via,
          total: job.total,
          truncated,
          rate: job.rate,
          cap: job.cap,
        },
        `bulk ${job.action} started on ${job.total} saga(s)`,
      );
      deps.bulk?.onChange?.();
      return reply.code(201).send(jobView(job));
    },
  );

  app.get(
    '/api/bulk',
    {
      schema: {
        operationId: 'listBulk',
        summary: 'Bulk jobs, newest first',
        tags: ['bulk'],
        querystring: BulkListQuery,
        response: { 200: BulkJobPage, ...errorResponses },
      },
    },
    async (req) => {
      const limit = req.query.limit ?? 50;
      const page = await jobs().list(limit, req.query.before || undefined);
      return { jobs: page.map(jobView), next_before: page.length === limit ? (page.at(-1)?.id ?? null) : null };
    },
  );

  app.get(
    '/api/bulk/:id',
    {
      schema: {
        operationId: 'getBulk',
        summary: 'A bulk job and its per-saga results, in selection order, paged',
        tags: ['bulk'],
        params: BulkIdParams,
        querystring: BulkItemsQuery,
        response: { 200: BulkJobDetail, ...errorResponses },
      },
    },
    async (req) => {
      const job = await found(req.params.id);
      const limit = req.query.limit ?? 100;
      const items = await jobs().items(job.id, req.query.after ?? -1, limit);
      return {
        job: jobView(job),
        items: items.map(itemView),
        next_after: items.length === limit ? (items.at(-1)?.position ?? null) : null,
      };
    },
  );

  app.post(
    '/api/bulk/:id/:command',
    {
      schema: {
        operationId: 'commandBulk',
        summary: 'Pause, resume or cancel a bulk job; takes effect before its next saga (operator role)',
        tags: ['bulk'],
        params: BulkCommandParams,
        response: { 200: BulkJobView, ...errorResponses },
      },
    },
    async (req) => {
      const command = COMMANDS[req.params.command];
      const who = operator(req, `${command} a bulk job`);
      // Decided on the state read, written conditionally on it: a change in between is decided again.
      for (let round = 0; round < 3; round++) {
        const job = await found(req.params.id);
        const next = nextBulkState(job.state, command);
        if (next.kind === 'refused') throw new HttpError('bulk_job_finished', `bulk job ${job.id}: ${next.message}`);
        if (next.kind === 'same') return jobView(job);
        const moved = await jobs().setState(job.id, bulkStatesFrom(command), next.to);
        if (!moved) continue;
        req.log.warn(
          { bulk_id: job.id, actor: who.name, via: who.via, from: job.state, to: moved.state },
          `bulk job ${command}d`,
        );
        if (moved.state === 'running') deps.bulk?.onChange?.();
        return jobView(moved);
      }
      throw new HttpError('bulk_job_finished', `bulk job ${req.params.id} kept changing; try again`);
    },
  );
};
