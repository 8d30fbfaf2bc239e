// Test hooks are off in deployments (issue 11 part 8, DESIGN.md §6b): CRASH_AT is honoured only
// with SAGAS_TEST_HOOKS=1; without it the process ignores it and says so in one warning line.
// A real payment process with CRASH_AT: test/integration/test-hooks.test.ts.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { armCrashPoints, crashPoint } from '../../src/platform/process/crash.js';
import { ConfigError } from '../../src/platform/errors.js';
import { gatewayConfig } from '../../src/gateway/config.js';
import { orderConfig } from '../../src/services/order/config.js';
import { inventoryConfig } from '../../src/services/inventory/config.js';
import { paymentConfig } from '../../src/services/payment/config.js';
import { configCommand } from '../../src/cli/commands/config.js';
import { captureLogger } from '../helpers/participants.js';

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
    const code = await configCommand.run([], {
      env: {},
      stdout: sink as unknown as NodeJS.WritableStream,
      stderr: sink as unknown as NodeJS.WritableStream,
    });
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
