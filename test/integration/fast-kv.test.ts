// The idempotency fast path's front (ResilientKv) against a real redis-server: a command that times
// out while the connection stays up sends it to memory, and it goes back to Redis once Redis answers
// again, without the connection dropping.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ResilientKv } from '../../src/platform/storage/fast-kv.js';
import { TestRedis } from '../helpers/redis.js';
import { silentLogger } from '../helpers/participants.js';
import { eventually } from '../helpers/system.js';

let redis: TestRedis;
before(async () => {
  redis = await TestRedis.start();
});
after(async () => {
  await redis?.kill();
});

test('a command that times out on a live connection: memory for a moment, then Redis again', async () => {
  const modes: string[] = [];
  const kv = new ResilientKv({
    url: redis.url,
    logger: silentLogger,
    commandTimeoutMs: 100,
    recheckMs: 100,
    onModeChange: (m) => modes.push(m),
  });
  const c = redis.client();
  try {
    await eventually('redis in use', async () => (kv.mode() === 'redis' ? true : undefined));
    assert.equal(await kv.setIfAbsent('k1', 'v1', 60_000), null);
    assert.equal(await c.get('k1'), 'v1', 'written to Redis');

    // Every other client's commands wait 600 ms: the next one times out, the connection stays up.
    await c.call('CLIENT', 'PAUSE', '600', 'ALL');
    assert.equal(await kv.setIfAbsent('k2', 'v2', 60_000), null, 'answered from memory after the timeout');
    assert.equal(kv.mode(), 'memory');

    await eventually('back to redis once it answers', async () => (kv.mode() === 'redis' ? true : undefined));
    await kv.set('k3', 'v3', 60_000);
    assert.equal(await c.get('k3'), 'v3', 'written to Redis again');
    assert.deepEqual(modes, ['redis', 'memory', 'redis']);
  } finally {
    c.disconnect();
    await kv.close();
  }
});
