import assert from 'node:assert/strict';
import {
  allTerminal as allEnded,
  baselineOf,
  checkInvariants as check,
  type Apis,
} from '../../src/chaos/invariants.js';

export type { Apis };

export interface InvariantReport {
  sagas: number;
  byStatus: Record<string, number>;
}

/** Whether every saga has reached a terminal state (for polling before the full check). */
export async function allTerminal(sys: Apis): Promise<boolean> {
  return allEnded(sys);
}

/**
 * Checks DESIGN.md §6 with the one implementation (src/chaos/invariants.ts, also `sagas chaos`'s):
 * every saga terminal; the books reconciled against the participants' own records with
 * `GET /api/reconcile?settled=1` (CONFIRMED iff COMPLETED and CANCELLED iff COMPENSATED, confirmed
 * orders charged exactly their total and their stock sold, cancelled ones charged nothing net and
 * holding no stock, every product's stock adding up, PARKED books repairable); the stock against
 * the initial catalog (nothing invented, lost or left reserved). Fails with every violation found.
 */
export async function checkInvariants(
  sys: Apis,
  initialStock: Record<string, number>,
  opts: { allowParked?: boolean } = {},
): Promise<InvariantReport> {
  const r = await check(sys, baselineOf(initialStock), opts);
  assert.deepEqual(r.violations, [], `invariants violated:\n${r.violations.join('\n')}`);
  return { sagas: r.sagas, byStatus: r.byStatus };
}
