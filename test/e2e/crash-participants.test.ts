import { test, before, after } from 'node:test';
import { crashSystem, runCrashCase, PARTICIPANT_CRASH_CASES } from '../helpers/crash.js';

// kill -9 of each participant just before and just after it commits an effect.
const cases = PARTICIPANT_CRASH_CASES;

let sys: Awaited<ReturnType<typeof crashSystem>>;
before(async () => {
  sys = await crashSystem();
});
after(async () => {
  await sys?.stop();
});

for (const c of cases) {
  test(`${c.process} killed at ${c.point} (${c.order} order) ends ${c.expect} with every invariant`, () =>
    runCrashCase(sys, c));
}
