/**
 * What an operator's action would do to a saga, in business words and sums, before it is taken:
 * the one source the console, `sagas <action> --dry-run` and bulk actions' dry runs read. Pure:
 * it asks decideAction (operator.ts) what would be written and the definition's steps what each
 * call they would make means (StepDefinition.effects); no I/O, no clock.
 *
 * CONTRACT (shared by the preview, the admin API, the CLI and bulk actions): the types below and
 * `previewAction`'s signature.
 */
import { hasCompensationPhase, pivotIndex, type Json, type SagaDefinition, type StepDefinition } from './definition.js';
import type { SagaRecord } from './model.js';
import { decideAction, type OperatorActionErrorCode, type OperatorActionKind } from './operator.js';
import { isForwardOnly } from './transitions.js';

/** One stock movement a call makes, in the business's own item ids. */
export interface StockMove {
  item: string;
  quantity: number;
  /** reserve: held for the order; release: given back; commit: turned into sold stock. */
  direction: 'reserve' | 'release' | 'commit';
}

/** What one call of a step (its action, or its compensation phase) does, as its definition says. */
export interface StepEffect {
  /** One line, business words: "refunds 130.00 to cust_123", "releases 2 × prod_1 and 1 × prod_2". */
  words: string;
  /** Money it moves: charge takes it from `party`, refund gives it back to `party`. */
  money?: { cents: number; direction: 'charge' | 'refund'; party: string };
  stock?: StockMove[];
}

/** One call the action would lead to, in the order they would happen. */
export interface PreviewEffect {
  step: string;
  phase: 'action' | 'compensation';
  /**
   * will: the call follows for certain once the action is taken (unless a call before it parks
   * the saga again), and has its effect. may: it follows, or has its effect, only on some
   * outcomes, named by `condition` (e.g. a retried step's compensation, if the retry is refused;
   * the undo of a step whose own outcome is unknown, if it took effect).
   */
  certainty: 'will' | 'may';
  /** For a `may` effect: on which outcome it follows, in the engine's words ("if charge_payment took effect"). */
  condition?: string;
  effect: StepEffect;
}

export interface ActionPreview {
  sagaId: string;
  action: OperatorActionKind;
  /** Whether the engine would apply the action now (decideAction's answer to a fresh action id). */
  allowed: boolean;
  /** Why not, when not allowed: the code and message the action itself would be refused with. */
  refusal?: { code: OperatorActionErrorCode; message: string };
  /** One or two sentences: "Refunds 130.00 to cust_123, releases 2 × prod_1 and 1 × prod_2, cancels order ord_1." */
  summary: string;
  effects: PreviewEffect[];
  /** Sums of the `will` effects only (what bulk dry runs add up). */
  totals: {
    chargeCents: number;
    refundCents: number;
    /** Net per item and direction, items sorted. */
    stock: StockMove[];
  };
  /** resolve only (when allowed and the definition is known): what the saga leaves as it is. */
  halfDone?: HalfDone[];
}

/**
 * What a resolve leaves as it is: a step whose call took effect (or may have) and was neither
 * undone nor followed up, for the operator's note. `done`: its action took effect and is not
 * undone; `unknown`: the call (the action, or with phase `compensation` its undo) may or may not
 * have taken effect; `pending`: the action never ran, though the saga was to run it.
 */
export interface HalfDone {
  step: string;
  phase: 'action' | 'compensation';
  state: 'done' | 'unknown' | 'pending';
  effect: StepEffect;
}

/** The words of one call of a step: its definition's `effects`, else a neutral line from its name and calls. */
export function stepEffect(
  step: StepDefinition<unknown>,
  phase: 'action' | 'compensation',
  saga: { input: unknown; results: Readonly<Record<string, Json>> },
): StepEffect {
  const describe = phase === 'action' ? step.effects?.action : step.effects?.compensation;
  if (describe) {
    try {
      return describe({ input: saga.input, results: saga.results });
    } catch {
      // An input of another shape (an older version's saga): the neutral line below still holds.
    }
  }
  const call = phase === 'action' ? step.calls?.action : step.calls?.compensation;
  const label = step.displayName ? `${step.name} (${step.displayName})` : step.name;
  const what = phase === 'action' ? `runs ${label}` : step.fence ? `settles ${label}` : `undoes ${label}`;
  return { words: call ? `${what}: calls ${call.participant}.${call.method}` : what };
}

