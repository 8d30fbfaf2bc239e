/**
 * `GET /api/sagas/:id/preview?action=retry|compensate|resolve` (any signed-in caller, viewer
 * included): what the action would do to the saga now, in business words and sums, from the
 * engine's one function (previewAction, src/saga/preview.ts). What the console's confirmation and
 * `sagas <action> --dry-run` show; it changes nothing. A refused action is still a preview
 * (`allowed: false` with the code and message the action would be refused with): 200.
 */
import { createRequire } from 'node:module';
import type { Static } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { isOrderId } from '../../contracts/ids.js';
import { OPERATOR_ACTIONS, previewAction, type ActionPreview, type SagaEngine } from '../../saga/index.js';
import { HttpError } from '../http/errors.js';
import { errorResponses } from '../http/schemas.js';
import { IdParams } from './schemas.js';

// TypeBox's CommonJS build, as in schemas.ts (start-up time under tsx).
const { Type } = createRequire(import.meta.url)('@sinclair/typebox') as typeof import('@sinclair/typebox');

const Action = Type.Unsafe<(typeof OPERATOR_ACTIONS)[number]>({ type: 'string', enum: [...OPERATOR_ACTIONS] });

export const PreviewQuery = Type.Object({
  action: Action,
});

const StockMoveView = Type.Object({
  item: Type.String(),
  quantity: Type.Integer(),
  direction: Type.Unsafe<'reserve' | 'release' | 'commit'>({
    type: 'string',
    enum: ['reserve', 'release', 'commit'],
    description: 'reserve: held for the order; release: given back; commit: turned into sold stock',
  }),
});

const StepEffectView = Type.Object({
  words: Type.String({ description: 'one line in business words, e.g. "refunds 130.00 to cust_123"' }),
  money: Type.Optional(
    Type.Object({
      cents: Type.Integer(),
      direction: Type.Unsafe<'charge' | 'refund'>({ type: 'string', enum: ['charge', 'refund'] }),
      party: Type.String({ description: 'whom it is charged to or refunded to (the customer)' }),
    }),
  ),
  stock: Type.Optional(Type.Array(StockMoveView)),
});

const EffectView = Type.Object({
  step: Type.String(),
  phase: Type.Unsafe<'action' | 'compensation'>({ type: 'string', enum: ['action', 'compensation'] }),
  certainty: Type.Unsafe<'will' | 'may'>({
    type: 'string',
    enum: ['will', 'may'],
    description: 'will: follows once the action is taken; may: only on the outcome `condition` names',
  }),
  condition: Type.Optional(Type.String({ description: 'for a `may` effect: on which outcome it follows' })),
  effect: StepEffectView,
});

const HalfDoneView = Type.Object({
  step: Type.String(),
  phase: Type.Unsafe<'action' | 'compensation'>({ type: 'string', enum: ['action', 'compensation'] }),
  state: Type.Unsafe<'done' | 'unknown' | 'pending'>({
    type: 'string',
    enum: ['done', 'unknown', 'pending'],
    description: 'done: took effect, not undone; unknown: may have taken effect; pending: never ran',
  }),
  effect: StepEffectView,
});

export const PreviewView = Type.Object({
  saga_id: Type.String(),
  action: Action,
  allowed: Type.Boolean({ description: 'whether the engine would apply the action now' }),
  refusal: Type.Union([Type.Object({ code: Type.String(), message: Type.String() }), Type.Null()], {
    description: 'when not allowed: the code and message the action itself would be refused with',
  }),
  summary: Type.String({ description: 'one or a few sentences in business words' }),
  effects: Type.Array(EffectView, { description: 'the calls the action leads to, in the order they would happen' }),
  totals: Type.Object(
    {
      charge_cents: Type.Integer(),
      refund_cents: Type.Integer(),
      stock: Type.Array(StockMoveView),
    },
    { description: 'sums of the `will` effects' },
  ),
  half_done: Type.Union([Type.Array(HalfDoneView), Type.Null()], {
    description: 'resolve: what the saga leaves as it is, for the note; null for the other actions',
  }),
});
export type PreviewView = Static<typeof PreviewView>;

/** The preview as the API speaks it (snake_case, as the rest of the admin API). */
export function previewView(p: ActionPreview): PreviewView {
  return {
    saga_id: p.sagaId,
    action: p.action,
    allowed: p.allowed,
    refusal: p.refusal ?? null,
    summary: p.summary,
    effects: p.effects,
    totals: { charge_cents: p.totals.chargeCents, refund_cents: p.totals.refundCents, stock: p.totals.stock },
    half_done: p.halfDone ?? null,
  };
}

export interface AdminPreviewDeps {
  engine: Pick<SagaEngine, 'reads' | 'definitionOf' | 'clockOffsetMs'>;
  /** This process's clock (tests); the saga log's is it plus the engine's measured offset. */
  now?: () => number;
}

export const adminPreview: FastifyPluginAsyncTypebox<AdminPreviewDeps> = async (app, { engine, now = Date.now }) => {
  app.get(
    '/api/sagas/:id/preview',
    {
      schema: {
        operationId: 'previewAction',
        summary: 'What an operator action would do to a saga now, in business words and sums (changes nothing)',
        tags: ['sagas'],
        params: IdParams,
        querystring: PreviewQuery,
        response: { 200: PreviewView, ...errorResponses },
      },
    },
    async (req) => {
      if (!req.caller) throw new HttpError('unauthenticated', 'not signed in');
      const id = req.params.id;
      const saga = isOrderId(id) ? await engine.reads.get(id) : undefined;
      if (!saga) throw new HttpError('saga_not_found', `saga ${id} not found`);
      // The deadline is judged by the saga log's clock, as the engine judges it.
      const logNow = now() + engine.clockOffsetMs;
      const def = engine.definitionOf(saga.definition, saga.version);
      return previewView(previewAction(def, saga, req.query.action, logNow));
    },
  );
};
