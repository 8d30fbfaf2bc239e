/**
 * Operator actions on a saga (retry, compensate, resolve): the contract the admin surface codes
 * against. Each action is an engine transition recorded as an OPERATOR_ACTION event
 * (`{action, action_id, actor, note}`), idempotent by its action id within the saga.
 */
import { pivotIndex, type Json, type SagaDefinition, type SagaFailure } from './definition.js';
import type { NewEvent, SagaEvent, SagaPatch, SagaRecord, TakeOverExpectation } from './model.js';
import type { Transition } from './transitions.js';

export type OperatorActionKind = 'retry' | 'compensate' | 'resolve';

export const OPERATOR_ACTIONS: readonly OperatorActionKind[] = ['retry', 'compensate', 'resolve'];

export interface OperatorActionRequest {
  sagaId: string;
  action: OperatorActionKind;
  /** Chosen by the caller; the same id again (same action and note) is a replay, not a second action. */
  actionId: string;
  /** Who acts (the admin token's name). */
  actor: string;
  /** Free text; mandatory for `resolve` (non-empty after trim, at most 1000 characters). */
  note?: string;
  /** The bulk job taking this action (src/saga/bulk.ts), kept in the event as `bulk_id`. */
  bulkId?: string;
}

export interface OperatorActionResult {
  /** The saga right after the action was recorded (a retried or compensated saga then runs on). */
  saga: SagaRecord;
  /** True when the action id was already used for this very action: nothing new was done. */
  replayed: boolean;
}

/**
 * pivot_uncertain: `compensate` asked while the saga is at its pivot, whose outcome the engine is
 * settling (retrying it, or fencing it before anything is undone); or at a parked pivot that has
 * no fence, which only `retry` can settle.
 */
export type OperatorActionErrorCode =
  'saga_not_found' | 'action_not_allowed' | 'note_required' | 'action_id_reused' | 'pivot_uncertain';

/** A refused action (the admin API answers 404 for saga_not_found, 409 or 400 for the others). */
export class OperatorActionError extends Error {
  constructor(
    readonly code: OperatorActionErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'OperatorActionError';
  }
}

/** The longest note kept with an action. */
export const MAX_NOTE_LENGTH = 1_000;

/** What an OPERATOR_ACTION event's data holds. */
export interface OperatorActionData {
  action: OperatorActionKind;
  action_id: string;
  actor: string;
  note: string | null;
  /** Present when a bulk job took the action. */
  bulk_id?: string;
}

/** The OPERATOR_ACTION events' data among a saga's events, in order. */
export function priorActions(events: readonly SagaEvent[]): OperatorActionData[] {
  return events.flatMap((e) => (e.type === 'OPERATOR_ACTION' && isActionData(e.data) ? [e.data] : []));
}

function isActionData(d: Json): d is Json & OperatorActionData {
  return (
    typeof d === 'object' &&
    d !== null &&
    !Array.isArray(d) &&
    typeof d.action === 'string' &&
    typeof d.action_id === 'string'
  );
}

/** A note as kept: trimmed, null when empty. */
export function normalizeNote(note: string | undefined | null): string | null {
  const t = note?.trim() ?? '';
  return t === '' ? null : t;
}

/**
 * What an operator's action does to a saga, decided from its state alone (no I/O, no clock):
 * - `refused`: the action is not allowed (nothing is written);
 * - `replayed`: the action id was used for this very action already (nothing is written);
 * - `apply`: write `transition` (an OPERATOR_ACTION event and the patch) through the log's
 *   takeOver, conditional on `expect`; then drive the saga when `drive` (it is not terminal).
 */
export type ActionDecision =
  | { kind: 'refused'; code: OperatorActionErrorCode; message: string }
  | { kind: 'replayed' }
  | { kind: 'apply'; expect: TakeOverExpectation; transition: Transition; drive: boolean };

const RELEASE: SagaPatch = { leaseOwner: null, leaseExpiresAt: 0 };

