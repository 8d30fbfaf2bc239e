import { describe, test, before, after } from 'node:test';
import { crashSystem, inLanes, runCrashCase, PARTICIPANT_CRASH_CASES, type CrashSystem } from '../helpers/crash.js';

// kill -9 of each participant just before and just after it commits an effect. Every case, in one
// of two systems run side by side (each case's kill, restart and invariants on its own system);
// the processes run the compiled product when dist/ is current.
const LANES = 2;

describe('the participants crash matrix', { concurrency: LANES }, () => {
  for (const [i, cases] of inLanes(PARTICIPANT_CRASH_CASES, LANES).entries())
    describe(`system ${i + 1} of ${LANES}`, { concurrency: 1 }, () => {
      let sys: CrashSystem;
      before(async () => {
        sys = await crashSystem({}, { compiled: true });
      });
      after(async () => {
        await sys?.stop();
      });
      for (const c of cases)
        test(`${c.process} killed at ${c.point} (${c.order} order) ends ${c.expect} with every invariant`, () =>
          runCrashCase(sys, c));
    });
});
