// The pure parts of bulk actions (src/saga/bulk.ts): validation, the state machine, pacing,
// the in-memory filter, the selection's paging and the dry run's sums.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  BULK_MAX_CAP,
  BulkRequestError,
  countsOf,
  delayBefore,
  dryRunBulk,
  matchesInMemory,
  nextState,
  selectSagas,
  statesFrom,
  sumPreviews,
  validateBulkRequest,
  type BulkJobState,
  type BulkRequest,
} from '../../src/saga/bulk.js';
import { encodeCursor, decodeCursor, type ListQuery, type SagaRecord } from '../../src/saga/model.js';
import type { ActionPreview } from '../../src/saga/preview.js';
import { sagaRecord } from '../helpers/saga-record.js';

const saga = (id: string, over: Partial<SagaRecord> = {}): SagaRecord =>
  sagaRecord({ id, status: 'PARKED', stepIndex: 2, compIndex: 1, ...over });

describe('validateBulkRequest', () => {
  const ok: BulkRequest = { action: 'retry', filter: { status: 'PARKED' }, cap: 100 };
  const refusals: Array<[string, Partial<BulkRequest>, string, string]> = [
    ['unknown action', { action: 'delete' }, 'invalid_request', 'action'],
    ['no cap', { cap: undefined }, 'invalid_request', 'cap'],
    ['cap 0', { cap: 0 }, 'invalid_request', 'cap'],
    ['cap too big', { cap: BULK_MAX_CAP + 1 }, 'invalid_request', 'cap'],
    ['cap not an integer', { cap: 1.5 }, 'invalid_request', 'cap'],
    ['rate 0', { rate: 0 }, 'invalid_request', 'rate'],
    ['rate too high', { rate: 51 }, 'invalid_request', 'rate'],
    ['rate NaN', { rate: Number.NaN }, 'invalid_request', 'rate'],
    ['resolve without a note', { action: 'resolve' }, 'note_required', 'note'],
    ['resolve with a blank note', { action: 'resolve', note: '   ' }, 'note_required', 'note'],
    ['a note too long', { note: 'x'.repeat(1001) }, 'invalid_request', 'note'],
    ['unknown status', { filter: { status: 'STUCK' as never } }, 'invalid_request', 'status'],
    ['a bad failure code', { filter: { failureCode: 'no spaces' } }, 'invalid_request', 'failure_code'],
    ['from after to', { filter: { createdFrom: 2, createdTo: 1 } }, 'invalid_request', 'from'],
  ];
  for (const [name, over, code, field] of refusals) {
    test(`refuses ${name}`, () => {
      assert.throws(
        () => validateBulkRequest({ ...ok, ...over }),
        (e: unknown) => e instanceof BulkRequestError && e.code === code && e.field === field,
      );
    });
  }
  test('takes a good request, with the default rate and a trimmed note', () => {
    assert.deepEqual(validateBulkRequest(ok), {
      action: 'retry',
      note: null,
      filter: { status: 'PARKED' },
      rate: 5,
      cap: 100,
    });
    assert.deepEqual(
      validateBulkRequest({ ...ok, action: 'resolve', note: ' fixed by hand ', rate: 50, cap: BULK_MAX_CAP }),
      {
        action: 'resolve',
        note: 'fixed by hand',
        filter: { status: 'PARKED' },
        rate: 50,
        cap: BULK_MAX_CAP,
      },
    );
    assert.equal(validateBulkRequest({ ...ok, rate: 0.1 }).rate, 0.1);
  });
});

describe('the state machine', () => {
  const table: Array<[BulkJobState, 'pause' | 'resume' | 'cancel' | 'finish', string]> = [
    ['running', 'pause', 'paused'],
    ['running', 'resume', 'same'],
    ['running', 'cancel', 'cancelled'],
    ['running', 'finish', 'done'],
    ['paused', 'pause', 'same'],
    ['paused', 'resume', 'running'],
    ['paused', 'cancel', 'cancelled'],
    ['paused', 'finish', 'refused'],
    ['done', 'pause', 'refused'],
    ['done', 'resume', 'refused'],
    ['done', 'cancel', 'refused'],
    ['cancelled', 'resume', 'refused'],
    ['cancelled', 'cancel', 'refused'],
  ];
  for (const [from, command, want] of table) {
    test(`${from} + ${command} → ${want}`, () => {
      const n = nextState(from, command);
      assert.equal(n.kind === 'move' ? n.to : n.kind, want);
    });
  }
  test('statesFrom lists the states a command moves', () => {
    assert.deepEqual(statesFrom('pause'), ['running']);
    assert.deepEqual(statesFrom('resume'), ['paused']);
    assert.deepEqual(statesFrom('cancel'), ['running', 'paused']);
    assert.deepEqual(statesFrom('finish'), ['running']);
  });
});

describe('pacing', () => {
  const table: Array<[number | null, number, number, number]> = [
    [null, 1000, 5, 0],
    [1000, 1000, 5, 200],
    [1000, 1150, 5, 50],
    [1000, 1200, 5, 0],
    [1000, 5000, 5, 0],
    [1000, 1000, 10, 100],
    [1000, 1000, 0.1, 10_000],
    [1000, 1000, 3, 334],
  ];
  for (const [last, now, rate, want] of table) {
    test(`last ${String(last)}, now ${now}, ${rate}/s → wait ${want} ms`, () => {
      assert.equal(delayBefore(last, now, rate), want);
    });
  }
  test('n sagas paced by delayBefore take at least (n-1)/rate', () => {
    let t = 0;
    let last: number | null = null;
    for (let i = 0; i < 20; i++) {
      t += delayBefore(last, t, 10);
      last = t;
      t += 3; // the action's own time
    }
    assert.ok((last ?? 0) >= 19 * 100);
  });
});

