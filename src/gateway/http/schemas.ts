import { createRequire } from 'node:module';
import type { Static, TSchema } from '@sinclair/typebox';
import { LIMITS } from '../../contracts/limits.js';
import { HEADER_KEY_CHARS, ID_CHARS } from '../../contracts/ids.js';
import { SAGA_STATUSES, type SagaStatus } from '../../saga/index.js';

// TypeBox's CommonJS build, on purpose. Where tsx runs its ESM hooks on their own thread (Node 20,
// 22 before 22.22.3, 24 before 24.11.1) each of TypeBox's ~266 ESM files is a round trip to it:
// ~0.3 s more start-up. Node 24.11.1+ lets tsx hook in-thread (module.registerHooks), which
// closes most of that gap, but the ESM build still loads ~15 ms slower there than this one.
// (Back to a plain import once the processes run without tsx.)
const { Type } = createRequire(import.meta.url)('@sinclair/typebox') as typeof import('@sinclair/typebox');

/**
 * The HTTP API's shapes, as TypeBox (JSON Schema): fastify validates requests and serialises
 * answers with them, and /openapi.json is generated from them. The limits come from
 * src/contracts, which the services check too.
 */

const printableId = (max: number) =>
  Type.String({
    minLength: 1,
    maxLength: max,
    pattern: ID_CHARS,
    description: `1-${max} printable ASCII characters without spaces`,
  });

export const OrderLineBody = Type.Object(
  {
    product_id: printableId(LIMITS.productIdMax),
    quantity: Type.Integer({ minimum: 1, maximum: LIMITS.quantityMax, description: `units, 1-${LIMITS.quantityMax}` }),
    price: Type.Number({
      minimum: 0.01,
      maximum: LIMITS.unitPriceMaxCents / 100,
      description: 'unit price in decimal dollars, at most two decimals',
      examples: [25],
    }),
  },
  { description: 'an order line; unknown fields are ignored' },
);

export const OrderBody = Type.Object({
  customer_id: printableId(LIMITS.customerIdMax),
  items: Type.Array(OrderLineBody, {
    minItems: 1,
    maxItems: LIMITS.itemsMax,
    description: `1-${LIMITS.itemsMax} lines`,
  }),
});
export type OrderBody = Static<typeof OrderBody>;

export const OrderHeaders = Type.Object({
  'x-idempotency-key': Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: LIMITS.idempotencyKeyMax,
      pattern: HEADER_KEY_CHARS,
      description: `a retry with the same key and body answers the same order (1-${LIMITS.idempotencyKeyMax} printable ASCII characters)`,
    }),
  ),
  prefer: Type.Optional(
    Type.String({ description: 'RFC 7240 `wait=N`: wait up to N seconds for the saga to end', examples: ['wait=5'] }),
  ),
});

const OrderStatus = Type.Union([Type.Literal('PENDING'), Type.Literal('CONFIRMED'), Type.Literal('CANCELLED')]);
export const stringEnum = <T extends string>(values: readonly T[], description?: string) =>
  Type.Unsafe<T>({ type: 'string', enum: [...values], ...(description ? { description } : {}) });
const SagaStatus = stringEnum<SagaStatus>(SAGA_STATUSES);
const Timestamp = Type.String({ format: 'date-time' });
const Dollars = Type.Number({ description: 'decimal dollars' });

export const OrderView = Type.Object({
  id: Type.String(),
  customer_id: Type.String(),
  status: OrderStatus,
  reason: Type.Optional(
    Type.String({ description: 'why the order was cancelled, e.g. payment_declined, insufficient_stock' }),
  ),
  total: Dollars,
  items: Type.Array(Type.Object({ product_id: Type.String(), quantity: Type.Integer(), price: Dollars })),
  created_at: Timestamp,
  updated_at: Timestamp,
  saga_status: Type.Union([SagaStatus, Type.Null()], {
    description:
      "the saga's status; null when the saga was pruned from the log by retention (docs/retention.md) and the order service's record answers alone",
  }),
});
export type OrderView = Static<typeof OrderView>;

export const PaymentStatus = stringEnum(['none', 'charged', 'refunded', 'declined'] as const);

export const OrderWithPayment = Type.Object({
  ...OrderView.properties,
  payment: Type.Object({ status: PaymentStatus, amount: Dollars }),
});

export const IdParams = Type.Object({ id: Type.String({ description: 'the order (= saga) id' }) });

/** A value or null (TypeBox has no shorthand); shared by every schema file of both listeners. */
export const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

const Failure = Type.Object({ step: Type.String(), code: Type.String(), message: Type.String() });

export const SagaSummary = Type.Object({
  id: Type.String(),
  status: SagaStatus,
  definition: Type.String(),
  version: Type.Integer(),
  step_index: Type.Integer(),
  attempt: Type.Integer(),
  failure: Nullable(Failure),
  created_at: Timestamp,
  updated_at: Timestamp,
});

