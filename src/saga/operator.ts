/**
 * Operator actions on a saga (retry, compensate, resolve): the contract the admin surface codes
 * against. Each action is an engine transition recorded as an OPERATOR_ACTION event
 * (`{action, action_id, actor, note}`), idempotent by its action id within the saga.
 */
import type { SagaRecord } from './model.js';

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
}

export interface OperatorActionResult {
  /** The saga right after the action was recorded (a retried or compensated saga then runs on). */
  saga: SagaRecord;
  /** True when the action id was already used for this very action: nothing new was done. */
  replayed: boolean;
}

export type OperatorActionErrorCode = 'saga_not_found' | 'action_not_allowed' | 'note_required' | 'action_id_reused';

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
