import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { placeOrderSaga, placeOrderSagaV2 } from '../../src/gateway/place-order.js';
import type { Participants } from '../../src/gateway/participants.js';
import type { SagaDefinition } from '../../src/saga/definition.js';
import type { SagaRecord, SagaStatus } from '../../src/saga/model.js';
import {
  parseStepMap,
  planMigration,
  strandedVersions,
  versionViews,
  type MigrationPlan,
} from '../../src/saga/versions.js';
import { sagaRecord } from '../helpers/saga-record.js';

// Planning reads the steps' names and kinds only: no participant is ever called.
const none = {} as Participants;
const V1 = placeOrderSaga(none) as unknown as SagaDefinition<unknown>;
const V2 = placeOrderSagaV2(none) as unknown as SagaDefinition<unknown>;

const saga = (over: Partial<SagaRecord>): SagaRecord => sagaRecord(over);

/** The plan in one line: where it resumes, and the three lists; or the refusal's code. */
function brief(p: MigrationPlan) {
  if (p.kind === 'stay') return p.code;
  return {
    at: [p.patch.stepIndex, p.patch.compIndex],
    to: p.toStep,
    added: p.added,
    replayed: p.replayed,
    unrun: p.unrun,
  };
}

// v1: create_order, reserve_stock, charge_payment, confirm_order (pivot), commit_stock (retriable)
// v2: reserve_stock, create_order, charge_payment, confirm_order (pivot), commit_stock (retriable)
const cases: Array<{ name: string; s: Partial<SagaRecord>; want: ReturnType<typeof brief> }> = [
  {
    name: 'at the first step: resumes at v2 first step, running the step v2 put before it',
    s: { stepIndex: 0, attempt: 2 },
    want: { at: [0, -1], to: 'reserve_stock', added: [], replayed: [], unrun: [] },
  },
  {
    name: 'between the two reordered steps: reserve runs, create_order is replayed under its key',
    s: { stepIndex: 1, attempt: 1 },
    want: { at: [0, -1], to: 'reserve_stock', added: [], replayed: ['create_order'], unrun: [] },
  },
  {
    name: 'past both: resumes at its own step, nothing new, nothing replayed',
    s: { stepIndex: 2, attempt: 3 },
    want: { at: [2, -1], to: 'charge_payment', added: [], replayed: [], unrun: [] },
  },
  {
    name: 'at the pivot',
    s: { stepIndex: 3 },
    want: { at: [3, -1], to: 'confirm_order', added: [], replayed: [], unrun: [] },
  },
  {
    name: 'parked after the pivot (commit_stock out of attempts)',
    s: { status: 'PARKED', stepIndex: 4 },
    want: { at: [4, -1], to: 'commit_stock', added: [], replayed: [], unrun: [] },
  },
  {
    name: 'compensating from charge_payment: down from the last v2 step it touched',
    s: { status: 'COMPENSATING', stepIndex: 2, compIndex: 2 },
    want: { at: [2, 2], to: 'charge_payment', added: [], replayed: [], unrun: [] },
  },
  {
    name: 'compensating at create_order after reserve was undone: reserve is compensated again (replayed)',
    s: { status: 'COMPENSATING', stepIndex: 2, compIndex: 0 },
    want: { at: [2, 1], to: 'create_order', added: [], replayed: ['reserve_stock'], unrun: [] },
  },
  {
    name: 'parked fencing the pivot',
    s: { status: 'PARKED', stepIndex: 3, compIndex: 3 },
    want: { at: [3, 3], to: 'confirm_order', added: [], replayed: [], unrun: [] },
  },
  { name: 'a finished saga stays', s: { status: 'COMPLETED', stepIndex: 5 }, want: 'not_in_flight' },
  { name: 'a resolved saga stays', s: { status: 'RESOLVED', stepIndex: 4 }, want: 'not_in_flight' },
  { name: 'another version stays', s: { version: 2 }, want: 'wrong_version' },
  {
    name: 'compensating with nothing left is finishing',
    s: { status: 'COMPENSATING', stepIndex: 1, compIndex: -1 },
    want: 'finishing',
  },
];

