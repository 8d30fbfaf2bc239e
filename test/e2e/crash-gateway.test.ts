import { test, before, after } from 'node:test';
import { crashSystem, runCrashCase, GATEWAY_CRASH_CASES } from '../helpers/crash.js';

// kill -9 of the gateway before and after each step's intent and outcome, and mid-compensation.
let sys: Awaited<ReturnType<typeof crashSystem>>;
before(async () => {
  sys = await crashSystem();
});
after(async () => {
  await sys?.stop();
});

for (const c of GATEWAY_CRASH_CASES) {
  test(`gateway killed at ${c.point} (${c.order} order) ends ${c.expect} with every invariant`, () =>
    runCrashCase(sys, c));
}
