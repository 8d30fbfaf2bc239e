import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError } from '../../src/platform/errors.js';
import { gatewayConfig } from '../../src/gateway/config.js';
import {
  DEFAULT_RETENTION_AGES,
  cutoffsAt,
  describeRetention,
  formatAge,
  parseRetention,
  prunesAnything,
  retentionFloorError,
  type RetentionAges,
  type RetentionPolicy,
} from '../../src/saga/retention.js';

const H = 3_600_000;
const D = 24 * H;
const on = (ages: RetentionAges): RetentionPolicy => ({ enabled: true, ages });

describe('parseRetention', () => {
  const cases: Array<[string, RetentionPolicy]> = [
    ['off', { enabled: false }],
    [' OFF ', { enabled: false }],
    ['', on({ COMPLETED: 7 * D, COMPENSATED: 30 * D, RESOLVED: 90 * D })],
    ['COMPLETED=7d,COMPENSATED=30d,RESOLVED=90d', on(DEFAULT_RETENTION_AGES)],
    ['COMPLETED=36h', on({ COMPLETED: 36 * H, COMPENSATED: 30 * D, RESOLVED: 90 * D })],
    ['completed = 2d , resolved=off', on({ COMPLETED: 2 * D, COMPENSATED: 30 * D })],
    ['COMPLETED=off,COMPENSATED=off,RESOLVED=off', on({})],
    ['RESOLVED=365d', on({ COMPLETED: 7 * D, COMPENSATED: 30 * D, RESOLVED: 365 * D })],
    ['COMPENSATED=90m', on({ COMPLETED: 7 * D, COMPENSATED: 90 * 60_000, RESOLVED: 90 * D })],
  ];
  for (const [text, policy] of cases) {
    test(`"${text}"`, () => assert.deepEqual(parseRetention(text), { ok: true, policy }));
  }

  const refused: Array<[string, RegExp]> = [
    ['PARKED=30d', /PARKED is never pruned/],
    ['RUNNING=1d', /RUNNING is not an outcome/],
    ['DONE=1d', /DONE is not an outcome/],
    ['COMPLETED=7d,COMPLETED=8d', /COMPLETED is given twice/],
    ['COMPLETED=soon', /"soon" is not a duration/],
    ['COMPLETED=0d', /not a duration/],
    ['COMPLETED=-1d', /not a duration/],
    ['COMPLETED', /is not OUTCOME=duration/],
    ['COMPLETED=7d,', /"" is not OUTCOME=duration/],
    ['=7d', /is not OUTCOME=duration/],
    ['COMPLETED=7 d', /is not OUTCOME=duration/],
  ];
  for (const [text, error] of refused) {
    test(`"${text}" is refused`, () => {
      const r = parseRetention(text);
      assert.equal(r.ok, false);
      assert.match((r as { error: string }).error, error);
    });
  }
});

describe('retentionFloorError: no outcome kept shorter than the idempotency TTL', () => {
  const cases: Array<[string, RetentionPolicy, number, RegExp | undefined]> = [
    ['defaults vs 24h', on(DEFAULT_RETENTION_AGES), 24 * H, undefined],
    ['equal is enough', on({ COMPLETED: 24 * H }), 24 * H, undefined],
    ['off', { enabled: false }, 365 * D, undefined],
    ['an outcome kept for ever', on({ RESOLVED: 90 * D }), 30 * D, undefined],
    [
      'one short',
      on({ COMPLETED: 12 * H, COMPENSATED: 30 * D }),
      24 * H,
      /^COMPLETED \(12h\) shorter than IDEMPOTENCY_TTL \(1d\)/,
    ],
    [
      'two short',
      on(DEFAULT_RETENTION_AGES),
      45 * D,
      /^COMPLETED \(7d\), COMPENSATED \(30d\) shorter than IDEMPOTENCY_TTL \(45d\).*second order/,
    ],
  ];
  for (const [name, policy, ttl, error] of cases) {
    test(name, () => {
      const got = retentionFloorError(policy, ttl);
      if (error === undefined) assert.equal(got, undefined);
      else assert.match(got ?? '', error);
    });
  }
});

test('formatAge, describeRetention, cutoffsAt, prunesAnything', () => {
  assert.deepEqual([7 * D, 36 * H, 90 * 60_000, 45_000, 1_500, 250].map(formatAge), [
    '7d',
    '36h',
    '90m',
    '45s',
    '1500ms',
    '250ms',
  ]);
  assert.equal(describeRetention(on(DEFAULT_RETENTION_AGES)), 'COMPLETED=7d,COMPENSATED=30d,RESOLVED=90d');
  assert.equal(describeRetention(on({ COMPLETED: 36 * H })), 'COMPLETED=36h,COMPENSATED=off,RESOLVED=off');
  assert.equal(describeRetention({ enabled: false }), 'off');
  assert.deepEqual(cutoffsAt({ COMPLETED: 7 * D, RESOLVED: 90 * D }, 100 * D), { COMPLETED: 93 * D, RESOLVED: 10 * D });
  assert.equal(prunesAnything(on(DEFAULT_RETENTION_AGES)), true);
  assert.equal(prunesAnything(on({})), false);
  assert.equal(prunesAnything({ enabled: false }), false);
});

describe('SAGA_RETENTION in the gateway configuration', () => {
  const configError = (env: Record<string, string>): ConfigError => {
    try {
      gatewayConfig(env);
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      return err;
    }
    assert.fail('expected a ConfigError');
  };

  test('default: COMPLETED 7 days, COMPENSATED 30, RESOLVED 90; off disables', () => {
    assert.deepEqual(gatewayConfig({}).retention, on(DEFAULT_RETENTION_AGES));
    assert.deepEqual(gatewayConfig({ SAGA_RETENTION: 'off' }).retention, { enabled: false });
    assert.deepEqual(gatewayConfig({ SAGA_RETENTION: 'COMPLETED=2d' }).retention, {
      enabled: true,
      ages: { ...DEFAULT_RETENTION_AGES, COMPLETED: 2 * D },
    });
  });

  test('a bad value names the variable and what is wrong', () => {
    const err = configError({ SAGA_RETENTION: 'PARKED=1d' });
    assert.equal(err.details.variable, 'SAGA_RETENTION');
    assert.match(
      err.message,
      /^SAGA_RETENTION: expected off, or OUTCOME=duration .*PARKED is never pruned.*got "PARKED=1d"/,
    );
  });

  test('a retention shorter than IDEMPOTENCY_TTL is refused: a pruned key would let a retry place a second order', () => {
    const err = configError({ SAGA_RETENTION: 'COMPLETED=12h', IDEMPOTENCY_TTL: '24h' });
    assert.equal(err.details.variable, 'SAGA_RETENTION');
    assert.match(err.message, /COMPLETED \(12h\) shorter than IDEMPOTENCY_TTL \(1d\)/);
    const raised = configError({ IDEMPOTENCY_TTL: '8d' });
    assert.match(raised.message, /^SAGA_RETENTION: .*COMPLETED \(7d\) shorter than IDEMPOTENCY_TTL \(8d\)/);
    assert.equal(gatewayConfig({ SAGA_RETENTION: 'COMPLETED=12h', IDEMPOTENCY_TTL: '12h' }).retention.enabled, true);
    assert.equal(gatewayConfig({ SAGA_RETENTION: 'off', IDEMPOTENCY_TTL: '400d' }).retention.enabled, false);
  });
});
