import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { SagaEngine } from '../../src/saga/engine.js';
import { SqliteSagaLog } from '../../src/saga/stores/sqlite.js';
import type { EnginePolicies, SagaDefinition, StepContext, StepOutcome } from '../../src/saga/definition.js';
import { MigrationError, VersionsStrandedError } from '../../src/saga/versions.js';
import { eventually } from '../helpers/system.js';

// Two versions of one saga in one real SQLite log, driven by engines that register one or both:
// each saga runs on its own version, recovery leaves a version it lacks to others, a process that
// dropped a version in use refuses, and a migration moves sagas saga by saga, audited.

const logger = pino({ level: 'silent' });
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'saga-versions-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

const fast: EnginePolicies = {
  // A blocked step before the pivot keeps retrying (its saga waits there) until it is let through.
  action: { maxAttempts: 100_000, initialBackoffMs: 2, maxBackoffMs: 10, multiplier: 2 },
  compensation: { maxAttempts: 3, initialBackoffMs: 1, maxBackoffMs: 2, multiplier: 2 },
  forward: { maxAttempts: 4, initialBackoffMs: 1, maxBackoffMs: 2, multiplier: 2 },
  stepTimeoutMs: 200,
  sagaDeadlineMs: 60_000,
};

/** What the participants saw: each call's idempotency key; `blocked` steps answer "unknown". */
function world() {
  const calls: string[] = [];
  const blocked = new Set<string>();
  const run =
    (name: string) =>
    async (ctx: StepContext<{ n: number }>): Promise<StepOutcome> => {
      calls.push(ctx.idempotencyKey);
      if (blocked.has(name)) throw new Error(`${name} unavailable`);
      return { ok: true, result: { by: name } };
    };
  const step = (name: string, kind: 'compensatable' | 'pivot' | 'retriable') => ({
    name,
    kind,
    action: run(name),
    ...(kind === 'compensatable' ? { compensate: run(`${name}:undo`) } : {}),
  });
  const steps = {
    a: step('a', 'compensatable'),
    b: step('b', 'compensatable'),
    c: step('c', 'compensatable'),
    d: step('d', 'pivot'),
    e: step('e', 'retriable'),
  };
  const v1: SagaDefinition<{ n: number }> = {
    name: 'toy',
    version: 1,
    steps: [steps.a, steps.b, steps.c, steps.d, steps.e],
  };
  // Version 2 does b before a.
  const v2: SagaDefinition<{ n: number }> = {
    name: 'toy',
    version: 2,
    steps: [steps.b, steps.a, steps.c, steps.d, steps.e],
  };
  return { calls, blocked, v1, v2 };
}

function logFile(): string {
  return path.join(fs.mkdtempSync(path.join(root, 'log-')), 'saga.db');
}

function engine(file: string, owner: string, leaseMs = 60_000) {
  return new SagaEngine({ log: new SqliteSagaLog({ file }), logger, policies: fast, owner, leaseMs });
}

test('register: several versions, new sagas start on the one marked (else the newest); mistakes refused', async () => {
  const w = world();
  const e = engine(logFile(), 'e1');
  const h1 = e.register(w.v1);
  const h2 = e.register(w.v2);
  assert.equal(e.definitionOf('toy')?.version, 2, 'the newest, when none is marked');
  assert.throws(() => e.register(w.v1), /registered twice/);
  const byName = await e.start('toy', { id: 'by-name', input: { n: 1 } });
  const via1 = await h1.start({ id: 'via-1', input: { n: 1 } });
  const via2 = await h2.start({ id: 'via-2', input: { n: 1 } });
  assert.deepEqual([byName.saga.version, via1.saga.version, via2.saga.version], [2, 1, 2]);
  for (const id of ['by-name', 'via-1', 'via-2']) assert.equal((await e.waitFor(id, 5_000))?.status, 'COMPLETED');
  // Each ran its own order of steps.
  assert.deepEqual(
    w.calls.filter((k) => k.startsWith('via-1:')),
    ['via-1:a', 'via-1:b', 'via-1:c', 'via-1:d', 'via-1:e'],
  );
  assert.deepEqual(
    w.calls.filter((k) => k.startsWith('via-2:')),
    ['via-2:b', 'via-2:a', 'via-2:c', 'via-2:d', 'via-2:e'],
  );
  await e.shutdown();

  const marked = engine(logFile(), 'e2');
  marked.register(w.v1, { startsNew: true });
  marked.register(w.v2);
  assert.equal(marked.definitionOf('toy')?.version, 1, 'the marked one, even when a newer exists');
  assert.throws(() => marked.register({ ...w.v2, version: 3 }, { startsNew: true }), /two versions are marked/);
  await marked.shutdown();
});

