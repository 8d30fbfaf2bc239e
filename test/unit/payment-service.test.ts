import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createInbox } from '../../src/platform/storage/inbox.js';
import { ChargeOutcome, PaymentStatus, RefundOutcome } from '../../src/gen/payment/v1/payment.js';
import {
  DEFAULT_CHARGE_LIMIT_CENTS,
  MAX_AMOUNT_CENTS,
  decideCharge,
  decideRefund,
  validateCharge,
} from '../../src/services/payment/domain.js';
import { createPaymentStore, openPaymentDatabase, type PaymentStore } from '../../src/services/payment/store.js';
import { createPaymentService } from '../../src/services/payment/server.js';
import { captureLogger, codeOf, errorCode, invoke, silentLogger, tempDatabase } from '../helpers/participants.js';

const LIMIT = DEFAULT_CHARGE_LIMIT_CENTS;

const openTemp = () => tempDatabase(openPaymentDatabase, 'payment');

function tempStore(chargeLimitCents = LIMIT): PaymentStore {
  return createPaymentStore(openTemp(), { chargeLimitCents });
}

const charge = (store: PaymentStore, orderId: string, amountCents: number) =>
  store.charge(validateCharge({ orderId, amountCents }));

describe('payment domain', () => {
  test('the default limit is $500.00', () => {
    assert.equal(DEFAULT_CHARGE_LIMIT_CENTS, 50_000);
  });

  test('amount must be a safe integer from 1 to 100_000_000_00 cents', () => {
    assert.equal(validateCharge({ orderId: 'o', amountCents: 1 }).amountCents, 1);
    assert.equal(validateCharge({ orderId: 'o', amountCents: MAX_AMOUNT_CENTS }).amountCents, 10_000_000_000);
    for (const bad of [0, -1, MAX_AMOUNT_CENTS + 1, 1.5, Number.NaN, 2 ** 53]) {
      assert.equal(
        codeOf(() => validateCharge({ orderId: 'o', amountCents: bad })),
        'invalid_argument',
        String(bad),
      );
    }
    assert.equal(
      codeOf(() => validateCharge({ orderId: '', amountCents: 1 })),
      'invalid_argument',
    );
  });

  const none = { tombstoned: false, payment: undefined };
  test('charge: the limit is inclusive (strictly above is declined)', () => {
    assert.deepEqual(decideCharge(none, LIMIT, LIMIT), { outcome: 'charged', action: 'charge' });
    assert.deepEqual(decideCharge(none, LIMIT + 1, LIMIT), {
      outcome: 'declined',
      action: 'decline',
      declineReason: 'amount_over_limit',
    });
  });

  test('charge: never twice; another amount is a conflict; refused after a refund or a tombstone; a decline is judged again', () => {
    const charged = { status: 'CHARGED' as const, amountCents: 100, declineReason: '' };
    assert.deepEqual(decideCharge({ tombstoned: false, payment: charged }, 100, LIMIT), {
      outcome: 'charged',
      action: 'none',
    });
    for (const other of [1, 99, 101, 99_999]) {
      assert.deepEqual(decideCharge({ tombstoned: false, payment: charged }, other, LIMIT), {
        outcome: 'conflict',
        action: 'none',
      });
    }
    assert.deepEqual(decideCharge({ tombstoned: true, payment: undefined }, 1, LIMIT), {
      outcome: 'refunded',
      action: 'none',
    });
    assert.deepEqual(decideCharge({ tombstoned: false, payment: { ...charged, status: 'REFUNDED' } }, 1, LIMIT), {
      outcome: 'refunded',
      action: 'none',
    });
    const declined = { status: 'DECLINED' as const, amountCents: 60_000, declineReason: 'amount_over_limit' };
    assert.deepEqual(decideCharge({ tombstoned: false, payment: declined }, 100, LIMIT), {
      outcome: 'charged',
      action: 'charge',
    });
  });

  test('refund decisions', () => {
    assert.deepEqual(decideRefund({ status: 'CHARGED', amountCents: 700, declineReason: '' }), {
      outcome: 'refunded',
      action: 'refund',
      amountCents: 700,
    });
    assert.deepEqual(decideRefund({ status: 'REFUNDED', amountCents: 700, declineReason: '' }), {
      outcome: 'refunded',
      action: 'none',
      amountCents: 700,
    });
    const nothing = { outcome: 'nothing_charged', action: 'tombstone', amountCents: 0 };
    assert.deepEqual(
      decideRefund({ status: 'DECLINED', amountCents: 70_000, declineReason: 'amount_over_limit' }),
      nothing,
    );
    assert.deepEqual(decideRefund(undefined), nothing);
  });
});

