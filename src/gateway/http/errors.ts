import type { FastifyError } from 'fastify';
import { LIMITS } from '../../contracts/limits.js';
import { SagaLogError, OperatorActionError } from '../../saga/index.js';
import { OrderRefused } from '../order-refused.js';

/**
 * Every error the HTTP API answers: its status, and how many seconds a client should wait before
 * retrying when retrying can help. One table, as platform/grpc.ts has one for gRPC; docs/http-api.md's
 * error table and test/integration/http-api.test.ts are checked against it.
 */
export const HTTP_ERRORS = {
  invalid_json: { status: 400, summary: 'the body is not a JSON object' },
  invalid_request: { status: 400, summary: 'a field, header or query parameter is missing or out of range' },
  invalid_item: { status: 400, summary: 'an order line is invalid (product_id, quantity or price)' },
  invalid_idempotency_key: { status: 400, summary: 'X-Idempotency-Key is not 1-255 printable ASCII characters' },
  invalid_cursor: { status: 400, summary: 'the cursor is not one this API gave out' },
  invalid_fault_plan: {
    status: 400,
    summary: 'admin: the fault plan is not valid (the message names the rule and field)',
  },
  note_required: { status: 400, summary: 'admin: `resolve` needs a non-empty `note` (what was repaired by hand)' },
  invalid_map: {
    status: 400,
    summary:
      "admin: a migration's step map is not `old=new,…` (or names a step twice), or names a step its versions do not have",
  },
  same_version: { status: 400, summary: 'admin: a migration from a version to itself' },
  unknown_definition: {
    status: 400,
    summary: 'admin: a migration of a saga definition this gateway does not register',
  },
  unauthenticated: {
    status: 401,
    summary: 'admin: no token or session, or one not known (Authorization: Bearer <token>, or sign in)',
  },
  forbidden: {
    status: 403,
    summary:
      "admin: the token's role may not do this (a viewer acting), or, with no ADMIN_TOKENS, a client that is not on loopback",
  },
  csrf_rejected: {
    status: 403,
    summary:
      'admin: a request signed in by cookie (a read too) without the X-CSRF-Token its sign-in answered, or one a browser sent for another origin',
  },
  forwarded_refused: {
    status: 403,
    summary:
      'admin: with no ADMIN_TOKENS (loopback-only mode), a request that came through a proxy (Forwarded, X-Forwarded-For, X-Real-IP...): a proxy needs ADMIN_TOKENS',
  },
  not_found: { status: 404, summary: 'no such route' },
  order_not_found: { status: 404, summary: 'no order with this id' },
  saga_not_found: { status: 404, summary: 'no saga with this id' },
  faults_disabled: { status: 404, summary: 'admin: the fault switchboard is off (FAULTS_ENABLED=1 switches it on)' },
  fault_rule_not_found: { status: 404, summary: 'admin: no fault rule with this id' },
  bulk_job_not_found: { status: 404, summary: 'admin: no bulk job with this id' },
  action_not_allowed: {
    status: 409,
    summary: "admin: the saga's status does not allow this action (e.g. retry of a saga that is not PARKED)",
  },
  action_id_reused: { status: 409, summary: 'admin: this action_id was used for another action or note on this saga' },
  bulk_job_finished: {
    status: 409,
    summary: 'admin: the bulk job is done or cancelled: it can no longer be paused, resumed or cancelled',
  },
  unknown_version: {
    status: 409,
    summary:
      'admin: a migration from or to a version this gateway does not register (ask a gateway that has both, e.g. during a rolling upgrade)',
  },
  pivot_uncertain: {
    status: 409,
    summary:
      "admin: `compensate` while the saga is at its pivot (the engine settles the pivot's outcome first), or at a parked pivot with no fence (retry it)",
  },
  idempotency_in_flight: {
    status: 409,
    summary: 'the first request with this key is still being answered',
    retryAfterS: 1,
  },
  price_mismatch: {
    status: 409,
    summary:
      "with PRICING=catalog: a line's price is not its product's catalog price (or it has none); `prices` lists the current ones; nothing was stored",
  },
  body_too_large: { status: 413, summary: 'the body is over the size limit' },
  unsupported_media_type: { status: 415, summary: 'the body is not application/json' },
  idempotency_key_reused: { status: 422, summary: 'the key was used with a different request' },
  rate_limited: {
    status: 429,
    summary: 'this client sent more than RATE_LIMIT_PER_MINUTE requests in a minute',
    retryAfterS: 60,
  },
  too_many_sign_ins: {
    status: 429,
    summary:
      'admin: 10 wrong tokens (sign-in or bearer) from this client address within a minute; every token from it waits until Retry-After',
    retryAfterS: 60,
  },
  internal_error: { status: 500, summary: 'a bug: the log has the details' },
  participant_error: { status: 502, summary: 'a participant answered with an error' },
  participant_unavailable: {
    status: 503,
    summary: 'a participant is down (never a 404); nothing was stored',
    retryAfterS: 1,
  },
  saga_log_unavailable: { status: 503, summary: 'the saga log is unreachable', retryAfterS: 1 },
  overloaded: {
    status: 503,
    summary: 'this gateway drives SAGA_MAX_IN_FLIGHT sagas already; nothing was stored',
    retryAfterS: 1,
  },
  shutting_down: { status: 503, summary: 'this gateway is stopping; another one (or a retry) answers', retryAfterS: 1 },
} as const satisfies Record<string, { status: number; summary: string; retryAfterS?: number }>;

