import { createRequire } from 'node:module';
import type { Static } from '@sinclair/typebox';
import { ID_CHARS } from '../../contracts/ids.js';
import { LIMITS } from '../../contracts/limits.js';
import { SAGA_STATUSES, OPERATOR_ACTIONS, MAX_NOTE_LENGTH, type SagaStatus as Status } from '../../saga/index.js';
import { Nullable, SagaEvent, SagaSummary, SagaTimeline, TIMELINE_PAGE_MAX } from '../http/schemas.js';
import { WaitingBrief } from './waiting-routes.js';
import { DISAGREEMENT_KINDS, type DisagreementKind } from '../../reconcile/rules.js';
import { faultSchemas } from '../../faults/schema.js';

// TypeBox's CommonJS build, as in http/schemas.ts (start-up time under tsx).
const { Type } = createRequire(import.meta.url)('@sinclair/typebox') as typeof import('@sinclair/typebox');

/** The admin API's shapes: what the console (src/gateway/admin/ui/) and `sagas list|show|retry|…` read. */

export const Role = Type.Unsafe<'viewer' | 'operator'>({ type: 'string', enum: ['viewer', 'operator'] });

export const SessionBody = Type.Object({
  token: Type.String({ minLength: 1, maxLength: 4096, description: 'one of ADMIN_TOKENS' }),
});

/** `DELETE /api/session`: 204, no body. */
export const SignedOut = Type.Null({ description: 'signed out: the session is ended and its cookie cleared' });

export const SessionView = Type.Object({
  name: Type.String(),
  role: Role,
  via: Type.Unsafe<'bearer' | 'session' | 'loopback'>({
    type: 'string',
    enum: ['bearer', 'session', 'loopback'],
    description:
      'how the caller is signed in: a bearer token, the session cookie, or a loopback client with no ADMIN_TOKENS',
  }),
  csrf_token: Nullable(
    Type.String({
      description:
        'only in the answer to the sign-in (POST): send it as X-CSRF-Token with every request signed in by the cookie, reads included; null in every other answer (the cookie alone never gets it back)',
    }),
  ),
  faults: Type.Boolean({
    description: 'whether the fault switchboard is on (FAULTS_ENABLED=1): the console shows its Faults page then',
  }),
});

export const AdminSagaQuery = Type.Object({
  status: Type.Optional(Type.String({ description: `one of ${SAGA_STATUSES.join(', ')} (any case)` })),
  q: Type.Optional(Type.String({ maxLength: 200, description: 'a saga (= order) id, or its beginning' })),
  customer: Type.Optional(Type.String({ maxLength: 200, description: "the customer's id, exactly" })),
  step: Type.Optional(
    Type.String({
      maxLength: 200,
      description: 'the step a RUNNING or COMPENSATING saga is at, or a PARKED one is stuck on (one of `steps`)',
    }),
  ),
  from: Type.Optional(
    Type.String({
      maxLength: 40,
      description: 'created at or after: ISO 8601 time with its zone, a date (UTC), or epoch ms',
    }),
  ),
  to: Type.Optional(
    Type.String({
      maxLength: 40,
      description: 'created at or before: ISO 8601 time with its zone, a date (UTC), or epoch ms',
    }),
  ),
  stuck: Type.Optional(
    Type.Unsafe<'1' | '0' | 'true' | 'false'>({
      type: 'string',
      enum: ['1', '0', 'true', 'false'],
      description: '1: only sagas in flight without progress for longer than SAGA_STUCK_AFTER',
    }),
  ),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
  cursor: Type.Optional(Type.String({ description: 'next_cursor of the previous page, asked with the same filters' })),
});

export const StatusCounts = Type.Object(Object.fromEntries(SAGA_STATUSES.map((s) => [s, Type.Integer()])));

const OperatorAction = Type.Unsafe<(typeof OPERATOR_ACTIONS)[number]>({ type: 'string', enum: [...OPERATOR_ACTIONS] });