/** The saga's current step (forward) or compensation, as the event's step column. */
function stepName(def: SagaDefinition<unknown>, index: number): string | null {
  return def.steps[index]?.name ?? null;
}

/**
 * The pure decision behind `SagaEngine.act`. `def` is the saga's definition (undefined when this
 * process does not know it), `prior` the saga's earlier actions (see priorActions). Checked in
 * this order: the saga exists; the action id (a replay answers as before whatever the saga's
 * state now, a reuse for another action or note is refused); the note; the saga's state.
 */
export function decideAction(
  def: SagaDefinition<unknown> | undefined,
  saga: SagaRecord | undefined,
  req: OperatorActionRequest,
  prior: readonly OperatorActionData[],
): ActionDecision {
  const refuse = (code: OperatorActionErrorCode, message: string): ActionDecision => ({
    kind: 'refused',
    code,
    message,
  });
  if (!saga) return refuse('saga_not_found', `no saga ${req.sagaId}`);
  if (!OPERATOR_ACTIONS.includes(req.action))
    return refuse('action_not_allowed', `unknown action ${String(req.action)}`);
  const note = normalizeNote(req.note);
  const earlier = prior.find((p) => p.action_id === req.actionId);
  if (earlier) {
    if (earlier.action === req.action && (earlier.note ?? null) === note) return { kind: 'replayed' };
    return refuse(
      'action_id_reused',
      `action id ${req.actionId} was used for ${earlier.action}${earlier.note === null ? '' : ' with another note'} on this saga`,
    );
  }
  if (req.action === 'resolve' && note === null)
    return refuse('note_required', 'resolve needs a note saying what was repaired by hand');
  if (note !== null && note.length > MAX_NOTE_LENGTH)
    return refuse('note_required', `a note is at most ${MAX_NOTE_LENGTH} characters`);
  const event = (step: string | null): NewEvent => ({
    type: 'OPERATOR_ACTION',
    step,
    data: {
      action: req.action,
      action_id: req.actionId,
      actor: req.actor,
      note,
      ...(req.bulkId === undefined ? {} : { bulk_id: req.bulkId }),
    },
  });
  const notAllowed = (why: string) =>
    refuse('action_not_allowed', `cannot ${req.action} saga ${saga.id} (${saga.status}): ${why}`);
  if (req.action === 'resolve') {
    if (saga.status !== 'PARKED') return notAllowed('only a PARKED saga is resolved');
    const at = saga.compIndex >= 0 ? saga.compIndex : saga.stepIndex;
    return {
      kind: 'apply',
      expect: { status: 'PARKED' },
      drive: false,
      transition: { patch: { status: 'RESOLVED', ...RELEASE }, events: [event(def ? stepName(def, at) : null)] },
    };
  }
  // Retry and compensate drive the saga on: this process must know its definition.
  if (!def) return notAllowed(`this gateway does not know the definition ${saga.definition}`);
  const pivot = pivotIndex(def);
  switch (req.action) {
    case 'retry': {
      if (saga.status !== 'PARKED') return notAllowed('only a PARKED saga is retried');
      if (pivot >= 0 && saga.compIndex === pivot) {
        // Parked fencing its pivot (nothing undone yet): run the pivot again, with a fresh budget.
        // A pivot the fence did settle answers so (a definite refusal), and compensation follows.
        return {
          kind: 'apply',
          expect: { status: 'PARKED' },
          drive: true,
          transition: {
            patch: { status: 'RUNNING', stepIndex: pivot, compIndex: -1, attempt: 0, failure: null },
            events: [event(stepName(def, pivot))],
          },
        };
      }
      if (saga.compIndex >= 0) {
        // Parked in compensation: resume the stuck compensation, with a fresh attempt budget.
        return {
          kind: 'apply',
          expect: { status: 'PARKED' },
          drive: true,
          transition: { patch: { status: 'COMPENSATING', attempt: 0 }, events: [event(stepName(def, saga.compIndex))] },
        };
      }
      if (pivot >= 0 && saga.stepIndex >= pivot) {
        // Parked after (or at a fence-less) pivot: resume its step forward, with a fresh attempt budget.
        return {
          kind: 'apply',
          expect: { status: 'PARKED' },
          drive: true,
          transition: {
            patch: { status: 'RUNNING', attempt: 0, failure: null },
            events: [event(stepName(def, saga.stepIndex))],
          },
        };
      }
      return notAllowed('it was parked neither in compensation nor after its pivot');
    }
    case 'compensate': {
      if (saga.status !== 'RUNNING' && saga.status !== 'PARKED')
        return notAllowed(
          'only a RUNNING saga before its pivot, or a PARKED one that has not passed it, is compensated',
        );
      const failure: SagaFailure = {
        step: stepName(def, saga.stepIndex) ?? '',
        code: 'operator_compensate',
        message: `compensation asked by ${req.actor}`,
      };
      if (saga.status === 'PARKED') {
        const pivotStep = pivot >= 0 ? def.steps[pivot] : undefined;
        // Parked at a fence-less pivot (compIndex -1): only the pivot's own retry can settle it.
        const at =
          saga.compIndex >= 0
            ? saga.compIndex
            : pivot >= 0 && saga.stepIndex === pivot && pivotStep?.fence
              ? pivot
              : -1;
        if (at < 0) {
          if (pivot >= 0 && saga.stepIndex === pivot)
            return refuse(
              'pivot_uncertain',
              `cannot compensate saga ${saga.id}: its pivot ${pivotStep?.name} may have taken effect and has no fence; retry it`,
            );
          if (pivot >= 0 && saga.stepIndex > pivot)
            return notAllowed('its pivot has succeeded, so it can only go forward');
          return notAllowed('it parked neither in compensation nor at its pivot');
        }
        // Resume compensating where it stopped (at the pivot: its fence first), with a fresh budget.
        return {
          kind: 'apply',
          expect: { status: 'PARKED' },
          drive: true,
          transition: {
            patch: { status: 'COMPENSATING', compIndex: at, attempt: 0, failure: saga.failure ?? failure },
            events: [event(stepName(def, at))],
          },
        };
      }
      if (pivot >= 0 && saga.stepIndex > pivot) return notAllowed('its pivot has succeeded, so it can only go forward');
      if (pivot >= 0 && saga.stepIndex === pivot) {
        return refuse(
          'pivot_uncertain',
          `cannot compensate saga ${saga.id} now: its pivot ${stepName(def, pivot)} may be in flight; the engine settles it (retried, or fenced before anything is undone), and a saga parked there can be compensated`,
        );
      }
      if (saga.stepIndex >= def.steps.length) return notAllowed('all its steps have succeeded');
      // The current step may be in flight (its outcome unknown): it is compensated too, which is
      // safe when its action never happened (DESIGN §2).
      return {
        kind: 'apply',
        expect: { status: 'RUNNING', stepIndex: saga.stepIndex },
        drive: true,
        transition: {
          patch: { status: 'COMPENSATING', compIndex: saga.stepIndex, attempt: 0, failure },
          events: [event(stepName(def, saga.stepIndex))],
        },
      };
    }
  }
}

/**
 * The actions an operator may take on `saga` now: those `decideAction` would apply, asked with a
 * fresh action id and a note (a note is the operator's to write, not a property of the saga). A
 * replay depends on the request, not the saga, so earlier actions play no part. What the admin API
 * sends with each saga, so that the console offers only what the engine would not refuse.
 */
export function allowedActions(def: SagaDefinition<unknown> | undefined, saga: SagaRecord): OperatorActionKind[] {
  return OPERATOR_ACTIONS.filter(
    (action) =>
      decideAction(def, saga, { sagaId: saga.id, action, actionId: '', actor: '', note: 'allowed?' }, []).kind ===
      'apply',
  );
}
