/**
 * previewAction over the place-order definition, table-tested: every action × every status and
 * position a saga can be found in. What it says is checked three ways: against the table's
 * expected words and sums; against decideAction and allowedActions (allowed exactly when the
 * engine would apply the action, refused with the engine's code); and against the engine's own
 * plan (transitions.ts), walked from the state the action leaves with every call answering
 * success: the calls it makes are the preview's, in order.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PLACE_ORDER_DEFINITION, type PlaceOrderInput } from '../../src/gateway/place-order.js';
import { DEFAULT_POLICIES, hasCompensationPhase, type SagaDefinition } from '../../src/saga/definition.js';
import type { SagaRecord, SagaStatus } from '../../src/saga/model.js';
import {
  allowedActions,
  decideAction,
  OPERATOR_ACTIONS,
  type OperatorActionErrorCode,
  type OperatorActionKind,
} from '../../src/saga/operator.js';
import { formatCents, previewAction, type ActionPreview, type PreviewEffect } from '../../src/saga/preview.js';
import { plan, settle, type AttemptOutcome } from '../../src/saga/transitions.js';
import { sagaRecord } from '../helpers/saga-record.js';

const def = PLACE_ORDER_DEFINITION as unknown as SagaDefinition<unknown>;
/** The same saga with a pivot that has no fence: only the pivot's own retry can settle it. */
const unfenced: SagaDefinition<unknown> = {
  ...def,
  steps: def.steps.map((s) => {
    if (s.kind !== 'pivot') return s;
    const rest = { ...s };
    delete rest.fence;
    return rest;
  }),
};
/** The same saga with no step describing its effects: previews fall back to neutral lines. */
const wordless: SagaDefinition<unknown> = {
  ...def,
  steps: def.steps.map((s) => {
    const rest = { ...s };
    delete rest.effects;
    return rest;
  }),
};

const INPUT: PlaceOrderInput = {
  order_id: 'ord_1',
  customer_id: 'cust_123',
  items: [
    { product_id: 'prod_1', quantity: 2, unit_price_cents: 5_000 },
    { product_id: 'prod_2', quantity: 1, unit_price_cents: 3_000 },
  ],
  total_cents: 13_000,
  created_at_ms: 0,
  fingerprint: 'f',
  request_id: null,
};

/** Results of the steps that succeeded, up to (not including) step index n. */
function resultsUpTo(n: number, chargedCents = 13_000): Record<string, null | { amount_cents: number }> {
  const all: [string, null | { amount_cents: number }][] = [
    ['create_order', null],
    ['reserve_stock', null],
    ['charge_payment', { amount_cents: chargedCents }],
    ['confirm_order', null],
    ['commit_stock', null],
  ];
  return Object.fromEntries(all.slice(0, n));
}

const DEADLINE = 120_000;

function saga(status: SagaStatus, over: Partial<SagaRecord> = {}): SagaRecord {
  // Before its deadline unless a case says otherwise (previews judge it at updatedAt by default).
  return sagaRecord({ id: 'ord_1', status, input: INPUT, deadlineAt: DEADLINE, subject: 'cust_123', ...over });
}

const DECLINED = { step: 'charge_payment', code: 'payment_declined', message: 'declined' };
const UNCERTAIN_CONFIRM = { step: 'confirm_order', code: 'pivot_uncertain', message: 'no answer' };
const STOCK = 'releases 2 × prod_1 and 1 × prod_2';
const REFUND = 'refunds 130.00 to cust_123';
const CANCEL = 'cancels order ord_1';
const FENCE = 'cancels order ord_1 if it was not confirmed';
const COMMIT = 'commits 2 × prod_1 and 1 × prod_2 as sold';
const CONFIRM = 'confirms order ord_1';
const RELEASED = [
  { item: 'prod_1', quantity: 2, direction: 'release' as const },
  { item: 'prod_2', quantity: 1, direction: 'release' as const },
];
const COMMITTED = RELEASED.map((m) => ({ ...m, direction: 'commit' as const }));

