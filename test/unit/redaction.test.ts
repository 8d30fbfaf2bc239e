/**
 * Secrets never shown: redactPassword (URLs: Redis, PostgreSQL, OTLP endpoints) and redactValues
 * (OTEL_EXPORTER_OTLP_HEADERS), for every form a secret can take in them, and the configuration
 * that uses them (settings, error messages). test/e2e/no-secrets-in-logs.test.ts runs the system
 * with such secrets and searches every log line.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { redactPassword, redactValues } from '../../src/platform/config/config-schema.js';
import { GATEWAY_VARIABLES } from '../../src/gateway/config.js';
import { resolveVariables } from '../../src/platform/config/config-schema.js';

/** [url, what must not appear, what it becomes] */
const URLS: [string, string[], string][] = [
  ['redis://:hunter2@redis:6379', ['hunter2'], 'redis://:***@redis:6379'],
  ['redis://default:hunter2@redis:6379/0', ['hunter2'], 'redis://default:***@redis:6379/0'],
  ['rediss://user:hunter2@redis:6380', ['hunter2'], 'rediss://user:***@redis:6380'],
  // `@` and `:` in the password, as typed: the last `@` ends the user info
  ['redis://:hun@ter:2@redis:6379', ['hun', 'ter:2'], 'redis://:***@redis:6379'],
  ['redis://user:hun@ter@redis:6379', ['hun', 'ter'], 'redis://user:***@redis:6379'],
  // percent-encoded
  ['redis://:hun%40ter%3A2@redis:6379', ['hun', 'ter', '%40'], 'redis://:***@redis:6379'],
  ['redis://u:hun%2Fter%23%3F@redis:6379', ['hun', 'ter'], 'redis://u:***@redis:6379'],
  // the query form ioredis also reads
  ['redis://redis:6379?password=hunter2', ['hunter2'], 'redis://redis:6379?password=***'],
  ['redis://redis:6379/1?db=1&password=hun%40ter2', ['hun', 'ter2'], 'redis://redis:6379/1?db=1&password=***'],
  [
    'redis://redis:6379?username=u&sentinelPassword=hunter2',
    ['hunter2'],
    'redis://redis:6379?username=u&sentinelPassword=***',
  ],
  // both at once
  ['redis://:hunter2@redis:6379?password=hunter3', ['hunter2', 'hunter3'], 'redis://:***@redis:6379?password=***'],
  // OTLP endpoints with user info
  ['http://otel:hunter2@collector:4318', ['hunter2'], 'http://otel:***@collector:4318/'],
  ['https://otel:hun@ter2@collector:4318/v1/traces', ['hun', 'ter2'], 'https://otel:***@collector:4318/v1/traces'],
  ['http://collector:4318/v1/traces?api_key=hunter2', ['hunter2'], 'http://collector:4318/v1/traces?api_key=***'],
  ['postgres://sagas:hunter2@db:5432/sagas', ['hunter2'], 'postgres://sagas:***@db:5432/sagas'],
  // nothing to hide: unchanged
  ['redis://redis:6379', [], 'redis://redis:6379'],
  ['redis://redis:6379/2?db=2', [], 'redis://redis:6379/2?db=2'],
];

/** Not URLs WHATWG accepts (shown in "invalid value" messages): masked by pattern, generously. */
const UNPARSABLE: [string, string[]][] = [
  ['redis://:hun/ter@redis:6379', ['hun', 'ter']],
  ['redis://:hun#ter@redis:6379', ['hun', 'ter']],
  ['redis://us er:hunter2@re dis:6379', ['hunter2']],
  ['redis://[bad:hunter2@redis', ['hunter2']],
  ['not a url :hunter2@redis?password=hunter3', ['hunter2', 'hunter3']],
  ['http://bad host/?token=hunter2&x=1', ['hunter2']],
];

describe('redactPassword', () => {
  for (const [url, secrets, want] of URLS) {
    test(url, () => {
      const got = redactPassword(url);
      assert.equal(got, want);
      for (const s of secrets) assert.ok(!got.includes(s), `${s} in ${got}`);
    });
  }
  for (const [url, secrets] of UNPARSABLE) {
    test(`unparsable: ${url}`, () => {
      const got = redactPassword(url);
      for (const s of secrets) assert.ok(!got.includes(s), `${s} in ${got}`);
      assert.match(got, /\*\*\*/);
    });
  }
});

describe('redactValues (OTEL_EXPORTER_OTLP_HEADERS)', () => {
  test('every value masked, keys kept', () => {
    assert.equal(redactValues('authorization=Bearer%20hunter2,x-api-key=hunter3'), 'authorization=***,x-api-key=***');
  });
  test('a value with `=` or an unencoded comma in it', () => {
    const got = redactValues('authorization=Basic aHVudGVyMg==,x-key=hun,ter2');
    assert.equal(got, 'authorization=***,x-key=***,***');
    for (const s of ['aHVudGVyMg', 'hun', 'ter2']) assert.ok(!got.includes(s));
  });
  test('spaces and empty parts', () => {
    assert.equal(redactValues(' a = hunter2 , ,b=hunter3'), ' a =***, ,b=***');
  });
});

describe('the configuration shows no secret', () => {
  const env = {
    REDIS_URL: 'redis://:hun@ter:2@r:6379?password=hunter3',
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:hunter4@collector:4318',
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://otel:hunter5@collector:4318/v1/traces',
    OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://otel:hunter6@collector:4318/v1/metrics',
    OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20hunter7',
  };
  test('in settings', () => {
    const r = resolveVariables(GATEWAY_VARIABLES, env);
    assert.deepEqual(r.invalid, []);
    const shown = JSON.stringify(r.settings);
    assert.doesNotMatch(shown, /hun|ter:2|hunter\d/);
    const byName = Object.fromEntries(r.settings.map((s) => [s.variable, s]));
    assert.equal(byName.OTEL_EXPORTER_OTLP_ENDPOINT?.value, 'http://otel:***@collector:4318/');
    assert.equal(byName.OTEL_EXPORTER_OTLP_ENDPOINT?.secret, true);
    // the process itself still gets the secrets
    assert.equal(r.values?.REDIS_URL, env.REDIS_URL);
  });
  test('in the "invalid" report', () => {
    const r = resolveVariables(GATEWAY_VARIABLES, {
      REDIS_URL: 'redis://:hun/ter@r:6379 x',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'ftp://otel:hunter4@collector',
    });
    assert.deepEqual(r.invalid.map((i) => i.variable).sort(), ['OTEL_EXPORTER_OTLP_ENDPOINT', 'REDIS_URL']);
    assert.doesNotMatch(JSON.stringify(r), /hun|ter@|hunter4/);
  });
});
