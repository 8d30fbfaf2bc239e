import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Writable } from 'node:stream';
import { ConfigError } from '../../src/platform/errors.js';
import { readVariables, resolveVariables } from '../../src/platform/config/config-schema.js';
import { addr, dataDir, duration, sagaLogSettings } from '../../src/platform/config/config.js';
import { gatewayConfig, GATEWAY_VARIABLES } from '../../src/gateway/config.js';
import { orderConfig, ORDER_VARIABLES } from '../../src/services/order/config.js';
import { inventoryConfig, INVENTORY_VARIABLES } from '../../src/services/inventory/config.js';
import { paymentConfig, PAYMENT_VARIABLES } from '../../src/services/payment/config.js';
import { configCommand } from '../../src/cli/commands/config.js';
import { UsageError } from '../../src/cli/command.js';
import { DEFAULT_POLICIES } from '../../src/saga/definition.js';

/** The ConfigError `fn` throws (failing on anything else). */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.equal(err.code, 'invalid_config');
    return err;
  }
  assert.fail('expected a ConfigError');
}

const invalidNames = (fn: () => unknown) => configError(fn).details.variables.map((v) => v.variable);

describe('defaults per process', () => {
  test('gateway', () => {
    const c = gatewayConfig({});
    assert.deepEqual(c.http, { host: '0.0.0.0', port: 8080 });
    assert.deepEqual(c.participants, {
      order: ['127.0.0.1:9090'],
      inventory: ['127.0.0.1:9092'],
      payment: ['127.0.0.1:9091'],
    });
    assert.deepEqual(c.sagaLog, { kind: 'sqlite', file: path.resolve('data', 'saga.db'), synchronous: 'normal' });
    assert.equal(c.leaseMs, 15_000);
    assert.equal(c.recoveryIntervalMs, 2_500);
    assert.deepEqual(c.policies, DEFAULT_POLICIES);
    assert.equal(c.maxWaitSeconds, 60);
    assert.equal(c.shutdownGraceMs, 5_000);
    assert.equal(c.pricing, 'client', "the original's behaviour: prices as the client sends them");
    assert.deepEqual(c.redis, { url: 'redis://127.0.0.1:6379', keyPrefix: 'ecommerce-sagas' });
    assert.equal(c.idempotencyTtlMs, 24 * 3_600_000);
    assert.equal(c.idempotencyLockMs, 10_000);
    assert.deepEqual(c.logging, { level: 'info' });
    assert.deepEqual(c.telemetry, { serviceName: 'gateway', resourceAttributes: {}, headers: {} });
    assert.deepEqual(c.crash, { points: [], after: 0, hooks: false });
    assert.equal(c.limits.ratePerMinute, 600, 'a rate limit per client address, on by default');
    assert.equal(gatewayConfig({ RATE_LIMIT_PER_MINUTE: '0' }).limits.ratePerMinute, 0, '0 turns it off');
  });

  test('order, inventory, payment', () => {
    const o = orderConfig({});
    assert.deepEqual(o.listen, { host: '127.0.0.1', port: 9090 });
    assert.equal(o.dataDir, path.resolve('data'));
    assert.equal(o.synchronous, 'normal');
    assert.equal(o.inboxFastPathTtlMs, 10 * 60_000);
    assert.deepEqual(o.metrics, { host: '127.0.0.1', port: 9464 });
    assert.equal(o.telemetry.serviceName, 'order');
    const i = inventoryConfig({});
    assert.deepEqual(i.listen, { host: '127.0.0.1', port: 9092 });
    assert.deepEqual(i.metrics, { host: '127.0.0.1', port: 9465 });
    assert.equal(i.catalogFile, undefined);
    const p = paymentConfig({});
    assert.deepEqual(p.listen, { host: '127.0.0.1', port: 9091 });
    assert.deepEqual(p.metrics, { host: '127.0.0.1', port: 9466 });
    assert.equal(p.chargeLimitCents, 50_000);
  });

  test('an empty variable is an unset one', () => {
    assert.deepEqual(gatewayConfig({ HTTP_ADDR: '', SAGA_LEASE_MS: '  ' }).http, { host: '0.0.0.0', port: 8080 });
  });

  test('each process lists only what it reads', () => {
    assert.ok('SAGA_LEASE_MS' in GATEWAY_VARIABLES && !('METRICS_ADDR' in GATEWAY_VARIABLES));
    assert.ok(
      !('SAGA_LEASE_MS' in ORDER_VARIABLES) && 'METRICS_ADDR' in ORDER_VARIABLES && !('HTTP_ADDR' in ORDER_VARIABLES),
    );
    assert.ok('INVENTORY_CATALOG' in INVENTORY_VARIABLES && !('INVENTORY_CATALOG' in PAYMENT_VARIABLES));
    assert.ok('PAYMENT_CHARGE_LIMIT_CENTS' in PAYMENT_VARIABLES && !('PAYMENT_CHARGE_LIMIT_CENTS' in ORDER_VARIABLES));
  });
});

