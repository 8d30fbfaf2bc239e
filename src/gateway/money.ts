// The money rules are shared with the services (INVENTORY_CATALOG prices): see src/contracts/money.ts.
export { centsToDollars, dollarsToCents } from '../contracts/money.js';
