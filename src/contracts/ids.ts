import { LIMITS } from './limits.js';

/**
 * The character sets of identifiers, as regular expression sources (for JSON Schema `pattern`)
 * and as tests. Lengths are in LIMITS.
 */

/** Order (= saga) ids: safe inside URLs, idempotency keys (`<id>:<step>`) and log lines. */
export const ORDER_ID_CHARS = '^[A-Za-z0-9_.:-]+$';
/** Product and customer ids: printable ASCII without spaces. */
export const ID_CHARS = '^[\\x21-\\x7e]+$';
/** Idempotency keys and request ids: printable ASCII, spaces allowed (as header values). */
export const HEADER_KEY_CHARS = '^[\\x20-\\x7e]+$';
/** A cancellation reason: a code a client can branch on (`payment_declined`, `insufficient_stock`). */
export const REASON_CHARS = '^[a-z0-9_]+$';

/** 1 to `max` characters, all of `chars`. */
function bounded(chars: string, max: number): (v: string) => boolean {
  const re = new RegExp(chars);
  return (v) => v.length > 0 && v.length <= max && re.test(v);
}

export const isOrderId = bounded(ORDER_ID_CHARS, LIMITS.orderIdMax);
export const isProductId = bounded(ID_CHARS, LIMITS.productIdMax);
export const isCustomerId = bounded(ID_CHARS, LIMITS.customerIdMax);
export const isReasonCode = bounded(REASON_CHARS, LIMITS.reasonMax);
/** An `X-Idempotency-Key` value: 1-255 printable ASCII characters. */
export const isIdempotencyKey = bounded(HEADER_KEY_CHARS, LIMITS.idempotencyKeyMax);
/**
 * A participant write's key (gRPC metadata `x-idempotency-key`, `<saga_id>:<step>` from the
 * gateway): no spaces, since keys are logged and stored as they are.
 */
export const isParticipantKey = bounded(ID_CHARS, LIMITS.idempotencyKeyMax);
/** An `X-Request-Id` value worth keeping (anything else is replaced by a generated id). */
export const isRequestId = bounded(HEADER_KEY_CHARS, LIMITS.requestIdMax);