describe('values are typed and converted', () => {
  test('addresses, durations, integers, words, derived defaults', () => {
    const c = gatewayConfig({
      HTTP_ADDR: '[::1]:0',
      PAYMENT_SERVICE_ADDR: 'pay:7000',
      IDEMPOTENCY_TTL: '90',
      IDEMPOTENCY_LOCK_TTL: '250ms',
      SAGA_LEASE_MS: '6000',
      LOG_LEVEL: 'WARN',
      DATA_DIR: '/tmp/sagas-x',
      SAGA_LOG_SYNC: 'Full',
    });
    assert.deepEqual(c.http, { host: '::1', port: 0 });
    assert.deepEqual(c.participants.payment, ['pay:7000']);
    assert.equal(c.idempotencyTtlMs, 90_000);
    assert.equal(c.idempotencyLockMs, 250);
    assert.equal(c.recoveryIntervalMs, 1_000, 'lease / 6');
    assert.equal(c.logging.level, 'warn');
    assert.deepEqual(c.sagaLog, { kind: 'sqlite', file: '/tmp/sagas-x/saga.db', synchronous: 'full' });
  });

  test('PRICING: client or catalog, any case', () => {
    assert.equal(gatewayConfig({ PRICING: 'catalog' }).pricing, 'catalog');
    assert.equal(gatewayConfig({ PRICING: 'Client' }).pricing, 'client');
    assert.equal(gatewayConfig({ PRICING: '' }).pricing, 'client');
    assert.ok(!('PRICING' in INVENTORY_VARIABLES), 'only the gateway reads it');
  });

  test('a PostgreSQL saga log', () => {
    const c = gatewayConfig({ SAGA_LOG_URL: 'postgres://u:pw@db:5432/sagas', SAGA_LOG_POOL_SIZE: '4' });
    assert.deepEqual(c.sagaLog, {
      kind: 'postgres',
      url: 'postgres://u:pw@db:5432/sagas',
      poolSize: 4,
      synchronousCommit: 'on',
      timeoutMs: 10_000,
    });
    const quick = gatewayConfig({ SAGA_LOG_URL: 'postgres://db/sagas', SAGA_LOG_TIMEOUT_MS: '2000' }).sagaLog;
    assert.equal(quick.kind === 'postgres' && quick.timeoutMs, 2_000);
    assert.throws(
      () => gatewayConfig({ SAGA_LOG_URL: 'postgres://db/sagas', SAGA_LOG_TIMEOUT_MS: '50' }),
      /SAGA_LOG_TIMEOUT_MS/,
    );
  });

  test('telemetry: endpoints per signal, protocols, headers, resource attributes', () => {
    const t = orderConfig({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/protobuf',
      OTEL_EXPORTER_OTLP_HEADERS: 'api-key=s%3Dcret,x-team=sagas',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=test,service.name=from-attrs',
      OTEL_BSP_SCHEDULE_DELAY: '100',
    }).telemetry;
    assert.deepEqual(t.traces, { url: 'http://collector:4318/v1/traces', protocol: 'http/json', scheduleDelayMs: 100 });
    assert.deepEqual(t.metrics, {
      url: 'http://collector:4318/v1/metrics',
      protocol: 'http/protobuf',
      intervalMs: 60_000,
    });
    assert.deepEqual(t.headers, { 'api-key': 's=cret', 'x-team': 'sagas' });
    assert.equal(t.serviceName, 'from-attrs', 'OTEL_RESOURCE_ATTRIBUTES may name the service');
    assert.equal(
      orderConfig({ OTEL_SERVICE_NAME: 'ord', OTEL_RESOURCE_ATTRIBUTES: 'service.name=x' }).telemetry.serviceName,
      'ord',
    );
    const own = orderConfig({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://t.example/traces' }).telemetry;
    assert.equal(own.traces?.url, 'https://t.example/traces', "a signal's own endpoint is used as written");
    assert.equal(own.metrics, undefined);
    assert.equal(
      orderConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' }).telemetry.traces,
      undefined,
    );
  });

  test('METRICS_ADDR off, CRASH_AT list, catalog path, charge limit', () => {
    assert.equal(orderConfig({ METRICS_ADDR: 'OFF' }).metrics, 'off');
    assert.deepEqual(orderConfig({ CRASH_AT: 'a.b, c.d,', CRASH_AFTER: '2' }).crash, {
      points: ['a.b', 'c.d'],
      after: 2,
      hooks: false,
    });
    assert.equal(orderConfig({ CRASH_AT: 'a.b', SAGAS_TEST_HOOKS: '1' }).crash.hooks, true);
    assert.equal(inventoryConfig({ INVENTORY_CATALOG: 'cat.json' }).catalogFile, path.resolve('cat.json'));
    assert.equal(paymentConfig({ PAYMENT_CHARGE_LIMIT_CENTS: '0' }).chargeLimitCents, 0);
  });

  test('the single-variable helpers other modules use still work', () => {
    assert.deepEqual(addr({ ORDER_SERVICE_ADDR: ':1' }, 'ORDER_SERVICE_ADDR'), { host: '0.0.0.0', port: 1 });
    assert.equal(dataDir({ DATA_DIR: '/d' }), '/d');
    assert.equal(duration({ X: '2m' }, 'X', 1), 120_000);
    assert.equal(duration({}, 'X', 1234), 1234);
    assert.deepEqual(sagaLogSettings({ DATA_DIR: '/d' }), {
      kind: 'sqlite',
      file: '/d/saga.db',
      synchronous: 'normal',
    });
    assert.equal(configError(() => addr({ HTTP_ADDR: 'nope' }, 'HTTP_ADDR')).details.variable, 'HTTP_ADDR');
  });
});

describe('each kind of bad value', () => {
  // [variable, bad value, message, the value as shown when it is a secret's (redacted)]
  const cases: [string, string, RegExp, string?][] = [
    ['HTTP_ADDR', 'x', /expected host:port/],
    ['HTTP_ADDR', ':70000', /expected host:port/],
    ['SAGA_LEASE_MS', 'abc', /expected an integer >= 500/],
    ['SAGA_LEASE_MS', '0x300', /expected an integer >= 500/],
    ['SAGA_LEASE_MS', '12.5', /expected an integer >= 500/],
    ['SAGA_LEASE_MS', '100', /expected an integer >= 500/],
    ['PREFER_WAIT_MAX_SECONDS', '3601', /expected an integer from 0 to 3600/],
    ['IDEMPOTENCY_TTL', 'soon', /expected a duration/],
    ['IDEMPOTENCY_TTL', '0s', /expected a duration/],
    ['LOG_LEVEL', 'loud', /expected one of trace, debug, info, warn, error, fatal, silent/],
    ['SAGA_LOG_SYNC', 'sometimes', /expected one of normal, full/],
    ['SAGA_LOG_URL', 'mysql://db/x', /expected postgres:\/\//],
    ['SAGA_LOG_URL', 'postgres://[bad/x', /expected postgres:\/\//],
    ['REDIS_URL', 'localhost:6379', /expected redis:\/\//],
    ['REDIS_KEY_PREFIX', 'has space', /1-64 characters/],
    ['OTEL_EXPORTER_OTLP_ENDPOINT', 'collector:4318', /http\(s\):\/\/ URL/],
    ['OTEL_EXPORTER_OTLP_PROTOCOL', 'grpc', /expected one of http\/protobuf, http\/json/],
    ['OTEL_EXPORTER_OTLP_HEADERS', 'no-equals-sign', /key=value pairs/, '***'], // a token pasted without its key stays hidden
    ['OTEL_SDK_DISABLED', 'yes', /expected true or false/],
    ['CRASH_AFTER', '-1', /expected an integer >= 0/],
    ['PRICING', 'server', /expected one of client, catalog/],
  ];
  for (const [variable, value, expected, shown = value] of cases) {
    test(`${variable}=${JSON.stringify(value)}`, () => {
      const err = configError(() => gatewayConfig({ [variable]: value }));
      assert.deepEqual(
        err.details.variables.map((v) => v.variable),
        [variable],
      );
      assert.equal(err.details.variable, variable);
      assert.equal(err.details.variables[0]?.got, shown);
      assert.match(err.message, expected);
      assert.ok(err.message.startsWith(`${variable}: expected `), err.message);
      assert.ok(err.message.endsWith(`got ${JSON.stringify(shown)}`), err.message);
    });
  }

  test('participants: METRICS_ADDR, SERVICE_DB_SYNC, INBOX_FAST_PATH_TTL, PAYMENT_CHARGE_LIMIT_CENTS', () => {
    assert.deepEqual(
      invalidNames(() => orderConfig({ METRICS_ADDR: 'on', SERVICE_DB_SYNC: 'x', INBOX_FAST_PATH_TTL: '5 minutes' })),
      ['SERVICE_DB_SYNC', 'INBOX_FAST_PATH_TTL', 'METRICS_ADDR'],
    );
    assert.deepEqual(
      invalidNames(() => paymentConfig({ PAYMENT_CHARGE_LIMIT_CENTS: '-5' })),
      ['PAYMENT_CHARGE_LIMIT_CENTS'],
    );
    assert.deepEqual(
      invalidNames(() => paymentConfig({ PAYMENT_CHARGE_LIMIT_CENTS: '100000000000' })),
      ['PAYMENT_CHARGE_LIMIT_CENTS'],
    );
    // A process does not judge a variable it does not read.
    assert.doesNotThrow(() => orderConfig({ SAGA_LEASE_MS: 'abc', PAYMENT_CHARGE_LIMIT_CENTS: 'x' }));
  });
});

describe('several bad values are reported together', () => {
  test('every invalid variable, in schema order, with its expected form', () => {
    const err = configError(() =>
      gatewayConfig({
        HTTP_ADDR: 'x',
        SAGA_LEASE_MS: 'abc',
        LOG_LEVEL: 'loud',
        IDEMPOTENCY_TTL: '0',
        ORDER_SERVICE_ADDR: '127.0.0.1:9090',
      }),
    );
    assert.deepEqual(
      err.details.variables.map((v) => v.variable),
      ['HTTP_ADDR', 'SAGA_LEASE_MS', 'IDEMPOTENCY_TTL', 'LOG_LEVEL'],
    );
    assert.equal(err.details.variable, 'HTTP_ADDR', 'the first, for callers that want one');
    assert.match(
      err.message,
      /^HTTP_ADDR: expected host:port .*, got "x"; SAGA_LEASE_MS: expected an integer >= 500, got "abc"; IDEMPOTENCY_TTL: expected .*; LOG_LEVEL: expected one of /,
    );
  });

  test('resolveVariables reports without throwing, and leaves no typed values', () => {
    const r = resolveVariables(PAYMENT_VARIABLES, { PAYMENT_SERVICE_ADDR: 'x', PAYMENT_CHARGE_LIMIT_CENTS: 'y' });
    assert.equal(r.values, undefined);
    assert.deepEqual(
      r.invalid.map((i) => i.variable),
      ['PAYMENT_SERVICE_ADDR', 'PAYMENT_CHARGE_LIMIT_CENTS'],
    );
  });

  test('the older single-variable form of ConfigError still carries details.variables', () => {
    const err = new ConfigError('X', 'must be set');
    assert.equal(err.message, 'X: must be set');
    assert.deepEqual(err.details, { variable: 'X', variables: [{ variable: 'X', expected: 'must be set' }] });
  });
});

describe('secrets are redacted', () => {
  test('in error messages', () => {
    const err = configError(() =>
      gatewayConfig({ SAGA_LOG_URL: 'mysql://u:hunter2@db/x', REDIS_URL: 'http://u:hunter3@r:1' }),
    );
    assert.doesNotMatch(JSON.stringify(err.details) + err.message, /hunter/);
    assert.match(err.message, /u:\*\*\*@db/);
  });

  test('in settings: URL passwords and OTel header values', () => {
    const r = resolveVariables(GATEWAY_VARIABLES, {
      SAGA_LOG_URL: 'postgres://sagas:hunter2@db:5432/sagas',
      REDIS_URL: 'redis://:hunter3@r:6379',
      OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20hunter4,x-a=b',
    });
    const byName = Object.fromEntries(r.settings.map((s) => [s.variable, s]));
    assert.equal(byName.SAGA_LOG_URL?.value, 'postgres://sagas:***@db:5432/sagas');
    assert.equal(byName.REDIS_URL?.value, 'redis://:***@r:6379');
    assert.equal(byName.OTEL_EXPORTER_OTLP_HEADERS?.value, 'authorization=***,x-a=***');
    assert.ok(byName.SAGA_LOG_URL?.secret && byName.REDIS_URL?.secret && byName.OTEL_EXPORTER_OTLP_HEADERS?.secret);
    assert.equal(byName.HTTP_ADDR?.secret, false);
    assert.doesNotMatch(JSON.stringify(r.settings), /hunter/);
    // The typed values keep the secret: the process needs it.
    assert.equal(
      readVariables(GATEWAY_VARIABLES, { REDIS_URL: 'redis://:hunter3@r:6379' }).REDIS_URL,
      'redis://:hunter3@r:6379',
    );
  });
});

class Sink extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

async function sagasConfig(argv: string[], env: NodeJS.ProcessEnv) {
  const stdout = new Sink();
  const stderr = new Sink();
  const code = await configCommand.run(argv, { env, stdout, stderr });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

describe('sagas config', () => {
  test('text: every process, each variable with its value and source; secrets redacted', async () => {
    const r = await sagasConfig([], { SAGA_LEASE_MS: '6000', REDIS_URL: 'redis://u:hunter2@r:6379' });
    assert.equal(r.code, 0);
    assert.equal(r.stderr, '');
    for (const p of ['gateway', 'order', 'inventory', 'payment']) assert.match(r.stdout, new RegExp(`^${p}$`, 'm'));
    assert.match(r.stdout, /^ {2}SAGA_LEASE_MS +6000 +env$/m);
    assert.match(r.stdout, /^ {2}SAGA_RECOVERY_INTERVAL_MS +1000 +default$/m);
    assert.match(r.stdout, /^ {2}HTTP_ADDR +:8080 +default$/m);
    assert.match(r.stdout, /^ {2}REDIS_URL +redis:\/\/u:\*\*\*@r:6379 +env$/m);
    assert.match(r.stdout, /^ {2}PAYMENT_CHARGE_LIMIT_CENTS +50000 +default$/m);
    assert.doesNotMatch(r.stdout, /hunter2/);
  });

  test('one process', async () => {
    const r = await sagasConfig(['payment'], {});
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^payment$/m);
    assert.doesNotMatch(r.stdout, /^gateway$/m);
    assert.doesNotMatch(r.stdout, /SAGA_LEASE_MS/);
  });

  test('--json: values, sources, expected forms, secrets flagged and redacted', async () => {
    const r = await sagasConfig(['gateway', '--json'], {
      SAGA_LOG_URL: 'postgres://s:hunter2@db/s',
      OTEL_EXPORTER_OTLP_HEADERS: 'api-key=hunter3',
    });
    assert.equal(r.code, 0);
    const body = JSON.parse(r.stdout) as {
      valid: boolean;
      processes: {
        process: string;
        valid: boolean;
        variables: {
          variable: string;
          value?: string;
          source: string;
          expected: string;
          secret: boolean;
          valid: boolean;
        }[];
        invalid: unknown[];
      }[];
    };
    assert.equal(body.valid, true);
    assert.deepEqual(
      body.processes.map((p) => p.process),
      ['gateway'],
    );
    const vars = Object.fromEntries((body.processes[0]?.variables ?? []).map((v) => [v.variable, v]));
    assert.deepEqual(vars.SAGA_LOG_URL, {
      variable: 'SAGA_LOG_URL',
      value: 'postgres://s:***@db/s',
      source: 'env',
      expected: 'postgres://user[:password]@host[:port]/database',
      secret: true,
      valid: true,
    });
    assert.equal(vars.OTEL_EXPORTER_OTLP_HEADERS?.value, 'api-key=***');
    assert.equal(vars.SAGA_LEASE_MS?.value, '15000');
    assert.equal(vars.SAGA_LEASE_MS?.source, 'default');
    assert.equal(vars.SAGA_LEASE_MS?.expected, 'an integer >= 500');
    assert.doesNotMatch(r.stdout, /hunter/);
  });

  test('an invalid configuration: exit 2, every invalid variable named (text and --json)', async () => {
    const env = { HTTP_ADDR: 'x', SAGA_LEASE_MS: 'abc', PAYMENT_CHARGE_LIMIT_CENTS: 'lots' };
    const text = await sagasConfig([], env);
    assert.equal(text.code, 2);
    assert.match(
      text.stderr,
      /invalid configuration of gateway: HTTP_ADDR: expected host:port.*, got "x"; SAGA_LEASE_MS: expected an integer >= 500, got "abc"/,
    );
    assert.match(
      text.stderr,
      /invalid configuration of payment: PAYMENT_CHARGE_LIMIT_CENTS: expected an integer from 0 to/,
    );
    assert.doesNotMatch(text.stderr, /of order|of inventory/);
    assert.match(text.stdout, /^gateway \(invalid\)$/m);
    assert.match(text.stdout, /^ {2}HTTP_ADDR +x +env, INVALID$/m);

    const json = await sagasConfig(['--json'], env);
    assert.equal(json.code, 2);
    const body = JSON.parse(json.stdout) as {
      valid: boolean;
      processes: { process: string; valid: boolean; invalid: { variable: string; expected: string; got: string }[] }[];
    };
    assert.equal(body.valid, false);
    assert.deepEqual(
      body.processes.map((p) => [p.process, p.valid]),
      [
        ['gateway', false],
        ['order', true],
        ['inventory', true],
        ['payment', false],
      ],
    );
    assert.deepEqual(
      body.processes[0]?.invalid.map((i) => i.variable),
      ['HTTP_ADDR', 'SAGA_LEASE_MS'],
    );
  });

  test('--help, and a wrong command line is a UsageError', async () => {
    const help = await sagasConfig(['--help'], {});
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: sagas config \[gateway\|order\|inventory\|payment\] \[--json\]/);
    await assert.rejects(
      sagasConfig(['shipping'], {}),
      (e: unknown) => e instanceof UsageError && /unknown process "shipping"/.test(e.message),
    );
    await assert.rejects(sagasConfig(['--yaml'], {}), UsageError);
    await assert.rejects(sagasConfig(['order', 'payment'], {}), UsageError);
  });
});
