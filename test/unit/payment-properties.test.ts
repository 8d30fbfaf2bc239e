import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ChargeOutcome, PaymentStatus, RefundOutcome } from '../../src/gen/payment/v1/payment.js';
import { createPaymentService } from '../../src/services/payment/server.js';
import { openPaymentDatabase } from '../../src/services/payment/store.js';
import { invoke, silentLogger } from '../helpers/participants.js';
import { KeyedCalls, nextRun, tempDb } from '../helpers/keyed-calls.js';

/**
 * Random interleavings of Charge and Refund for ONE order, with random amounts and keys drawn from
 * a small pool (so keys are replayed and reused), against the real service, inbox and store on a
 * SQLite file. Whatever the order of requests, the payment rules hold.
 */

const LIMIT = 1_000;

type Cmd = { kind: 'charge'; key: string; amountCents: number } | { kind: 'refund'; key: string };

const key = fc.constantFrom('k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7');
// Few distinct amounts, so that a repeat of the same amount under a new key is common; some over the limit.
const amount = fc.oneof(fc.constantFrom(1, 500, LIMIT, LIMIT + 1), fc.integer({ min: 1, max: 2 * LIMIT }));
const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('charge' as const), key, amountCents: amount }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('refund' as const), key }) },
);

test('payment: one effective charge per order, of the first accepted amount; contradictions never succeed; replays answer as stored', async () => {
  const svc = createPaymentService({
    db: tempDb(openPaymentDatabase, 'payment'),
    logger: silentLogger,
    chargeLimitCents: LIMIT,
  });
  await fc.assert(
    fc.asyncProperty(fc.array(cmd, { minLength: 1, maxLength: 25 }), async (cmds) => {
      const orderId = nextRun();
      const calls = new KeyedCalls(orderId);
      /** The amount of the first charge answered CHARGED. */
      let charged: number | undefined;
      /** A refund took effect (or left a tombstone): no charge may succeed after it. */
      let closed = false;

      for (const c of cmds) {
        if (c.kind === 'charge') {
          const res = await calls.send('Charge', svc.charge, { orderId: orderId, amountCents: c.amountCents }, c.key);
          if (res === undefined) continue;
          switch (res.outcome) {
            case ChargeOutcome.CHARGE_OUTCOME_CHARGED:
              assert.equal(closed, false, 'CHARGED after a refund');
              assert.ok(c.amountCents <= LIMIT, 'CHARGED over the limit');
              // Never a second charge: a CHARGED answer is the first charge, or the same amount again.
              if (charged !== undefined) assert.equal(c.amountCents, charged, 'CHARGED for another amount');
              charged ??= c.amountCents;
              break;
            case ChargeOutcome.CHARGE_OUTCOME_CONFLICT:
              assert.ok(
                charged !== undefined && c.amountCents !== charged && !closed,
                'CONFLICT only against an existing charge of another amount',
              );
              break;
            case ChargeOutcome.CHARGE_OUTCOME_DECLINED:
              assert.ok(
                charged === undefined && !closed && c.amountCents > LIMIT,
                'DECLINED only a first charge over the limit',
              );
              break;
            case ChargeOutcome.CHARGE_OUTCOME_REFUNDED:
              assert.ok(closed, 'REFUNDED only after a refund');
              break;
            default:
              assert.fail(`unexpected charge outcome ${res.outcome}`);
          }
        } else {
          const res = await calls.send('Refund', svc.refund, { orderId: orderId }, c.key);
          if (res === undefined) continue;
          if (res.outcome === RefundOutcome.REFUND_OUTCOME_REFUNDED) {
            assert.equal(res.amountCents, charged, 'REFUNDED is the charged amount, and only of a charge');
          } else {
            assert.equal(res.outcome, RefundOutcome.REFUND_OUTCOME_NOTHING_CHARGED);
            assert.equal(charged, undefined, 'NOTHING_CHARGED while a charge stands');
            assert.equal(res.amountCents, 0);
          }
          closed = true;
        }

        // What the database holds agrees with every answer given so far.
        const got = await invoke(svc.getPayment, { orderId: orderId });
        if (charged === undefined) {
          assert.notEqual(got.status, PaymentStatus.PAYMENT_STATUS_CHARGED);
          assert.notEqual(got.status, PaymentStatus.PAYMENT_STATUS_REFUNDED);
        } else {
          assert.equal(
            got.status,
            closed ? PaymentStatus.PAYMENT_STATUS_REFUNDED : PaymentStatus.PAYMENT_STATUS_CHARGED,
          );
          assert.equal(got.amountCents, charged);
        }
      }
    }),
    { numRuns: 150 },
  );
});