test("recovery takes over only the versions it has; the other version's sagas wait for a process that has it", async () => {
  const w = world();
  const file = logFile();
  w.blocked.add('c');
  // A process with both versions starts one saga of each, and dies (its leases run out).
  const first = engine(file, 'first', 200);
  const h1 = first.register(w.v1);
  const h2 = first.register(w.v2);
  await h1.start({ id: 'old', input: { n: 1 } });
  await h2.start({ id: 'new', input: { n: 1 } });
  await eventually('both to reach c', async () => {
    const [o, n] = [await h1.get('old'), await h2.get('new')];
    return o?.currentStep === 'c' && n?.currentStep === 'c' ? true : undefined;
  });
  await first.shutdown(0);
  w.blocked.delete('c');
  // An older process (v1 only) recovers what it can.
  const older = engine(file, 'older', 200);
  older.register(w.v1);
  assert.deepEqual(
    (await older.versions()).map((v) => [v.version, v.state, v.running]),
    [
      [1, 'driven', 1],
      [2, 'left_to_others', 1],
    ],
  );
  await eventually('the old saga to be resumed and finished', async () => {
    await older.recoverOnce();
    return (await older.reads.get('old'))?.status === 'COMPLETED' ? true : undefined;
  });
  assert.equal((await older.reads.get('new'))?.status, 'RUNNING');
  assert.equal(
    (await older.reads.events('new')).some((ev) => ev.type === 'SAGA_RESUMED'),
    false,
    'never claimed by a process without its version',
  );
  await older.shutdown();
  // A process with v2 finishes it, on v2.
  const newer = engine(file, 'newer', 200);
  newer.register(w.v1);
  newer.register(w.v2);
  await eventually('the new saga to finish', async () => {
    await newer.recoverOnce();
    return (await newer.reads.get('new'))?.status === 'COMPLETED' ? true : undefined;
  });
  assert.deepEqual(
    w.calls.filter((k) => k.startsWith('new:') && !k.endsWith(':c')),
    ['new:b', 'new:a', 'new:d', 'new:e'],
  );
  await newer.shutdown();
});

test('a process that dropped a version with sagas in flight (parked included) refuses to start', async () => {
  const w = world();
  const file = logFile();
  w.blocked.add('e');
  const e = engine(file, 'e');
  const h1 = e.register(w.v1);
  await h1.start({ id: 'parks', input: { n: 1 } });
  assert.equal((await e.waitFor('parks', 5_000))?.status, 'PARKED');
  await e.shutdown();
  const dropped = engine(file, 'dropped');
  dropped.register(w.v2);
  await assert.rejects(dropped.checkVersions(), (err: unknown) => {
    assert.ok(err instanceof VersionsStrandedError);
    assert.match(err.message, /1 saga\(s\) of toy@1 in flight \(RUNNING 0, COMPENSATING 0, PARKED 1\)/);
    return true;
  });
  await dropped.shutdown();
});

