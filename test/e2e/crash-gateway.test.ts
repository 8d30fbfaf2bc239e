import { describe, test, before, after } from 'node:test';
import { crashSystem, inLanes, runCrashCase, GATEWAY_CRASH_CASES, type CrashSystem } from '../helpers/crash.js';

// kill -9 of the gateway before and after each step's intent and outcome, and mid-compensation.
// Every case, in one of two systems run side by side (each case's kill, restart and invariants
// on its own system); the processes run the compiled product when dist/ is current.
const LANES = 2;

describe('the gateway crash matrix', { concurrency: LANES }, () => {
  for (const [i, cases] of inLanes(GATEWAY_CRASH_CASES, LANES).entries())
    describe(`system ${i + 1} of ${LANES}`, { concurrency: 1 }, () => {
      let sys: CrashSystem;
      before(async () => {
        sys = await crashSystem({}, { compiled: true });
      });
      after(async () => {
        await sys?.stop();
      });
      for (const c of cases)
        test(`gateway killed at ${c.point} (${c.order} order) ends ${c.expect} with every invariant`, () =>
          runCrashCase(sys, c));
    });
});
