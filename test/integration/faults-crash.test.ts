/**
 * The `crash` kind on each side, in a child process (it dies of SIGKILL, as with kill -9): a
 * participant honouring `x-fault: crash` dies before its handler (the caller sees UNAVAILABLE);
 * the gateway's engine dies at the rule's checkpoint (after_intent: the intent is in the log, no
 * outcome, the saga left for recovery).
 */
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { describe, test } from 'node:test';
import { PaymentServiceClient } from '../../src/gen/payment/v1/payment.js';
import { callRpc, isUnavailable } from '../../src/platform/grpc/grpc.js';
import { encodeDirective } from '../../src/faults/plan.js';
import { SqliteSagaLog } from '../../src/saga/stores/sqlite.js';
import { tempDir } from '../helpers/participants.js';
import { asGateway, mtlsDir, testTls } from '../helpers/tls.js';

const CHILD = new URL('../helpers/fault-crash-child.ts', import.meta.url).pathname;

function start(args: string[]): {
  child: ChildProcess;
  exit: Promise<NodeJS.Signals | number | null>;
  message: Promise<unknown>;
} {
  const child = fork(CHILD, args, { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const exit = new Promise<NodeJS.Signals | number | null>((resolve) =>
    child.on('exit', (code, signal) => resolve(signal ?? code)),
  );
  const message = new Promise<unknown>((resolve) => child.once('message', resolve));
  return { child, exit, message };
}

describe('crash', () => {
  test('at the participant: SIGKILL before the handler; the gateway sees UNAVAILABLE', async () => {
    // Only the gateway's directives are obeyed (mutual TLS, its certificate): the test calls as it.
    const security = await testTls();
    const { child, exit, message } = start(['participant', mtlsDir(security)]);
    try {
      const { address } = (await message) as { address: string };
      const client = await asGateway(PaymentServiceClient, address, 'payment', security);
      const err = await callRpc(
        client,
        'charge',
        { orderId: 'ord_1', amountCents: 100 },
        { timeoutMs: 5_000, idempotencyKey: 'k1', fault: encodeDirective({ kind: 'crash', rule: 'die' }) },
      ).then(
        () => undefined,
        (e: unknown) => e,
      );
      client.close();
      assert.ok(isUnavailable(err), String(err));
      assert.equal(await exit, 'SIGKILL');
    } finally {
      child.kill('SIGKILL');
    }
  });

  test("in the gateway: SIGKILL at the rule's checkpoint (after_intent): the intent is logged, no outcome", async () => {
    const file = path.join(tempDir('fault-crash-'), 'saga.db');
    const { child, exit } = start(['gateway', file]);
    try {
      assert.equal(await exit, 'SIGKILL');
    } finally {
      child.kill('SIGKILL');
    }
    const log = new SqliteSagaLog({ file, synchronous: 'full' });
    try {
      const events = await log.events('saga_crash_1');
      assert.deepEqual(
        events.map((e) => e.type),
        ['SAGA_STARTED', 'STEP_STARTED'],
      );
      assert.equal((await log.get('saga_crash_1'))?.status, 'RUNNING');
    } finally {
      await log.close();
    }
  });
});
