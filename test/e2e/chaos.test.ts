/**
 * `sagas chaos` (issue 13): the scenario files' schema and its errors, and the fast shipped
 * scenarios run end to end against a system the command starts (invariants hold, expectations
 * met). The slow ones (payment-slow, inventory-down, gateway-crash-compensation, redis-down) run
 * with `npm run chaos:all`.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import { parseScenario, ScenarioError } from '../../src/chaos/scenario.js';
import { main } from '../../src/cli/main.js';
import { REPO_ROOT } from '../../src/supervisor/supervisor.js';
import { freshSystem, eventually } from '../helpers/system.js';

const SCENARIOS = path.join(REPO_ROOT, 'scenarios');

function capture() {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (d: Buffer) => (stdout += d.toString()));
  err.on('data', (d: Buffer) => (stderr += d.toString()));
  return { out, err, text: () => ({ stdout, stderr }) };
}

async function sagas(argv: string[]) {
  const c = capture();
  const code = await main(argv, { stdout: c.out, stderr: c.err, env: { ...process.env, LOG_LEVEL: 'warn' } });
  return { code, ...c.text() };
}

const minimal = (extra: string) => `name: t\ndescription: a test\n${extra}`;

describe('scenario files', () => {
  test('every shipped scenario is valid, and the six of issue 13 are there', () => {
    const files = fs.readdirSync(SCENARIOS).filter((f) => f.endsWith('.yaml'));
    const names = files.map((f) => parseScenario(fs.readFileSync(path.join(SCENARIOS, f), 'utf8'), f).name).sort();
    assert.deepEqual(names, [
      'gateway-crash-compensation',
      'inventory-down',
      'order-refuses-compensation',
      'payment-after-effect',
      'payment-slow',
      'redis-down',
    ]);
    for (const f of files)
      assert.equal(
        parseScenario(fs.readFileSync(path.join(SCENARIOS, f), 'utf8'), f).name,
        f.replace(/\.yaml$/, ''),
        `${f}: name as the file`,
      );
  });

  test('defaults: until load, 40 orders, 4 at a time, Redis up, nothing expected', () => {
    const s = parseScenario(minimal('rules: []'));
    assert.equal(s.until, 'load');
    assert.equal(s.orders, 40);
    assert.equal(s.concurrency, 4);
    assert.deepEqual(s.system, { redis: 'up', env: {} });
    assert.deepEqual(s.expect, {});
    assert.deepEqual(s.rules, []);
  });

  test("the rules are the switchboard's: a bad rule is named with its field", () => {
    assert.throws(
      () =>
        parseScenario(minimal('rules:\n  - { id: slow, kind: latency, target: { step: charge_payment } }'), 'x.yaml'),
      (e: unknown) => {
        assert.ok(e instanceof ScenarioError);
        assert.match(e.message, /^x\.yaml: rules: rule 1 \(slow\): latency_ms is required/);
        return true;
      },
    );
    // ...and what they name is what the place-order saga defines.
    assert.throws(
      () => parseScenario(minimal('rules:\n  - { id: ship, kind: error, target: { step: ship_parcel } }'), 'x.yaml'),
      (e: unknown) =>
        e instanceof ScenarioError &&
        /^x\.yaml: rules: rule 1 \(ship\): target\.step "ship_parcel" is not a step \(create_order, /.test(e.message),
    );
  });

  const bad: Array<[string, string, RegExp]> = [
    ['an unknown field', minimal('rules: []\nfaults: []'), /faults is not a field of a scenario/],
    ['a name that is not a slug', 'name: Hello World\ndescription: d\n', /name must be 1-64 lowercase/],
    ['no description', 'name: t\n', /description must say/],
    ['a bad until', minimal('until: forever'), /until must be one of load, settled/],
    ['a zero duration', minimal('duration_s: 0'), /duration_s must be a whole number of seconds/],
    ['a bad redis', minimal('system: { redis: sideways }'), /system.redis must be up or down/],
    [
      'a bad env name',
      minimal('system: { env: { lower: 1 } }'),
      /system.env.lower is not an environment variable name/,
    ],
    ['an unknown expectation', minimal('expect: { happy: true }'), /expect.happy is not a field of expect/],
    ['a bad parked', minimal('expect: { parked: many }'), /expect.parked must be a number of sagas or "some"/],
    ['fired for no rule', minimal('rules: []\nexpect: { fired: { nope: 1 } }'), /expect.fired.nope names no rule/],
    ['an unknown fix', minimal('then: reboot'), /then must be one of retry-parked/],
    [
      'a fix with nothing parked',
      minimal('expect: { parked: 0 }\nthen: retry-parked'),
      /retry-parked needs parked sagas/,
    ],
    ['not YAML', 'name: [', /not YAML or JSON/],
    ['not a mapping', '- 1', /a scenario is a mapping/],
  ];
  for (const [what, text, message] of bad) {
    test(`refused: ${what}`, () => {
      assert.throws(
        () => parseScenario(text),
        (e: unknown) => e instanceof ScenarioError && message.test(e.message),
      );
    });
  }

  test('sagas chaos: an unknown scenario and an invalid file are exit 2 with the reason', async () => {
    const unknown = await sagas(['chaos', 'no-such-scenario']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /no scenario "no-such-scenario".*payment-after-effect/s);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sagas-chaos-test-'));
    try {
      const file = path.join(dir, 'bad.yaml');
      fs.writeFileSync(file, minimal('until: never'));
      const invalid = await sagas(['chaos', file]);
      assert.equal(invalid.code, 2);
      assert.match(invalid.stderr, /sagas chaos: bad\.yaml: until must be one of/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const help = await sagas(['help']);
    assert.match(help.stdout, /chaos/);
  });
});

describe('sagas chaos against a system it starts', () => {
  test(
    'payment-after-effect: charges whose answer was lost are charged once; invariants hold',
    { timeout: 90_000 },
    async () => {
      const r = await sagas(['chaos', 'payment-after-effect', '--orders', '16', '--seed', '7', '--json']);
      const report = JSON.parse(r.stdout);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.equal(report.ok, true);
      assert.deepEqual(report.invariants, { ok: true, violations: [] });
      assert.equal(report.accepted, 16);
      assert.equal(report.parked, 0);
      assert.ok(report.faults[0].fired >= 1, JSON.stringify(report.faults));
      assert.ok(report.retries >= report.faults[0].fired, 'each lost answer is retried');
    },
  );

  test(
    'order-refuses-compensation: sagas PARK, the fault goes, retry of each → COMPENSATED; invariants hold',
    { timeout: 90_000 },
    async () => {
      const r = await sagas(['chaos', 'order-refuses-compensation', '--orders', '12', '--seed', '3', '--json']);
      const report = JSON.parse(r.stdout);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.ok(report.parked >= 1, JSON.stringify(report));
      assert.deepEqual(report.fix, { action: 'retry', sagas: report.parked, outcomes: { COMPENSATED: report.parked } });
      assert.equal(report.faults[0].fired, report.parked);
      assert.deepEqual(report.invariants, { ok: true, violations: [] });
    },
  );
});

describe('sagas chaos against a running system (--url)', () => {
  test(
    "payment-after-effect on a system with orders of its own: only this run's sagas and stock deltas are judged",
    { timeout: 90_000 },
    async () => {
      const sys = await freshSystem({ FAULTS_ENABLED: '1' });
      try {
        const earlier = await sys.api(
          'POST',
          '/orders',
          { customer_id: 'before', items: [{ product_id: 'prod_1', quantity: 2, price: 10 }] },
          { Prefer: 'wait=10' },
        );
        assert.equal(earlier.status, 201);
        await eventually('the earlier order to complete', async () =>
          (await sys.api('GET', `/orders/${earlier.body.id}`)).body.status === 'CONFIRMED' ? true : undefined,
        );
        const r = await sagas([
          'chaos',
          'payment-after-effect',
          '--url',
          sys.adminUrl as string,
          '--api-url',
          sys.url,
          '--orders',
          '8',
          '--seed',
          '5',
          '--json',
        ]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        const report = JSON.parse(r.stdout);
        assert.equal(report.system, 'running');
        assert.equal(report.accepted, 8);
        assert.deepEqual(report.invariants, { ok: true, violations: [] });
        // The runner left the switchboard empty.
        assert.deepEqual((await sys.admin('GET', '/api/faults')).body.rules, []);
      } finally {
        await sys.stop();
      }
    },
  );

  test(
    'a scenario that takes Redis down needs a system the runner starts; a system without FAULTS_ENABLED is named',
    { timeout: 60_000 },
    async () => {
      const sys = await freshSystem();
      try {
        const redis = await sagas(['chaos', 'redis-down', '--url', sys.adminUrl as string, '--api-url', sys.url]);
        assert.equal(redis.code, 1);
        assert.match(redis.stderr, /takes Redis down: it needs a system the runner starts/);
        const off = await sagas([
          'chaos',
          'payment-after-effect',
          '--url',
          sys.adminUrl as string,
          '--api-url',
          sys.url,
          '--orders',
          '2',
        ]);
        assert.equal(off.code, 1);
        assert.match(off.stderr, /FAULTS_ENABLED=1/);
      } finally {
        await sys.stop();
      }
    },
  );
});
