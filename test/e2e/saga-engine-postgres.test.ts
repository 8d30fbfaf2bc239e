import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { SagaEngine } from '../../src/saga/engine.js';
import type { SagaDefinition, StepContext, StepOutcome } from '../../src/saga/definition.js';
import type { SagaLog } from '../../src/saga/model.js';
import { openSagaLog } from '../../src/saga/stores/open.js';
import { createTempDatabase, type TempDatabase } from '../helpers/postgres.js';
import { eventually } from '../helpers/system.js';

// Two engines (two "gateways") on one PostgreSQL saga log, in one process, each with its own pool
// and LISTEN connection: what several gateways rely on, without the HTTP around it.

const fast = {
  action: { maxAttempts: 3, initialBackoffMs: 1, maxBackoffMs: 2, multiplier: 2 },
  compensation: { maxAttempts: 3, initialBackoffMs: 1, maxBackoffMs: 2, multiplier: 2 },
  forward: { maxAttempts: Infinity, initialBackoffMs: 1, maxBackoffMs: 2, multiplier: 2 },
  stepTimeoutMs: 5_000,
  sagaDeadlineMs: 60_000,
};

/** Two steps; `gate` holds step b of the listed sagas until released. */
function definition(calls: string[], gate: Map<string, Promise<void>>): SagaDefinition<{ n: number }> {
  const run =
    (name: string) =>
    async (ctx: StepContext<{ n: number }>): Promise<StepOutcome> => {
      calls.push(`${name}#${ctx.idempotencyKey}`);
      if (name === 'b') await gate.get(ctx.sagaId);
      return { ok: true, result: { step: name } };
    };
  return {
    name: 'two_steps',
    version: 1,
    steps: [
      { name: 'a', kind: 'compensatable', action: run('a'), compensate: run('a:undo') },
      { name: 'b', kind: 'pivot', action: run('b') },
    ],
  };
}

interface Captured {
  msg: string;
  saga_id?: string;
}

function capturingLogger(lines: Captured[]) {
  return pino({ level: 'info' }, { write: (s: string) => lines.push(JSON.parse(s) as Captured) });
}

let db: TempDatabase;
const logs: SagaLog[] = [];
const engines: SagaEngine[] = [];

async function log(): Promise<SagaLog> {
  const l = await openSagaLog({ kind: 'postgres', url: db.url, poolSize: 4, synchronousCommit: 'on' });
  logs.push(l);
  return l;
}

before(async () => {
  db = await createTempDatabase('sagas_engine');
});
after(async () => {
  for (const e of engines) await e.shutdown(100);
  for (const l of logs) await l.close();
  await db?.drop();
});

test('a waiter on one engine hears the end of a saga another engine drives (NOTIFY, no polling)', async () => {
  const gate = new Map<string, Promise<void>>();
  let release!: () => void;
  gate.set('w1', new Promise<void>((r) => (release = r)));
  const a = new SagaEngine({ log: await log(), logger: pino({ level: 'silent' }), policies: fast, owner: 'A' });
  const b = new SagaEngine({ log: await log(), logger: pino({ level: 'silent' }), policies: fast, owner: 'B' });
  engines.push(a, b);
  a.register(definition([], gate));
  b.register(definition([], gate));
  await a.start('two_steps', { id: 'w1', input: { n: 1 } });
  const waited = b.waitFor('w1', 30_000);
  const t0 = Date.now();
  release();
  const final = await waited;
  assert.equal(final?.status, 'COMPLETED');
  assert.ok(
    Date.now() - t0 < 5_000,
    `B heard of the end after ${Date.now() - t0} ms; its own 30 s timeout would have been polling`,
  );
});

test('a saga whose owner stopped answering is taken over; the old owner stops at its next write, says so once, and never writes again', async () => {
  const gate = new Map<string, Promise<void>>();
  let release!: () => void;
  gate.set('t1', new Promise<void>((r) => (release = r)));
  const linesA: Captured[] = [];
  const logA = await log();
  const logB = await log();
  const callsA: string[] = [];
  const callsB: string[] = [];
  const a = new SagaEngine({ log: logA, logger: capturingLogger(linesA), policies: fast, owner: 'A', leaseMs: 300 });
  const b = new SagaEngine({ log: logB, logger: pino({ level: 'silent' }), policies: fast, owner: 'B', leaseMs: 300 });
  engines.push(a, b);
  a.register(definition(callsA, gate));
  b.register(definition(callsB, new Map()));
  await a.start('two_steps', { id: 't1', input: { n: 1 } });
  // A is stuck in step b and renews nothing (no background loop): its lease expires and B claims it.
  await eventually('A to be in step b', async () => (callsA.includes('b#t1:b') ? true : undefined));
  await eventually('B to take the saga over', async () => ((await b.recoverOnce()) === 1 ? true : undefined), 5_000);
  const final = await b.waitFor('t1', 5_000);
  assert.equal(final?.status, 'COMPLETED');
  assert.deepEqual(callsB, ['b#t1:b'], 'B re-runs the step in flight with the same key');
  const before = (await logB.events('t1')).length;
  release(); // A's call now returns; its outcome write must be refused
  await eventually('A to stop driving', async () => (a.inFlight === 0 ? true : undefined), 5_000);
  const events = await logB.events('t1');
  assert.equal(events.length, before, 'A wrote nothing after B took over');
  assert.equal(events.at(-1)?.type, 'SAGA_COMPLETED');
  assert.equal(linesA.filter((l) => l.saga_id === 't1' && /lost the lease/.test(l.msg)).length, 1, 'said once');
});

test('claims from two engines at once never give one saga to both', async () => {
  const logA = await log();
  const a = new SagaEngine({ log: logA, logger: pino({ level: 'silent' }), policies: fast, owner: 'C', leaseMs: 200 });
  const gate = new Map<string, Promise<void>>();
  const never = new Promise<void>(() => {});
  const ids = Array.from({ length: 30 }, (_, i) => `c${i}`);
  for (const id of ids) gate.set(id, never);
  a.register(definition([], gate));
  engines.push(a);
  for (const id of ids) await a.start('two_steps', { id, input: { n: 1 } });
  const calls1: string[] = [];
  const calls2: string[] = [];
  const e1 = new SagaEngine({
    log: await log(),
    logger: pino({ level: 'silent' }),
    policies: fast,
    owner: 'D1',
    leaseMs: 60_000,
  });
  const e2 = new SagaEngine({
    log: await log(),
    logger: pino({ level: 'silent' }),
    policies: fast,
    owner: 'D2',
    leaseMs: 60_000,
  });
  engines.push(e1, e2);
  e1.register(definition(calls1, new Map()));
  e2.register(definition(calls2, new Map()));
  let claimed = 0;
  await eventually(
    'every saga to be claimed',
    async () => {
      const [n1, n2] = await Promise.all([e1.recoverOnce(), e2.recoverOnce()]);
      claimed += n1 + n2;
      return claimed >= ids.length ? true : undefined;
    },
    10_000,
  );
  assert.equal(claimed, ids.length, 'each saga claimed exactly once');
  const both = calls1.filter((c) => calls2.includes(c));
  assert.deepEqual(both, [], 'no step called by both engines');
  for (const id of ids) assert.equal((await e1.waitFor(id, 5_000))?.status, 'COMPLETED');
});