describe('payment store', () => {
  test('limit boundary: 50000 is charged, 50001 is declined with its reason', () => {
    const store = tempStore();
    assert.deepEqual(charge(store, 'at', 50_000), { outcome: 'charged', declineReason: '' });
    assert.deepEqual(store.get('at'), { status: 'CHARGED', amountCents: 50_000, declineReason: '' });
    assert.deepEqual(charge(store, 'over', 50_001), { outcome: 'declined', declineReason: 'amount_over_limit' });
    assert.deepEqual(store.get('over'), {
      status: 'DECLINED',
      amountCents: 50_001,
      declineReason: 'amount_over_limit',
    });
  });

  test('the limit is the one passed in', () => {
    const store = tempStore(100);
    assert.equal(charge(store, 'a', 100).outcome, 'charged');
    assert.equal(charge(store, 'b', 101).outcome, 'declined');
  });

  test('never charges twice: the same amount again is CHARGED, another amount is CONFLICT; the first charge stays', () => {
    const store = tempStore();
    charge(store, 'o1', 1_234);
    assert.deepEqual(charge(store, 'o1', 1_234), { outcome: 'charged', declineReason: '' });
    assert.deepEqual(charge(store, 'o1', 4_321), { outcome: 'conflict', declineReason: '' });
    assert.deepEqual(charge(store, 'o1', 1), { outcome: 'conflict', declineReason: '' });
    assert.deepEqual(store.get('o1'), { status: 'CHARGED', amountCents: 1_234, declineReason: '' });
  });

  test('a declined order may be charged by a later request within the limit', () => {
    const store = tempStore();
    charge(store, 'o1', 60_000);
    assert.equal(charge(store, 'o1', 40_000).outcome, 'charged');
    assert.deepEqual(store.get('o1'), { status: 'CHARGED', amountCents: 40_000, declineReason: '' });
  });

  test('refund of a charge returns its amount; a repeat is REFUNDED again; a late charge is refused', () => {
    const store = tempStore();
    charge(store, 'o1', 2_500);
    assert.deepEqual(store.refund('o1'), { outcome: 'refunded', amountCents: 2_500 });
    assert.deepEqual(store.refund('o1'), { outcome: 'refunded', amountCents: 2_500 });
    assert.deepEqual(store.get('o1'), { status: 'REFUNDED', amountCents: 2_500, declineReason: '' });
    assert.deepEqual(charge(store, 'o1', 2_500), { outcome: 'refunded', declineReason: '' });
    assert.equal(store.get('o1')?.status, 'REFUNDED');
    assert.equal(store.isTombstoned('o1'), false);
  });

  test('refund with nothing charged leaves a tombstone; the late charge is refused and nothing is charged', () => {
    const store = tempStore();
    assert.deepEqual(store.refund('o1'), { outcome: 'nothing_charged', amountCents: 0 });
    assert.equal(store.isTombstoned('o1'), true);
    assert.deepEqual(store.refund('o1'), { outcome: 'nothing_charged', amountCents: 0 });
    assert.deepEqual(charge(store, 'o1', 100), { outcome: 'refunded', declineReason: '' });
    assert.equal(store.get('o1'), undefined);
  });

  test('refund of a declined charge is NOTHING_CHARGED, the row stays DECLINED, and a late charge is refused', () => {
    const store = tempStore();
    charge(store, 'o1', 99_999);
    assert.deepEqual(store.refund('o1'), { outcome: 'nothing_charged', amountCents: 0 });
    assert.equal(store.get('o1')?.status, 'DECLINED');
    assert.equal(charge(store, 'o1', 100).outcome, 'refunded');
    assert.equal(store.get('o1')?.status, 'DECLINED');
  });
});