test('the failure code is matched in memory', () => {
  const declined = saga('a', { failure: { step: 'charge_payment', code: 'payment_declined', message: '' } });
  assert.equal(matchesInMemory({}, declined), true);
  assert.equal(matchesInMemory({ failureCode: 'payment_declined' }, declined), true);
  assert.equal(matchesInMemory({ failureCode: 'insufficient_stock' }, declined), false);
  assert.equal(matchesInMemory({ failureCode: 'payment_declined' }, saga('b')), false);
});

test('countsOf fills in the results the store did not count', () => {
  assert.deepEqual(
    countsOf([
      { result: 'applied', n: 3 },
      { result: 'pending', n: 2 },
    ]),
    {
      pending: 2,
      applied: 3,
      replayed: 0,
      refused: 0,
      failed: 0,
    },
  );
});

/** A listing over `all` (newest first), honouring the filters selectSagas passes, in pages. */
function fakeReads(all: SagaRecord[]) {
  const asked: ListQuery[] = [];
  return {
    asked,
    list: async (q: ListQuery) => {
      asked.push(q);
      const start = q.cursor ? decodeCursor(q.cursor) : 0;
      const rows = all.filter((s) => q.status === undefined || s.status === q.status);
      const page = rows.slice(start, start + q.limit);
      return { sagas: page, nextCursor: start + q.limit < rows.length ? encodeCursor(start + q.limit) : null };
    },
  };
}

describe('selectSagas', () => {
  const many = Array.from({ length: 1_200 }, (_, i) =>
    saga(`s${i}`, {
      status: i % 3 === 0 ? 'COMPLETED' : 'PARKED',
      failure: i % 2 === 0 ? { step: 'x', code: 'payment_declined', message: '' } : null,
    }),
  );
  test('pages through the listing, newest first, up to the cap, and says when more matched', async () => {
    const reads = fakeReads(many);
    const r = await selectSagas(reads, { status: 'PARKED' }, 600);
    assert.equal(r.sagas.length, 600);
    assert.equal(r.truncated, true);
    assert.ok(r.sagas.every((s) => s.status === 'PARKED'));
    assert.equal(r.sagas[0]?.id, 's1');
    assert.equal(reads.asked.length, 2);
    assert.ok(reads.asked.every((q) => q.status === 'PARKED' && !('failureCode' in q)));
  });
  test('matches the failure code on each saga; not truncated when all fit', async () => {
    const r = await selectSagas(fakeReads(many), { status: 'PARKED', failureCode: 'payment_declined' }, 10_000);
    assert.equal(r.truncated, false);
    assert.equal(
      r.sagas.length,
      many.filter((s) => s.status === 'PARKED' && s.failure?.code === 'payment_declined').length,
    );
  });
  test('exactly cap matches is not truncated', async () => {
    const few = many.slice(0, 9);
    const r = await selectSagas(fakeReads(few), {}, 9);
    assert.deepEqual([r.sagas.length, r.truncated], [9, false]);
  });
});

const preview = (id: string, over: Partial<ActionPreview>): ActionPreview => ({
  sagaId: id,
  action: 'compensate',
  allowed: true,
  summary: '',
  effects: [],
  totals: { chargeCents: 0, refundCents: 0, stock: [] },
  ...over,
});

test('sumPreviews adds the allowed ones up and groups the refusals by code', () => {
  const r = sumPreviews(
    [
      preview('a', {
        totals: {
          chargeCents: 0,
          refundCents: 13_000,
          stock: [
            { item: 'prod_2', quantity: 1, direction: 'release' },
            { item: 'prod_1', quantity: 2, direction: 'release' },
          ],
        },
      }),
      preview('b', {
        totals: {
          chargeCents: 500,
          refundCents: 1_000,
          stock: [{ item: 'prod_1', quantity: 3, direction: 'release' }],
        },
      }),
      preview('c', { allowed: false, refusal: { code: 'action_not_allowed', message: 'cannot c' } }),
      preview('d', { allowed: false, refusal: { code: 'pivot_uncertain', message: 'pivot d' } }),
      preview('e', { allowed: false, refusal: { code: 'action_not_allowed', message: 'cannot e' } }),
      // A refused saga's effects are not counted.
      preview('f', {
        allowed: false,
        refusal: { code: 'pivot_uncertain', message: 'x' },
        totals: { chargeCents: 9, refundCents: 9, stock: [] },
      }),
    ],
    false,
    2,
  );
  assert.deepEqual(r, {
    count: 6,
    truncated: false,
    allowed: 2,
    refused: [
      { code: 'action_not_allowed', count: 2, example: 'cannot c' },
      { code: 'pivot_uncertain', count: 2, example: 'pivot d' },
    ],
    totals: {
      chargeCents: 500,
      refundCents: 14_000,
      stock: [
        { item: 'prod_1', direction: 'release', quantity: 5 },
        { item: 'prod_2', direction: 'release', quantity: 1 },
      ],
    },
    sample: ['a', 'b'],
  });
});

test('dryRunBulk previews each selected saga with its definition and the action', async () => {
  const seen: string[] = [];
  const r = await dryRunBulk(
    fakeReads([saga('x'), saga('y', { definition: 'other' })]),
    (s) => (s.definition === 'place_order' ? ({ name: s.definition } as never) : undefined),
    (def, s, action) => {
      seen.push(`${s.id}:${def ? 'known' : 'unknown'}:${action}`);
      return preview(s.id, { action });
    },
    { action: 'retry', note: null, filter: {}, rate: 5, cap: 10 },
  );
  assert.deepEqual(seen, ['x:known:retry', 'y:unknown:retry']);
  assert.equal(r.count, 2);
});
