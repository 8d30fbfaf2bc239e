import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  status,
  type ServiceError,
  type UntypedServiceImplementation,
  type sendUnaryData,
  type ServerUnaryCall,
} from '@grpc/grpc-js';
import { pino } from 'pino';
import { serveParticipants, type ServedParticipants } from '../helpers/grpc-participants.js';
import { callRpc, grpcFailureCode, isDefiniteGrpcError } from '../../src/platform/grpc/grpc.js';
import { isDefiniteError } from '../../src/saga/definition.js';
import { SagaEngine } from '../../src/saga/engine.js';
import { SqliteSagaLog } from '../../src/saga/stores/sqlite.js';
import { placeOrderSaga, PLACE_ORDER, type PlaceOrderInput } from '../../src/gateway/place-order.js';
import type { Participants } from '../../src/gateway/participants.js';
import { CreateOutcome, CancelOutcome, type CancelOrderRequest } from '../../src/gen/order/v1/order.js';
import { ReleaseOutcome, type ReserveRequest } from '../../src/gen/inventory/v1/inventory.js';

/**
 * Definite gRPC failures end to end, over real in-process gRPC servers (plaintext: this is the
 * client's classification of status codes, not the transport's security): the client marks the
 * codes no retry can change, and the real place-order saga then compensates at once instead of
 * retrying.
 */

const logger = pino({ level: 'silent' });
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'saga-grpc-definite-'));

const DEFINITE = new Set<status>([
  status.INVALID_ARGUMENT,
  status.FAILED_PRECONDITION,
  status.PERMISSION_DENIED,
  status.UNAUTHENTICATED,
  status.NOT_FOUND,
  status.ALREADY_EXISTS,
  status.OUT_OF_RANGE,
  status.UNIMPLEMENTED,
]);
const UNCERTAIN = [
  status.UNAVAILABLE,
  status.DEADLINE_EXCEEDED,
  status.RESOURCE_EXHAUSTED,
  status.ABORTED,
  status.INTERNAL,
  status.UNKNOWN,
  status.CANCELLED,
];

/** What the stub participants were asked, and how Reserve answers: the status of the order id `code-<n>`, or the test's switch. */
const seen = { reserve: [] as string[], releases: 0, cancelReasons: [] as string[] };
let reserveStatus: status = status.INVALID_ARGUMENT;

const refuse = (cb: sendUnaryData<unknown>, code: status) =>
  cb({ code, details: `refused with ${status[code]}` }, null);

const order: UntypedServiceImplementation = {
  createOrder: (_call: ServerUnaryCall<unknown, unknown>, cb: sendUnaryData<unknown>) =>
    cb(null, { outcome: CreateOutcome.CREATE_OUTCOME_CREATED, order: undefined }),
  cancelOrder: (call: ServerUnaryCall<CancelOrderRequest, unknown>, cb: sendUnaryData<unknown>) => {
    seen.cancelReasons.push(call.request.reason);
    cb(null, { outcome: CancelOutcome.CANCEL_OUTCOME_CANCELLED, order: undefined });
  },
};
const inventory: UntypedServiceImplementation = {
  reserve: (call: ServerUnaryCall<ReserveRequest, unknown>, cb: sendUnaryData<unknown>) => {
    seen.reserve.push(call.request.orderId);
    const m = /^code-(\d+)$/.exec(call.request.orderId);
    refuse(cb, m ? Number(m[1]) : reserveStatus);
  },
  release: (_call: ServerUnaryCall<unknown, unknown>, cb: sendUnaryData<unknown>) => {
    seen.releases++;
    cb(null, { outcome: ReleaseOutcome.RELEASE_OUTCOME_RELEASED });
  },
};
// Every payment call is answered UNIMPLEMENTED by grpc-js; no saga here gets that far.
const payment: UntypedServiceImplementation = {};

let served: ServedParticipants;
let participants: Participants;

before(async () => {
  served = await serveParticipants({ order, inventory, payment });
  participants = served.participants;
});

after(async () => {
  await served?.close();
  fs.rmSync(root, { recursive: true, force: true });
});