/** What a preview is expected to say: refused with a code, or its summary, effects and sums. */
type Expect =
  | { refused: OperatorActionErrorCode }
  | {
      summary: string;
      /** "will step/phase: words" or "may step/phase [condition]: words". */
      effects: string[];
      refundCents?: number;
      chargeCents?: number;
      stock?: { item: string; quantity: number; direction: string }[];
      /** resolve: "state step/phase" of each half-done step. */
      halfDone?: string[];
    };

interface Case {
  saga: SagaRecord;
  def?: SagaDefinition<unknown> | undefined;
  retry: Expect;
  compensate: Expect;
  resolve: Expect;
}

const NOT = { refused: 'action_not_allowed' } as const;
const RESOLVE_HEAD = 'Closes the saga; nothing is called: say in the note what you repaired by hand.';

const CASES: Record<string, Case> = {
  'RUNNING, create_order not started': {
    saga: saga('RUNNING'),
    retry: NOT,
    compensate: {
      summary: `If create_order took effect, ${CANCEL}.`,
      effects: [`may create_order/compensation [if create_order took effect]: ${CANCEL}`],
    },
    resolve: NOT,
  },
  'RUNNING before the pivot, charge_payment in flight': {
    saga: saga('RUNNING', { stepIndex: 2, attempt: 2, results: resultsUpTo(2) }),
    retry: NOT,
    compensate: {
      summary: `If charge_payment took effect, ${REFUND}. Then ${STOCK}, ${CANCEL}.`,
      effects: [
        `may charge_payment/compensation [if charge_payment took effect]: ${REFUND}`,
        `will reserve_stock/compensation: ${STOCK}`,
        `will create_order/compensation: ${CANCEL}`,
      ],
      stock: RELEASED,
    },
    resolve: NOT,
  },
  'RUNNING at the pivot': {
    saga: saga('RUNNING', { stepIndex: 3, results: resultsUpTo(3) }),
    retry: NOT,
    compensate: { refused: 'pivot_uncertain' },
    resolve: NOT,
  },
  'RUNNING after the pivot': {
    saga: saga('RUNNING', { stepIndex: 4, results: resultsUpTo(4) }),
    retry: NOT,
    compensate: NOT,
    resolve: NOT,
  },
  'COMPENSATING at charge_payment': {
    saga: saga('COMPENSATING', { stepIndex: 3, compIndex: 2, results: resultsUpTo(3), failure: UNCERTAIN_CONFIRM }),
    retry: NOT,
    compensate: NOT,
    resolve: NOT,
  },
  'COMPENSATING at reserve_stock': {
    saga: saga('COMPENSATING', { stepIndex: 2, compIndex: 1, results: resultsUpTo(2), failure: DECLINED }),
    retry: NOT,
    compensate: NOT,
    resolve: NOT,
  },
  'COMPENSATING at create_order': {
    saga: saga('COMPENSATING', { stepIndex: 2, compIndex: 0, results: resultsUpTo(2), failure: DECLINED }),
    retry: NOT,
    compensate: NOT,
    resolve: NOT,
  },
  'PARKED compensating charge_payment (charged)': {
    saga: saga('PARKED', { stepIndex: 3, compIndex: 2, results: resultsUpTo(3), failure: UNCERTAIN_CONFIRM }),
    retry: {
      summary: `Retries the undo of charge_payment with a fresh budget: ${REFUND}. Then ${STOCK}, ${CANCEL}.`,
      effects: [
        `will charge_payment/compensation: ${REFUND}`,
        `will reserve_stock/compensation: ${STOCK}`,
        `will create_order/compensation: ${CANCEL}`,
      ],
      refundCents: 13_000,
      stock: RELEASED,
    },
    compensate: {
      summary: `Refunds 130.00 to cust_123, ${STOCK}, ${CANCEL}.`,
      effects: [
        `will charge_payment/compensation: ${REFUND}`,
        `will reserve_stock/compensation: ${STOCK}`,
        `will create_order/compensation: ${CANCEL}`,
      ],
      refundCents: 13_000,
      stock: RELEASED,
    },
    resolve: {
      summary: `${RESOLVE_HEAD} Left half-done: the undo of charge_payment may not have taken effect (${REFUND}); reserve_stock took effect and is not undone (reserves 2 × prod_1 and 1 × prod_2); create_order took effect and is not undone (creates order ord_1 of 130.00 for cust_123).`,
      effects: [],
      halfDone: ['unknown charge_payment/compensation', 'done reserve_stock/action', 'done create_order/action'],
    },
  },
  'PARKED compensating charge_payment, charged another amount than the total': {
    saga: saga('PARKED', { stepIndex: 3, compIndex: 2, results: resultsUpTo(3, 12_000), failure: UNCERTAIN_CONFIRM }),
    retry: {
      summary: `Retries the undo of charge_payment with a fresh budget: refunds 120.00 to cust_123. Then ${STOCK}, ${CANCEL}.`,
      effects: [
        'will charge_payment/compensation: refunds 120.00 to cust_123',
        `will reserve_stock/compensation: ${STOCK}`,
        `will create_order/compensation: ${CANCEL}`,
      ],
      refundCents: 12_000,
      stock: RELEASED,
    },
    compensate: {
      summary: `Refunds 120.00 to cust_123, ${STOCK}, ${CANCEL}.`,
      effects: [
        'will charge_payment/compensation: refunds 120.00 to cust_123',
        `will reserve_stock/compensation: ${STOCK}`,
        `will create_order/compensation: ${CANCEL}`,
      ],
      refundCents: 12_000,
      stock: RELEASED,
    },
    resolve: {
      summary: `${RESOLVE_HEAD} Left half-done: the undo of charge_payment may not have taken effect (refunds 120.00 to cust_123); reserve_stock took effect and is not undone (reserves 2 × prod_1 and 1 × prod_2); create_order took effect and is not undone (creates order ord_1 of 130.00 for cust_123).`,
      effects: [],
      halfDone: ['unknown charge_payment/compensation', 'done reserve_stock/action', 'done create_order/action'],
    },
  },
  'PARKED compensating an uncertain charge_payment (its outcome never known)': {
    saga: saga('PARKED', {
      stepIndex: 2,
      compIndex: 2,
      results: resultsUpTo(2),
      failure: { step: 'charge_payment', code: 'participant_unavailable', message: 'no answer' },
    }),
    retry: {
      summary: `Retries the undo of charge_payment with a fresh budget: ${REFUND}. Then ${STOCK}, ${CANCEL}.`,
      effects: [
        `may charge_payment/compensation [if charge_payment took effect]: ${REFUND}`,
        `will reserve_stock/compensation: ${STOCK}`,
        `will create_order/compensation: ${CANCEL}`,
      ],
      stock: RELEASED,
    },
    compensate: {
      summary: `If charge_payment took effect, ${REFUND}. Then ${STOCK}, ${CANCEL}.`,
      effects: [
        `may charge_payment/compensation [if charge_payment took effect]: ${REFUND}`,
        `will reserve_stock/compensation: ${STOCK}`,
        `will create_order/compensation: ${CANCEL}`,
      ],
      stock: RELEASED,
    },
    resolve: {
      summary: `${RESOLVE_HEAD} Left half-done: the undo of charge_payment may not have taken effect (${REFUND}); reserve_stock took effect and is not undone (reserves 2 × prod_1 and 1 × prod_2); create_order took effect and is not undone (creates order ord_1 of 130.00 for cust_123).`,
      effects: [],
      halfDone: ['unknown charge_payment/compensation', 'done reserve_stock/action', 'done create_order/action'],
    },
  },
  'PARKED compensating reserve_stock (charge_payment declined)': {
    saga: saga('PARKED', { stepIndex: 2, compIndex: 1, results: resultsUpTo(2), failure: DECLINED }),
    retry: {
      summary: `Retries the undo of reserve_stock with a fresh budget: ${STOCK}. Then ${CANCEL}.`,
      effects: [`will reserve_stock/compensation: ${STOCK}`, `will create_order/compensation: ${CANCEL}`],
      stock: RELEASED,
    },
    compensate: {
      summary: `Releases 2 × prod_1 and 1 × prod_2, ${CANCEL}.`,
      effects: [`will reserve_stock/compensation: ${STOCK}`, `will create_order/compensation: ${CANCEL}`],
      stock: RELEASED,
    },
    resolve: {
      summary: `${RESOLVE_HEAD} Left half-done: the undo of reserve_stock may not have taken effect (${STOCK}); create_order took effect and is not undone (creates order ord_1 of 130.00 for cust_123).`,
      effects: [],
      halfDone: ['unknown reserve_stock/compensation', 'done create_order/action'],
    },
  },
  'PARKED compensating create_order': {
    saga: saga('PARKED', { stepIndex: 2, compIndex: 0, results: resultsUpTo(2), failure: DECLINED }),
    retry: {
      summary: `Retries the undo of create_order with a fresh budget: ${CANCEL}.`,
      effects: [`will create_order/compensation: ${CANCEL}`],
    },
    compensate: { summary: 'Cancels order ord_1.', effects: [`will create_order/compensation: ${CANCEL}`] },
    resolve: {
      summary: `${RESOLVE_HEAD} Left half-done: the undo of create_order may not have taken effect (${CANCEL}).`,
      effects: [],
      halfDone: ['unknown create_order/compensation'],
    },
  },
  'PARKED settling the pivot (its fence failed)': {
    saga: saga('PARKED', { stepIndex: 3, compIndex: 3, results: resultsUpTo(3), failure: UNCERTAIN_CONFIRM }),
    retry: {
      summary: `Retries confirm_order with a fresh budget: ${CONFIRM}. If confirm_order succeeds, ${COMMIT}. If confirm_order's outcome stays unknown, ${FENCE}. If confirm_order fails, ${REFUND}, ${STOCK}, ${CANCEL}.`,
      effects: [
        `will confirm_order/action: ${CONFIRM}`,
        `may commit_stock/action [if confirm_order succeeds]: ${COMMIT}`,
        `may confirm_order/compensation [if confirm_order's outcome stays unknown]: ${FENCE}`,
        `may charge_payment/compensation [if confirm_order fails]: ${REFUND}`,
        `may reserve_stock/compensation [if confirm_order fails]: ${STOCK}`,
        `may create_order/compensation [if confirm_order fails]: ${CANCEL}`,
      ],
    },
    compensate: {
      summary: `Cancels order ord_1 if it was not confirmed. If confirm_order had not taken effect, ${REFUND}, ${STOCK}, ${CANCEL}. If confirm_order had taken effect, ${COMMIT}.`,
      effects: [
        `will confirm_order/compensation: ${FENCE}`,
        `may charge_payment/compensation [if confirm_order had not taken effect]: ${REFUND}`,
        `may reserve_stock/compensation [if confirm_order had not taken effect]: ${STOCK}`,
        `may create_order/compensation [if confirm_order had not taken effect]: ${CANCEL}`,
        `may commit_stock/action [if confirm_order had taken effect]: ${COMMIT}`,
      ],
    },
    resolve: {
      summary: `${RESOLVE_HEAD} Left half-done: confirm_order may have taken effect (${CONFIRM}); charge_payment took effect and is not undone (charges 130.00 to cust_123); reserve_stock took effect and is not undone (reserves 2 × prod_1 and 1 × prod_2); create_order took effect and is not undone (creates order ord_1 of 130.00 for cust_123).`,
      effects: [],
      halfDone: [
        'unknown confirm_order/action',
        'done charge_payment/action',
        'done reserve_stock/action',
        'done create_order/action',
      ],
    },
  },
  'PARKED at a fenced pivot going forward (compIndex -1)': {
    saga: saga('PARKED', { stepIndex: 3, results: resultsUpTo(3), failure: UNCERTAIN_CONFIRM }),
    retry: {
      summary: `Retries confirm_order with a fresh budget: ${CONFIRM}. If confirm_order succeeds, ${COMMIT}. If confirm_order's outcome stays unknown, ${FENCE}. If confirm_order fails, ${REFUND}, ${STOCK}, ${CANCEL}.`,
      effects: [
        `will confirm_order/action: ${CONFIRM}`,
        `may commit_stock/action [if confirm_order succeeds]: ${COMMIT}`,
        `may confirm_order/compensation [if confirm_order's outcome stays unknown]: ${FENCE}`,
        `may charge_payment/compensation [if confirm_order fails]: ${REFUND}`,
        `may reserve_stock/compensation [if confirm_order fails]: ${STOCK}`,
        `may create_order/compensation [if confirm_order fails]: ${CANCEL}`,
      ],
    },
    compensate: {
      summary: `Cancels order ord_1 if it was not confirmed. If confirm_order had not taken effect, ${REFUND}, ${STOCK}, ${CANCEL}. If confirm_order had taken effect, ${COMMIT}.`,
      effects: [
        `will confirm_order/compensation: ${FENCE}`,
        `may charge_payment/compensation [if confirm_order had not taken effect]: ${REFUND}`,
        `may reserve_stock/compensation [if confirm_order had not taken effect]: ${STOCK}`,
        `may create_order/compensation [if confirm_order had not taken effect]: ${CANCEL}`,
        `may commit_stock/action [if confirm_order had taken effect]: ${COMMIT}`,
      ],
    },
    resolve: {
      summary: `${RESOLVE_HEAD} Left half-done: confirm_order may have taken effect (${CONFIRM}); commit_stock has not run (${COMMIT}).`,
      effects: [],
      halfDone: ['unknown confirm_order/action', 'pending commit_stock/action'],
    },
  },
  'PARKED settling the pivot, past the saga deadline: a retry settles it again instead of confirming': {
    saga: saga('PARKED', {
      stepIndex: 3,
      compIndex: 3,
      results: resultsUpTo(3),
      failure: UNCERTAIN_CONFIRM,
      updatedAt: DEADLINE + 1,
    }),
    retry: {
      summary: `The saga's deadline has passed, so confirm_order is not run again: it is settled and the saga compensates. Cancels order ord_1 if it was not confirmed. If confirm_order had not taken effect, ${REFUND}, ${STOCK}, ${CANCEL}. If confirm_order had taken effect, ${COMMIT}.`,
      effects: [
        `will confirm_order/compensation: ${FENCE}`,
        `may charge_payment/compensation [if confirm_order had not taken effect]: ${REFUND}`,
        `may reserve_stock/compensation [if confirm_order had not taken effect]: ${STOCK}`,
        `may create_order/compensation [if confirm_order had not taken effect]: ${CANCEL}`,
        `may commit_stock/action [if confirm_order had taken effect]: ${COMMIT}`,
      ],
    },
    compensate: {
      summary: `Cancels order ord_1 if it was not confirmed. If confirm_order had not taken effect, ${REFUND}, ${STOCK}, ${CANCEL}. If confirm_order had taken effect, ${COMMIT}.`,
      effects: [
        `will confirm_order/compensation: ${FENCE}`,
        `may charge_payment/compensation [if confirm_order had not taken effect]: ${REFUND}`,
        `may reserve_stock/compensation [if confirm_order had not taken effect]: ${STOCK}`,
        `may create_order/compensation [if confirm_order had not taken effect]: ${CANCEL}`,
        `may commit_stock/action [if confirm_order had taken effect]: ${COMMIT}`,
      ],
    },
    resolve: {
      summary: `${RESOLVE_HEAD} Left half-done: confirm_order may have taken effect (${CONFIRM}); charge_payment took effect and is not undone (charges 130.00 to cust_123); reserve_stock took effect and is not undone (reserves 2 × prod_1 and 1 × prod_2); create_order took effect and is not undone (creates order ord_1 of 130.00 for cust_123).`,
      effects: [],
      halfDone: [
        'unknown confirm_order/action',
        'done charge_payment/action',
        'done reserve_stock/action',
        'done create_order/action',
      ],
    },
  },
  'PARKED at a pivot with no fence, past the saga deadline (a pivot with no fence has none)': {
    def: unfenced,
    saga: saga('PARKED', {
      stepIndex: 3,
      results: resultsUpTo(3),
      failure: UNCERTAIN_CONFIRM,
      updatedAt: DEADLINE + 1,
    }),
    retry: {
      summary: `Retries confirm_order with a fresh budget: ${CONFIRM}. If confirm_order succeeds, ${COMMIT}. If confirm_order fails, ${REFUND}, ${STOCK}, ${CANCEL}.`,
      effects: [
        `will confirm_order/action: ${CONFIRM}`,
        `may commit_stock/action [if confirm_order succeeds]: ${COMMIT}`,
        `may charge_payment/compensation [if confirm_order fails]: ${REFUND}`,
        `may reserve_stock/compensation [if confirm_order fails]: ${STOCK}`,
        `may create_order/compensation [if confirm_order fails]: ${CANCEL}`,
      ],
    },
    compensate: { refused: 'pivot_uncertain' },
    resolve: {
      summary: `${RESOLVE_HEAD} Left half-done: confirm_order may have taken effect (${CONFIRM}); commit_stock has not run (${COMMIT}).`,
      effects: [],
      halfDone: ['unknown confirm_order/action', 'pending commit_stock/action'],
    },
  },
  'PARKED at a pivot with no fence': {
    def: unfenced,
    saga: saga('PARKED', { stepIndex: 3, results: resultsUpTo(3), failure: UNCERTAIN_CONFIRM }),
    retry: {
      summary: `Retries confirm_order with a fresh budget: ${CONFIRM}. If confirm_order succeeds, ${COMMIT}. If confirm_order fails, ${REFUND}, ${STOCK}, ${CANCEL}.`,
      effects: [
        `will confirm_order/action: ${CONFIRM}`,
        `may commit_stock/action [if confirm_order succeeds]: ${COMMIT}`,
        `may charge_payment/compensation [if confirm_order fails]: ${REFUND}`,
        `may reserve_stock/compensation [if confirm_order fails]: ${STOCK}`,
        `may create_order/compensation [if confirm_order fails]: ${CANCEL}`,
      ],
    },
    compensate: { refused: 'pivot_uncertain' },
    resolve: {
      summary: `${RESOLVE_HEAD} Left half-done: confirm_order may have taken effect (${CONFIRM}); commit_stock has not run (${COMMIT}).`,
      effects: [],
      halfDone: ['unknown confirm_order/action', 'pending commit_stock/action'],
    },
  },
  'PARKED after the pivot (commit_stock out of attempts)': {
    saga: saga('PARKED', {
      stepIndex: 4,
      results: resultsUpTo(4),
      failure: { step: 'commit_stock', code: 'forward_attempts_exhausted', message: 'unavailable' },
    }),
    retry: {
      summary: `Retries commit_stock with a fresh budget: ${COMMIT}.`,
      effects: [`will commit_stock/action: ${COMMIT}`],
      stock: COMMITTED,
    },
    compensate: NOT,
    resolve: {
      summary: `${RESOLVE_HEAD} Left half-done: commit_stock may have taken effect (${COMMIT}).`,
      effects: [],
      halfDone: ['unknown commit_stock/action'],
    },
  },
  'PARKED after the pivot (commit_stock refused)': {
    saga: saga('PARKED', {
      stepIndex: 4,
      results: resultsUpTo(4),
      failure: { step: 'commit_stock', code: 'stock_not_reserved', message: 'no reservation' },
    }),
    retry: {
      summary: `Retries commit_stock with a fresh budget: ${COMMIT}.`,
      effects: [`will commit_stock/action: ${COMMIT}`],
      stock: COMMITTED,
    },
    compensate: NOT,
    resolve: {
      summary: `${RESOLVE_HEAD} Left half-done: commit_stock has not run (${COMMIT}).`,
      effects: [],
      halfDone: ['pending commit_stock/action'],
    },
  },
  'PARKED, its definition unknown to this gateway': {
    def: undefined,
    saga: saga('PARKED', { stepIndex: 3, compIndex: 2, results: resultsUpTo(3), failure: UNCERTAIN_CONFIRM }),
    retry: NOT,
    compensate: NOT,
    resolve: {
      summary: `${RESOLVE_HEAD} This gateway does not know the definition place_order: what is left half-done cannot be told.`,
      effects: [],
    },
  },
  COMPLETED: {
    saga: saga('COMPLETED', { stepIndex: 5, results: resultsUpTo(5) }),
    retry: NOT,
    compensate: NOT,
    resolve: NOT,
  },
  COMPENSATED: {
    saga: saga('COMPENSATED', { stepIndex: 2, results: resultsUpTo(2), failure: DECLINED }),
    retry: NOT,
    compensate: NOT,
    resolve: NOT,
  },
  RESOLVED: {
    saga: saga('RESOLVED', { stepIndex: 3, compIndex: 2, results: resultsUpTo(3) }),
    retry: NOT,
    compensate: NOT,
    resolve: NOT,
  },
};