export type HttpErrorCode = keyof typeof HTTP_ERRORS;

/** Seconds a client should wait before retrying after this error; undefined: a retry will not help. */
export function retryAfterOf(code: HttpErrorCode): number | undefined {
  const spec = HTTP_ERRORS[code];
  return 'retryAfterS' in spec ? spec.retryAfterS : undefined;
}

/**
 * A failure the API answers with `{error, message}` and the table's status. `message` is for the
 * client; `detail` (a participant's own error text, say) only goes to the log, with the request id;
 * `fields` are sent in the body besides error and message (price_mismatch's `prices`), and must be
 * in the ErrorBody schema to be serialised.
 */
export class HttpError extends Error {
  readonly status: number;
  constructor(
    readonly code: HttpErrorCode,
    message: string,
    readonly detail?: string,
    readonly fields?: Readonly<Record<string, unknown>>,
  ) {
    super(message);
    this.name = 'HttpError';
    this.status = HTTP_ERRORS[code].status;
  }
}

/** Fastify's own errors, by their code, as ours. */
const FASTIFY_ERRORS: Readonly<Record<string, HttpErrorCode>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'body_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_request',
};

/** The saga log's errors, by their code, as ours (lease_lost is a bug if it reaches HTTP). */
const SAGA_LOG_ERRORS: Readonly<Record<SagaLogError['code'], HttpErrorCode>> = {
  invalid_cursor: 'invalid_cursor',
  saga_log_unavailable: 'saga_log_unavailable',
  lease_lost: 'internal_error',
};

/** The message a client sees for an error code whose cause's text is not for clients. */
const PUBLIC_MESSAGE: Partial<Record<HttpErrorCode, string>> = {
  unsupported_media_type: 'send the body as application/json',
  saga_log_unavailable: 'the saga log is unavailable; retry shortly',
  internal_error: 'internal error',
};

interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params?: Record<string, unknown>;
  parentSchema?: { description?: string };
  /** The offending value (ajv's `verbose`). */
  data?: unknown;
}

/** `/items/0/quantity` → `items[0].quantity`. */
function fieldName(instancePath: string): string {
  return instancePath
    .split('/')
    .slice(1)
    .map((p, i) => (/^\d+$/.test(p) ? `[${p}]` : i === 0 ? p : `.${p}`))
    .join('');
}

