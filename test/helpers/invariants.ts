import assert from 'node:assert/strict';
import { allTerminal as allEnded, baselineOf, checkInvariants as check, type Apis } from '../../src/chaos/invariants.js';

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
 * Checks DESIGN.md §6 through the API with the one implementation (src/chaos/invariants.ts, also
 * `sagas chaos`'s): every saga terminal; CONFIRMED iff COMPLETED and CANCELLED iff COMPENSATED;
 * stock conserved (initial = available + reserved + sold, sold = Σ confirmed quantities, nothing
 * left reserved); money conserved (confirmed charged exactly their total, cancelled charged
 * nothing net). Fails with every violation found.
 */
export async function checkInvariants(sys: Apis, initialStock: Record<string, number>, opts: { allowParked?: boolean } = {}): Promise<InvariantReport> {
  const r = await check(sys, baselineOf(initialStock), opts);
  assert.deepEqual(r.violations, [], `invariants violated:\n${r.violations.join('\n')}`);
  return { sagas: r.sagas, byStatus: r.byStatus };
}
