import type { SagaRecord } from '../../src/saga/model.js';

/**
 * A saga row as the log would hand it out, for tests of pure rules: a RUNNING place_order v1
 * saga at its first step, nothing leased, every time 0; `over` sets what a case is about.
 */
export function sagaRecord(over: Partial<SagaRecord> = {}): SagaRecord {
  return {
    id: 's1',
    definition: 'place_order',
    version: 1,
    status: 'RUNNING',
    stepIndex: 0,
    compIndex: -1,
    attempt: 0,
    input: {},
    results: {},
    failure: null,
    traceparent: null,
    idempotencyKey: null,
    leaseOwner: null,
    leaseExpiresAt: 0,
    deadlineAt: 0,
    createdAt: 0,
    updatedAt: 0,
    subject: null,
    currentStep: null,
    ...over,
  };
}
