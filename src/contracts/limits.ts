/**
 * The limits every process agrees on. An order the gateway accepts must be one every participant
 * accepts, or a saga could create an order it can never reserve for or charge: so each limit is
 * written here once, and the gateway's schemas and the services' checks both read it.
 */
export const LIMITS = {
  /** Order ids are saga ids: they appear in idempotency keys (`<saga_id>:<step>`), logs and URLs. */
  orderIdMax: 64,
  productIdMax: 64,
  customerIdMax: 128,
  itemsMax: 100,
  quantityMax: 10_000,
  /** $1,000,000.00 a unit. */
  unitPriceMaxCents: 100_000_000,
  /** $100,000,000.00 an order: far beyond any real order, small enough to be an exact JS integer. */
  orderTotalMaxCents: 10_000_000_000,
  /** A cancellation reason (`payment_declined`). */
  reasonMax: 64,
  /** `X-Idempotency-Key`, as payment APIs bound it. */
  idempotencyKeyMax: 255,
  /** An `X-Request-Id` longer than this is replaced by a generated one. */
  requestIdMax: 128,
  /** A page of the participants' List RPCs and of `sagas reconcile` (0 or unset: the default). */
  listPageSizeDefault: 500,
  listPageSizeMax: 1_000,
} as const;