/** A decimal amount from integer cents: 13000 → "130.00" (no float arithmetic). */
export function formatCents(cents: number): string {
  const sign = cents < 0 ? '-' : '';
  const abs = Math.abs(Math.trunc(cents));
  return `${sign}${Math.trunc(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}

/** "2 × prod_1 and 1 × prod_2" (a list of three or more: "a, b and c"). */
export function stockWords(moves: readonly { item: string; quantity: number }[]): string {
  return joinWords(moves.map((m) => `${m.quantity} × ${m.item}`));
}

function joinWords(parts: readonly string[]): string {
  if (parts.length <= 1) return parts[0] ?? '';
  return `${parts.slice(0, -1).join(', ')} and ${parts[parts.length - 1] ?? ''}`;
}

/** The saga a preview reads: its status, positions, input and results. */
type SagaState = Pick<
  SagaRecord,
  | 'id'
  | 'definition'
  | 'status'
  | 'stepIndex'
  | 'compIndex'
  | 'attempt'
  | 'deadlineAt'
  | 'input'
  | 'results'
  | 'failure'
>;

/** Whether a step's action is known to have taken effect: its success (and result) is in the log. */
function tookEffect(s: SagaState, step: StepDefinition<unknown>): boolean {
  return Object.prototype.hasOwnProperty.call(s.results, step.name);
}

/**
 * The compensation phases that follow from a saga in COMPENSATING at `s.compIndex`, in order, as
 * planCompensation (transitions.ts) runs them: from compIndex down to 0, the steps that have a
 * compensation phase (the others make no call; those above compIndex were undone already). A
 * step whose action may not have taken effect (the one whose outcome was unknown) is undone too,
 * with no effect if it never happened: `may`. A pivot's fence settles the pivot: only if the pivot
 * had not taken effect do the undos below it follow; if it had, the steps after it run instead.
 */
function compensationPath(def: SagaDefinition<unknown>, s: SagaState): PreviewEffect[] {
  const out: PreviewEffect[] = [];
  let fenced: StepDefinition<unknown> | undefined;
  let fencedAt = -1;
  for (let j = Math.min(s.compIndex, def.steps.length - 1); j >= 0; j--) {
    const step = def.steps[j];
    if (!step || !hasCompensationPhase(step)) continue;
    const effect = stepEffect(step, 'compensation', s);
    if (step.fence) {
      // The pivot (a definition has one): its fence is called whatever the pivot's outcome was.
      out.push({ step: step.name, phase: 'compensation', certainty: 'will', effect });
      fenced = step;
      fencedAt = j;
    } else if (fenced) {
      out.push({
        step: step.name,
        phase: 'compensation',
        certainty: 'may',
        condition: `if ${fenced.name} had not taken effect`,
        effect,
      });
    } else if (tookEffect(s, step)) {
      out.push({ step: step.name, phase: 'compensation', certainty: 'will', effect });
    } else {
      out.push({
        step: step.name,
        phase: 'compensation',
        certainty: 'may',
        condition: `if ${step.name} took effect`,
        effect,
      });
    }
  }
  if (fenced) {
    // The fence found the pivot had taken effect: the saga goes forward from the step after it.
    const pivotName = fenced.name;
    for (let k = fencedAt + 1; k < def.steps.length; k++) {
      const step = def.steps[k] as StepDefinition<unknown>;
      out.push({
        step: step.name,
        phase: 'action',
        certainty: 'may',
        condition: `if ${pivotName} had taken effect`,
        effect: stepEffect(step, 'action', s),
      });
    }
  }
  return out;
}

/**
 * The calls that follow from a saga RUNNING at `s.stepIndex` (as an operator's retry leaves it):
 * the step, then either the steps after it (if it succeeds) or, for a step that may still be
 * compensated past (before the pivot, or the pivot itself), the undos of the steps before it (if
 * it fails; its own compensation phase first, if its outcome stays unknown). A step after the
 * pivot that fails parks again: nothing is undone.
 */
function forwardPath(def: SagaDefinition<unknown>, s: SagaState): PreviewEffect[] {
  const i = s.stepIndex;
  const step = def.steps[i];
  if (!step) return [];
  const out: PreviewEffect[] = [
    { step: step.name, phase: 'action', certainty: 'will', effect: stepEffect(step, 'action', s) },
  ];
  for (let k = i + 1; k < def.steps.length; k++) {
    const next = def.steps[k] as StepDefinition<unknown>;
    out.push({
      step: next.name,
      phase: 'action',
      certainty: 'may',
      condition: `if ${step.name} succeeds`,
      effect: stepEffect(next, 'action', s),
    });
  }
  const pivot = pivotIndex(def);
  if (pivot >= 0 && i > pivot) return out;
  // The pivot without a fence parks when its outcome stays unknown; with one, the fence settles it.
  if (hasCompensationPhase(step) && !(i === pivot && !step.fence)) {
    out.push({
      step: step.name,
      phase: 'compensation',
      certainty: 'may',
      condition: `if ${step.name}'s outcome stays unknown`,
      effect: stepEffect(step, 'compensation', s),
    });
  }
  for (let j = i - 1; j >= 0; j--) {
    const before = def.steps[j] as StepDefinition<unknown>;
    if (!hasCompensationPhase(before)) continue;
    out.push({
      step: before.name,
      phase: 'compensation',
      certainty: 'may',
      condition: `if ${step.name} fails`,
      effect: stepEffect(before, 'compensation', s),
    });
  }
  return out;
}

