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

const reasonRe = new RegExp(REASON_CHARS);
const orderIdRe = new RegExp(ORDER_ID_CHARS);
const idRe = new RegExp(ID_CHARS);
const headerKeyRe = new RegExp(HEADER_KEY_CHARS);

export function isOrderId(v: string): boolean {
  return v.length > 0 && v.length <= LIMITS.orderIdMax && orderIdRe.test(v);
}

export function isProductId(v: string): boolean {
  return v.length > 0 && v.length <= LIMITS.productIdMax && idRe.test(v);
}

export function isCustomerId(v: string): boolean {
  return v.length > 0 && v.length <= LIMITS.customerIdMax && idRe.test(v);
}

/** An `X-Idempotency-Key` value: 1-255 printable ASCII characters. */
export function isIdempotencyKey(v: string): boolean {
  return v.length > 0 && v.length <= LIMITS.idempotencyKeyMax && headerKeyRe.test(v);
}

/**
 * A participant write's key (gRPC metadata `x-idempotency-key`, `<saga_id>:<step>` from the
 * gateway): no spaces, since keys are logged and stored as they are.
 */
export function isParticipantKey(v: string): boolean {
  return v.length > 0 && v.length <= LIMITS.idempotencyKeyMax && idRe.test(v);
}

/** An `X-Request-Id` value worth keeping (anything else is replaced by a generated id). */
export function isRequestId(v: string): boolean {
  return v.length > 0 && v.length <= LIMITS.requestIdMax && headerKeyRe.test(v);
}

export function isReasonCode(v: string): boolean {
  return v.length > 0 && v.length <= LIMITS.reasonMax && reasonRe.test(v);
}