describe('payment store + inbox', () => {
  test('the same key twice charges once and replays the stored response', () => {
    const db = openTemp();
    const store = createPaymentStore(db, { chargeLimitCents: LIMIT });
    const inbox = createInbox(db);
    const req = { orderId: 'o1', amountCents: 3_000 };
    let effects = 0;
    const run = () =>
      inbox.once('saga-1:charge_payment', 'Charge', req, () => {
        effects++;
        return store.charge(validateCharge(req));
      });
    const first = run();
    store.refund('o1');
    const second = run();
    assert.equal(effects, 1);
    assert.equal(second.replayed, true);
    assert.deepEqual(second.response, first.response);
    assert.equal(store.get('o1')?.status, 'REFUNDED');
  });

  test('the same key for a different amount is idempotency_key_reused, and nothing is charged', () => {
    const db = openTemp();
    const store = createPaymentStore(db, { chargeLimitCents: LIMIT });
    const inbox = createInbox(db);
    inbox.once('k', 'Charge', { orderId: 'o1', amountCents: 100 }, () =>
      store.charge(validateCharge({ orderId: 'o1', amountCents: 100 })),
    );
    const other = { orderId: 'o2', amountCents: 200 };
    assert.equal(
      codeOf(() => inbox.once('k', 'Charge', other, () => store.charge(validateCharge(other)))),
      'idempotency_key_reused',
    );
    assert.equal(store.get('o2'), undefined);
  });
});

