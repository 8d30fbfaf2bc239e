import { test } from 'node:test';
import assert from 'node:assert/strict';
import { uuidv7, uuidv7Time } from '../../src/platform/ids.js';
import { isOrderId } from '../../src/contracts/ids.js';

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test('uuidv7: RFC 9562 layout, the milliseconds in the first 48 bits, a valid order id', () => {
  const at = Date.UTC(2026, 10, 27, 12, 0, 0, 123);
  const id = uuidv7(at);
  assert.match(id, V7);
  assert.equal(parseInt(id.replace(/-/g, '').slice(0, 12), 16), at);
  assert.ok(isOrderId(id));
});

test('uuidv7: ids of later milliseconds sort after earlier ones, and 100,000 ids are distinct', () => {
  const ids = Array.from({ length: 100_000 }, (_, i) => uuidv7(1_800_000_000_000 + Math.floor(i / 100)));
  assert.equal(new Set(ids).size, ids.length);
  for (let i = 100; i < ids.length; i += 100) assert.ok(ids[i - 100]! < ids[i]!, `${ids[i - 100]} < ${ids[i]}`);
  for (const id of ids.slice(0, 1000)) assert.match(id, V7);
});

test('uuidv7Time reads back the milliseconds an id was made at, and nothing from other strings', () => {
  for (const at of [0, 1, Date.parse('2026-12-06T18:00:00.123Z'), 2 ** 48 - 1])
    assert.equal(uuidv7Time(uuidv7(at)), at);
  for (const other of ['ord_1', '', '01a24c87-2013-4fce-87ea-15333ca5f8a4', '01a24c87-2013-7fce-07ea-15333ca5f8a4'])
    assert.equal(uuidv7Time(other), undefined, other);
});
