import { test, before, after } from 'node:test';
import { crashSystem, runCrashCase, type CrashCase } from '../helpers/crash.js';

// kill -9 of the gateway before and after each step's intent and outcome, and mid-compensation.
const STEPS = ['create_order', 'reserve_stock', 'charge_payment', 'confirm_order', 'commit_stock'];
const PHASES = ['before_intent', 'after_intent', 'before_outcome', 'after_outcome'];
const cases: CrashCase[] = [
  ...STEPS.flatMap((s) => PHASES.map((p): CrashCase => ({ process: 'gateway', point: `saga.${s}.${p}`, order: 'happy', expect: 'COMPLETED' }))),
  ...PHASES.map((p): CrashCase => ({ process: 'gateway', point: `saga.charge_payment.${p}`, order: 'declined', expect: 'COMPENSATED' })),
  ...['reserve_stock', 'create_order'].flatMap((s) =>
    PHASES.map((p): CrashCase => ({ process: 'gateway', point: `saga.${s}.undo.${p}`, order: 'declined', expect: 'COMPENSATED' })),
  ),
];

let sys: Awaited<ReturnType<typeof crashSystem>>;
before(async () => {
  sys = await crashSystem();
});
after(async () => {
  await sys?.stop();
});

for (const c of cases) {
  test(`gateway killed at ${c.point} (${c.order} order) ends ${c.expect} with every invariant`, () => runCrashCase(sys, c));
}
