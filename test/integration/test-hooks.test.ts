// Test hooks are off in deployments (issue 11 part 8, DESIGN.md §6b), in a real payment process:
// CRASH_AT (or an arming message over IPC) kills it only with SAGAS_TEST_HOOKS=1. The
// configuration and armCrashPoints in this process: test/unit/test-hooks.test.ts.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { callUnary } from '../../src/platform/grpc/grpc.js';
import { spawnService, type ManagedProcess } from '../../src/supervisor/supervisor.js';
import { PaymentServiceClient } from '../../src/gen/payment/v1/payment.js';
import { tempDir } from '../helpers/participants.js';
import { asGateway, mtlsDir, testTls } from '../helpers/tls.js';
import { armCrash } from '../helpers/crash.js';
import type { ArmCrashMessage } from '../../src/platform/process/crash.js';

describe('a real payment process with CRASH_AT', () => {
  const procs: ManagedProcess[] = [];
  after(() => Promise.all(procs.map((p) => p.kill())));

  const start = async (env: NodeJS.ProcessEnv) => {
    const lines: string[] = [];
    const p = await spawnService('payment', {
      env: {
        PATH: process.env.PATH ?? '',
        DATA_DIR: tempDir('test-hooks'),
        TLS_DIR: mtlsDir(await testTls()),
        PAYMENT_SERVICE_ADDR: '127.0.0.1:0',
        METRICS_ADDR: 'off',
        LOG_LEVEL: 'info',
        ...env,
      },
      onLine: (_n, line) => lines.push(line),
    });
    procs.push(p);
    return { p, lines };
  };
  const charge = async (address: string, orderId: string) => {
    const client = await asGateway(PaymentServiceClient, address, 'payment');
    try {
      return await callUnary(
        client.charge.bind(client),
        { orderId, amountCents: 700 },
        { idempotencyKey: `${orderId}:charge_payment`, timeoutMs: 5_000 },
      );
    } finally {
      client.close();
    }
  };
  const POINT = 'payment.charge.before_commit';

  test('without SAGAS_TEST_HOOKS: the warning at start, and the point passes', async () => {
    const { p, lines } = await start({ CRASH_AT: POINT });
    const warning = lines.filter((l) => l.includes('SAGAS_TEST_HOOKS'));
    assert.equal(warning.length, 1, lines.join('\n'));
    assert.equal((JSON.parse(warning[0] as string) as { level: string }).level, 'warn');
    await charge(p.address, 'hooks-off');
    assert.ok(p.running, 'still running after the point');
    assert.deepEqual(await p.stop(), { code: 0, signal: null });
  });

  test('with SAGAS_TEST_HOOKS=1: it dies at the point', async () => {
    const { p, lines } = await start({ CRASH_AT: POINT, SAGAS_TEST_HOOKS: '1' });
    assert.equal(lines.filter((l) => l.includes('is ignored')).length, 0);
    await assert.rejects(charge(p.address, 'hooks-on'));
    assert.equal((await p.exited).signal, 'SIGKILL');
  });

  test('with SAGAS_TEST_HOOKS=1 a running process is armed over IPC, and dies at the point', async () => {
    const { p } = await start({ SAGAS_TEST_HOOKS: '1' });
    await charge(p.address, 'ipc-before-arming');
    await armCrash(p, POINT);
    await assert.rejects(charge(p.address, 'ipc-armed'));
    assert.equal((await p.exited).signal, 'SIGKILL');
  });

  test('without SAGAS_TEST_HOOKS an arming message is ignored: the point passes', async () => {
    const { p } = await start({});
    const arm: ArmCrashMessage = { type: 'arm-crash', points: [POINT] };
    p.child.send(arm);
    // The message is in the child's IPC socket before the charge's connection is opened, so the
    // child reads it first: armed, the charge would kill it.
    await charge(p.address, 'ipc-hooks-off');
    assert.ok(p.running, 'still running after the point');
    assert.deepEqual(await p.stop(), { code: 0, signal: null });
  });
});
