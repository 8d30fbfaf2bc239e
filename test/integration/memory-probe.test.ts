// The memory probe (src/platform/process/memory-probe.ts), a test hook used by `npm run bench --
// --memory`: a real payment process answers its supervisor's question with its memory only when
// SAGAS_TEST_HOOKS=1, and writes a heap snapshot when asked; without the hooks nothing listens.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { spawnService, type ManagedProcess } from '../../src/supervisor/supervisor.js';
import type { MemoryUsage } from '../../src/platform/process/memory-probe.js';
import { tempDir } from '../helpers/participants.js';
import { mtlsDir, testTls } from '../helpers/tls.js';

/** The answer of type `type` to the message, or undefined after `ms`. */
function ask<T>(p: ManagedProcess, msg: Record<string, unknown>, ms: number): Promise<T | undefined> {
  return new Promise((resolve) => {
    const onMessage = (m: unknown) => {
      const o = m as { type?: unknown; id?: unknown };
      if (o.type === msg.type && o.id === msg.id) done(m as T);
    };
    const done = (v: T | undefined) => {
      clearTimeout(timer);
      p.child.off('message', onMessage);
      resolve(v);
    };
    const timer = setTimeout(() => done(undefined), ms);
    p.child.on('message', onMessage);
    p.child.send(msg);
  });
}

describe('the memory probe in a real payment process', () => {
  const procs: ManagedProcess[] = [];
  after(() => Promise.all(procs.map((p) => p.kill())));

  const start = async (env: NodeJS.ProcessEnv) => {
    const p = await spawnService('payment', {
      env: {
        PATH: process.env.PATH ?? '',
        DATA_DIR: tempDir('memory-probe'),
        TLS_DIR: mtlsDir(await testTls()),
        PAYMENT_SERVICE_ADDR: '127.0.0.1:0',
        METRICS_ADDR: 'off',
        LOG_LEVEL: 'warn',
        ...env,
      },
    });
    procs.push(p);
    return p;
  };

  test('with SAGAS_TEST_HOOKS=1: its memory, and a heap snapshot', async () => {
    const p = await start({ SAGAS_TEST_HOOKS: '1' });
    const a = await ask<{ usage: MemoryUsage }>(p, { type: 'memory-usage', id: 1 }, 10_000);
    assert.ok(a, 'answered');
    const u = a.usage;
    assert.ok(u.rss > u.heapTotal && u.heapTotal >= u.heapUsed && u.heapUsed > 0, JSON.stringify(u));
    assert.ok((u.spaces.old_space ?? 0) > 0 && (u.spaceSizes.new_space ?? 0) > 0, JSON.stringify(u.spaces));
    assert.equal(typeof u.gc.minor.count, 'number');
    const dir = tempDir('memory-probe-snapshots');
    const s = await ask<{ file?: string }>(p, { type: 'heap-snapshot', id: 2, dir }, 60_000);
    assert.ok(s?.file?.startsWith(dir), JSON.stringify(s));
    const head = fs.readFileSync(s?.file as string, 'utf8').slice(0, 20);
    assert.match(head, /^\{"snapshot":/);
    assert.deepEqual(await p.stop(), { code: 0, signal: null });
  });

  test('without SAGAS_TEST_HOOKS nothing answers', async () => {
    const p = await start({});
    assert.equal(await ask(p, { type: 'memory-usage', id: 3 }, 1_000), undefined);
    assert.deepEqual(await p.stop(), { code: 0, signal: null });
  });
});
