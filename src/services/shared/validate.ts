import { AppError } from '../../platform/errors.js';
import { LIMITS } from '../../contracts/limits.js';
import { isCustomerId, isOrderId, isProductId } from '../../contracts/ids.js';

/**
 * The participants' checks of the rules in src/contracts, which the gateway's schemas state too:
 * an order id or a line accepted by one process is accepted by all.
 */
export { LIMITS };

export function invalid(field: string, message: string): AppError {
  return new AppError('invalid_argument', `${field} ${message}`, { field });
}

export function checkOrderId(value: string, field = 'order_id'): string {
  if (!isOrderId(value)) {
    throw invalid(field, `must be 1-${LIMITS.orderIdMax} characters of A-Z a-z 0-9 _ - : .`);
  }
  return value;
}

export function checkCustomerId(value: string, field = 'customer_id'): string {
  if (!isCustomerId(value))
    throw invalid(field, `must be 1-${LIMITS.customerIdMax} printable characters without spaces`);
  return value;
}

export function checkIntInRange(value: number, min: number, max: number, field: string): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw invalid(field, `must be an integer from ${min} to ${max}, got ${value}`);
  }
  return value;
}

export function checkItemCount(count: number, field = 'items'): void {
  if (count < 1 || count > LIMITS.itemsMax) throw invalid(field, `must hold 1-${LIMITS.itemsMax} lines, got ${count}`);
}

export function checkProductId(value: string, field = 'product_id'): string {
  if (!isProductId(value)) throw invalid(field, `must be 1-${LIMITS.productIdMax} printable characters without spaces`);
  return value;
}

export interface StockLine {
  productId: string;
  quantity: number;
}

/** Validates one line's product and quantity; `field` names the line in the error, e.g. items[2]. */
export function checkStockLine(line: StockLine, field: string): StockLine {
  checkProductId(line.productId, `${field}.product_id`);
  checkIntInRange(line.quantity, 1, LIMITS.quantityMax, `${field}.quantity`);
  return line;
}