const show = (e: PreviewEffect) =>
  `${e.certainty} ${e.step}/${e.phase}${e.condition ? ` [${e.condition}]` : ''}: ${e.effect.words}`;
const defOf = (c: Case) => ('def' in c ? c.def : def);

for (const [name, c] of Object.entries(CASES)) {
  for (const action of OPERATOR_ACTIONS) {
    test(`preview ${action}: ${name}`, () => {
      const p = previewAction(defOf(c), c.saga, action);
      const want = c[action];
      assert.equal(p.sagaId, 'ord_1');
      assert.equal(p.action, action);
      if ('refused' in want) {
        assert.equal(p.allowed, false);
        assert.equal(p.refusal?.code, want.refused);
        assert.deepEqual(p.effects, []);
        assert.deepEqual(p.totals, { chargeCents: 0, refundCents: 0, stock: [] });
        assert.ok(p.summary.startsWith('Cannot '), p.summary);
        return;
      }
      assert.equal(p.allowed, true);
      assert.equal(p.refusal, undefined);
      assert.equal(p.summary, want.summary);
      assert.deepEqual(p.effects.map(show), want.effects);
      assert.deepEqual(p.totals, {
        chargeCents: want.chargeCents ?? 0,
        refundCents: want.refundCents ?? 0,
        stock: want.stock ?? [],
      });
      assert.deepEqual(
        p.halfDone?.map((h) => `${h.state} ${h.step}/${h.phase}`),
        want.halfDone,
      );
    });
  }
}

