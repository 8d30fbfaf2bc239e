// The log sink in a real process: a pipe nobody reads does not stall its event loop
// (the sink itself, in this process: test/unit/log-sink.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

test('a process logging into a pipe nobody reads keeps its event loop running, and its lines arrive in order once read', async () => {
  const child = fork(fileURLToPath(new URL('../fixtures/log-burst.ts', import.meta.url)), {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, LINES: '20000' },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  // Not read until the child says it is done: the pipe (64 KiB) fills after a few hundred lines.
  child.stdout!.pause();
  const [done] = (await once(child, 'message')) as [{ worstLagMs: number }];
  // A synchronous destination would have stopped the process until the pipe was read (sonic-boom
  // sleeps 100 ms per EAGAIN): here the loop never stalls for long.
  assert.ok(done.worstLagMs < 100, `event loop stalled ${done.worstLagMs.toFixed(1)} ms`);
  const seen: number[] = [];
  const rl = createInterface({ input: child.stdout! });
  rl.on('line', (l) => seen.push((JSON.parse(l) as { i: number }).i));
  const closed = once(rl, 'close');
  const [code] = await once(child, 'exit');
  await closed;
  assert.equal(code, 0);
  assert.equal(seen.length, 20_000, 'every line arrives');
  assert.ok(
    seen.every((v, i) => v === i),
    'in order',
  );
});