/** What every view of an event shows: the public timeline's, and the admin one's with more. */
const EventFacts = {
  seq: Type.Integer(),
  type: Type.String(),
  step: Nullable(Type.String()),
  display_name: Type.Optional(Type.String()),
  time: Timestamp,
  attempt: Nullable(Type.Integer()),
};

export const SagaEvent = Type.Object({
  ...EventFacts,
  error: Nullable(Type.String()),
  retryable: Nullable(Type.Boolean()),
  data: Type.Unknown({ description: "the step's result or the event's details" }),
  trace_id: Nullable(Type.String()),
  span_id: Nullable(Type.String()),
});

export const TIMELINE_PAGE_MAX = 1_000;

export const TimelineQuery = Type.Object({
  after_seq: Type.Optional(
    Type.Integer({
      minimum: 0,
      default: 0,
      description: 'events after this seq (next_after_seq of the previous page)',
    }),
  ),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: TIMELINE_PAGE_MAX, default: TIMELINE_PAGE_MAX })),
});

export const SagaTimeline = Type.Object({
  ...SagaSummary.properties,
  events: Type.Array(SagaEvent),
  next_after_seq: Nullable(Type.Integer({ description: 'after_seq of the next page; null on the last one' })),
});

/** A failure as a customer sees it: where, and a code (docs/http-api.md: the public failure codes). */
const PublicFailure = Type.Object({ step: Type.String(), code: Type.String() });

export const PublicSagaEvent = Type.Object({
  ...EventFacts,
  code: Nullable(
    Type.String({
      description:
        "a failure's code: a step's own (payment_declined…), the engine's (saga_deadline_exceeded…), `unavailable` (no answer yet) or `failed`",
    }),
  ),
});

/** The public timeline: no inputs, error text, operators' names or notes, or trace context (those are on the admin API). */
export const PublicSagaTimeline = Type.Object({
  id: Type.String(),
  status: SagaStatus,
  failure: Nullable(PublicFailure),
  created_at: Timestamp,
  updated_at: Timestamp,
  events: Type.Array(PublicSagaEvent),
  next_after_seq: Nullable(Type.Integer({ description: 'after_seq of the next page; null on the last one' })),
});

export const SagaListQuery = Type.Object({
  status: Type.Optional(Type.String({ description: `one of ${SAGA_STATUSES.join(', ')} (any case)` })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
  cursor: Type.Optional(Type.String({ description: 'next_cursor of the previous page' })),
});

export const SagaPage = Type.Object({
  sagas: Type.Array(SagaSummary),
  next_cursor: Nullable(Type.String()),
});

export const Products = Type.Object({
  products: Type.Array(
    Type.Object({
      product_id: Type.String(),
      available: Type.Integer(),
      reserved: Type.Integer(),
      sold: Type.Integer(),
      price: Type.Optional(
        Type.Number({
          description:
            'the unit price INVENTORY_CATALOG gives the product, in decimal dollars; absent when it gives none',
        }),
      ),
    }),
  ),
});

export const ErrorBody = Type.Object(
  {
    error: Type.String({ description: 'a stable code; see the error table' }),
    message: Type.String(),
    prices: Type.Optional(
      Type.Array(Type.Object({ product_id: Type.String(), price: Nullable(Dollars) }), {
        description:
          "price_mismatch only: the catalog's current unit price of each product of the order (null: it has none)",
      }),
    ),
  },
  { description: 'every error answer' },
);

export const Health = Type.Object({ status: Type.Literal('ok') });

export const Readiness = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('not_ready')]),
  checks: Type.Record(Type.String(), Type.Union([Type.Literal('ok'), Type.Literal('unavailable')])),
  details: Type.Object({
    idempotency_fast_path: Type.Union([Type.Literal('redis'), Type.Literal('memory')]),
    // Per participant: how many of its addresses (replicas) answer, of how many.
    participants: Type.Record(
      Type.String(),
      Type.Object({ up: Type.Integer({ minimum: 0 }), addresses: Type.Integer({ minimum: 1 }) }),
    ),
  }),
  in_flight: Type.Integer(),
  definitions: Type.Object(
    {
      registered: Type.Array(Type.String(), {
        description: "the saga definitions' versions this gateway drives, as `definition@version`",
      }),
      starts: Type.Record(Type.String(), Type.Integer(), {
        description: 'per definition, the version this gateway starts new sagas on',
      }),
      left_to_others: Type.Array(
        Type.Object({ definition: Type.String(), version: Type.Integer(), in_flight: Type.Integer({ minimum: 0 }) }),
        {
          description:
            'versions with sagas in flight that this gateway does not register: other gateways drive them (a rolling upgrade); counts read at most every few seconds',
        },
      ),
    },
    { description: 'what this gateway drives; readiness does not depend on it' },
  ),
});

/** The error answers every route can give, for the OpenAPI document and the serialiser. */
export const errorResponses = { '4xx': ErrorBody, '5xx': ErrorBody } as const satisfies Record<string, TSchema>;
