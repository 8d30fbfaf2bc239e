import { crashMatrix, PARTICIPANT_CRASH_CASES } from '../helpers/crash.js';

// kill -9 of each participant just before and just after it commits an effect. Every case, in one
// of two systems run side by side (each case's kill, restart and invariants on its own system);
// the processes run the compiled product when dist/ is current.
crashMatrix({
  title: 'the participants crash matrix',
  cases: PARTICIPANT_CRASH_CASES,
  name: (c) => `${c.process} killed at ${c.point} (${c.order} order) ends ${c.expect} with every invariant`,
});
