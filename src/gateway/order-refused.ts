/**
 * An order the gateway's domain rules refuse (a price with too many decimals, a total over the
 * cap, prices that differ from the catalog): a value of the domain, not of HTTP. Its code is one
 * of the HTTP error table's (src/gateway/http/errors.ts), which maps it to a status.
 */
export type OrderRefusalCode = 'invalid_item' | 'invalid_request' | 'price_mismatch';

export class OrderRefused extends Error {
  constructor(
    readonly code: OrderRefusalCode,
    message: string,
    /** Fields the answer carries besides the message (price_mismatch: the current prices). */
    readonly fields?: Readonly<Record<string, unknown>>,
  ) {
    super(message);
    this.name = 'OrderRefused';
  }
}