describe('planMigration: place_order v1 → v2', () => {
  for (const c of cases) {
    it(c.name, () => {
      assert.deepEqual(brief(planMigration(V1, V2, {}, saga(c.s))), c.want);
    });
  }

  it('keeps every result, renamed by the map', () => {
    const p = planMigration(V1, V2, {}, saga({ stepIndex: 3, results: { charge_payment: { amount_cents: 130 } } }));
    assert.equal(p.kind, 'move');
    assert.deepEqual(p.kind === 'move' && p.patch.results, { charge_payment: { amount_cents: 130 } });
    assert.equal(p.kind === 'move' && p.patch.version, 2);
  });

  it('v2 → v1 likewise replays what the other order put later', () => {
    const p = planMigration(V2, V1, {}, saga({ version: 2, stepIndex: 1, attempt: 1 }));
    assert.deepEqual(brief(p), {
      at: [0, -1],
      to: 'create_order',
      added: [],
      replayed: ['reserve_stock'],
      unrun: [],
    });
  });
});

describe('planMigration: what could lose or repeat an effect stays', () => {
  const renamedV2: SagaDefinition<unknown> = {
    ...V1,
    version: 3,
    steps: V1.steps.map((st) => (st.name === 'reserve_stock' ? { ...st, name: 'hold_stock' } : st)),
  };
  const map = { reserve_stock: 'hold_stock' };

  it('a step missing from the new version', () => {
    const dropped: SagaDefinition<unknown> = {
      ...V1,
      version: 3,
      steps: V1.steps.filter((st) => st.name !== 'reserve_stock'),
    };
    assert.equal(brief(planMigration(V1, dropped, {}, saga({ stepIndex: 2 }))), 'step_missing');
    // Not reached yet and absent from the new version: nothing of it to keep.
    assert.equal(planMigration(V1, dropped, {}, saga({ stepIndex: 0 })).kind, 'move');
  });

  it('a step whose kind changed', () => {
    const changed: SagaDefinition<unknown> = {
      ...V1,
      version: 3,
      steps: V1.steps.map((st) => (st.name === 'commit_stock' ? { ...st, kind: 'compensatable' as const } : st)),
    };
    assert.equal(brief(planMigration(V1, changed, {}, saga({ status: 'PARKED', stepIndex: 4 }))), 'kind_changed');
  });

  it('a renamed step with an attempt that may be in flight, but not one never tried', () => {
    assert.equal(brief(planMigration(V1, renamedV2, map, saga({ stepIndex: 1, attempt: 2 }))), 'renamed_replay');
    const p = planMigration(V1, renamedV2, map, saga({ stepIndex: 1, attempt: 0 }));
    assert.deepEqual(brief(p), { at: [1, -1], to: 'hold_stock', added: [], replayed: [], unrun: [] });
  });

  it('a renamed step that a reorder would run again', () => {
    const renamedReordered: SagaDefinition<unknown> = {
      ...V2,
      version: 3,
      steps: V2.steps.map((st) => (st.name === 'create_order' ? { ...st, name: 'open_order' } : st)),
    };
    assert.equal(
      brief(planMigration(V1, renamedReordered, { create_order: 'open_order' }, saga({ stepIndex: 1, attempt: 0 }))),
      'renamed_replay',
    );
  });

  it('a saga past its pivot never resumes before a pivot again', () => {
    const inserted: SagaDefinition<unknown> = {
      ...V1,
      version: 3,
      steps: [
        ...V1.steps.slice(0, 3),
        { ...(V1.steps[0] as SagaDefinition<unknown>['steps'][number]), name: 'check_fraud' },
        ...V1.steps.slice(3),
      ],
    };
    assert.equal(brief(planMigration(V1, inserted, {}, saga({ stepIndex: 4 }))), 'reopens_pivot');
    // Before the pivot, the new step just runs.
    assert.deepEqual(brief(planMigration(V1, inserted, {}, saga({ stepIndex: 3 }))), {
      at: [3, -1],
      to: 'check_fraud',
      added: ['check_fraud'],
      replayed: [],
      unrun: [],
    });
    // Compensating below the new step: its compensation is called though it never ran.
    assert.deepEqual(
      brief(planMigration(V1, inserted, {}, saga({ status: 'COMPENSATING', stepIndex: 3, compIndex: 2 }))),
      {
        at: [4, 2],
        to: 'charge_payment',
        added: [],
        replayed: [],
        unrun: [],
      },
    );
  });

  it('a compensation that would run again under a new name', () => {
    const reorderedRenamed: SagaDefinition<unknown> = {
      ...V2,
      version: 3,
      steps: V2.steps.map((st) => (st.name === 'reserve_stock' ? { ...st, name: 'hold_stock' } : st)),
    };
    const compensating = saga({ status: 'COMPENSATING', stepIndex: 2, compIndex: 0 });
    assert.equal(brief(planMigration(V1, reorderedRenamed, map, compensating)), 'renamed_replay');
    // In the same order, the step already undone stays undone: nothing runs again.
    assert.deepEqual(brief(planMigration(V1, renamedV2, map, compensating)), {
      at: [2, 0],
      to: 'create_order',
      added: [],
      replayed: [],
      unrun: [],
    });
  });
});