test('every case: allowed exactly when decideAction applies and allowedActions offers it, refused with its code and message', () => {
  for (const [name, c] of Object.entries(CASES)) {
    const offered = allowedActions(defOf(c), c.saga);
    for (const action of OPERATOR_ACTIONS) {
      const p = previewAction(defOf(c), c.saga, action);
      const d = decideAction(
        defOf(c),
        c.saga,
        { sagaId: c.saga.id, action, actionId: 'fresh', actor: 'x', note: 'a note' },
        [],
      );
      assert.equal(p.allowed, d.kind === 'apply', `${name} ${action}`);
      assert.equal(p.allowed, offered.includes(action), `${name} ${action}`);
      if (d.kind === 'refused') assert.deepEqual(p.refusal, { code: d.code, message: d.message }, `${name} ${action}`);
    }
  }
});

test('every case: totals are the sums of the will effects, and only steps with a compensation phase are undone', () => {
  for (const [name, c] of Object.entries(CASES)) {
    for (const action of OPERATOR_ACTIONS) {
      const p = previewAction(defOf(c), c.saga, action);
      const will = p.effects.filter((e) => e.certainty === 'will');
      const sum = (dir: 'charge' | 'refund') =>
        will.reduce((n, e) => n + (e.effect.money?.direction === dir ? e.effect.money.cents : 0), 0);
      assert.equal(p.totals.chargeCents, sum('charge'), `${name} ${action}`);
      assert.equal(p.totals.refundCents, sum('refund'), `${name} ${action}`);
      const moved = will.flatMap((e) => e.effect.stock ?? []).reduce((n, m) => n + m.quantity, 0);
      assert.equal(
        p.totals.stock.reduce((n, m) => n + m.quantity, 0),
        moved,
        `${name} ${action}`,
      );
      for (const e of p.effects) {
        if (e.phase === 'compensation') {
          assert.ok(
            hasCompensationPhase(defOf(c)?.steps.find((s) => s.name === e.step)),
            `${name} ${action} ${e.step}`,
          );
        }
        assert.equal(e.certainty === 'may', e.condition !== undefined, `${name} ${action} ${show(e)}`);
      }
      if (action === 'resolve') assert.deepEqual(p.effects, [], 'resolve calls nothing');
    }
  }
});