test('migrate: a dry run writes nothing; the move is audited per saga, runs on the new version, and is not repeated', async () => {
  const w = world();
  const file = logFile();
  const e = engine(file, 'mig');
  const h1 = e.register(w.v1);
  e.register(w.v2);
  // One parked after its pivot (e never answers), one retrying at b (a done), one finished.
  w.blocked.add('e');
  await h1.start({ id: 'parked', input: { n: 1 } });
  assert.equal((await e.waitFor('parked', 5_000))?.status, 'PARKED');
  w.blocked.clear();
  await h1.start({ id: 'done', input: { n: 1 } });
  assert.equal((await e.waitFor('done', 5_000))?.status, 'COMPLETED');
  w.blocked.add('b');
  await h1.start({ id: 'at-b', input: { n: 1 } });
  await eventually('at-b to retry b', async () =>
    (await h1.get('at-b'))?.currentStep === 'b' && ((await h1.get('at-b'))?.attempt ?? 0) > 0 ? true : undefined,
  );
  const req = { definition: 'toy', from: 1, to: 2, map: {}, actor: 'alice', actionId: 'migrate_1' };

  const dry = await e.migrate({ ...req, dryRun: true });
  assert.deepEqual(
    [dry.scanned, dry.moved, dry.stayed],
    [2, 2, 0],
    'the finished saga is not in flight: not looked at',
  );
  const byId = new Map(dry.items.map((i) => [i.sagaId, i]));
  assert.deepEqual(
    { ...byId.get('at-b'), status: undefined },
    {
      sagaId: 'at-b',
      status: undefined,
      outcome: 'would_move',
      fromStep: 'b',
      toStep: 'b',
      added: [],
      replayed: ['a'],
      unrun: [],
    },
  );
  assert.equal(byId.get('parked')?.toStep, 'e');
  assert.equal((await e.reads.get('parked'))?.version, 1, 'a dry run writes nothing');

  await assert.rejects(e.migrate({ ...req, to: 3, dryRun: true }), (err: unknown) => {
    assert.ok(err instanceof MigrationError);
    assert.equal(err.code, 'unknown_version');
    return true;
  });
  await assert.rejects(e.migrate({ ...req, map: { zz: 'a' }, dryRun: true }), { code: 'invalid_map' });
  await assert.rejects(e.migrate({ ...req, to: 1, dryRun: true }), { code: 'same_version' });

  w.blocked.clear();
  const real = await e.migrate({ ...req, dryRun: false, note: 'v1 retired' });
  assert.deepEqual([real.moved, real.stayed], [2, 0]);
  // The retrying saga goes on, on v2: b, then a again under its own key (a replay), then on.
  assert.equal((await e.waitFor('at-b', 5_000))?.status, 'COMPLETED');
  const atB = await e.reads.get('at-b');
  assert.equal(atB?.version, 2);
  const keys = w.calls.filter((k) => k.startsWith('at-b:'));
  assert.deepEqual([...new Set(keys)], ['at-b:a', 'at-b:b', 'at-b:c', 'at-b:d', 'at-b:e']);
  // The parked one stays parked, on v2, and an operator's retry finishes it there.
  const parked = await e.reads.get('parked');
  assert.deepEqual([parked?.status, parked?.version, parked?.currentStep], ['PARKED', 2, 'e']);
  const audit = (await e.reads.events('parked')).filter((ev) => ev.type === 'OPERATOR_ACTION');
  assert.deepEqual(
    audit.map((ev) => ev.data),
    [
      {
        action: 'migrate',
        action_id: 'migrate_1',
        actor: 'alice',
        note: 'v1 retired',
        from_version: 1,
        to_version: 2,
        from_step: 'e',
        added: [],
        replayed: [],
        unrun: [],
      },
    ],
  );
  await e.act({ sagaId: 'parked', action: 'retry', actionId: 'r1', actor: 'alice' });
  assert.equal((await e.waitFor('parked', 5_000))?.status, 'COMPLETED');
  // Again: nothing of v1 is left in flight, nothing moves twice.
  const again = await e.migrate({ ...req, dryRun: false });
  assert.deepEqual([again.scanned, again.moved], [0, 0]);
  assert.deepEqual(
    (await e.versions()).map((v) => [v.version, v.running + v.compensating + v.parked]),
    [
      [1, 0],
      [2, 0],
    ],
  );
  await e.shutdown();
});
