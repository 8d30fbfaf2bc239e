/** The API speaks decimal dollars (50.00); inside, every amount is an integer number of cents. */

/** Cents for a JSON number of dollars, or undefined when it has more than two decimals. */
export function dollarsToCents(dollars: number): number | undefined {
  if (!Number.isFinite(dollars)) return undefined;
  const cents = Math.round(dollars * 100);
  // Binary floating point: 0.29 * 100 is 28.999999999999996; anything further off had a third decimal.
  return Math.abs(cents - dollars * 100) < 1e-6 ? cents : undefined;
}

export function centsToDollars(cents: number): number {
  return cents / 100;
}
