/**
 * The fault switchboard's plan, pure: parsing and validation (its schema, then what a schema does
 * not say; a typed error naming the rule and field), the vocabulary derived from the definitions,
 * which rule fires at a point (side, target, phase, checkpoint, enabled, probability, count and
 * until limits, fired counts), and the x-fault directive's text. Injected random and clock.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  encodeDirective,
  FaultBoard,
  FaultPlanError,
  latencyOf,
  parseDirective,
  parseFaultPlan,
  sideOf,
  validateFaultPlan,
  type FaultPoint,
} from '../../src/faults/plan.js';
import { createRequire } from 'node:module';
import { faultSchemas } from '../../src/faults/schema.js';
import { callOf, callSitesOf, vocabularyOf, vocabularyView } from '../../src/faults/vocabulary.js';
import { PLACE_ORDER_DEFINITION } from '../../src/gateway/place-order.js';

const VOCABULARY = vocabularyOf([PLACE_ORDER_DEFINITION]);
// TypeBox's CommonJS build, as src/faults/schema.ts loads it: its registry knows the plan's kinds.
const { Value } = createRequire(import.meta.url)('@sinclair/typebox/value') as typeof import('@sinclair/typebox/value');

const always = () => 0;
const never = () => 0.999999;

describe('fault plan parsing', () => {
  test('YAML with defaults filled in; JSON too; fired starts at 0', () => {
    const yaml = `
rules:
  - id: slow-pay
    target: { step: charge_payment }
    kind: latency
    latency_ms: 200
    jitter_ms: 50
  - id: lost-charge
    target: { participant: payment, method: Charge }
    phase: action
    kind: after_effect
    probability: 0.5
    limit: { count: 1, until: "2026-11-28T00:00:00Z" }
    fired: 7
`;
    const rules = parseFaultPlan(yaml, VOCABULARY);
    assert.deepEqual(rules, [
      {
        id: 'slow-pay',
        enabled: true,
        target: { step: 'charge_payment' },
        kind: 'latency',
        latency_ms: 200,
        jitter_ms: 50,
        probability: 1,
        fired: 0,
      },
      {
        id: 'lost-charge',
        enabled: true,
        target: { participant: 'payment', method: 'Charge' },
        phase: 'action',
        kind: 'after_effect',
        probability: 0.5,
        limit: { count: 1, until: '2026-11-28T00:00:00.000Z' },
        fired: 0,
      },
    ]);
    assert.deepEqual(
      parseFaultPlan(JSON.stringify({ rules: [{ id: 'x', target: { step: 'create_order' }, kind: 'error' }] })).map(
        (r) => r.id,
      ),
      ['x'],
    );
    assert.deepEqual(parseFaultPlan(''), []);
    // An unquoted YAML timestamp is a time too.
    assert.equal(
      parseFaultPlan('rules: [{id: t, kind: error, target: {step: x}, limit: {until: 2026-11-28T00:00:00Z}}]')[0]?.limit
        ?.until,
      '2026-11-28T00:00:00.000Z',
    );
  });

  const bad: Array<[string, unknown, RegExp]> = [
    ['not a list', { rules: 3 }, /rules must be a list/],
    ['an unknown top-level field', { rules: [], extra: 1 }, /extra is not a field of a fault plan/],
    ['a rule that is not an object', { rules: [1] }, /^rule 1: must be an object/],
    ['no id', { rules: [{ kind: 'error' }] }, /^rule 1: id must be/],
    ['a bad id', { rules: [{ id: 'a b', kind: 'error' }] }, /^rule 1 \(a b\): id must be/],
    [
      'an unknown kind',
      { rules: [{ id: 'r', kind: 'explode' }] },
      /^rule 1 \(r\): kind must be one of latency, error, uncertain, after_effect, crash/,
    ],
    [
      'an unknown field',
      { rules: [{ id: 'r', kind: 'error', colour: 'red' }] },
      /^rule 1 \(r\): colour is not a field of a rule/,
    ],
    [
      'an unknown step',
      { rules: [{ id: 'r', kind: 'error', target: { step: 'charge' } }] },
      /^rule 1 \(r\): target\.step "charge" is not a step \(create_order, reserve_stock/,
    ],
    [
      'an unknown participant',
      { rules: [{ id: 'r', kind: 'error', target: { participant: 'shipping' } }] },
      /^rule 1 \(r\): target\.participant "shipping" is not a participant the sagas call \(order, inventory, payment\)$/,
    ],
    [
      'a method the participant has not',
      { rules: [{ id: 'r', kind: 'error', target: { participant: 'order', method: 'Charge' } }] },
      /target\.method "Charge" is not a method the sagas call on order \(CreateOrder, CancelOrder, ConfirmOrder\)/,
    ],
    [
      'an unknown target field',
      { rules: [{ id: 'r', kind: 'error', target: { host: 'x' } }] },
      /target\.host is not a field of a target/,
    ],
    [
      'a bad phase',
      { rules: [{ id: 'r', kind: 'error', phase: 'undo' }] },
      /phase must be one of action, compensation/,
    ],
    [
      'latency without latency_ms',
      { rules: [{ id: 'r', kind: 'latency' }] },
      /latency_ms is required for a latency rule/,
    ],
    [
      'a negative latency',
      { rules: [{ id: 'r', kind: 'latency', latency_ms: -1 }] },
      /latency_ms must be an integer from 0 to 600000/,
    ],
    [
      'latency_ms on an error rule',
      { rules: [{ id: 'r', kind: 'error', latency_ms: 5 }] },
      /latency_ms is only for a latency rule/,
    ],
    [
      'a crash_point on an error rule',
      { rules: [{ id: 'r', kind: 'error', crash_point: 'after_intent' }] },
      /crash_point is only for a crash rule/,
    ],
    [
      'an unknown crash_point',
      { rules: [{ id: 'r', kind: 'crash', target: { step: 'create_order' }, crash_point: 'lunch' }] },
      /crash_point must be one of before_intent/,
    ],
    [
      'a crash_point on a participant crash',
      { rules: [{ id: 'r', kind: 'crash', target: { participant: 'payment' }, crash_point: 'after_intent' }] },
      /crash_point is only for a crash of the gateway/,
    ],
    [
      'a probability over 1',
      { rules: [{ id: 'r', kind: 'error', probability: 1.5 }] },
      /probability must be a number from 0 to 1/,
    ],
    [
      'a zero count',
      { rules: [{ id: 'r', kind: 'error', limit: { count: 0 } }] },
      /limit\.count must be an integer >= 1/,
    ],
    [
      'a bad until',
      { rules: [{ id: 'r', kind: 'error', limit: { until: 'tomorrow' } }] },
      /limit\.until must be an ISO 8601 time/,
    ],
    ['enabled not a boolean', { rules: [{ id: 'r', kind: 'error', enabled: 'yes' }] }, /enabled must be true or false/],
    [
      'a bare list with a bad rule',
      [{ id: 'r', kind: 'explode' }],
      /^rule 1 \(r\): kind must be one of latency, error, uncertain, after_effect, crash$/,
    ],
    ['no rules', {}, /^a fault plan is \{rules: \[\.\.\.\]\}: rules must be a list$/],
    ['not an object', 'rules', /^a fault plan is \{rules: \[\.\.\.\]\}: rules must be a list$/],
    [
      'more than 200 rules',
      { rules: Array.from({ length: 201 }, (_, i) => ({ id: `r${i}`, kind: 'error' })) },
      /^a fault plan has at most 200 rules, not 201$/,
    ],
    [
      "the second rule's mistake",
      {
        rules: [
          { id: 'a', kind: 'error' },
          { id: 'b', kind: 'error', phase: 'later' },
        ],
      },
      /^rule 2 \(b\): phase must be one of action, compensation \(or unset: both\)$/,
    ],
    [
      'a method no saga calls',
      { rules: [{ id: 'r', kind: 'error', target: { method: 'Ship' } }] },
      /^rule 1 \(r\): target\.method "Ship" is not a method the sagas call \(CreateOrder, CancelOrder, Reserve, Release, Charge, Refund, ConfirmOrder, Commit\)$/,
    ],
    [
      'a method name that is not one',
      { rules: [{ id: 'r', kind: 'error', target: { method: 'pay.now' } }] },
      /^rule 1 \(r\): target\.method must be a gRPC method name \(e\.g\. Charge\)$/,
    ],
    [
      'a latency that is not an integer',
      { rules: [{ id: 'r', kind: 'latency', latency_ms: 1.5 }] },
      /^rule 1 \(r\): latency_ms must be an integer from 0 to 600000/,
    ],
    [
      'jitter_ms on an error rule',
      { rules: [{ id: 'r', kind: 'error', jitter_ms: 5 }] },
      /^rule 1 \(r\): jitter_ms is only for a latency rule$/,
    ],
    [
      'an unknown limit field',
      { rules: [{ id: 'r', kind: 'error', limit: { times: 2 } }] },
      /^rule 1 \(r\): limit\.times is not a field of a limit \(count, until\)$/,
    ],
    [
      'a time that does not exist',
      { rules: [{ id: 'r', kind: 'error', limit: { until: '2026-13-45T00:00:00Z' } }] },
      /^rule 1 \(r\): limit\.until must be an ISO 8601 time/,
    ],
    [
      'a fired count that is not one',
      { rules: [{ id: 'r', kind: 'error', fired: 'many' }] },
      /^rule 1 \(r\): fired must be an integer >= 0/,
    ],
    [
      'a duplicate id',
      {
        rules: [
          { id: 'r', kind: 'error' },
          { id: 'r', kind: 'uncertain' },
        ],
      },
      /^rule 2 \(r\): id is used by an earlier rule/,
    ],
  ];
  for (const [name, plan, message] of bad) {
    test(`refused: ${name}`, () => {
      assert.throws(
        () => validateFaultPlan(plan, VOCABULARY),
        (err: unknown) =>
          err instanceof FaultPlanError && err.code === 'invalid_fault_plan' && message.test(err.message),
      );
    });
  }

  test('text that is not YAML is invalid_fault_plan', () => {
    assert.throws(
      () => parseFaultPlan('rules: [ {'),
      (err: unknown) => err instanceof FaultPlanError && /not YAML or JSON/.test(err.message),
    );
  });
});

describe('the vocabulary, derived from the definitions', () => {
  test("place-order's: its steps, the participants they call, each method once", () => {
    assert.deepEqual(VOCABULARY, {
      steps: ['create_order', 'reserve_stock', 'charge_payment', 'confirm_order', 'commit_stock'],
      participants: ['order', 'inventory', 'payment'],
      calls: [
        { participant: 'order', method: 'CreateOrder' },
        { participant: 'order', method: 'CancelOrder' },
        { participant: 'inventory', method: 'Reserve' },
        { participant: 'inventory', method: 'Release' },
        { participant: 'payment', method: 'Charge' },
        { participant: 'payment', method: 'Refund' },
        { participant: 'order', method: 'ConfirmOrder' },
        { participant: 'inventory', method: 'Commit' },
      ],
    });
  });

  test("another definition's steps and calls are named as soon as it is there; a step that says nothing, no call", () => {
    const shipping = {
      steps: [{ name: 'ship', calls: { action: { participant: 'shipping', method: 'Ship' } } }, { name: 'note' }],
    };
    const both = vocabularyOf([PLACE_ORDER_DEFINITION, shipping]);
    assert.deepEqual(both.steps.slice(-2), ['ship', 'note']);
    assert.deepEqual(both.participants, ['order', 'inventory', 'payment', 'shipping']);
    assert.deepEqual(both.calls.at(-1), { participant: 'shipping', method: 'Ship' });
    const plan = { rules: [{ id: 's', kind: 'error', target: { participant: 'shipping', method: 'Ship' } }] };
    assert.equal(validateFaultPlan(plan, both)[0]?.id, 's');
    assert.throws(() => validateFaultPlan(plan, VOCABULARY), /target\.participant "shipping" is not a participant/);
  });

  test("callOf and callSitesOf: each phase's call as its step's definition says (a pivot's compensation: its fence's)", () => {
    const step = (name: string) => PLACE_ORDER_DEFINITION.steps.find((s) => s.name === name) ?? assert.fail(name);
    assert.deepEqual(callOf(step('confirm_order'), 'action'), { participant: 'order', method: 'ConfirmOrder' });
    assert.deepEqual(callOf(step('confirm_order'), 'compensation'), { participant: 'order', method: 'CancelOrder' });
    assert.equal(callOf(step('commit_stock'), 'compensation'), undefined);
    assert.equal(callOf({}, 'action'), undefined);
    const sites = callSitesOf([PLACE_ORDER_DEFINITION]);
    assert.equal(sites.length, 9);
    assert.deepEqual(sites[0], { step: 'create_order', phase: 'action', participant: 'order', method: 'CreateOrder' });
    assert.deepEqual(sites.at(-1), {
      step: 'commit_stock',
      phase: 'action',
      participant: 'inventory',
      method: 'Commit',
    });
  });

  test("the view GET /api/faults answers: the format's words and the definitions', of its schema", () => {
    const view = vocabularyView(VOCABULARY);
    assert.deepEqual(view.kinds, ['latency', 'error', 'uncertain', 'after_effect', 'crash']);
    assert.deepEqual(view.phases, ['action', 'compensation']);
    assert.deepEqual(view.crash_points, ['before_intent', 'after_intent', 'before_outcome', 'after_outcome']);
    assert.deepEqual(view.participants, ['order', 'inventory', 'payment']);
    assert.equal(view.steps.length, 5);
    assert.ok(Value.Check(faultSchemas().vocabulary, view));
  });
});

describe('the schema and the rules held', () => {
  test('a rule the board holds is of the schema the admin API documents, and a plan of held rules reads back the same', () => {
    const rules = validateFaultPlan(
      {
        rules: [
          { id: 'a', kind: 'latency', latency_ms: 5, jitter_ms: 1, target: { step: 'charge_payment' } },
          {
            id: 'b',
            kind: 'crash',
            crash_point: 'after_intent',
            phase: 'compensation',
            target: { step: 'reserve_stock' },
          },
          { id: 'c', kind: 'after_effect', target: { participant: 'payment', method: 'Charge' }, probability: 0.5 },
          { id: 'd', kind: 'error', enabled: false, limit: { count: 2, until: '2026-11-28T00:00:00+01:00' } },
        ],
      },
      VOCABULARY,
    );
    for (const r of rules) assert.ok(Value.Check(faultSchemas().rule, r), JSON.stringify(r));
    assert.equal(rules[3]?.limit?.until, '2026-11-27T23:00:00.000Z');
    // The console PUTs back what GET answered (fired included: ignored, counts restart at 0).
    assert.deepEqual(validateFaultPlan({ rules: rules.map((r) => ({ ...r, fired: 3 })) }, VOCABULARY), rules);
  });
});

describe('which side a rule acts on', () => {
  const cases: Array<[string, Parameters<typeof sideOf>[0], 'gateway' | 'participant']> = [
    ['a step target', { kind: 'error', target: { step: 'reserve_stock' } }, 'gateway'],
    ['no target', { kind: 'latency', target: {} }, 'gateway'],
    ['a participant', { kind: 'error', target: { participant: 'payment' } }, 'participant'],
    ['a method', { kind: 'uncertain', target: { method: 'Charge' } }, 'participant'],
    ['after_effect on a step', { kind: 'after_effect', target: { step: 'charge_payment' } }, 'participant'],
  ];
  for (const [name, rule, side] of cases) test(`${name}: ${side}`, () => assert.equal(sideOf(rule), side));
});

describe('FaultBoard.match', () => {
  const plan = (rules: unknown[]) => validateFaultPlan({ rules });
  const at = (over: Partial<FaultPoint> = {}): FaultPoint => ({
    side: 'gateway',
    step: 'charge_payment',
    participant: 'payment',
    method: 'Charge',
    phase: 'action',
    ...over,
  });

  const table: Array<{
    name: string;
    rule: Record<string, unknown>;
    point: Partial<FaultPoint>;
    fires: boolean;
    random?: () => number;
  }> = [
    { name: 'the step targeted', rule: { kind: 'error', target: { step: 'charge_payment' } }, point: {}, fires: true },
    { name: 'another step', rule: { kind: 'error', target: { step: 'reserve_stock' } }, point: {}, fires: false },
    {
      name: 'a disabled rule',
      rule: { kind: 'error', enabled: false, target: { step: 'charge_payment' } },
      point: {},
      fires: false,
    },
    {
      name: 'the other phase',
      rule: { kind: 'error', phase: 'compensation', target: { step: 'charge_payment' } },
      point: {},
      fires: false,
    },
    {
      name: 'its phase',
      rule: { kind: 'error', phase: 'compensation', target: { step: 'charge_payment' } },
      point: { phase: 'compensation' },
      fires: true,
    },
    {
      name: 'a participant rule asked on the gateway side',
      rule: { kind: 'error', target: { participant: 'payment' } },
      point: {},
      fires: false,
    },
    {
      name: 'a participant rule on its side',
      rule: { kind: 'error', target: { participant: 'payment' } },
      point: { side: 'participant' },
      fires: true,
    },
    {
      name: 'a method of another participant',
      rule: { kind: 'uncertain', target: { participant: 'order', method: 'CreateOrder' } },
      point: { side: 'participant' },
      fires: false,
    },
    {
      name: 'probability 0',
      rule: { kind: 'error', probability: 0, target: { step: 'charge_payment' } },
      point: {},
      fires: false,
    },
    {
      name: 'probability 0.5, draw 0.4',
      rule: { kind: 'error', probability: 0.5, target: { step: 'charge_payment' } },
      point: {},
      fires: true,
      random: () => 0.4,
    },
    {
      name: 'probability 0.5, draw 0.6',
      rule: { kind: 'error', probability: 0.5, target: { step: 'charge_payment' } },
      point: {},
      fires: false,
      random: () => 0.6,
    },
    {
      name: 'a gateway crash around the call',
      rule: { kind: 'crash', target: { step: 'charge_payment' } },
      point: {},
      fires: false,
    },
    {
      name: 'a gateway crash at its default checkpoint',
      rule: { kind: 'crash', target: { step: 'charge_payment' } },
      point: { checkpoint: 'before_outcome' },
      fires: true,
    },
    {
      name: 'a gateway crash at another checkpoint',
      rule: { kind: 'crash', crash_point: 'after_intent', target: { step: 'charge_payment' } },
      point: { checkpoint: 'before_outcome' },
      fires: false,
    },
    {
      name: 'an error rule at a checkpoint',
      rule: { kind: 'error', target: { step: 'charge_payment' } },
      point: { checkpoint: 'after_intent' },
      fires: false,
    },
    {
      name: 'a participant crash',
      rule: { kind: 'crash', target: { participant: 'payment', method: 'Charge' } },
      point: { side: 'participant' },
      fires: true,
    },
  ];
  for (const c of table) {
    test(`${c.fires ? 'fires' : 'does not fire'}: ${c.name}`, () => {
      const board = new FaultBoard(plan([{ id: 'r', ...c.rule }]));
      const got = board.match(at(c.point), c.random ?? always);
      assert.equal(got?.id, c.fires ? 'r' : undefined);
      assert.equal(board.list()[0]?.fired, c.fires ? 1 : 0);
    });
  }

  test('the first rule that fires, in plan order; fired counts it only', () => {
    const board = new FaultBoard(
      plan([
        { id: 'a', kind: 'error', probability: 0.1, target: { step: 'charge_payment' } },
        { id: 'b', kind: 'uncertain', target: { step: 'charge_payment' } },
        { id: 'c', kind: 'latency', latency_ms: 1, target: { step: 'charge_payment' } },
      ]),
    );
    assert.equal(board.match(at(), () => 0.5)?.id, 'b');
    assert.equal(board.match(at(), always)?.id, 'a');
    assert.deepEqual(
      board.list().map((r) => r.fired),
      [1, 1, 0],
    );
  });

  test('limit.count: fires count times, then never', () => {
    const board = new FaultBoard(
      plan([{ id: 'r', kind: 'error', target: { step: 'charge_payment' }, limit: { count: 2 } }]),
    );
    assert.deepEqual(
      [1, 2, 3, 4].map(() => board.match(at(), always)?.id),
      ['r', 'r', undefined, undefined],
    );
    assert.equal(board.list()[0]?.fired, 2);
  });

  test('limit.until: fires before the time, not at or after it (the injected clock)', () => {
    let now = Date.parse('2026-11-27T22:00:00Z');
    const board = new FaultBoard(
      plan([{ id: 'r', kind: 'error', target: { step: 'charge_payment' }, limit: { until: '2026-11-27T22:00:10Z' } }]),
      { now: () => now },
    );
    assert.equal(board.match(at(), always)?.id, 'r');
    now += 10_000;
    assert.equal(board.match(at(), always), undefined);
  });

  test('probability 1 fires whatever the draw', () => {
    const board = new FaultBoard(plan([{ id: 'r', kind: 'error', target: { step: 'charge_payment' } }]));
    assert.equal(board.match(at(), never)?.id, 'r');
  });

  test('replace validates (the old plan stays on a bad one) and restarts counts; setEnabled', () => {
    const board = new FaultBoard(plan([{ id: 'r', kind: 'error', target: { step: 'charge_payment' } }]));
    board.match(at(), always);
    assert.throws(
      () => board.replace({ rules: [{ id: 'x', kind: 'error', target: { step: 'nope' } }] }, VOCABULARY),
      FaultPlanError,
    );
    assert.throws(() => board.replace({ rules: [{ id: 'x', kind: 'explode' }] }), FaultPlanError);
    assert.equal(board.list()[0]?.fired, 1);
    const rules = board.replace({
      rules: [
        { id: 'r', kind: 'error', target: { step: 'charge_payment' }, fired: 9 },
        { id: 's', kind: 'uncertain', target: { step: 'create_order' } },
      ],
    });
    assert.deepEqual(
      rules.map((r) => [r.id, r.fired]),
      [
        ['r', 0],
        ['s', 0],
      ],
    );
    assert.equal(board.setEnabled('r', false)?.enabled, false);
    assert.equal(board.match(at(), always), undefined);
    assert.equal(board.setEnabled('nope', true), undefined);
    // list() is a copy: changing it changes nothing on the board.
    const copy = board.list();
    (copy[1] as { fired: number }).fired = 99;
    assert.equal(board.list()[1]?.fired, 0);
  });

  test('latencyOf adds up to jitter_ms', () => {
    assert.equal(
      latencyOf({ latency_ms: 100, jitter_ms: 50 }, () => 0),
      100,
    );
    assert.equal(
      latencyOf({ latency_ms: 100, jitter_ms: 50 }, () => 0.5),
      125,
    );
    assert.equal(
      latencyOf({ latency_ms: 100 }, () => 0.9),
      100,
    );
  });
});

describe('the x-fault directive', () => {
  test('round trip, and what is not a directive', () => {
    assert.equal(
      encodeDirective({ kind: 'latency', latency_ms: 250, rule: 'slow' }),
      'latency;latency_ms=250;rule=slow',
    );
    assert.deepEqual(parseDirective('latency;latency_ms=250;rule=slow'), {
      kind: 'latency',
      latency_ms: 250,
      rule: 'slow',
    });
    assert.deepEqual(parseDirective('after_effect;rule=lost'), { kind: 'after_effect', rule: 'lost' });
    assert.deepEqual(parseDirective('error'), { kind: 'error' });
    for (const bad of [
      '',
      'explode',
      'latency',
      'latency;latency_ms=abc',
      'error;colour=red',
      'error;rule=a b',
      'latency;latency_ms=9999999',
    ])
      assert.equal(parseDirective(bad), undefined, bad);
  });
});