/** Decided by the engine's own rules (src/saga/operator.ts, allowedActions): what the console offers. */
const AllowedActions = Type.Array(OperatorAction, {
  description:
    "the operator actions the saga's state allows now (an operator's role is needed too); any other is refused with 409",
});

export const AdminSagaItem = Type.Object({
  ...SagaSummary.properties,
  allowed_actions: AllowedActions,
  customer_id: Nullable(Type.String({ description: "whom the saga acts for (the order's customer)" })),
  current_step: Nullable(
    Type.String({ description: 'the step it is at (RUNNING, COMPENSATING) or stuck on (PARKED)' }),
  ),
  waiting: WaitingBrief,
});

export const AdminSagaPage = Type.Object({
  sagas: Type.Array(AdminSagaItem),
  next_cursor: Nullable(Type.String()),
  counts: Type.Object(StatusCounts.properties, {
    description: 'every saga in the log by status, whatever the filters',
  }),
  steps: Type.Array(Type.String(), { description: 'the step names the step filter takes' }),
});

/** An event of the admin timeline, with what it says about its attempt (src/gateway/http/views.ts, attemptFacts). */
export const AdminSagaEvent = Type.Object({
  ...SagaEvent.properties,
  phase: Nullable(
    Type.Unsafe<'action' | 'compensation'>({
      type: 'string',
      enum: ['action', 'compensation'],
      description: "the phase of the attempt this event starts or ends; null for an event that is not an attempt's",
    }),
  ),
  idempotency_key: Nullable(
    Type.String({ description: "the key the attempt's call carried (the same on every attempt of a step and phase)" }),
  ),
  injected: Type.Boolean({
    description: 'whether the fault switchboard injected this failure (fault_rule names the rule)',
  }),
  fault_rule: Nullable(Type.String({ description: 'the id of the fault rule that injected this failure' })),
});

export const AdminTimeline = Type.Object({
  ...SagaTimeline.properties,
  events: Type.Array(AdminSagaEvent),
  allowed_actions: AllowedActions,
  input: Type.Unknown({ description: "the saga's input (the order: customer_id, items, total_cents...)" }),
  results: Type.Unknown({ description: "each finished step's result, by step name" }),
  trace_id: Nullable(Type.String()),
  trace_url: Nullable(
    Type.String({ description: 'TRACE_URL_TEMPLATE with the trace id; null when unset or no trace' }),
  ),
});

export const AdminTimelineQuery = Type.Object({
  after_seq: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: TIMELINE_PAGE_MAX, default: TIMELINE_PAGE_MAX })),
});

export const ParkedQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
});

export const ParkedPage = Type.Object({
  sagas: Type.Array(
    Type.Object({
      ...SagaSummary.properties,
      allowed_actions: AllowedActions,
      reason: Type.String({ description: 'the failure that parked it: `code: message`' }),
      age_seconds: Type.Integer({ description: 'seconds since it parked' }),
    }),
  ),
});

export const Overview = Type.Object({
  in_flight: Type.Integer(),
  parked: Type.Integer(),
  oldest_in_flight_age_seconds: Type.Number(),
  sagas_per_second: Type.Number({ description: 'sagas this gateway finished over the last minute, per second' }),
  p50_ms: Nullable(Type.Integer()),
  p99_ms: Nullable(Type.Integer()),
});

const SagaStatus = Type.Unsafe<Status>({ type: 'string', enum: [...SAGA_STATUSES] });

/** What the console would otherwise have to restate: the engine's statuses, actions and note length. */
export const ConsoleFacts = Type.Object({
  statuses: Type.Array(SagaStatus, { description: 'every saga status, in the order the console lists them' }),
  terminal_statuses: Type.Array(SagaStatus, { description: 'the statuses in which a saga does not move by itself' }),
  actions: Type.Array(OperatorAction, { description: 'every operator action' }),
  note_max_length: Type.Integer({ description: "the longest note an operator's action keeps" }),
  registered_versions: Type.Array(Type.Object({ definition: Type.String(), version: Type.Integer() }), {
    description:
      'the saga definitions and versions this gateway drives (a saga of another is driven by another gateway)',
  }),
});

