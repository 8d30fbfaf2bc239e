/**
 * What a fault plan may name, derived from the saga definitions: their steps, and the calls each
 * step's phases make as the step's definition says (StepDefinition.calls). Nothing here is
 * written by hand: a new step or call is in the vocabulary as soon as its definition has it. The
 * gateway derives it from the engine's registered definitions; tools that run no saga (the chaos
 * runner, tests) from a definition they read.
 */
import type { StepDefinition } from '../saga/index.js';
import { CRASH_POINTS, FAULT_KINDS, FAULT_PHASES, type FaultPhase, type FaultVocabularyView } from './schema.js';

/** A participant method a step's phase calls (`payment`, `Charge`): what participant-side rules target. */
export interface FaultCall {
  participant: string;
  method: string;
}

/** One place a call is made: a step's phase and the participant method it calls. */
export interface CallSite extends FaultCall {
  step: string;
  phase: FaultPhase;
}

/** What a plan may name: the definitions' steps, the participants they call and the methods. */
export interface FaultVocabulary {
  steps: readonly string[];
  participants: readonly string[];
  calls: readonly FaultCall[];
}

type Step = Pick<StepDefinition<never>, 'name' | 'calls'>;
/** A definition as far as the vocabulary reads it (any saga's: the input type does not matter). */
export interface DefinitionShape {
  readonly steps: readonly Step[];
}

/** The call an attempt of this step's phase makes, as its definition says; undefined when it says none. */
export function callOf(step: Pick<Step, 'calls'>, phase: FaultPhase): FaultCall | undefined {
  return phase === 'action' ? step.calls?.action : step.calls?.compensation;
}

/** Every call site of the definitions, in their steps' order, action before compensation. */
export function callSitesOf(definitions: readonly DefinitionShape[]): CallSite[] {
  return definitions.flatMap((d) =>
    d.steps.flatMap((step) =>
      FAULT_PHASES.flatMap((phase) => {
        const call = callOf(step, phase);
        return call ? [{ step: step.name, phase, participant: call.participant, method: call.method }] : [];
      }),
    ),
  );
}

/** The vocabulary of these definitions: each name once, in the order the definitions give them. */
export function vocabularyOf(definitions: readonly DefinitionShape[]): FaultVocabulary {
  const calls = new Map<string, FaultCall>();
  for (const s of callSitesOf(definitions))
    calls.set(`${s.participant}.${s.method}`, { participant: s.participant, method: s.method });
  return {
    steps: [...new Set(definitions.flatMap((d) => d.steps.map((s) => s.name)))],
    participants: [...new Set([...calls.values()].map((c) => c.participant))],
    calls: [...calls.values()],
  };
}

/** The vocabulary as GET /api/faults answers it: the format's own words, and the definitions'. */
export function vocabularyView(v: FaultVocabulary): FaultVocabularyView {
  return {
    kinds: [...FAULT_KINDS],
    participants: [...v.participants],
    phases: [...FAULT_PHASES],
    crash_points: [...CRASH_POINTS],
    steps: [...v.steps],
    calls: v.calls.map((c) => ({ ...c })),
  };
}