/**
 * The calls the engine makes from the state the action leaves, every call answering success (a
 * fence: fenced), walked through its own plan and settle at the saga's last update: what a preview must list as `will`, plus
 * the `may` effects on the path of success.
 */
function engineCalls(d: SagaDefinition<unknown>, s: SagaRecord): string[] {
  const calls: string[] = [];
  let cur = s;
  for (let n = 0; n < 50; n++) {
    const p = plan(d, cur, DEFAULT_POLICIES, s.updatedAt);
    if (p.kind === 'transition') {
      // Past the deadline the saga turns to compensating, and goes on; completed or compensated, it ends.
      if (p.why !== 'deadline') break;
      cur = { ...cur, ...p.transition.patch };
      continue;
    }
    cur = { ...cur, ...p.intent.patch };
    calls.push(`${p.step.name}/${p.phase}`);
    const outcome: AttemptOutcome = { kind: 'ok', result: null };
    cur = { ...cur, ...settle(d, cur, p, outcome, s.updatedAt, () => 0).transition.patch };
  }
  return calls;
}

/** The conditions under which a `may` effect lies on the path where every call succeeds. */
const ON_SUCCESS = [/took effect$/, /had not taken effect$/, /succeeds$/];

test('every allowed retry and compensate: the engine, walked from the state the action writes, makes exactly the calls the preview lists', () => {
  let walked = 0;
  for (const [name, c] of Object.entries(CASES)) {
    const d = defOf(c);
    if (!d) continue;
    for (const action of ['retry', 'compensate'] as OperatorActionKind[]) {
      const decision = decideAction(
        d,
        c.saga,
        { sagaId: c.saga.id, action, actionId: 'fresh', actor: 'x', note: 'a note' },
        [],
      );
      if (decision.kind !== 'apply') continue;
      // Judged at the same time as the preview's default: the saga's last update.
      const after = { ...c.saga, ...decision.transition.patch };
      const p: ActionPreview = previewAction(d, c.saga, action);
      const listed = p.effects
        .filter((e) => e.certainty === 'will' || ON_SUCCESS.some((r) => r.test(e.condition ?? '')))
        .map((e) => `${e.step}/${e.phase}`);
      assert.deepEqual(engineCalls(d, after), listed, `${name} ${action}`);
      walked++;
    }
  }
  assert.ok(walked >= 12, `walked ${walked}`);
});

