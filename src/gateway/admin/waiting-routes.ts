/**
 * "Why hasn't this order moved?" `GET /api/sagas/:id/waiting` (any signed-in caller, viewer
 * included): what a saga in flight (or parked) waits for and until when, from the engine's one
 * function (explainWaiting, src/saga/waiting.ts), in fields and in one sentence in business words.
 * Also what the saga list shows of it without reading events (waitingBrief): stuck, and since when
 * the saga made no progress.
 */
import { createRequire } from 'node:module';
import type { Static, TSchema } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { isOrderId } from '../../contracts/ids.js';
import { explainWaiting, progressOf, type SagaEngine, type SagaRecord, type Waiting } from '../../saga/index.js';
import { HttpError } from '../http/errors.js';
import { errorResponses, IdParams } from '../http/schemas.js';

// TypeBox's CommonJS build, as in schemas.ts (start-up time under tsx).
const { Type } = createRequire(import.meta.url)('@sinclair/typebox') as typeof import('@sinclair/typebox');

const Nullable = <T extends TSchema>(t: T, description?: string) =>
  Type.Union([t, Type.Null()], description ? { description } : {});
const Time = Type.String({ format: 'date-time' });

/** SAGA_STUCK_AFTER's default. */
export const DEFAULT_STUCK_AFTER_MS = 60_000;

/** What the saga list shows of a saga's wait without reading its events; null for a saga not in flight. */
export const WaitingBrief = Nullable(
  Type.Object({
    stuck: Type.Boolean({ description: 'in flight without progress for longer than SAGA_STUCK_AFTER' }),
    progress_at: Type.String({
      format: 'date-time',
      description: 'when it last made progress (a change of status, step or compensation)',
    }),
    progress_age_seconds: Type.Integer({ description: 'seconds since then' }),
  }),
  'RUNNING and COMPENSATING sagas only: whether it is stuck (GET /api/sagas/{id}/waiting says on what)',
);
export type WaitingBrief = Static<typeof WaitingBrief>;

const FailureKind = Type.Unsafe<string>({
  type: 'string',
  enum: ['unreachable', 'timeout', 'overloaded', 'interrupted', 'error', 'refused', 'injected', 'unknown'],
  description: 'what kind of failure, from the code the event records (never from its text)',
});

export const WaitingView = Type.Object({
  state: Type.Unsafe<Waiting['state']>({
    type: 'string',
    enum: ['retrying', 'calling', 'next', 'parked'],
    description:
      'retrying: an attempt failed with an unknown outcome, the next is due at next_attempt_at; calling: an ' +
      'attempt is in flight; next: the next attempt is about to start; parked: waits for an operator',
  }),
  status: Type.String(),
  step: Nullable(Type.String()),
  display_name: Nullable(Type.String()),
  phase: Nullable(Type.Unsafe<'action' | 'compensation'>({ type: 'string', enum: ['action', 'compensation'] })),
  attempt: Type.Integer({ description: 'attempts made of the step (or compensation) so far' }),
  max_attempts: Nullable(Type.Integer(), 'attempts its policy allows; null when parked'),
  participant: Nullable(Type.String()),
  method: Nullable(Type.String()),
  since: Nullable(Time, 'the first failure of the current streak, the start of the call in flight, or when it parked'),
  last_error: Nullable(
    Type.Object({
      kind: FailureKind,
      code: Nullable(Type.String()),
      message: Nullable(Type.String()),
      at: Time,
    }),
  ),
  next_attempt_at: Nullable(Time, 'when the next attempt is due, as the engine recorded it (retry_at)'),
  deadline_at: Nullable(Time, "the saga's deadline; null after the pivot, while compensating, or parked"),
  forward_only: Type.Boolean({
    description: 'after the pivot: only forward, no deadline; parks when its budget runs out',
  }),
  progress_at: Time,
  progress_age_seconds: Type.Integer(),
  stuck: Type.Boolean(),
  stuck_after_seconds: Type.Number({ description: 'SAGA_STUCK_AFTER' }),
  lease_expired: Type.Boolean({ description: 'no gateway drives it now; recovery resumes it' }),
  sentence: Type.String({ description: 'what it waits for and until when, in business words (times UTC)' }),
});
export type WaitingView = Static<typeof WaitingView>;

export const WaitingAnswer = Type.Object({
  saga_id: Type.String(),
  status: Type.String(),
  waiting: Nullable(WaitingView, 'null for a saga that is finished (COMPLETED, COMPENSATED, RESOLVED)'),
});

const iso = (ms: number) => new Date(ms).toISOString();
const isoOrNull = (ms: number | null) => (ms === null ? null : iso(ms));

export function waitingView(w: Waiting, stuckAfterMs: number): WaitingView {
  return {
    state: w.state,
    status: w.status,
    step: w.step,
    display_name: w.displayName,
    phase: w.phase,
    attempt: w.attempt,
    max_attempts: w.maxAttempts,
    participant: w.participant,
    method: w.method,
    since: isoOrNull(w.since),
    last_error: w.lastError && { ...w.lastError, at: iso(w.lastError.at) },
    next_attempt_at: isoOrNull(w.nextAttemptAt),
    deadline_at: isoOrNull(w.deadlineAt),
    forward_only: w.forwardOnly,
    progress_at: iso(w.progressAt),
    progress_age_seconds: Math.floor(w.progressAgeMs / 1000),
    stuck: w.stuck,
    stuck_after_seconds: stuckAfterMs / 1000,
    lease_expired: w.leaseExpired,
    sentence: w.sentence,
  };
}

/** A list row's brief; `now` by the saga log's clock. */
export function waitingBrief(s: SagaRecord, now: number, stuckAfterMs: number): WaitingBrief {
  const p = progressOf(s, now, stuckAfterMs);
  return (
    p && { stuck: p.stuck, progress_at: iso(p.progressAt), progress_age_seconds: Math.floor(p.progressAgeMs / 1000) }
  );
}

export interface AdminWaitingDeps {
  engine: Pick<SagaEngine, 'reads' | 'definitionOf' | 'policiesInEffect' | 'clockOffsetMs'>;
  stuckAfterMs: number;
  now: () => number;
}

export const adminWaiting: FastifyPluginAsyncTypebox<AdminWaitingDeps> = async (app, deps) => {
  const { engine, stuckAfterMs } = deps;
  app.get(
    '/api/sagas/:id/waiting',
    {
      schema: {
        operationId: 'getSagaWaiting',
        summary: 'What a saga in flight (or parked) waits for and until when, and whether it is stuck',
        tags: ['sagas'],
        params: IdParams,
        response: { 200: WaitingAnswer, ...errorResponses },
      },
    },
    async (req) => {
      if (!req.caller) throw new HttpError('unauthenticated', 'not signed in');
      const id = req.params.id;
      const saga = isOrderId(id) ? await engine.reads.get(id) : undefined;
      if (!saga) throw new HttpError('saga_not_found', `saga ${id} not found`);
      const def = engine.definitionOf(saga.definition, saga.version);
      // A saga whose definition (or version) this gateway lacks: what the row alone says.
      const inFlight = saga.status === 'RUNNING' || saga.status === 'COMPENSATING' || saga.status === 'PARKED';
      // Every event: the current streak is at the end, and the log reads a saga's events from its start.
      const events = def && inFlight ? await engine.reads.events(saga.id) : [];
      const now = deps.now() + engine.clockOffsetMs;
      const w = def ? explainWaiting(def, saga, events, engine.policiesInEffect, now, { stuckAfterMs }) : null;
      return { saga_id: saga.id, status: saga.status, waiting: w && waitingView(w, stuckAfterMs) };
    },
  );
};
