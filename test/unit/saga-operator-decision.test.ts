/** The pure decision behind operator actions, table-tested like the transitions: every action × every state. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SagaDefinition, StepOutcome } from '../../src/saga/definition.js';
import type { SagaEvent, SagaRecord, SagaStatus } from '../../src/saga/model.js';
import {
  allowedActions,
  decideAction,
  OPERATOR_ACTIONS,
  priorActions,
  type ActionDecision,
  type OperatorActionData,
  type OperatorActionKind,
  type OperatorActionRequest,
} from '../../src/saga/operator.js';
import { sagaRecord } from '../helpers/saga-record.js';

const ok = async (): Promise<StepOutcome> => ({ ok: true });
const step = (name: string, kind: 'compensatable' | 'pivot' | 'retriable', undo = true) => ({
  name,
  kind,
  action: ok,
  compensate: undo ? ok : undefined,
});
const fence = async () => ({ fenced: true as const });

/** a, b, c compensatable; d the pivot (index 3), with a fence, as place-order's; e retriable. */
const def: SagaDefinition<unknown> = {
  name: 'table',
  version: 1,
  steps: [
    step('a', 'compensatable'),
    step('b', 'compensatable'),
    step('c', 'compensatable'),
    { ...step('d', 'pivot', false), fence },
    step('e', 'retriable', false),
  ],
};
/** The same with a pivot that has no fence: only its own retry can settle it. */
const unfenced: SagaDefinition<unknown> = {
  ...def,
  steps: def.steps.map((s) => (s.name === 'd' ? step('d', 'pivot', false) : s)),
};

function saga(status: SagaStatus, over: Partial<SagaRecord> = {}): SagaRecord {
  return sagaRecord({ id: 's-1', definition: 'table', status, ...over });
}

const DECLINED = { step: 'c', code: 'declined', message: 'no' };
const UNAVAILABLE = { step: 'd', code: 'participant_unavailable', message: 'no answer' };

/** Every state a saga can be found in, by name. */
const STATES: Record<string, SagaRecord> = {
  'RUNNING, first step not started': saga('RUNNING'),
  'RUNNING before the pivot, step b retrying': saga('RUNNING', {
    stepIndex: 1,
    attempt: 3,
    leaseOwner: 'gw-a',
    leaseExpiresAt: 9,
  }),
  'RUNNING at the pivot, in flight': saga('RUNNING', { stepIndex: 3, attempt: 1, leaseOwner: 'gw-a' }),
  'RUNNING after the pivot': saga('RUNNING', { stepIndex: 4, attempt: 5, leaseOwner: 'gw-a' }),
  COMPENSATING: saga('COMPENSATING', { stepIndex: 2, compIndex: 1, attempt: 1, failure: DECLINED, leaseOwner: 'gw-a' }),
  COMPLETED: saga('COMPLETED', { stepIndex: 5 }),
  COMPENSATED: saga('COMPENSATED', { stepIndex: 2, failure: DECLINED }),
  'PARKED in compensation': saga('PARKED', { stepIndex: 2, compIndex: 1, attempt: 3, failure: DECLINED }),
  'PARKED fencing its pivot': saga('PARKED', { stepIndex: 3, compIndex: 3, attempt: 10, failure: UNAVAILABLE }),
  'PARKED after the pivot': saga('PARKED', {
    stepIndex: 4,
    attempt: 7,
    failure: { step: 'e', code: 'forward_attempts_exhausted', message: 'x' },
  }),
  'PARKED before the pivot, not compensating (no path leads there)': saga('PARKED', { stepIndex: 1 }),
  RESOLVED: saga('RESOLVED', { stepIndex: 2, compIndex: 1, failure: DECLINED }),
};

/** Refused as not allowed, or what is written: the patch, the row it expects, the event's step, and whether the saga is driven on. */
type Expected =
  | 'action_not_allowed'
  | 'pivot_uncertain'
  | { patch: Record<string, unknown>; expect: Record<string, unknown>; step: string | null; drive: boolean };

const NOT = 'action_not_allowed' as const;
const OPERATOR_FAILURE = (s: string) => ({
  step: s,
  code: 'operator_compensate',
  message: 'compensation asked by alice',
});