test('a step without effects is named with the calls it makes', () => {
  const s = saga('PARKED', { stepIndex: 3, compIndex: 2, results: resultsUpTo(3), failure: UNCERTAIN_CONFIRM });
  const p = previewAction(wordless, s, 'compensate');
  assert.deepEqual(
    p.effects.map((e) => e.effect.words),
    [
      'undoes charge_payment (Payment_Charge_Step): calls payment.Refund',
      'undoes reserve_stock (Inventory_Reservation_Step): calls inventory.Release',
      'undoes create_order (Create_Order_Step): calls order.CancelOrder',
    ],
  );
  assert.deepEqual(p.totals, { chargeCents: 0, refundCents: 0, stock: [] });
});

test('an input of another shape (an older saga) falls back to the neutral line instead of failing', () => {
  const s = saga('PARKED', { stepIndex: 2, compIndex: 1, results: resultsUpTo(2), input: { legacy: true } });
  const p = previewAction(def, s, 'compensate');
  assert.equal(p.allowed, true);
  assert.deepEqual(
    p.effects.map((e) => e.effect.words),
    [
      'undoes reserve_stock (Inventory_Reservation_Step): calls inventory.Release',
      'undoes create_order (Create_Order_Step): calls order.CancelOrder',
    ],
  );
});

test('formatCents speaks decimal dollars without float arithmetic', () => {
  assert.equal(formatCents(13_000), '130.00');
  assert.equal(formatCents(29), '0.29');
  assert.equal(formatCents(100_005), '1000.05');
  assert.equal(formatCents(0), '0.00');
});

test('the deadline is judged at the time given: the same retry before and after it', () => {
  const s = saga('PARKED', { stepIndex: 3, compIndex: 3, results: resultsUpTo(3), failure: UNCERTAIN_CONFIRM });
  const before = previewAction(def, s, 'retry', DEADLINE - 1);
  assert.deepEqual(
    before.effects.filter((e) => e.certainty === 'will').map((e) => `${e.step}/${e.phase}`),
    ['confirm_order/action'],
  );
  const after = previewAction(def, s, 'retry', DEADLINE);
  assert.deepEqual(
    after.effects.filter((e) => e.certainty === 'will').map((e) => `${e.step}/${e.phase}`),
    ['confirm_order/compensation'],
  );
  assert.match(after.summary, /^The saga's deadline has passed, so confirm_order is not run again/);
});
