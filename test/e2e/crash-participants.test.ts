import { test, before, after } from 'node:test';
import { crashSystem, runCrashCase, type CrashCase } from '../helpers/crash.js';

// kill -9 of each participant just before and just after it commits an effect.
const cases: CrashCase[] = [
  ...(['create', 'confirm'] as const).map((m) => ({
    process: 'order' as const,
    method: m,
    order: 'happy' as const,
    expect: 'COMPLETED' as const,
  })),
  { process: 'order' as const, method: 'cancel', order: 'declined' as const, expect: 'COMPENSATED' as const },
  ...(['reserve', 'commit'] as const).map((m) => ({
    process: 'inventory' as const,
    method: m,
    order: 'happy' as const,
    expect: 'COMPLETED' as const,
  })),
  { process: 'inventory' as const, method: 'release', order: 'declined' as const, expect: 'COMPENSATED' as const },
  { process: 'payment' as const, method: 'charge', order: 'happy' as const, expect: 'COMPLETED' as const },
  { process: 'payment' as const, method: 'charge', order: 'declined' as const, expect: 'COMPENSATED' as const },
].flatMap((c) =>
  ['before_commit', 'after_commit'].map((when): CrashCase => ({
    process: c.process,
    point: `${c.process}.${c.method}.${when}`,
    order: c.order,
    expect: c.expect,
  })),
);

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