const TABLE: Record<string, Record<OperatorActionKind, Expected>> = {
  'RUNNING, first step not started': {
    retry: NOT,
    compensate: {
      patch: { status: 'COMPENSATING', compIndex: 0, attempt: 0, failure: OPERATOR_FAILURE('a') },
      expect: { status: 'RUNNING', stepIndex: 0 },
      step: 'a',
      drive: true,
    },
    resolve: NOT,
  },
  'RUNNING before the pivot, step b retrying': {
    retry: NOT,
    compensate: {
      patch: { status: 'COMPENSATING', compIndex: 1, attempt: 0, failure: OPERATOR_FAILURE('b') },
      expect: { status: 'RUNNING', stepIndex: 1 },
      step: 'b',
      drive: true,
    },
    resolve: NOT,
  },
  // The engine is settling the pivot (retrying it, or fencing it): an operator waits for it.
  'RUNNING at the pivot, in flight': { retry: NOT, compensate: 'pivot_uncertain', resolve: NOT },
  'RUNNING after the pivot': { retry: NOT, compensate: NOT, resolve: NOT },
  COMPENSATING: { retry: NOT, compensate: NOT, resolve: NOT },
  COMPLETED: { retry: NOT, compensate: NOT, resolve: NOT },
  COMPENSATED: { retry: NOT, compensate: NOT, resolve: NOT },
  'PARKED in compensation': {
    retry: { patch: { status: 'COMPENSATING', attempt: 0 }, expect: { status: 'PARKED' }, step: 'b', drive: true },
    compensate: {
      patch: { status: 'COMPENSATING', compIndex: 1, attempt: 0, failure: DECLINED },
      expect: { status: 'PARKED' },
      step: 'b',
      drive: true,
    },
    resolve: {
      patch: { status: 'RESOLVED', leaseOwner: null, leaseExpiresAt: 0 },
      expect: { status: 'PARKED' },
      step: 'b',
      drive: false,
    },
  },
  // Nothing was undone yet: retry runs the pivot again (fresh budget), compensate its fence first.
  'PARKED fencing its pivot': {
    retry: {
      patch: { status: 'RUNNING', stepIndex: 3, compIndex: -1, attempt: 0, failure: null },
      expect: { status: 'PARKED' },
      step: 'd',
      drive: true,
    },
    compensate: {
      patch: { status: 'COMPENSATING', compIndex: 3, attempt: 0, failure: UNAVAILABLE },
      expect: { status: 'PARKED' },
      step: 'd',
      drive: true,
    },
    resolve: {
      patch: { status: 'RESOLVED', leaseOwner: null, leaseExpiresAt: 0 },
      expect: { status: 'PARKED' },
      step: 'd',
      drive: false,
    },
  },
  'PARKED after the pivot': {
    retry: {
      patch: { status: 'RUNNING', attempt: 0, failure: null },
      expect: { status: 'PARKED' },
      step: 'e',
      drive: true,
    },
    compensate: NOT,
    resolve: {
      patch: { status: 'RESOLVED', leaseOwner: null, leaseExpiresAt: 0 },
      expect: { status: 'PARKED' },
      step: 'e',
      drive: false,
    },
  },
  'PARKED before the pivot, not compensating (no path leads there)': {
    retry: NOT,
    compensate: NOT,
    resolve: {
      patch: { status: 'RESOLVED', leaseOwner: null, leaseExpiresAt: 0 },
      expect: { status: 'PARKED' },
      step: 'b',
      drive: false,
    },
  },
  RESOLVED: { retry: NOT, compensate: NOT, resolve: NOT },
};

const request = (action: OperatorActionKind, over: Partial<OperatorActionRequest> = {}): OperatorActionRequest => ({
  sagaId: 's-1',
  action,
  actionId: 'act-1',
  actor: 'alice',
  note: 'a note',
  ...over,
});

test('the table covers every state and every action', () => {
  assert.deepEqual(Object.keys(TABLE).sort(), Object.keys(STATES).sort());
  for (const row of Object.values(TABLE)) assert.deepEqual(Object.keys(row).sort(), [...OPERATOR_ACTIONS].sort());
});

for (const [state, s] of Object.entries(STATES)) {
  for (const action of OPERATOR_ACTIONS) {
    const expected = (TABLE[state] as Record<OperatorActionKind, Expected>)[action];
    const verdict = typeof expected === 'string' ? `refused (${expected})` : 'allowed';
    test(`${action} on ${state}: ${verdict}`, () => {
      const before = structuredClone(s);
      const d = decideAction(def, s, request(action), []);
      assert.deepEqual(s, before, 'the decision does not touch the saga');
      if (typeof expected === 'string') {
        assert.equal(d.kind, 'refused');
        assert.equal(d.code, expected);
        return;
      }
      assert.equal(d.kind, 'apply', JSON.stringify(d));
      const a = d;
      assert.deepEqual(a.transition.patch, expected.patch);
      assert.deepEqual(a.expect, expected.expect);
      assert.equal(a.drive, expected.drive);
      assert.deepEqual(a.transition.events, [
        {
          type: 'OPERATOR_ACTION',
          step: expected.step,
          data: { action, action_id: 'act-1', actor: 'alice', note: 'a note' },
        },
      ]);
    });
  }
}

