/**
 * The API speaks decimal dollars (50.00); inside, every amount is an integer number of cents.
 * The gateway reads order lines' prices with these rules, the inventory service INVENTORY_CATALOG's.
 */

/**
 * Cents for a JSON number of dollars, or undefined when it is not exactly a number of cents.
 * `0.29 * 100` is 28.999999999999996, so the test is the other way round: the nearest number of
 * cents, divided by 100, must give back the very number the client sent. A third decimal, however
 * small (`10.000000001`, `1e-9`), does not.
 */
export function dollarsToCents(dollars: number): number | undefined {
  if (!Number.isFinite(dollars)) return undefined;
  const cents = Math.round(dollars * 100);
  return cents / 100 === dollars ? cents : undefined;
}

export function centsToDollars(cents: number): number {
  return cents / 100;
}