describe('versions: which a process drives, and when it must not start', () => {
  const counts = (definition: string, version: number, running: number, parked = 0) => ({
    definition,
    version,
    running,
    compensating: 0,
    parked,
  });
  const refs = (...vs: number[]) => vs.map((version) => ({ definition: 'place_order', version }));

  it('marks each version driven, left to others or removed, with where new sagas start', () => {
    const views = versionViews(refs(2, 3), new Map([['place_order', 2]]), [
      counts('place_order', 1, 4, 1),
      counts('place_order', 2, 7),
      counts('place_order', 4, 2),
      counts('other', 1, 1),
    ]);
    assert.deepEqual(
      views.map((v) => [v.definition, v.version, v.state, v.startsHere, v.running]),
      [
        ['other', 1, 'left_to_others', false, 1],
        ['place_order', 1, 'removed', false, 4],
        ['place_order', 2, 'driven', true, 7],
        ['place_order', 3, 'driven', false, 0],
        ['place_order', 4, 'left_to_others', false, 2],
      ],
    );
  });

  it('refuses to start when a removed version still has sagas in flight (parked ones count)', () => {
    const starting = new Map([['place_order', 2]]);
    const stranded = strandedVersions(versionViews(refs(2), starting, [counts('place_order', 1, 0, 3)]));
    assert.match(stranded ?? '', /3 saga\(s\) of place_order@1 in flight \(RUNNING 0, COMPENSATING 0, PARKED 3\)/);
    assert.match(stranded ?? '', /sagas migrate --definition place_order --from 1 --to 2 --dry-run/);
    // A newer version in flight is left to the gateways that have it: no refusal.
    assert.equal(
      strandedVersions(versionViews(refs(1), new Map([['place_order', 1]]), [counts('place_order', 2, 5)])),
      null,
    );
    // A removed version with nothing in flight is gone for good.
    assert.equal(strandedVersions(versionViews(refs(2), starting, [counts('place_order', 1, 0)])), null);
  });
});

describe('parseStepMap', () => {
  it('reads old=new pairs', () => {
    assert.deepEqual(parseStepMap(' a=b , c=d,'), { a: 'b', c: 'd' });
    assert.deepEqual(parseStepMap(''), {});
  });
  for (const bad of ['a', 'a=', '=b', 'a=b,a=c', 'a=c,b=c', 'a b=c']) {
    it(`refuses ${JSON.stringify(bad)}`, () => assert.throws(() => parseStepMap(bad), RangeError));
  }
});

// Keeps the status list in the cases honest.
const _statuses: SagaStatus[] = cases.map((c) => c.s.status ?? 'RUNNING');
void _statuses;
