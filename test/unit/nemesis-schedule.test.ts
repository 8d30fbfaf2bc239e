/**
 * The nemesis's schedule (issue 21 item 5) is a pure function of its seed and options: the same
 * seed replays the same fault plans, kills, outages, operator sweeps and order mix; every plan is
 * one the switchboard accepts; kills never overlap on one target; a short run still kills every
 * kind of process once and keeps a participant down past its budget. Also the fault tally and the
 * carry-over of count limits across a gateway's restarts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { validateFaultPlan } from '../../src/faults/plan.js';
import { PLACE_ORDER_DEFINITION } from '../../src/gateway/place-order.js';
import { vocabularyOf } from '../../src/faults/vocabulary.js';
import { carryOver, FaultTally } from '../../src/chaos/nemesis-faults.js';
import {
  formatDuration,
  nemesisOrder,
  nemesisSchedule,
  parseDuration,
  type NemesisEvent,
  type NemesisScheduleOptions,
} from '../../src/chaos/nemesis-schedule.js';

const PLACE_ORDER_VOCABULARY = vocabularyOf([PLACE_ORDER_DEFINITION]);

const STARTED = ['gateway-1', 'gateway-2', 'gateway-3', 'order', 'inventory', 'payment', 'redis'];
const opts = (seed: number, over: Partial<NemesisScheduleOptions> = {}): NemesisScheduleOptions => ({
  seed,
  durationMs: 300_000,
  killable: STARTED,
  longOutageMs: 11_500,
  ...over,
});

describe('nemesis schedule', () => {
  test('the same seed and options give the same schedule and order mix; another seed another', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        fc.integer({ min: 5_000, max: 600_000 }),
        fc.boolean(),
        (seed, durationMs, running) => {
          const o = opts(seed, { durationMs, killable: running ? [] : STARTED });
          assert.deepEqual(nemesisSchedule(o), nemesisSchedule(o));
          for (const i of [0, 1, 17, 999]) assert.deepEqual(nemesisOrder(seed, i), nemesisOrder(seed, i));
        },
      ),
      { numRuns: 50 },
    );
    assert.notDeepEqual(nemesisSchedule(opts(1)).events, nemesisSchedule(opts(2)).events);
    assert.notDeepEqual(
      Array.from({ length: 50 }, (_, i) => nemesisOrder(1, i)),
      Array.from({ length: 50 }, (_, i) => nemesisOrder(2, i)),
    );
  });

  test('the schedule does not depend on the clock or Math.random', () => {
    const random = Math.random;
    const now = Date.now;
    try {
      const a = nemesisSchedule(opts(42));
      Math.random = () => 0.5;
      Date.now = () => 0;
      assert.deepEqual(nemesisSchedule(opts(42)), a);
    } finally {
      Math.random = random;
      Date.now = now;
    }
  });

  test('a longer run begins as the shorter one did (each concern draws from its own stream)', () => {
    const short = nemesisSchedule(opts(7, { durationMs: 60_000 })).events;
    const long = nemesisSchedule(opts(7, { durationMs: 600_000 })).events.filter((e) => e.at < 60_000);
    // Up to the shorter run's end, except the clear of a plan the shorter run cut at its end.
    const cutPlans = new Set(short.flatMap((e) => (e.kind === 'faults_clear' && e.at === 60_000 ? [e.plan] : [])));
    const kept = (e: NemesisEvent) => !(e.kind === 'faults_clear' && cutPlans.has(e.plan));
    assert.deepEqual(
      short.filter(kept).map((e) => JSON.stringify(e)),
      long.filter(kept).map((e) => JSON.stringify(e)),
    );
  });

  test('events are in time order, within the run; every fault plan is valid, transient, and cleared', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.boolean(), (seed, running) => {
        const s = nemesisSchedule(opts(seed, { killable: running ? [] : STARTED }));
        const ats = s.events.map((e) => e.at);
        assert.deepEqual(
          ats,
          [...ats].sort((a, b) => a - b),
        );
        assert.ok(ats.every((t) => t >= 0 && t <= s.durationMs));
        const plans = s.events.filter((e) => e.kind === 'faults');
        assert.ok(plans.length >= 5, `a 5-minute run has several plans, got ${plans.length}`);
        for (const p of plans) {
          const rules = validateFaultPlan({ rules: p.rules }, PLACE_ORDER_VOCABULARY);
          assert.ok(
            rules.every((r) => r.limit?.count !== undefined && r.limit.count >= 1),
            'every rule has a count limit',
          );
          assert.ok(rules.every((r) => r.kind !== 'latency' || (r.latency_ms as number) <= 5000));
          if (running)
            assert.ok(
              rules.every((r) => r.kind !== 'crash'),
              'no crash on a system whose processes nobody here restarts',
            );
          assert.equal(
            s.events.filter((e) => e.kind === 'faults_clear' && e.plan === p.plan).length,
            1,
            `plan ${p.plan} is cleared once`,
          );
        }
        // One plan at a time: each is cleared before the next goes on.
        let on: number | null = null;
        for (const e of s.events) {
          if (e.kind === 'faults') {
            assert.equal(on, null, `plan ${e.plan} while plan ${on} is on`);
            on = e.plan;
          } else if (e.kind === 'faults_clear') on = null;
        }
      }),
      { numRuns: 40 },
    );
  });

  test('over many seeds the plans use every kind, both phases, steps, methods and whole participants', () => {
    const rules = Array.from({ length: 30 }, (_, seed) =>
      nemesisSchedule(opts(seed)).events.flatMap((e) => (e.kind === 'faults' ? e.rules : [])),
    );
    const all = rules.flat();
    assert.deepEqual(
      new Set(all.map((r) => r.kind)),
      new Set(['after_effect', 'uncertain', 'error', 'latency', 'crash']),
    );
    assert.deepEqual(new Set(all.flatMap((r) => (r.phase ? [r.phase] : []))), new Set(['action', 'compensation']));
    assert.ok(all.some((r) => r.target.step !== undefined));
    assert.ok(all.some((r) => r.target.method !== undefined));
    assert.ok(all.some((r) => r.target.participant !== undefined && r.target.method === undefined));
    assert.ok(
      all.some((r) => r.kind === 'latency' && (r.latency_ms as number) >= 2000),
      'latency of several seconds',
    );
    assert.ok(
      all.some((r) => r.kind === 'crash' && r.crash_point !== undefined),
      'a gateway crash at a checkpoint',
    );
  });

  test('kills: every process once in the first round, a participant kept down past its budget, never two kills of one target at once', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), (seed) => {
        const s = nemesisSchedule(opts(seed, { durationMs: 90_000 }));
        const kills = s.events.filter((e): e is Extract<NemesisEvent, { kind: 'kill' }> => e.kind === 'kill');
        assert.deepEqual(
          new Set(kills.slice(0, STARTED.length).map((k) => k.target)),
          new Set(STARTED),
          'the first round kills each once',
        );
        const long = kills.filter((k) => k.long);
        assert.ok(
          long.length >= 1 &&
            long.every((k) => ['order', 'inventory', 'payment'].includes(k.target) && k.downMs >= 11_500),
        );
        assert.ok(kills.filter((k) => !k.long).every((k) => k.downMs <= 3000));
        for (const t of STARTED) {
          const mine = kills.filter((k) => k.target === t);
          for (let i = 1; i < mine.length; i++) {
            const prev = mine[i - 1] as (typeof mine)[number];
            assert.ok((mine[i] as (typeof mine)[number]).at >= prev.at + prev.downMs, `${t} killed again while down`);
          }
        }
      }),
      { numRuns: 40 },
    );
  });

  test('drags: a latency rule below the attempt timeout, on before a kill and off after it', () => {
    const s = nemesisSchedule(opts(5));
    const drags = s.events.filter((e): e is Extract<NemesisEvent, { kind: 'drag' }> => e.kind === 'drag');
    const kills = s.events.filter((e): e is Extract<NemesisEvent, { kind: 'kill' }> => e.kind === 'kill');
    assert.ok(drags.length >= 5 && drags.length < kills.length, `${drags.length} drags for ${kills.length} kills`);
    validateFaultPlan({ rules: drags.map((d) => d.rule) }, PLACE_ORDER_VOCABULARY);
    for (const d of drags) {
      assert.equal(d.rule.kind, 'latency');
      assert.ok((d.rule.latency_ms as number) < 1500);
      assert.ok(
        kills.some((k) => k.at > d.at && k.at < d.at + d.holdMs),
        `drag at ${d.at} ms holds past a kill`,
      );
    }
  });

  test('a running system: no kills, switchboard outages of participants instead', () => {
    const s = nemesisSchedule(opts(3, { killable: [] }));
    assert.equal(s.events.filter((e) => e.kind === 'kill').length, 0);
    const outages = s.events.filter((e) => e.kind === 'outage');
    assert.deepEqual(
      new Set(outages.map((e) => (e.kind === 'outage' ? e.participant : ''))),
      new Set(['order', 'inventory', 'payment']),
    );
  });

  test('operator sweeps choose among retry and compensate, sometimes on a RUNNING saga', () => {
    const sweeps = Array.from({ length: 10 }, (_, seed) =>
      nemesisSchedule(opts(seed)).events.filter((e) => e.kind === 'operator'),
    ).flat();
    assert.ok(sweeps.length > 50);
    const actions = new Set(sweeps.flatMap((e) => (e.kind === 'operator' ? e.actions : [])));
    assert.deepEqual(actions, new Set(['retry', 'compensate']));
    assert.ok(sweeps.some((e) => e.kind === 'operator' && e.running !== null));
  });
});

describe('nemesis order mix', () => {
  test('every kind; a duplicate repeats an earlier original (key and body); a conflict changes its body', () => {
    const orders = Array.from({ length: 2000 }, (_, i) => nemesisOrder(11, i));
    const kinds = new Map<string, number>();
    for (const o of orders) kinds.set(o.kind, (kinds.get(o.kind) ?? 0) + 1);
    for (const k of ['happy', 'declined', 'no_stock', 'duplicate', 'conflict'])
      assert.ok((kinds.get(k) ?? 0) > 50, `${k}: ${kinds.get(k)}`);
    for (const o of orders) {
      const root = orders[o.root] as (typeof orders)[number];
      assert.ok(o.root <= o.index);
      assert.ok(['happy', 'declined', 'no_stock'].includes(root.kind), 'repeats point at an original');
      if (o.kind === 'duplicate') assert.deepEqual(o.body, root.body);
      if (o.kind === 'conflict') assert.notDeepEqual(o.body, root.body);
      if (o.kind !== 'duplicate' && o.kind !== 'conflict' && o.index > 0) assert.equal(o.root, o.index);
    }
    assert.ok(
      orders.filter((o) => o.kind === 'declined').every((o) => (o.body.items[0]?.price ?? 0) > 500),
      'over the payment limit',
    );
    assert.ok(
      orders.filter((o) => o.kind === 'no_stock').every((o) => o.body.items.every((it) => it.product_id === 'prod_3')),
    );
  });
});

describe('durations', () => {
  test('as typed', () => {
    assert.equal(parseDuration('90s'), 90_000);
    assert.equal(parseDuration('5m'), 300_000);
    assert.equal(parseDuration('1h30m'), 5_400_000);
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('45'), 45_000);
    for (const bad of ['', 'five', '5 m', '-5m', '1.5m', 'm']) assert.equal(parseDuration(bad), undefined, bad);
    assert.equal(formatDuration(5_400_000), '1h30m');
    assert.equal(formatDuration(90_000), '1m30s');
  });
});

describe('fault tally and carry-over', () => {
  test('counts survive a plan replaced and a gateway restarted; limits go down by what fired on that gateway', () => {
    const tally = new FaultTally();
    tally.observe(0, [{ id: 'a', kind: 'uncertain', fired: 2 }]);
    tally.observe(0, [{ id: 'a', kind: 'uncertain', fired: 3 }]);
    tally.observe(1, [{ id: 'a', kind: 'uncertain', fired: 1 }]);
    tally.reinstalled(0);
    // The new install counts from 0 again; a late read of the old one cannot lower anything.
    tally.observe(0, [{ id: 'a', kind: 'uncertain', fired: 1 }]);
    assert.equal(tally.firedOn(0, 'a'), 4);
    assert.deepEqual(tally.totals(), { total: 5, byKind: { uncertain: 5 }, byRule: { a: 5 } });

    const rules = [
      { id: 'a', target: { step: 'charge_payment' }, kind: 'uncertain' as const, probability: 1, limit: { count: 5 } },
      { id: 'used', target: { step: 'reserve_stock' }, kind: 'error' as const, probability: 1, limit: { count: 1 } },
      {
        id: 'gw-crash',
        target: { step: 'confirm_order' },
        kind: 'crash' as const,
        probability: 1,
        limit: { count: 2 },
      },
      {
        id: 'p-crash',
        target: { participant: 'order' as const, method: 'CancelOrder' },
        kind: 'crash' as const,
        probability: 1,
        limit: { count: 2 },
      },
    ];
    const fired: Record<string, number> = { a: 4, used: 1 };
    const again = carryOver(rules, (id) => fired[id] ?? 0, false);
    assert.deepEqual(
      again.map((r) => [r.id, r.limit?.count]),
      [
        ['a', 1],
        ['gw-crash', 2],
        ['p-crash', 2],
      ],
    );
    // After the gateway died: no gateway crash rule again (its last firing may be uncounted).
    assert.deepEqual(
      carryOver(rules, (id) => fired[id] ?? 0, true).map((r) => r.id),
      ['a', 'p-crash'],
    );
  });
});
