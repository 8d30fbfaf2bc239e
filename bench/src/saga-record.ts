/** The saga records the storage benchmarks (pg-log, sqlite-store) create. */
import type { NewEvent, SagaRecord } from '../../src/saga/model.js';

/** A place-order saga as just created, leased to `bench`: what the store benchmarks write. */
export function benchSaga(id: string, now: number): SagaRecord {
  return {
    id,
    definition: 'place-order',
    version: 1,
    status: 'RUNNING',
    stepIndex: 0,
    compIndex: -1,
    attempt: 0,
    input: {
      customer_id: 'cust_1',
      items: [{ product_id: 'prod_1', quantity: 2, price_cents: 1234 }],
      total_cents: 2468,
    },
    results: {},
    failure: null,
    traceparent: null,
    idempotencyKey: `key-${id}`,
    leaseOwner: 'bench',
    leaseExpiresAt: now + 60_000,
    deadlineAt: now + 600_000,
    createdAt: now,
    updatedAt: now,
    subject: 'cust_1',
    currentStep: null,
  };
}

export const STARTED: NewEvent = { type: 'SAGA_STARTED' };