export const ActionBody = Type.Object({
  action: OperatorAction,
  action_id: Type.String({
    minLength: 1,
    maxLength: 100,
    pattern: ID_CHARS,
    description: '1-100 printable ASCII characters without spaces',
  }),
  note: Type.Optional(Type.String({ maxLength: MAX_NOTE_LENGTH })),
});
export type ActionBody = Static<typeof ActionBody>;

export const ActionResult = Type.Object({ saga: SagaSummary, replayed: Type.Boolean() });

export const IdParams = Type.Object({ id: Type.String() });

/** A fault rule as the switchboard holds it, with how often it fired: the fault plan's own schema (src/faults/schema.ts). */
export const FaultRuleView = faultSchemas().rule;

export const FaultsView = Type.Object({
  enabled: Type.Boolean(),
  rules: Type.Array(FaultRuleView),
  vocabulary: faultSchemas().vocabulary,
});

/** `{rules: [...]}`: the fault plan's own schema; the route checks a body with the plan's validation (400 invalid_fault_plan naming the rule and field). */
export const FaultsBody = faultSchemas().plan;

export const FaultIdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

export const FaultToggleBody = Type.Object({ enabled: Type.Boolean() });

export const FaultToggleResult = Type.Object({ rule: FaultRuleView });

/** `GET /api/reconcile`: the saga log against the participants' own books (src/reconcile/). */
export const ReconcileQuery = Type.Object({
  settled: Type.Optional(
    Type.Unsafe<'true' | 'false' | '1' | '0'>({
      type: 'string',
      enum: ['true', 'false', '1', '0'],
      description:
        'true (or 1): every saga should have ended; one still in flight, or one that moved while the books were read, is a disagreement',
    }),
  ),
  page_size: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: LIMITS.listPageSizeMax,
      default: LIMITS.listPageSizeDefault,
      description: 'sagas and records read per page',
    }),
  ),
});

export const Disagreement = Type.Object({
  kind: Type.Unsafe<DisagreementKind>({
    type: 'string',
    enum: [...DISAGREEMENT_KINDS],
    description: 'a stable code; `sagas reconcile --help` says what each means',
  }),
  saga_id: Type.Optional(Type.String()),
  order_id: Type.Optional(Type.String()),
  product_id: Type.Optional(Type.String()),
  message: Type.String({ description: 'the disagreement in business words' }),
});

const Count = Type.Integer({ minimum: 0 });

export const ReconcileView = Type.Object({
  ok: Type.Boolean({ description: 'true when the books agree: no disagreement' }),
  settled: Type.Boolean(),
  checked: Type.Object(
    { sagas: Count, orders: Count, payments: Count, reservations: Count, products: Count },
    {
      description: "records read: sagas of the log, and each participant's own records (tombstones alone not counted)",
    },
  ),
  by_status: Type.Object(StatusCounts.properties, { description: 'the sagas read, by status' }),
  not_judged: Type.Object(
    { in_flight: Count, resolved: Count, other_definition: Count, moved_while_reading: Count, pruned: Count },
    {
      description:
        'sagas whose books were not judged: in flight, RESOLVED by an operator (counted, not judged), of another definition, or moved while the books were read (without settled); pruned: orders older than the retention horizon whose saga is no longer in the log (their records are still judged against each other)',
    },
  ),
  stock_sums_compared: Type.Boolean({
    description:
      'whether reserved and sold stock were compared with the reservations (only when the saga log did not move while the books were read)',
  }),
  disagreements: Type.Array(Disagreement, { description: 'most serious first' }),
});
