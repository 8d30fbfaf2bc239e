import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CREATE_FIELDS, batchResult, batchSql, batchValues } from '../../src/saga/stores/postgres-batch.js';
import { PATCH_COLUMNS } from '../../src/saga/stores/rows.js';

/**
 * The PostgreSQL batch statement's parameters, without a database: one array per field, a row
 * per write (events flattened with their saga and position), and exactly as many parameters as
 * the statement names. What the statement does with them is the saga-log conformance suite's.
 */

const SQL = { now: 'NOW()', sagaColumns: 'id', eventColumns: 'saga_id', finishedChannel: 'saga_finished' };
const create = (id: string) => ({
  kind: 'create' as const,
  id,
  values: CREATE_FIELDS.map(([name]) => `${name}:${id}`),
  events: [{ type: 'SAGA_STARTED' as const }, { type: 'STEP_STARTED' as const, step: 'a', attempt: 1 }],
});

test('the statement names as many parameters as batchValues gives, each an array', () => {
  const sql = batchSql(SQL);
  // The events' arrays are read twice (by the creates and by the appends), each time as the same type.
  const params = new Map<number, string>();
  for (const m of sql.matchAll(/\$(\d+)::([a-z]+)\[\]/g)) {
    const n = Number(m[1]);
    assert.equal(params.get(n) ?? m[2], m[2], `$${n} has one type`);
    params.set(n, m[2] as string);
  }
  const values = batchValues([create('s1')]);
  assert.deepEqual(
    [...params.keys()].sort((a, b) => a - b),
    values.map((_, i) => i + 1),
  );
  assert.ok(values.every(Array.isArray));
});

test('a create is one row across the create arrays, in CREATE_FIELDS order, its events numbered from 1; the append arrays stay empty', () => {
  const values = batchValues([create('s1'), create('s2')]) as unknown[][];
  CREATE_FIELDS.forEach(([name], i) => assert.deepEqual(values[i], [`${name}:s1`, `${name}:s2`]));
  const eventAt = values.length - 10;
  assert.ok(values.slice(CREATE_FIELDS.length, eventAt).every((a) => a.length === 0));
  assert.deepEqual(values[eventAt], ['s1', 's1', 's2', 's2'], 'saga of each event');
  assert.deepEqual(values[eventAt + 1], [1, 2, 1, 2], 'position within its create');
  assert.deepEqual(values[eventAt + 2], ['SAGA_STARTED', 'STEP_STARTED', 'SAGA_STARTED', 'STEP_STARTED']);
});

test('an append: its patched fields set and flagged in the mask, the others null; its events numbered from 1, NUL made printable', () => {
  const keys = Object.keys(PATCH_COLUMNS);
  const values = batchValues([
    {
      kind: 'append',
      id: 's1',
      owner: 'gw-1',
      patch: { status: 'COMPLETED', results: { charge: { ok: true } }, failure: null, currentStep: 'commit' },
      events: [
        { type: 'STEP_SUCCEEDED', step: 'commit', attempt: 1, data: { n: 1 } },
        { type: 'SAGA_COMPLETED', error: 'a NUL \u0000 here' },
      ],
      terminal: true,
    },
    {
      kind: 'append',
      id: 's2',
      owner: 'gw-1',
      patch: {},
      events: [{ type: 'STEP_STARTED', step: 'reserve' }],
      terminal: false,
    },
  ]) as unknown[][];
  const appendAt = CREATE_FIELDS.length;
  const field = (i: number) => values[appendAt + i];
  assert.deepEqual(field(0), ['s1', 's2']);
  assert.deepEqual(field(1), ['gw-1', 'gw-1']);
  assert.deepEqual(field(2), [2, 1], 'events per append');
  const bit = (k: string) => 1 << keys.indexOf(k);
  assert.deepEqual(field(3), [bit('status') | bit('results') | bit('failure') | bit('currentStep'), 0], 'mask');
  const col = (k: string) => field(4 + keys.indexOf(k));
  assert.deepEqual(col('status'), ['COMPLETED', null]);
  assert.deepEqual(col('results'), ['{"charge":{"ok":true}}', null]);
  assert.deepEqual(col('failure'), [null, null], 'a failure cleared is null and flagged');
  assert.deepEqual(col('stepIndex'), [null, null]);
  assert.deepEqual(field(4 + keys.length), [true, false], 'terminal');
  const eventAt = appendAt + 4 + keys.length + 1;
  const ev = (i: number) => values[eventAt + i];
  assert.deepEqual(ev(0), ['s1', 's1', 's2'], 'saga of each event');
  assert.deepEqual(ev(1), [1, 2, 1], 'position within its append');
  assert.deepEqual(ev(2), ['STEP_SUCCEEDED', 'SAGA_COMPLETED', 'STEP_STARTED']);
  assert.deepEqual(ev(5), [null, 'a NUL \uFFFD here', null]);
  assert.deepEqual(ev(7), ['{"n":1}', null, null]);
  assert.equal(values.length, eventAt + 10);
});

test('batchResult indexes the created rows by id and the updated ids; no row is nothing done', () => {
  const r = batchResult({ created: [{ id: 's1' } as never], updated: ['s2', 's3'] });
  assert.deepEqual([...r.created.keys()], ['s1']);
  assert.deepEqual([...r.updated], ['s2', 's3']);
  const none = batchResult(undefined);
  assert.equal(none.created.size + none.updated.size, 0);
});
