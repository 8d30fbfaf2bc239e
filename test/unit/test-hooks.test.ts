// Test hooks are off in deployments (issue 11 part 8, DESIGN.md §6b): CRASH_AT is honoured only
// with SAGAS_TEST_HOOKS=1; without it the process ignores it and says so in one warning line.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { credentials } from '@grpc/grpc-js';
import { armCrashPoints, crashPoint } from '../../src/platform/crash.js';
import { ConfigError } from '../../src/platform/errors.js';
import { callUnary } from '../../src/platform/grpc.js';
import { gatewayConfig } from '../../src/gateway/config.js';
import { orderConfig } from '../../src/services/order/config.js';
import { inventoryConfig } from '../../src/services/inventory/config.js';
import { paymentConfig } from '../../src/services/payment/config.js';
import { configCommand } from '../../src/cli/commands/config.js';
import { spawnService, type ManagedProcess } from '../../src/cli/supervisor.js';
import { PaymentServiceClient } from '../../src/gen/payment/v1/payment.js';
import { captureLogger, tempDir } from '../helpers/participants.js';
import { asGateway, mtlsDir, testTls } from '../helpers/tls.js';
import { armCrash } from '../helpers/crash.js';
import type { ArmCrashMessage } from '../../src/platform/crash.js';

const CONFIGS = { gateway: gatewayConfig, order: orderConfig, inventory: inventoryConfig, payment: paymentConfig };

describe('SAGAS_TEST_HOOKS in every process’s configuration', () => {
  test('off unless set to 1; anything else is a configuration error naming it', () => {
    for (const [name, read] of Object.entries(CONFIGS)) {
      assert.equal(read({}).crash.hooks, false, `${name}: off by default`);
      assert.equal(read({ SAGAS_TEST_HOOKS: '0' }).crash.hooks, false, `${name}: 0 is off`);
      assert.equal(read({ SAGAS_TEST_HOOKS: '1' }).crash.hooks, true, `${name}: 1 is on`);
      assert.throws(
        () => read({ SAGAS_TEST_HOOKS: 'yes' }),
        (e: unknown) => e instanceof ConfigError && e.details.variables.some((v) => v.variable === 'SAGAS_TEST_HOOKS'),
        `${name}: a stray value is refused`,
      );
    }
  });

  test('`sagas config` shows it for each process', async () => {
    let text = '';
    const sink = { write: (s: string) => void (text += s) };
    // The command writes to a Writable; only write() is used (a Sink of test/unit/config.test.ts would do too).
    const code = await configCommand.run([], { env: {}, stdout: sink as unknown as NodeJS.WritableStream, stderr: sink as unknown as NodeJS.WritableStream });
    assert.equal(code, 0);
    assert.equal(text.match(/^ {2}SAGAS_TEST_HOOKS +0 +default$/gm)?.length, 4, text);
  });
});

describe('armCrashPoints', () => {
  after(() => armCrashPoints({ points: [], after: 0, hooks: false }, captureLogger().logger));

  test('without SAGAS_TEST_HOOKS=1: CRASH_AT is ignored, with one warning naming the variable', () => {
    const { logger, lines } = captureLogger();
    const armed = armCrashPoints(orderConfig({ CRASH_AT: 'unit.point' }).crash, logger);
    assert.deepEqual(armed, []);
    const warnings = lines.filter((l) => l.level === 'warn');
    assert.equal(warnings.length, 1);
    assert.match(String(warnings[0]?.msg), /CRASH_AT is ignored.*SAGAS_TEST_HOOKS=1/);
    // Reaching the point does nothing (armed, it would SIGKILL this test process).
    crashPoint('unit.point');
  });

  test('with SAGAS_TEST_HOOKS=1: armed, no warning', () => {
    const { logger, lines } = captureLogger();
    const armed = armCrashPoints(orderConfig({ CRASH_AT: 'unit.point', SAGAS_TEST_HOOKS: '1' }).crash, logger);
    assert.deepEqual(armed, ['unit.point']);
    assert.equal(lines.filter((l) => l.level === 'warn').length, 0);
    // Disarmed again before anything could reach it.
    assert.deepEqual(armCrashPoints({ points: [], after: 0, hooks: true }, logger), []);
  });

  test('no CRASH_AT: no warning either way', () => {
    const { logger, lines } = captureLogger();
    assert.deepEqual(armCrashPoints(orderConfig({}).crash, logger), []);
    assert.equal(lines.length, 0);
  });
});

describe('a real payment process with CRASH_AT', () => {
  const procs: ManagedProcess[] = [];
  after(() => Promise.all(procs.map((p) => p.kill())));

  const start = async (env: NodeJS.ProcessEnv) => {
    const lines: string[] = [];
    const p = await spawnService('payment', {
      env: { PATH: process.env.PATH ?? '', DATA_DIR: tempDir('test-hooks'), TLS_DIR: mtlsDir(await testTls()), PAYMENT_SERVICE_ADDR: '127.0.0.1:0', METRICS_ADDR: 'off', LOG_LEVEL: 'info', ...env },
      onLine: (_n, line) => lines.push(line),
    });
    procs.push(p);
    return { p, lines };
  };
  const charge = async (address: string, orderId: string) => {
    const client = await asGateway(PaymentServiceClient, address, 'payment');
    try {
      return await callUnary(client.charge.bind(client), { orderId, amountCents: 700 }, { idempotencyKey: `${orderId}:charge_payment`, timeoutMs: 5_000 });
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
