/**
 * The admin API (JSON under /api, on the admin listener): sagas and their timelines, the PARKED
 * queue, the overview strip, stock, the operator actions, and the console's session.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { isOrderId } from '../../contracts/ids.js';
import {
  type SagaEngine,
  MAX_NOTE_LENGTH,
  OPERATOR_ACTIONS,
  OperatorActionError,
  SAGA_STATUSES,
  TERMINAL_STATUSES,
  allowedActions,
  type RetentionPolicy,
  type SagaRecord,
} from '../../saga/index.js';
import type { Participants } from '../participants.js';
import { DEFAULT_READ_TIMEOUT_MS } from '../http/deps.js';
import { HttpError } from '../http/errors.js';
import { participantReads } from '../http/participant-reads.js';
import { readTimeline } from '../http/sagas.js';
import { errorResponses, Products } from '../http/schemas.js';
import { attemptFacts, productsView, sagaSummary } from '../http/views.js';
import type { AdminAuth, Caller } from './auth.js';
import { sagaFilters } from './filters.js';
import { FaultPlanError, validateFaultPlan, type FaultBoard, type FaultRule } from '../../faults/plan.js';
import { vocabularyOf, vocabularyView } from '../../faults/vocabulary.js';
import type { RecentSagas } from './recent.js';
import { adminReconcile } from './reconcile.js';
import { adminBulk, type BulkDeps } from './bulk-routes.js';
import { adminVersions } from './versions-routes.js';
import { adminPreview } from './preview-routes.js';
import { adminWaiting, DEFAULT_STUCK_AFTER_MS, waitingBrief } from './waiting-routes.js';
import {
  ActionBody,
  ActionResult,
  AdminSagaPage,
  AdminSagaQuery,
  AdminTimeline,
  AdminTimelineQuery,
  ConsoleFacts,
  FaultIdParams,
  FaultsBody,
  FaultsView,
  FaultToggleBody,
  FaultToggleResult,
  IdParams,
  Overview,
  ParkedPage,
  ParkedQuery,
  SessionBody,
  SessionView,
  SignedOut,
} from './schemas.js';

export interface AdminApiDeps {
  engine: SagaEngine;
  /** SAGA_RETENTION: reconciliation reads an order older than it without its saga as pruned. */
  retention?: RetentionPolicy;
  participants: Participants;
  auth: AdminAuth;
  recent?: RecentSagas;
  /** The fault switchboard (FAULTS_ENABLED=1); unset: its routes answer 404 faults_disabled. */
  faults?: FaultBoard;
  traceUrlTemplate?: string;
  /** Bulk actions' jobs (a log that keeps them); unset: /api/bulk… answers 404 not_found. */
  bulk?: BulkDeps;
  readTimeoutMs?: number;
  now?: () => number;
  /** SAGA_STUCK_AFTER (ms): a saga in flight without progress for longer is stuck. */
  stuckAfterMs?: number;
}

/** The saga's trace: its traceparent's trace id (W3C: 00-<trace>-<span>-<flags>). */
function traceIdOf(s: SagaRecord): string | null {
  const m = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(s.traceparent ?? '');
  return m ? (m[1] as string) : null;
}

