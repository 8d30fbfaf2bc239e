import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryKv } from '../../src/platform/storage/fast-kv.js';
import { createIdempotencyGuard } from '../../src/platform/storage/idempotency.js';
import { duration } from '../../src/platform/config/config.js';

test('the memory store: set-if-absent, expiry and a size bound', async () => {
  let now = 0;
  const kv = new MemoryKv(2, () => now);
  try {
    assert.equal(await kv.setIfAbsent('a', '1', 100), null);
    assert.equal(await kv.setIfAbsent('a', '2', 100), '1');
    now = 100;
    assert.equal(await kv.get('a'), null, 'expired');
    assert.equal(await kv.setIfAbsent('a', '3', 100), null);
    await kv.set('b', 'x', 100);
    await kv.set('c', 'y', 100);
    assert.equal(await kv.get('a'), null, 'the oldest entry makes room');
    assert.equal(await kv.get('c'), 'y');
  } finally {
    await kv.close();
  }
});

test('the guard: acquire, in flight, replay, mismatch, abandon', async () => {
  const kv = new MemoryKv();
  try {
    const g = createIdempotencyGuard<{ id: string }>(kv, { namespace: 't:', ttlMs: 60_000, lockMs: 1_000 });
    assert.deepEqual(await g.begin('k', 'fp1'), { kind: 'acquired' });
    assert.deepEqual(await g.begin('k', 'fp1'), { kind: 'in_flight' });
    assert.deepEqual(await g.begin('k', 'fp2'), { kind: 'mismatch' });
    await g.complete('k', 'fp1', { id: 'o1' });
    assert.deepEqual(await g.begin('k', 'fp1'), { kind: 'replay', response: { id: 'o1' } });
    assert.deepEqual(await g.begin('k', 'fp2'), { kind: 'mismatch' });
    assert.deepEqual(await g.begin('k2', 'fp'), { kind: 'acquired' });
    await g.abandon('k2');
    assert.deepEqual(await g.begin('k2', 'fp'), { kind: 'acquired' }, 'an abandoned key is free again');
    assert.equal(await kv.get('k'), null, 'keys are namespaced');
  } finally {
    await kv.close();
  }
});

test('durations: units, bare seconds, and clear errors', () => {
  assert.equal(duration({ X: '24h' }, 'X', 1), 86_400_000);
  assert.equal(duration({ X: '90' }, 'X', 1), 90_000);
  assert.equal(duration({ X: '250ms' }, 'X', 1), 250);
  assert.equal(duration({}, 'X', 7), 7);
  assert.throws(() => duration({ X: 'soon' }, 'X', 1), { code: 'invalid_config' });
  assert.throws(() => duration({ X: '0s' }, 'X', 1), { code: 'invalid_config' });
});