/** What a resolve of a PARKED saga leaves as it is (see HalfDone). */
function halfDone(def: SagaDefinition<unknown>, s: SagaState): HalfDone[] {
  const out: HalfDone[] = [];
  if (s.compIndex >= 0) {
    // Parked compensating: the undo at compIndex did not finish; those below it never ran.
    for (let j = Math.min(s.compIndex, def.steps.length - 1); j >= 0; j--) {
      const step = def.steps[j];
      if (!step || !hasCompensationPhase(step)) continue;
      if (j === s.compIndex && step.fence) {
        // Parked settling its pivot: whether the pivot took effect is what is not known.
        out.push({ step: step.name, phase: 'action', state: 'unknown', effect: stepEffect(step, 'action', s) });
      } else if (j === s.compIndex) {
        out.push({
          step: step.name,
          phase: 'compensation',
          state: 'unknown',
          effect: stepEffect(step, 'compensation', s),
        });
      } else {
        out.push({
          step: step.name,
          phase: 'action',
          state: tookEffect(s, step) ? 'done' : 'unknown',
          effect: stepEffect(step, 'action', s),
        });
      }
    }
    return out;
  }
  // Parked going forward (after the pivot, or at a pivot with no fence): the step it is stuck on
  // may have taken effect (unless it was refused outright); the steps after it never ran.
  const uncertain =
    s.failure === null || s.failure.code === 'forward_attempts_exhausted' || s.failure.code === 'pivot_uncertain';
  for (let k = s.stepIndex; k < def.steps.length; k++) {
    const step = def.steps[k] as StepDefinition<unknown>;
    out.push({
      step: step.name,
      phase: 'action',
      state: k === s.stepIndex && uncertain ? 'unknown' : 'pending',
      effect: stepEffect(step, 'action', s),
    });
  }
  return out;
}

function sentence(text: string): string {
  const t = text.trim();
  if (t === '') return t;
  const first = t.charAt(0).toUpperCase() + t.slice(1);
  return /[.!?]$/.test(first) ? first : `${first}.`;
}

/**
 * The effects' words as sentences, in their order: one per run of effects under the same
 * condition ("If charge_payment took effect, refunds 130.00 to cust_123."); a certain run after a
 * conditional one starts with "then" (it follows whatever the condition's outcome).
 */
function effectSentences(effects: readonly PreviewEffect[], afterFirst = false): string[] {
  const runs: { cond: string; words: string[] }[] = [];
  for (const e of effects) {
    const cond = e.certainty === 'will' ? '' : (e.condition ?? 'possibly');
    const last = runs[runs.length - 1];
    if (last && last.cond === cond) last.words.push(e.effect.words);
    else runs.push({ cond, words: [e.effect.words] });
  }
  return runs.map(({ cond, words }, i) => {
    const text = words.join(', ');
    if (cond !== '') return sentence(`${cond}, ${text}`);
    return sentence(i > 0 || afterFirst ? `then ${text}` : text);
  });
}

function halfDoneWords(h: HalfDone): string {
  if (h.phase === 'compensation') return `the undo of ${h.step} may not have taken effect (${h.effect.words})`;
  if (h.state === 'done') return `${h.step} took effect and is not undone (${h.effect.words})`;
  if (h.state === 'unknown') return `${h.step} may have taken effect (${h.effect.words})`;
  return `${h.step} has not run (${h.effect.words})`;
}

function summaryOf(
  action: OperatorActionKind,
  s: SagaState,
  def: SagaDefinition<unknown> | undefined,
  effects: PreviewEffect[],
  left: HalfDone[] | undefined,
): string {
  if (action === 'resolve') {
    const head = 'Closes the saga; nothing is called: say in the note what you repaired by hand.';
    if (!def)
      return `${head} This gateway does not know the definition ${s.definition}: what is left half-done cannot be told.`;
    if (!left || left.length === 0) return `${head} Nothing is left half-done.`;
    return `${head} Left half-done: ${left.map(halfDoneWords).join('; ')}.`;
  }
  if (effects.length === 0) {
    return action === 'compensate'
      ? 'Nothing to undo: no step that took effect has a compensation; the saga ends COMPENSATED.'
      : 'Nothing to run: the saga ends.';
  }
  const [first, ...rest] = effects as [PreviewEffect, ...PreviewEffect[]];
  if (action === 'retry') {
    const what = first.phase === 'action' ? first.step : `the undo of ${first.step}`;
    return [
      sentence(`retries ${what} with a fresh budget: ${first.effect.words}`),
      ...effectSentences(rest, true),
    ].join(' ');
  }
  return effectSentences(effects).join(' ');
}