export const adminApi: FastifyPluginAsyncTypebox<AdminApiDeps> = async (app, deps) => {
  const { engine, auth } = deps;
  const now = deps.now ?? Date.now;
  const stuckAfterMs = deps.stuckAfterMs ?? DEFAULT_STUCK_AFTER_MS;
  const reads = participantReads(deps.participants, deps.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS);

  // `faults`: the console learns from its session whether to offer the switchboard, without
  // asking GET /api/faults for a 404 (a browser logs every 4xx as a console error).
  // `csrf_token`: given by the sign-in's answer only. Were it in GET's answer, whoever holds the
  // cookie alone (another port of this host receives it: review N2) could read it, then act.
  const sessionView = (c: Caller, csrf: string | null = null) => ({
    name: c.name,
    role: c.role,
    via: c.via,
    csrf_token: csrf,
    faults: deps.faults !== undefined,
  });

  // Every route here but the sign-in needs a caller, found in onRequest: before the body is parsed
  // and validated (preValidation), so an unauthenticated request learns nothing from a 400 about
  // what a body should be, and costs no parsing (review N9). The sign-in is screened there too
  // (origin, throttle); its token is checked with the body.
  app.addHook('onRequest', async (req, reply) => {
    if (req.method === 'POST' && req.routeOptions.url === '/api/session') return auth.screenSignIn(req, reply);
    req.caller = auth.authenticate(req, reply);
  });

  const caller = (req: { caller?: Caller }): Caller => {
    if (!req.caller) throw new HttpError('unauthenticated', 'not signed in');
    return req.caller;
  };

  app.post(
    '/api/session',
    {
      schema: {
        operationId: 'signIn',
        summary: 'Sign in with a token: a session cookie, and the X-CSRF-Token to send with it',
        tags: ['session'],
        // The one call without a caller: it is how the console becomes one.
        security: [],
        body: SessionBody,
        response: { 200: SessionView, ...errorResponses },
      },
    },
    async (req, reply) => {
      const s = auth.signIn(req, reply, req.body.token);
      req.log.info({ admin: s.name, role: s.role }, 'admin signed in');
      return sessionView({ name: s.name, role: s.role, via: 'session', session: s }, s.csrf);
    },
  );

  // This API's OpenAPI document (./openapi.ts), behind the same authentication as the rest of /api.
  app.get('/api/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  app.get(
    '/api/session',
    {
      schema: {
        operationId: 'getSession',
        summary: 'Who the caller is, and how signed in',
        tags: ['session'],
        response: { 200: SessionView, ...errorResponses },
      },
    },
    async (req) => sessionView(caller(req)),
  );

  app.delete(
    '/api/session',
    {
      schema: {
        operationId: 'signOut',
        summary: "End the caller's session and clear its cookie",
        tags: ['session'],
        response: { 204: SignedOut, ...errorResponses },
      },
    },
    async (req, reply) => {
      auth.signOut(caller(req), reply);
      return reply.code(204).send(undefined as never);
    },
  );

  app.get(
    '/api/console',
    {
      schema: {
        operationId: 'getConsoleFacts',
        summary: "The engine's facts the console shows: statuses, operator actions, the longest note",
        tags: ['sagas'],
        response: { 200: ConsoleFacts, ...errorResponses },
      },
    },
    async () => ({
      statuses: [...SAGA_STATUSES],
      terminal_statuses: [...TERMINAL_STATUSES],
      actions: [...OPERATOR_ACTIONS],
      note_max_length: MAX_NOTE_LENGTH,
      registered_versions: engine.registered().map((d) => ({ definition: d.name, version: d.version })),
    }),
  );

  // What an operator may do to a saga now: the engine's own rules, so the console never guesses.
  const allowed = (s: SagaRecord) => allowedActions(engine.definitionOf(s.definition, s.version), s);

  // Step names for the step filter: every registered definition's, in order, once each.
  const stepNames = (): string[] => [...new Set(engine.registered().flatMap((d) => d.steps.map((s) => s.name)))];

  app.get(
    '/api/sagas',
    {
      schema: {
        operationId: 'listSagas',
        summary: 'Sagas, newest first, filtered, with the count of each status',
        tags: ['sagas'],
        querystring: AdminSagaQuery,
        response: { 200: AdminSagaPage, ...errorResponses },
      },
    },
    async (req) => {
      const { limit, cursor, stuck, ...params } = req.query;
      const steps = stepNames();
      // Filters are checked (a clear 400) before anything is read.
      const filters = sagaFilters(params, steps);
      const stuckFor = stuck === '1' || stuck === 'true' ? { stuckForMs: stuckAfterMs } : {};
      const [page, raw] = await Promise.all([
        engine.reads.list({ ...filters, ...stuckFor, limit: limit ?? 50, cursor: cursor || undefined }),
        engine.reads.countByStatus(),
      ]);
      const logNow = now() + engine.clockOffsetMs;
      const counts = Object.fromEntries(SAGA_STATUSES.map((s) => [s, raw[s] ?? 0]));
      return {
        sagas: page.sagas.map((s) => ({
          ...sagaSummary(s),
          allowed_actions: allowed(s),
          customer_id: s.subject,
          current_step: s.currentStep,
          waiting: waitingBrief(s, logNow, stuckAfterMs),
        })),
        next_cursor: page.nextCursor,
        counts,
        steps,
      };
    },
  );

  app.get(
    '/api/sagas/:id',
    {
      schema: {
        operationId: 'getSaga',
        summary: 'A saga: its state, input, results, trace and timeline (operator actions included)',
        tags: ['sagas'],
        params: IdParams,
        querystring: AdminTimelineQuery,
        response: { 200: AdminTimeline, ...errorResponses },
      },
    },
    async (req) => {
      const { saga, ...timeline } = await readTimeline(engine, req.params.id, req.query);
      const traceId = traceIdOf(saga) ?? timeline.events.find((e) => e.trace_id)?.trace_id ?? null;
      const template = deps.traceUrlTemplate;
      return {
        ...timeline,
        events: timeline.events.map((e) => ({ ...e, ...attemptFacts(saga.id, e) })),
        allowed_actions: allowed(saga),
        input: saga.input,
        results: saga.results,
        trace_id: traceId,
        trace_url: template && traceId ? template.replaceAll('{trace_id}', encodeURIComponent(traceId)) : null,
      };
    },
  );

  app.get(
    '/api/parked',
    {
      schema: {
        operationId: 'listParked',
        summary: 'The PARKED queue, longest parked first',
        tags: ['sagas'],
        querystring: ParkedQuery,
        response: { 200: ParkedPage, ...errorResponses },
      },
    },
    async (req) => {
      const limit = req.query.limit ?? 100;
      // Longest parked first, through the log's index of PARKED sagas.
      const oldest = await engine.reads.parked(limit);
      const t = now();
      return {
        sagas: oldest.map((s) => ({
          ...sagaSummary(s),
          allowed_actions: allowed(s),
          reason: s.failure ? `${s.failure.code}: ${s.failure.message}` : 'parked',
          age_seconds: Math.max(0, Math.floor((t - s.updatedAt) / 1000)),
        })),
      };
    },
  );

  app.get(
    '/api/overview',
    {
      schema: {
        operationId: 'getOverview',
        summary: 'In flight, parked, throughput and latency percentiles',
        tags: ['ops'],
        response: { 200: Overview, ...errorResponses },
      },
    },
    async () => {
      const live = await engine.reads.liveStats();
      const recent = deps.recent?.stats() ?? { sagas_per_second: 0, p50_ms: null, p99_ms: null };
      return {
        in_flight: live.inflight,
        parked: live.parked,
        oldest_in_flight_age_seconds: live.oldestAgeSeconds,
        ...recent,
      };
    },
  );

  // The books: the saga log against the participants' own records (viewer role and up).
  await app.register(adminReconcile, {
    engine,
    ...(deps.retention ? { retention: deps.retention } : {}),
    participants: deps.participants,
    readTimeoutMs: deps.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS,
  });

  // The definitions' versions and the migrations between them (viewer role; a real migration: operator).
  await app.register(adminVersions, { engine });
  // What an action would do, before it is taken (viewer role and up).
  await app.register(adminPreview, { engine });
  // What a saga waits for and until when, and whether it is stuck (viewer role and up).
  await app.register(adminWaiting, { engine, stuckAfterMs, now });

  // Bulk actions: dry run, jobs, their per-saga results (reads any role; the rest operator).
  await app.register(adminBulk, { engine, bulk: deps.bulk });

  app.get(
    '/api/stock',
    {
      schema: {
        operationId: 'getStock',
        summary: 'Stock of every product',
        tags: ['ops'],
        response: { 200: Products, ...errorResponses },
      },
    },
    async (req) => {
      return productsView(await reads.products(req.id));
    },
  );

  app.post(
    '/api/sagas/:id/actions',
    {
      schema: {
        operationId: 'actOnSaga',
        summary: 'An operator action on a saga: retry, compensate or resolve (operator role)',
        tags: ['sagas'],
        params: IdParams,
        body: ActionBody,
        response: { 200: ActionResult, ...errorResponses },
      },
    },
    async (req) => {
      const who = caller(req);
      if (who.role !== 'operator')
        throw new HttpError('forbidden', `${who.name} is a viewer: only an operator may ${req.body.action} a saga`);
      const { action, action_id: actionId, note } = req.body;
      const id = req.params.id;
      if (!isOrderId(id)) throw new HttpError('saga_not_found', `saga ${id} not found`);
      let res;
      try {
        res = await engine.act({
          sagaId: id,
          action,
          actionId,
          actor: who.name,
          ...(note === undefined ? {} : { note }),
        });
      } catch (err) {
        if (err instanceof OperatorActionError)
          req.log.info(
            { saga_id: id, action, action_id: actionId, actor: who.name, via: who.via, refused: err.code },
            `operator action refused: ${action}`,
          );
        throw err;
      }
      // saga_operator_actions_total{action} is counted by the engine's metrics interceptor
      // (src/saga/metrics.ts, its `saga` member around the action) on this gateway's meter: applied actions, not replays.
      req.log.info(
        {
          saga_id: id,
          action,
          action_id: actionId,
          actor: who.name,
          via: who.via,
          replayed: res.replayed,
          status: res.saga.status,
        },
        `operator action: ${action}`,
      );
      return { saga: sagaSummary(res.saga), replayed: res.replayed };
    },
  );

  // The fault switchboard: read by any caller, changed by an operator; absent unless FAULTS_ENABLED=1.
  const board = (): FaultBoard => {
    if (!deps.faults)
      throw new HttpError('faults_disabled', 'the fault switchboard is off (FAULTS_ENABLED=1 switches it on)');
    return deps.faults;
  };
  const operator = (req: { caller?: Caller }, what: string): Caller => {
    const who = caller(req);
    if (who.role !== 'operator')
      throw new HttpError('forbidden', `${who.name} is a viewer: only an operator may ${what}`);
    return who;
  };

  // What a plan may name: the registered sagas' steps and the calls they make (derived each time:
  // cheap, and always the definitions this gateway runs).
  const vocabulary = () => vocabularyOf(engine.registered());
  const faultsView = (rules: FaultRule[]) => ({ enabled: true, rules, vocabulary: vocabularyView(vocabulary()) });

  app.get(
    '/api/faults',
    {
      schema: {
        operationId: 'getFaultPlan',
        summary: 'The fault plan, with how often each rule fired, and what a rule may name',
        tags: ['faults'],
        response: { 200: FaultsView, ...errorResponses },
      },
    },
    async () => faultsView(board().list()),
  );

  app.put(
    '/api/faults',
    {
      schema: {
        operationId: 'replaceFaultPlan',
        summary: 'Replace the fault plan (operator role)',
        tags: ['faults'],
        body: FaultsBody,
        response: { 200: FaultsView, ...errorResponses },
      },
      // The body is checked by the plan's own validation rather than ajv: its schema (FaultsBody),
      // then what a schema does not say (the names the registered sagas know, the fields only some
      // kinds take, unique ids), in the plan's words — 400 invalid_fault_plan naming the rule and
      // field. Switchboard off: nothing to check, the handler answers 404 faults_disabled.
      validatorCompiler: () => (body: unknown) => {
        if (!deps.faults) return { value: body };
        try {
          return { value: { rules: validateFaultPlan(body, vocabulary()) } };
        } catch (err) {
          if (err instanceof FaultPlanError) return { error: new HttpError('invalid_fault_plan', err.message) };
          throw err;
        }
      },
    },
    async (req) => {
      const b = board();
      const who = operator(req, 'change the fault plan');
      const rules = b.replace(req.body, vocabulary());
      req.log.warn(
        { actor: who.name, via: who.via, rules: rules.length, enabled: rules.filter((r) => r.enabled).length },
        'fault plan replaced',
      );
      return faultsView(rules);
    },
  );

  app.post(
    '/api/faults/:id',
    {
      schema: {
        operationId: 'switchFaultRule',
        summary: 'Switch one fault rule on or off (operator role)',
        tags: ['faults'],
        params: FaultIdParams,
        body: FaultToggleBody,
        response: { 200: FaultToggleResult, ...errorResponses },
      },
    },
    async (req) => {
      const b = board();
      const who = operator(req, 'switch a fault rule');
      const rule = b.setEnabled(req.params.id, req.body.enabled);
      if (!rule) throw new HttpError('fault_rule_not_found', `no fault rule ${req.params.id}`);
      req.log.warn(
        { actor: who.name, via: who.via, rule_id: rule.id, enabled: rule.enabled },
        `fault rule ${rule.enabled ? 'on' : 'off'}`,
      );
      return { rule };
    },
  );
};