describe('payment service (in-process)', () => {
  const service = () => createPaymentService({ db: openTemp(), logger: silentLogger, chargeLimitCents: LIMIT });

  test('charge, get, refund with the proto enums', async () => {
    const svc = service();
    assert.deepEqual(await invoke(svc.getPayment, { orderId: 'o1' }), {
      status: PaymentStatus.PAYMENT_STATUS_NONE,
      amountCents: 0,
    });
    assert.deepEqual(await invoke(svc.charge, { orderId: 'o1', amountCents: 50_000 }, 'o1:charge'), {
      outcome: ChargeOutcome.CHARGE_OUTCOME_CHARGED,
      declineReason: '',
    });
    assert.deepEqual(await invoke(svc.getPayment, { orderId: 'o1' }), {
      status: PaymentStatus.PAYMENT_STATUS_CHARGED,
      amountCents: 50_000,
    });
    assert.deepEqual(await invoke(svc.refund, { orderId: 'o1' }, 'o1:charge:undo'), {
      outcome: RefundOutcome.REFUND_OUTCOME_REFUNDED,
      amountCents: 50_000,
    });
    assert.deepEqual(await invoke(svc.getPayment, { orderId: 'o1' }), {
      status: PaymentStatus.PAYMENT_STATUS_REFUNDED,
      amountCents: 50_000,
    });
  });

  test('a 1-cent charge under a key of its own, then the real charge: CONFLICT, never CHARGED', async () => {
    const svc = service();
    assert.equal(
      (await invoke(svc.charge, { orderId: 'o1', amountCents: 1 }, 'intruder')).outcome,
      ChargeOutcome.CHARGE_OUTCOME_CHARGED,
    );
    const real = await invoke(svc.charge, { orderId: 'o1', amountCents: 12_000 }, 'o1:charge_payment');
    assert.deepEqual(real, { outcome: ChargeOutcome.CHARGE_OUTCOME_CONFLICT, declineReason: '' });
    // Its retry under the same key replays the stored refusal.
    assert.deepEqual(await invoke(svc.charge, { orderId: 'o1', amountCents: 12_000 }, 'o1:charge_payment'), real);
    assert.deepEqual(await invoke(svc.getPayment, { orderId: 'o1' }), {
      status: PaymentStatus.PAYMENT_STATUS_CHARGED,
      amountCents: 1,
    });
  });

  test('decline and tombstone outcomes', async () => {
    const svc = service();
    assert.deepEqual(await invoke(svc.charge, { orderId: 'o1', amountCents: 50_001 }, 'a'), {
      outcome: ChargeOutcome.CHARGE_OUTCOME_DECLINED,
      declineReason: 'amount_over_limit',
    });
    assert.equal((await invoke(svc.getPayment, { orderId: 'o1' })).status, PaymentStatus.PAYMENT_STATUS_DECLINED);
    const refund = await invoke(svc.refund, { orderId: 'o2' }, 'b');
    assert.deepEqual(refund, { outcome: RefundOutcome.REFUND_OUTCOME_NOTHING_CHARGED, amountCents: 0 });
    const late = await invoke(svc.charge, { orderId: 'o2', amountCents: 10 }, 'c');
    assert.equal(late.outcome, ChargeOutcome.CHARGE_OUTCOME_REFUNDED);
    assert.equal((await invoke(svc.getPayment, { orderId: 'o2' })).status, PaymentStatus.PAYMENT_STATUS_NONE);
  });

  test('logs each effect once at info with order_id, outcome and key; reads only at debug', async () => {
    const { logger, lines } = captureLogger();
    const svc = createPaymentService({ db: openTemp(), logger, chargeLimitCents: LIMIT });
    await invoke(svc.charge, { orderId: 'o1', amountCents: 60_000 }, 'o1:charge_payment');
    await invoke(svc.getPayment, { orderId: 'o1' });
    const info = lines.filter((l) => l.level === 'info');
    assert.equal(info.length, 1);
    assert.equal(info[0]?.order_id, 'o1');
    assert.equal(info[0]?.outcome, 'CHARGE_OUTCOME_DECLINED');
    assert.equal(info[0]?.decline_reason, 'amount_over_limit');
    assert.equal(info[0]?.idempotency_key, 'o1:charge_payment');
    assert.equal(lines.filter((l) => l.level === 'debug' && l.rpc === 'GetPayment').length, 1);
  });

  test('a refused contradiction is logged at warn', async () => {
    const { logger, lines } = captureLogger();
    const svc = createPaymentService({ db: openTemp(), logger, chargeLimitCents: LIMIT });
    await invoke(svc.charge, { orderId: 'o1', amountCents: 1 }, 'a');
    await invoke(svc.charge, { orderId: 'o1', amountCents: 2 }, 'b');
    const effects = lines.filter((l) => l.msg === 'charge').map((l) => [l.level, l.outcome]);
    assert.deepEqual(effects, [
      ['info', 'CHARGE_OUTCOME_CHARGED'],
      ['warn', 'CHARGE_OUTCOME_CONFLICT'],
    ]);
  });

  test('errors carry stable codes', async () => {
    const svc = service();
    assert.equal(await errorCode(invoke(svc.charge, { orderId: 'o1', amountCents: 10 })), 'idempotency_key_required');
    assert.equal(await errorCode(invoke(svc.charge, { orderId: 'o1', amountCents: 0 }, 'k')), 'invalid_argument');
    assert.equal(await errorCode(invoke(svc.getPayment, { orderId: 'bad id' })), 'invalid_argument');
    await invoke(svc.charge, { orderId: 'o1', amountCents: 10 }, 'k');
    assert.equal(
      await errorCode(invoke(svc.charge, { orderId: 'o1', amountCents: 11 }, 'k')),
      'idempotency_key_reused',
    );
  });
});
