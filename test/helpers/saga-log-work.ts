/** Sagas, events and units of work shared by the saga log conformance suite and its child process. */
import { randomUUID } from 'node:crypto';
import type { NewEvent, SagaLog, SagaRecord } from '../../src/saga/model.js';

export const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
export const SPAN_ID = '00f067aa0ba902b7';

export const STARTED: NewEvent = {
  type: 'SAGA_STARTED',
  data: { input: { sku: 'A-1' }, traceparent: `00-${TRACE_ID}-${SPAN_ID}-01` },
  traceId: TRACE_ID,
  spanId: SPAN_ID,
};

export function uniqueId(prefix = 'saga'): string {
  return `${prefix}-${randomUUID()}`;
}

/** A RUNNING saga at its first step, leased to `owner-a` unless told otherwise. */
export function newSaga(id: string, over: Partial<SagaRecord> = {}): SagaRecord {
  const now = Date.now();
  return {
    id,
    definition: 'conformance',
    version: 3,
    status: 'RUNNING',
    stepIndex: 0,
    compIndex: -1,
    attempt: 0,
    input: {
      zeta: 1,
      alpha: { list: [1, 2.5, 'três', null, true], text: 'line\nbreak, tab\t, nul \u0000 here' },
      big: 12345678901234,
    },
    results: {},
    failure: null,
    traceparent: `00-${TRACE_ID}-${SPAN_ID}-01`,
    idempotencyKey: null,
    leaseOwner: 'owner-a',
    leaseExpiresAt: 0,
    deadlineAt: now + 60_000,
    createdAt: now,
    updatedAt: now,
    subject: null,
    currentStep: null,
    ...over,
  };
}

export interface StartOutcome {
  key: string;
  id: string;
  created: boolean;
}

/**
 * `rounds` appends to each saga, one after the other per saga and all sagas at once: round k sets
 * attempt = k and appends STEP_STARTED and STEP_SUCCEEDED with attempt k.
 */
export async function appendRounds(log: SagaLog, owner: string, ids: readonly string[], rounds: number): Promise<void> {
  await Promise.all(
    ids.map(async (id) => {
      for (let k = 1; k <= rounds; k++) {
        await log.append(id, owner, { attempt: k }, [
          { type: 'STEP_STARTED', step: 'step', attempt: k },
          { type: 'STEP_SUCCEEDED', step: 'step', attempt: k, data: { round: k } },
        ]);
      }
    }),
  );
}

/** Claims expired sagas `limit` at a time until a claim finds none; returns the ids it got. */
export async function claimAll(log: SagaLog, owner: string, limit: number): Promise<string[]> {
  const got: string[] = [];
  for (;;) {
    const claimed = await log.claimExpired(owner, 60_000, limit);
    if (claimed.length === 0) return got;
    got.push(...claimed.map((s) => s.id));
  }
}