test('a pivot without a fence: parked there, only retry settles it (compensate is pivot_uncertain)', () => {
  const at = saga('PARKED', {
    stepIndex: 3,
    attempt: 50,
    failure: { step: 'd', code: 'pivot_uncertain', message: 'x' },
  });
  assert.equal(code(decideAction(unfenced, at, request('compensate'), [])), 'pivot_uncertain');
  const retry = decideAction(unfenced, at, request('retry'), []);
  assert.equal(retry.kind, 'apply');
  assert.deepEqual(retry.transition.patch, {
    status: 'RUNNING',
    attempt: 0,
    failure: null,
  });
  assert.equal(
    code(decideAction(unfenced, saga('RUNNING', { stepIndex: 3, attempt: 1 }), request('compensate'), [])),
    'pivot_uncertain',
  );
  // With a fence, a saga parked at the pivot before its fence ran (a raised refusal of an older rule) is fenced first.
  const fencedAt = decideAction(def, at, request('compensate'), []);
  assert.deepEqual((fencedAt as Extract<ActionDecision, { kind: 'apply' }>).transition.patch, {
    status: 'COMPENSATING',
    compIndex: 3,
    attempt: 0,
    failure: at.failure,
  });
});

test('a saga that does not exist is saga_not_found, whatever the action', () => {
  for (const action of OPERATOR_ACTIONS) {
    const d = decideAction(def, undefined, request(action), []);
    assert.deepEqual([d.kind, d.kind === 'refused' ? d.code : undefined], ['refused', 'saga_not_found']);
  }
});

const parked = STATES['PARKED in compensation'] as SagaRecord;
const code = (d: ActionDecision) => (d.kind === 'refused' ? d.code : d.kind);

test('resolve needs a note: non-empty after trim, at most 1000 characters (trimmed); any note is at most 1000', () => {
  for (const note of [undefined, '', '   ', '\n\t '])
    assert.equal(
      code(decideAction(def, parked, request('resolve', { note }), [])),
      'note_required',
      JSON.stringify(note),
    );
  assert.equal(code(decideAction(def, parked, request('resolve', { note: 'x'.repeat(1001) }), [])), 'note_required');
  const d = decideAction(def, parked, request('resolve', { note: `  ${'x'.repeat(1000)}  ` }), []);
  assert.equal(d.kind, 'apply');
  assert.deepEqual(d.transition.events[0]?.data, {
    action: 'resolve',
    action_id: 'act-1',
    actor: 'alice',
    note: 'x'.repeat(1000),
  });
  // Retry and compensate take an optional note, kept trimmed, null when blank.
  const retry = decideAction(def, parked, request('retry', { note: '  ' }), []) as Extract<
    ActionDecision,
    { kind: 'apply' }
  >;
  assert.equal((retry.transition.events[0]?.data as { note: unknown }).note, null);
  assert.equal(code(decideAction(def, parked, request('retry', { note: 'y'.repeat(1001) }), [])), 'note_required');
});

test('an action id already used: a replay for the same action and note (whatever the state now), else action_id_reused', () => {
  const prior: OperatorActionData[] = [{ action: 'retry', action_id: 'act-1', actor: 'alice', note: null }];
  const completed = STATES.COMPLETED as SagaRecord;
  assert.equal(
    code(decideAction(def, completed, request('retry', { note: undefined }), prior)),
    'replayed',
    'the saga went on since: still a replay',
  );
  assert.equal(
    code(decideAction(def, completed, request('retry', { note: '  ' }), prior)),
    'replayed',
    'a blank note is no note',
  );
  assert.equal(
    code(decideAction(def, completed, request('retry', { note: undefined, actor: 'bob' }), prior)),
    'replayed',
    'the id decides, not the actor',
  );
  assert.equal(code(decideAction(def, completed, request('retry', { note: 'now a note' }), prior)), 'action_id_reused');
  assert.equal(code(decideAction(def, completed, request('resolve', { note: 'n' }), prior)), 'action_id_reused');
  assert.equal(
    code(decideAction(def, completed, request('compensate', { note: undefined }), prior)),
    'action_id_reused',
  );
  assert.equal(
    code(decideAction(def, parked, request('retry', { actionId: 'act-2' }), prior)),
    'apply',
    'another id is another action',
  );
  // The id check comes before the note check: a reused id is named as such.
  const resolved: OperatorActionData[] = [{ action: 'resolve', action_id: 'act-1', actor: 'alice', note: 'fixed' }];
  assert.equal(
    code(decideAction(def, STATES.RESOLVED as SagaRecord, request('resolve', { note: ' fixed ' }), resolved)),
    'replayed',
  );
  assert.equal(
    code(decideAction(def, STATES.RESOLVED as SagaRecord, request('resolve', { note: undefined }), resolved)),
    'action_id_reused',
  );
});