function totalsOf(effects: readonly PreviewEffect[]): ActionPreview['totals'] {
  let chargeCents = 0;
  let refundCents = 0;
  const stock = new Map<string, StockMove>();
  for (const e of effects) {
    if (e.certainty !== 'will') continue;
    const m = e.effect.money;
    if (m?.direction === 'charge') chargeCents += m.cents;
    if (m?.direction === 'refund') refundCents += m.cents;
    for (const mv of e.effect.stock ?? []) {
      const key = `${mv.item}\u0000${mv.direction}`;
      const had = stock.get(key);
      stock.set(key, { item: mv.item, direction: mv.direction, quantity: (had?.quantity ?? 0) + mv.quantity });
    }
  }
  const sorted = [...stock.values()].sort((a, b) =>
    a.item === b.item ? a.direction.localeCompare(b.direction) : a.item < b.item ? -1 : 1,
  );
  return { chargeCents, refundCents, stock: sorted };
}

/**
 * What `action` would do to `saga` now, in business words and sums (pure). Whether it applies,
 * and the transition it writes, are decideAction's (asked with a fresh action id and a note, as
 * allowedActions asks); the calls that follow are derived from the state that transition leaves,
 * by the same rules the engine's plan follows (transitions.ts). `def` is the saga's definition, or
 * undefined when this process does not know it (only resolve applies then). `now` is the time the
 * saga's deadline is judged by (the saga log's clock, as the engine judges it): a retry that puts
 * a saga back before its point of no return compensates instead once the deadline has passed.
 * Without it, the saga's last update: a deadline passed then has passed now, but one not passed
 * then may have since, so a caller with a clock passes it.
 */
export function previewAction(
  def: SagaDefinition<unknown> | undefined,
  saga: SagaRecord,
  action: OperatorActionKind,
  now: number = saga.updatedAt,
): ActionPreview {
  const decision = decideAction(
    def,
    saga,
    { sagaId: saga.id, action, actionId: 'preview', actor: 'preview', note: 'preview' },
    [],
  );
  const empty = { chargeCents: 0, refundCents: 0, stock: [] };
  if (decision.kind !== 'apply') {
    // A fresh id with no prior actions is never a replay; answered as a refusal all the same.
    const refusal =
      decision.kind === 'refused'
        ? { code: decision.code, message: decision.message }
        : { code: 'action_not_allowed' as const, message: `cannot ${action} saga ${saga.id}` };
    return {
      sagaId: saga.id,
      action,
      allowed: false,
      refusal,
      summary: sentence(refusal.message),
      effects: [],
      totals: empty,
    };
  }
  let after: SagaState = { ...saga, ...decision.transition.patch };
  let overdue: string | undefined;
  if (def && after.status === 'RUNNING') {
    const i = after.stepIndex;
    const step = def.steps[i];
    // As planForward (transitions.ts): a step that may still be compensated past (before the
    // pivot, or a pivot with a fence) is not run past the saga's deadline; the saga compensates
    // instead, from the step itself when it is the pivot (its fence first).
    if (step && !isForwardOnly(def, i) && now >= after.deadlineAt) {
      overdue = step.name;
      after = { ...after, status: 'COMPENSATING', compIndex: i === pivotIndex(def) || after.attempt > 0 ? i : i - 1 };
    }
  }
  let effects: PreviewEffect[] = [];
  if (def && after.status === 'COMPENSATING') effects = compensationPath(def, after);
  else if (def && after.status === 'RUNNING') effects = forwardPath(def, after);
  const left = action === 'resolve' && def ? halfDone(def, saga) : undefined;
  let summary = summaryOf(action, saga, def, effects, left);
  if (overdue !== undefined) {
    // The retry itself is what the operator asked for; say why the step is not run again.
    summary = [
      `The saga's deadline has passed, so ${overdue} is not run again: it is settled and the saga compensates.`,
      ...effectSentences(effects),
    ].join(' ');
  }
  return {
    sagaId: saga.id,
    action,
    allowed: true,
    summary,
    effects,
    totals: totalsOf(effects),
    ...(left ? { halfDone: left } : {}),
  };
}
