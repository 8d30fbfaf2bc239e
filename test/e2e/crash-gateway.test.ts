import { crashMatrix, GATEWAY_CRASH_CASES } from '../helpers/crash.js';

// kill -9 of the gateway before and after each step's intent and outcome, and mid-compensation.
// Every case, in one of two systems run side by side (each case's kill, restart and invariants
// on its own system); the processes run the compiled product when dist/ is current.
crashMatrix({
  title: 'the gateway crash matrix',
  cases: GATEWAY_CRASH_CASES,
  name: (c) => `gateway killed at ${c.point} (${c.order} order) ends ${c.expect} with every invariant`,
});
