import { AppError } from '../../platform/errors.js';

/**
 * Input rules shared by the participants. Each service still owns its own rules; these are only
 * the ones that must agree across services (an order id accepted by one must be accepted by all,
 * or a saga could create an order it can never reserve for).
 */
export const LIMITS = {
  orderIdMax: 64,
  productIdMax: 64,
  itemsMax: 100,
  quantityMax: 10_000,
} as const;

// Order ids are saga ids and appear inside idempotency keys (`<saga_id>:<step>`), logs and URLs.
const ORDER_ID = /^[A-Za-z0-9_\-:.]+$/;

export function invalid(field: string, message: string): AppError {
  return new AppError('invalid_argument', `${field} ${message}`, { field });
}

export function checkOrderId(value: string, field = 'order_id'): string {
  if (value.length === 0 || value.length > LIMITS.orderIdMax || !ORDER_ID.test(value)) {
    throw invalid(field, `must be 1-${LIMITS.orderIdMax} characters of A-Z a-z 0-9 _ - : .`);
  }
  return value;
}

export function checkNonBlank(value: string, max: number, field: string): string {
  if (value.trim() === '' || value.length > max) throw invalid(field, `must be 1-${max} characters and not blank`);
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

export interface StockLine {
  productId: string;
  quantity: number;
}

/** Validates one line's product and quantity; `field` names the line in the error, e.g. items[2]. */
export function checkStockLine(line: StockLine, field: string): StockLine {
  checkNonBlank(line.productId, LIMITS.productIdMax, `${field}.product_id`);
  checkIntInRange(line.quantity, 1, LIMITS.quantityMax, `${field}.quantity`);
  return line;
}