/** What a violated keyword asks, in words (ajv's own text where it already reads well). */
function requirement(e: AjvError): string {
  const limit = e.params?.limit;
  switch (e.keyword) {
    case 'maximum':
      return `must be at most ${String(limit)}`;
    case 'minimum':
      return limit === 0.01 ? 'must be at least 0.01 (one cent)' : `must be at least ${String(limit)}`;
    case 'exclusiveMinimum':
      return limit === 0 ? 'must be positive' : `must be greater than ${String(limit)}`;
    case 'type':
      return `must be ${e.params?.type === 'integer' ? 'an integer' : `a ${String(e.params?.type)}`}`;
    case 'pattern':
    case 'minLength':
    case 'maxLength':
      // A pattern's text means little to a client; the field's description says what is allowed.
      return e.parentSchema?.description ? `must be ${e.parentSchema.description}` : (e.message ?? 'is invalid');
    case 'maxItems':
      return `must have at most ${String(limit)} entries`;
    default:
      return e.message ?? 'is invalid';
  }
}

const IDEMPOTENCY_KEY_MESSAGE = `X-Idempotency-Key must be 1-${LIMITS.idempotencyKeyMax} printable ASCII characters`;

/** The original API's answer to an order without a customer or without items. */
const REQUIRED_MESSAGE = 'customer_id and items are required';

/**
 * A schema violation as the API has always named it: a body that is not an object is
 * `invalid_json`, anything inside an order line `invalid_item`, a bad key header
 * `invalid_idempotency_key`, anything else `invalid_request`.
 */
export function validationError(context: string, errors: readonly AjvError[]): HttpError {
  const e = errors[0];
  if (!e) return new HttpError('invalid_request', `invalid ${context}`);
  const field = fieldName(e.instancePath);
  if (context === 'headers') {
    if (field === 'x-idempotency-key') return new HttpError('invalid_idempotency_key', IDEMPOTENCY_KEY_MESSAGE);
    return new HttpError('invalid_request', `${field} ${requirement(e)}`);
  }
  if (context === 'body') {
    if (e.instancePath === '' && e.keyword === 'type')
      return new HttpError('invalid_json', 'the body must be a JSON object');
    const missing =
      (e.instancePath === '' && e.keyword === 'required') ||
      (field === 'items' && e.keyword === 'minItems') ||
      (field === 'customer_id' && e.keyword === 'minLength');
    if (missing) return new HttpError('invalid_request', REQUIRED_MESSAGE);
    if (/^\/items\/\d+/.test(e.instancePath)) return new HttpError('invalid_item', `${field} ${requirement(e)}`);
  }
  if (e.keyword === 'required') return new HttpError('invalid_request', `${context} ${e.message ?? 'is incomplete'}`);
  // `?status=a&status=b` arrives as an array: say what is wrong, not that it is not a string.
  if (context === 'querystring' && e.keyword === 'type' && Array.isArray(e.data))
    return new HttpError('invalid_request', `${field} must be given once`);
  return new HttpError('invalid_request', `${field || context} ${requirement(e)}`);
}

/** Whatever a route threw, as the error the client gets. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  // The gateway's domain refusals carry a code of this table.
  if (err instanceof OrderRefused) return new HttpError(err.code, err.message, undefined, err.fields);
  // The engine's refusals of an operator action keep their codes (saga_not_found, action_not_allowed...).
  if (err instanceof OperatorActionError) return new HttpError(err.code, err.message);
  if (err instanceof SagaLogError) {
    const code = SAGA_LOG_ERRORS[err.code];
    return new HttpError(code, PUBLIC_MESSAGE[code] ?? err.message, err.message);
  }
  const f = err as Partial<FastifyError> & { validation?: AjvError[] };
  if (Array.isArray(f.validation)) return validationError(f.validationContext ?? 'request', f.validation);
  if (err instanceof SyntaxError) return new HttpError('invalid_json', err.message);
  const code = f.code ? FASTIFY_ERRORS[f.code] : undefined;
  if (code) return new HttpError(code, PUBLIC_MESSAGE[code] ?? f.message ?? code);
  if (f.statusCode !== undefined && f.statusCode >= 400 && f.statusCode < 500)
    return new HttpError('invalid_request', f.message ?? 'invalid request');
  return new HttpError(
    'internal_error',
    PUBLIC_MESSAGE.internal_error as string,
    err instanceof Error ? err.message : String(err),
  );
}