test('callRpc marks exactly the codes no retry can change as definite, as grpc_<status>', async () => {
  for (const code of [...DEFINITE, ...UNCERTAIN]) {
    // DEADLINE_EXCEEDED and CANCELLED come back as sent: grpc-js passes a server's status through.
    const err: unknown = await callRpc(
      participants.inventory,
      'reserve',
      { orderId: `code-${code}`, items: [] },
      { timeoutMs: 2_000 },
    ).then(
      () => assert.fail(`status ${status[code]} should have been an error`),
      (e: unknown) => e,
    );
    assert.equal((err as ServiceError).code, code, 'the error stays the ServiceError it was');
    assert.equal(isDefiniteGrpcError(err), DEFINITE.has(code), status[code]);
    assert.equal(isDefiniteError(err), DEFINITE.has(code), status[code]);
    if (isDefiniteError(err)) assert.equal(err.failureCode, grpcFailureCode(code));
  }
  assert.equal(grpcFailureCode(status.INVALID_ARGUMENT), 'grpc_invalid_argument');
  assert.equal(grpcFailureCode(status.FAILED_PRECONDITION), 'grpc_failed_precondition');
});

function input(orderId: string): PlaceOrderInput {
  return {
    order_id: orderId,
    customer_id: 'cust_1',
    items: [{ product_id: 'prod_1', quantity: 1, unit_price_cents: 1_000 }],
    total_cents: 1_000,
    created_at_ms: Date.now(),
    fingerprint: 'f'.repeat(64),
    request_id: null,
  };
}

test('Reserve answered INVALID_ARGUMENT: the place-order saga compensates at once, without a retry', async () => {
  const store = new SqliteSagaLog({ file: path.join(fs.mkdtempSync(path.join(root, 'log-')), 'saga.db') });
  // A generous action budget: only the classification can end the saga after one call.
  const engine = new SagaEngine({
    log: store,
    logger,
    policies: { action: { maxAttempts: 20, initialBackoffMs: 10, maxBackoffMs: 20, multiplier: 2 } },
  });
  engine.register(placeOrderSaga(participants));
  reserveStatus = status.INVALID_ARGUMENT;
  seen.reserve.length = 0;
  seen.releases = 0;
  seen.cancelReasons.length = 0;
  await engine.start(PLACE_ORDER, { id: 'ord_definite', input: input('ord_definite') });
  const final = await engine.waitFor('ord_definite', 5_000);
  assert.equal(final?.status, 'COMPENSATED');
  assert.equal(final?.failure?.step, 'reserve_stock');
  assert.equal(final?.failure?.code, 'grpc_invalid_argument');
  assert.deepEqual(seen.reserve, ['ord_definite'], 'Reserve was called once');
  assert.deepEqual(seen.cancelReasons, ['grpc_invalid_argument'], 'the order is cancelled with the readable code');
  const events = await store.events('ord_definite');
  const failed = events.filter((e) => e.type === 'STEP_FAILED');
  assert.deepEqual(
    failed.map((e) => [e.step, e.attempt, e.retryable, e.data]),
    [['reserve_stock', 1, false, { code: 'grpc_invalid_argument' }]],
  );
  // Reserve refused on its first attempt had no effect: Release is not called, only CancelOrder.
  assert.deepEqual(
    events.filter((e) => e.type === 'COMPENSATION_STARTED').map((e) => e.step),
    ['create_order'],
  );
  assert.equal(seen.releases, 0);
  await engine.shutdown(1_000);
  await store.close();
});

test('Reserve answered UNAVAILABLE: retried (uncertain), then compensated, the uncertain step included', async () => {
  const store = new SqliteSagaLog({ file: path.join(fs.mkdtempSync(path.join(root, 'log-')), 'saga.db') });
  const engine = new SagaEngine({
    log: store,
    logger,
    policies: { action: { maxAttempts: 3, initialBackoffMs: 1, maxBackoffMs: 2, multiplier: 2 } },
  });
  engine.register(placeOrderSaga(participants));
  reserveStatus = status.UNAVAILABLE;
  seen.reserve.length = 0;
  seen.releases = 0;
  await engine.start(PLACE_ORDER, { id: 'ord_uncertain', input: input('ord_uncertain') });
  const final = await engine.waitFor('ord_uncertain', 5_000);
  assert.equal(final?.status, 'COMPENSATED');
  assert.equal(final?.failure?.code, 'participant_unavailable');
  assert.equal(seen.reserve.length, 3, 'every attempt was made');
  assert.equal(seen.releases, 1, 'the reservation may exist: it is released');
  const events = await store.events('ord_uncertain');
  assert.deepEqual(
    events.filter((e) => e.type === 'STEP_FAILED').map((e) => e.retryable),
    [true, true, true],
  );
  await engine.shutdown(1_000);
  await store.close();
});
