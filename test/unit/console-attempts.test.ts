/**
 * The console's reading of a timeline into attempts (src/gateway/admin/ui/js/attempts.js, a
 * browser module with no DOM): bars paired from the admin API's events by their phase, the key and
 * the fault mark taken from the events' fields (`idempotency_key`, `injected`, `fault_rule`),
 * never from the error's text.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

interface Event {
  seq: number;
  type: string;
  step: string | null;
  phase: 'action' | 'compensation' | null;
  attempt: number | null;
  time: string;
  error?: string | null;
  retryable?: boolean | null;
  idempotency_key?: string | null;
  injected?: boolean;
  fault_rule?: string | null;
}
interface Bar {
  seq: number;
  step: string;
  phase: string;
  attempt: number;
  key: string | null;
  outcome: string;
  error: string | null;
  fault: { rule: string | null } | null;
}
interface Attempts {
  attemptsOf: (events: Event[]) => Bar[];
  faultOf: (e: Event) => { rule: string | null } | null;
}

// A browser module (plain JavaScript, no types of its own): imported by URL, typed here.
const MODULE = new URL('../../src/gateway/admin/ui/js/attempts.js', import.meta.url).href;
const { attemptsOf, faultOf } = (await import(MODULE)) as Attempts;

let seq = 0;
const at = (ms: number) => new Date(Date.UTC(2026, 0, 1) + ms).toISOString();
function ev(type: string, step: string | null, over: Partial<Event> = {}): Event {
  seq += 1;
  const phase = step === null ? null : type.startsWith('COMPENSATION_') ? 'compensation' : 'action';
  return { seq, type, step, phase, attempt: null, time: at(seq * 10), injected: false, fault_rule: null, ...over };
}

test('one bar per attempt: opened by its start, closed by the next outcome of its step and phase', () => {
  seq = 0;
  const bars = attemptsOf([
    ev('SAGA_STARTED', null),
    ev('STEP_STARTED', 'a', { attempt: 1, idempotency_key: 's:a' }),
    ev('STEP_SUCCEEDED', 'a', { attempt: 1, idempotency_key: 's:a' }),
    ev('STEP_STARTED', 'b', { attempt: 1, idempotency_key: 's:b' }),
    ev('STEP_FAILED', 'b', { attempt: 1, error: 'no answer', retryable: true }),
    ev('STEP_STARTED', 'b', { attempt: 2, idempotency_key: 's:b' }),
    ev('STEP_FAILED', 'b', { attempt: 2, error: 'declined', retryable: false }),
    ev('COMPENSATION_STARTED', 'a', { attempt: 1, idempotency_key: 's:a:undo' }),
    ev('COMPENSATION_SUCCEEDED', 'a', { attempt: 1 }),
    ev('SAGA_COMPENSATED', null),
  ]);
  assert.deepEqual(
    bars.map((b) => [b.step, b.phase, b.attempt, b.key, b.outcome, b.error]),
    [
      ['a', 'action', 1, 's:a', 'succeeded', null],
      ['b', 'action', 1, 's:b', 'failed-retryable', 'no answer'],
      ['b', 'action', 2, 's:b', 'failed', 'declined'],
      ['a', 'compensation', 1, 's:a:undo', 'succeeded', null],
    ],
  );
});

test('an attempt cut short: interrupted by a later start of the same attempt or by a resume; the last one runs', () => {
  seq = 0;
  const bars = attemptsOf([
    ev('STEP_STARTED', 'a', { attempt: 1 }),
    ev('STEP_STARTED', 'a', { attempt: 2 }),
    ev('SAGA_RESUMED', null),
    ev('STEP_STARTED', 'a', { attempt: 3 }),
    // A deadline's failure with no attempt of its own in flight closes nothing more.
    ev('STEP_FAILED', 'b', { attempt: 1 }),
  ]);
  assert.deepEqual(
    bars.map((b) => b.outcome),
    ['interrupted', 'interrupted', 'running'],
  );
});

test('the fault mark follows `injected` and `fault_rule` only, never the error text', () => {
  seq = 0;
  const bars = attemptsOf([
    ev('STEP_STARTED', 'a', { attempt: 1 }),
    ev('STEP_FAILED', 'a', { attempt: 1, error: 'a refused', injected: true, fault_rule: 'refuse-a' }),
    ev('STEP_STARTED', 'a', { attempt: 2 }),
    ev('STEP_FAILED', 'a', { attempt: 2, error: 'fault injected by rule refuse-a: a refused', retryable: true }),
  ]);
  assert.deepEqual(
    bars.map((b) => b.fault),
    [{ rule: 'refuse-a' }, null],
  );
  assert.equal(faultOf(ev('STEP_FAILED', 'a', { error: 'fault_injected', retryable: false })), null);
  assert.deepEqual(faultOf(ev('COMPENSATION_FAILED', 'a', { injected: true, fault_rule: 'r' })), { rule: 'r' });
});
