/**
 * The saga's rules, model-checked (issue 21 item 3): every sequence of attempt outcomes, crashes,
 * deadlines, late deliveries and operator actions for the place-order definition, within small
 * budgets, against a model of the three participants, with DESIGN §6 checked on the model's books
 * at every state (test/helpers/saga-explorer.ts). Prints the state count; on a violation prints
 * the shortest counterexample per invariant (and per minimal set of fault kinds) and fails.
 * SAGA_MODEL_CHECK_REPORT=<file> also writes the report to a file.
 */
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { test } from 'node:test';
import { placeOrderSaga } from '../../src/gateway/place-order.js';
import type { Participants } from '../../src/gateway/participants.js';
import {
  DEFAULT_POLICIES,
  pivotIndex,
  type EnginePolicies,
  type SagaDefinition,
  type StepDefinition,
} from '../../src/saga/definition.js';
import { explore, formatReport, hasFence, type ExploreOptions } from '../helpers/saga-explorer.js';
import { PLACE_ORDER_MODEL, type Scenario } from '../helpers/saga-model.js';

/** The definition is only read (names, kinds, which functions a step has): its actions are never called. */
function unreachable(): never {
  throw new Error('the model checker never calls a participant');
}
const stubParticipants = new Proxy({} as Participants, { get: unreachable });

/**
 * The bounds: attempt budgets of 2 and, per path, one crash, one operator action and one late
 * delivery; seconds in `npm test`. A deeper run, by hand: SAGA_MODEL_CHECK_BOUNDS="attempts=3,
 * crashes=2,operator=2,delayed=1" (any subset).
 */
function boundsFromEnv(): { attempts: number; crashes: number; operatorActions: number; delayed: number } {
  const b = { attempts: 2, crashes: 1, operatorActions: 1, delayed: 1 };
  for (const part of (process.env.SAGA_MODEL_CHECK_BOUNDS ?? '').split(',').filter(Boolean)) {
    const [name, value] = part.split('=').map((x) => x.trim());
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) throw new Error(`SAGA_MODEL_CHECK_BOUNDS: bad value in "${part}"`);
    if (name === 'attempts' && n >= 1) b.attempts = n;
    else if (name === 'crashes') b.crashes = n;
    else if (name === 'operator') b.operatorActions = n;
    else if (name === 'delayed') b.delayed = n;
    else throw new Error(`SAGA_MODEL_CHECK_BOUNDS: unknown bound in "${part}" (attempts, crashes, operator, delayed)`);
  }
  return b;
}

const { attempts, ...bounds } = boundsFromEnv();
const budget = { maxAttempts: attempts, initialBackoffMs: 100, maxBackoffMs: 1_000, multiplier: 2 };
const policies: EnginePolicies = { ...DEFAULT_POLICIES, action: budget, compensation: budget, forward: budget };

const base = { orderId: 'o-1', customerId: 'c-1', productId: 'p-1', quantity: 1, unitPriceCents: 500 };
const scenarios: Scenario[] = [
  { name: 'in stock, card accepted', ...base, initialStock: 1, chargeLimitCents: 50_000 },
  { name: 'out of stock', ...base, initialStock: 0, chargeLimitCents: 50_000 },
  { name: 'card declined', ...base, initialStock: 1, chargeLimitCents: 100 },
];

function report(text: string): void {
  console.log(text);
  const file = process.env.SAGA_MODEL_CHECK_REPORT;
  if (file) appendFileSync(file, `${text}\n\n`);
}

function check(def: SagaDefinition<unknown>, only = scenarios): void {
  const o: ExploreOptions = { def, policies, scenarios: only, bounds };
  const r = explore(o);
  report(formatReport(r, o));
  // Not vacuous: every end is reached somewhere.
  assert.ok(
    r.ends.COMPLETED > 0 && r.ends.COMPENSATED > 0 && r.ends.PARKED > 0 && r.ends.RESOLVED > 0,
    `ends reached: ${JSON.stringify(r.ends)}`,
  );
  // A crash between every two effects: after the create (the first intent is committed with it)
  // and before the first call, before and after every later intent, after every call, and before a
  // transition with no call.
  if (bounds.crashes > 0) {
    const expected = def.steps.flatMap((step, i) => [
      i === 0 ? `after_create action ${step.name}` : `before_intent action ${step.name}`,
      `after_intent action ${step.name}`,
      `after_call action ${step.name}`,
      ...(step.compensate || hasFence(step)
        ? [`after_intent compensation ${step.name}`, `after_call compensation ${step.name}`]
        : []),
    ]);
    expected.push('before_transition -');
    const missed = expected.filter((k) => !(r.crashes[k] && r.crashes[k] > 0));
    assert.deepEqual(missed, [], 'checkpoints never crashed at');
  }
  const broken = [...new Set(r.counterexamples.map((c) => c.violation.invariant))];
  assert.equal(
    r.counterexamples.length,
    0,
    `DESIGN §6 violated (${r.counterexamples.length} counterexamples, traces above): ${broken.join('; ')}`,
  );
}

const placeOrder = placeOrderSaga(stubParticipants) as SagaDefinition<unknown>;

test('the participant model covers the place-order definition as defined', () => {
  for (const step of placeOrder.steps) {
    const model = PLACE_ORDER_MODEL[step.name];
    // What the definition says each phase calls (StepDefinition.calls): what fault rules target.
    const real = step.calls;
    assert.ok(model?.action && real, `no model of step ${step.name}`);
    assert.deepEqual(
      { participant: model.action.participant, method: model.action.method },
      real.action,
      `${step.name}'s action`,
    );
    assert.equal(step.compensate !== undefined, Boolean(model.compensation), `${step.name}'s compensation`);
    if (step.compensate && model.compensation)
      assert.deepEqual(
        { participant: model.compensation.participant, method: model.compensation.method },
        real.compensation,
        `${step.name}'s compensation`,
      );
    // A pivot's compensation phase is its fence.
    if (hasFence(step)) {
      assert.ok(model.fence, `${step.name}'s fence`);
      assert.deepEqual(
        { participant: model.fence.participant, method: model.fence.method },
        real.compensation,
        `${step.name}'s fence`,
      );
    }
  }
});

test('model check: place-order, every fault sequence within the bounds, DESIGN §6 at every state', () => {
  check(placeOrder);
});

test('model check: place-order with its pivot unfenced (the rules for a pivot without a fence)', () => {
  const pivot = pivotIndex(placeOrder);
  const step = placeOrder.steps[pivot];
  assert.ok(hasFence(step), "place-order's pivot has a fence: the run above is the fenced case, this one the other");
  // The same step without its fence (a pivot may have none).
  const unfenced: StepDefinition<unknown> = { ...(step as StepDefinition<unknown>) };
  delete unfenced.fence;
  // Only a saga that reaches the pivot differs from the definition as defined.
  const reachesPivot = scenarios.filter(
    (s) => s.initialStock >= s.quantity && s.chargeLimitCents >= s.quantity * s.unitPriceCents,
  );
  check({ ...placeOrder, steps: placeOrder.steps.map((s, i) => (i === pivot ? unfenced : s)) }, reachesPivot);
});