test('earlier actions are read from the saga’s OPERATOR_ACTION events only', () => {
  const ev = (seq: number, type: SagaEvent['type'], data: SagaEvent['data']): SagaEvent => ({
    sagaId: 's-1',
    seq,
    type,
    step: null,
    attempt: null,
    error: null,
    retryable: null,
    data,
    traceId: null,
    spanId: null,
    at: 0,
  });
  const events = [
    ev(1, 'SAGA_STARTED', { action_id: 'not-an-action', action: 'retry' }),
    ev(2, 'OPERATOR_ACTION', { action: 'retry', action_id: 'a1', actor: 'x', note: null }),
    ev(3, 'SAGA_PARKED', null),
    ev(4, 'OPERATOR_ACTION', { action: 'resolve', action_id: 'a2', actor: 'y', note: 'n' }),
  ];
  assert.deepEqual(
    priorActions(events).map((a) => a.action_id),
    ['a1', 'a2'],
  );
});

test('retry and compensate need the saga’s definition; resolve does not', () => {
  assert.equal(code(decideAction(undefined, parked, request('retry'), [])), 'action_not_allowed');
  assert.equal(
    code(
      decideAction(
        undefined,
        STATES['RUNNING before the pivot, step b retrying'] as SagaRecord,
        request('compensate'),
        [],
      ),
    ),
    'action_not_allowed',
  );
  const d = decideAction(undefined, parked, request('resolve'), []);
  assert.equal(d.kind, 'apply');
  assert.equal(d.transition.events[0]?.step, null);
});

test('without a pivot a running saga can be compensated at any step; an unknown action is not allowed', () => {
  const noPivot: SagaDefinition<unknown> = {
    name: 'table',
    version: 1,
    steps: [step('a', 'compensatable'), step('b', 'compensatable')],
  };
  assert.equal(code(decideAction(noPivot, saga('RUNNING', { stepIndex: 1 }), request('compensate'), [])), 'apply');
  assert.equal(
    code(decideAction(noPivot, saga('RUNNING', { stepIndex: 2 }), request('compensate'), [])),
    'action_not_allowed',
    'every step done: it completes',
  );
  assert.equal(code(decideAction(def, parked, request('restart' as OperatorActionKind), [])), 'action_not_allowed');
});

/** What the admin API offers per state: the actions the table applies, written out. */
const ALLOWED: Record<string, OperatorActionKind[]> = {
  'RUNNING, first step not started': ['compensate'],
  'RUNNING before the pivot, step b retrying': ['compensate'],
  'RUNNING at the pivot, in flight': [],
  'RUNNING after the pivot': [],
  COMPENSATING: [],
  COMPLETED: [],
  COMPENSATED: [],
  'PARKED in compensation': ['retry', 'compensate', 'resolve'],
  'PARKED fencing its pivot': ['retry', 'compensate', 'resolve'],
  'PARKED after the pivot': ['retry', 'resolve'],
  'PARKED before the pivot, not compensating (no path leads there)': ['resolve'],
  RESOLVED: [],
};

for (const [state, s] of Object.entries(STATES)) {
  test(`allowed on ${state}: ${(ALLOWED[state] ?? []).join(', ') || 'nothing'}`, () => {
    const before = structuredClone(s);
    const allowed = allowedActions(def, s);
    assert.deepEqual(s, before, 'reading what is allowed does not touch the saga');
    assert.deepEqual(allowed, ALLOWED[state]);
    // The same rules that refuse an action: what is offered is what the table applies.
    const row = TABLE[state] as Record<OperatorActionKind, Expected>;
    assert.deepEqual(
      allowed,
      OPERATOR_ACTIONS.filter((a) => typeof row[a] !== 'string'),
    );
  });
}

test('allowed: a fence-less pivot parked offers retry, not compensate; an unknown definition only resolve', () => {
  const at = saga('PARKED', {
    stepIndex: 3,
    attempt: 50,
    failure: { step: 'd', code: 'pivot_uncertain', message: 'x' },
  });
  assert.deepEqual(allowedActions(unfenced, at), ['retry', 'resolve']);
  assert.deepEqual(allowedActions(unfenced, saga('RUNNING', { stepIndex: 3, attempt: 1 })), []);
  assert.deepEqual(allowedActions(undefined, parked), ['resolve']);
  assert.deepEqual(allowedActions(undefined, STATES['RUNNING before the pivot, step b retrying'] as SagaRecord), []);
});
