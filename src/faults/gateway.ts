/**
 * The gateway side of the fault switchboard (FAULTS_ENABLED=1): a saga interceptor that acts
 * around each attempt's call as the board's rules say. The engine knows nothing of it: the
 * gateway's main (the composition root) puts it in the engine's interceptor chain.
 */
import { trace, type Meter } from '@opentelemetry/api';
import type { AttemptContext, SagaInterceptor, StepOp } from '../saga/index.js';
import { crashNow } from '../platform/process/crash.js';
import type { Logger } from '../platform/telemetry/logger.js';
import { encodeDirective, latencyOf, type FaultBoard, type FaultRule } from './plan.js';
import { callOf } from './vocabulary.js';

type CallOp = Extract<StepOp, { kind: 'call' }>;

export interface FaultsOptions {
  logger: Pick<Logger, 'warn'>;
  /** The gateway's meter: faults_injected_total{target,kind}. */
  meter: Meter;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * The fault switchboard on the gateway (installed only with FAULTS_ENABLED=1): around each
 * attempt's call, the first rule of the board that fires acts. In the gateway: `latency` delays the
 * call (past the attempt's deadline it is the deadline's uncertain outcome, without calling);
 * `error` is a definite refusal (code `fault_injected`) and `uncertain` an unknown outcome, both
 * without calling; `crash` kills the process at the rule's checkpoint of the attempt. Rules that
 * act at the participant (after_effect, or naming a participant or method) travel with the call as
 * its `x-fault` directive. Each fault: `fault.kind`, `fault.rule_id` and a `fault.injected` event
 * on the attempt's span, a warning line, faults_injected_total{target,kind}; the refused or
 * uncertain attempt's STEP_FAILED names the rule.
 */
export function faults(board: FaultBoard, opts: FaultsOptions): SagaInterceptor {
  const random = opts.random ?? Math.random;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const injected = opts.meter.createCounter('faults_injected', {
    description: 'Faults injected by the fault switchboard, by target and kind',
  });
  const pointOf = (ctx: AttemptContext) => {
    // The participant method it calls, as the step's definition says (StepDefinition.calls).
    const call = callOf(ctx.step, ctx.phase);
    return {
      call,
      point: { step: ctx.step.name, phase: ctx.phase, participant: call?.participant, method: call?.method },
    };
  };
  const mark = (ctx: AttemptContext, rule: FaultRule, target: string, extra: Record<string, number | string> = {}) => {
    const span = trace.getActiveSpan();
    span?.setAttributes({ 'fault.kind': rule.kind, 'fault.rule_id': rule.id });
    span?.addEvent('fault.injected', {
      'fault.kind': rule.kind,
      'fault.rule_id': rule.id,
      'fault.target': target,
      ...extra,
    });
    opts.logger.warn(
      {
        saga_id: ctx.saga.id,
        step: ctx.step.name,
        phase: ctx.phase,
        attempt: ctx.attempt,
        kind: rule.kind,
        rule_id: rule.id,
        target,
        ...extra,
      },
      `fault injected: ${rule.kind} (rule ${rule.id})`,
    );
    injected.add(1, { target, kind: rule.kind });
  };
  return {
    name: 'faults',
    async step(op, next) {
      if (op.kind === 'call') return aroundCall(op, next);
      if (op.kind !== 'intent' && op.kind !== 'outcome') return next();
      await strikeAt(op, `before_${op.kind}`);
      await next();
      await strikeAt(op, `after_${op.kind}`);
    },
  };

  /** A gateway-side `crash` rule at one of the attempt's checkpoints. */
  async function strikeAt(ctx: AttemptContext, checkpoint: string): Promise<void> {
    const { point } = pointOf(ctx);
    const rule = board.match({ side: 'gateway', ...point, checkpoint }, random);
    if (!rule) return;
    mark(ctx, rule, ctx.step.name, { checkpoint });
    crashNow();
  }

  /**
   * Around the participant call. An outcome this rule's fault brought about (not a success)
   * carries the rule's id as `fault_rule`: the attempt's event records it, so that the console
   * tells an injected failure from a real one by a field, not by its message.
   */
  async function aroundCall(op: CallOp, next: () => Promise<void>): Promise<void> {
    const { call, point } = pointOf(op);
    const here = board.match({ side: 'gateway', ...point }, random);
    if (here) {
      const said = `fault injected by rule ${here.id}`;
      const tag = { fault_rule: here.id };
      if (here.kind === 'error') {
        mark(op, here, op.step.name);
        op.outcome = {
          kind: 'failed',
          code: 'fault_injected',
          message: `${said}: ${op.step.name} refused`,
          raised: true,
          annotations: tag,
        };
        return;
      }
      if (here.kind === 'uncertain') {
        mark(op, here, op.step.name);
        op.outcome = { kind: 'uncertain', error: `${said}: ${op.step.name} unavailable, not called`, annotations: tag };
        return;
      }
      if (here.kind === 'latency') {
        const ms = latencyOf(here, random);
        mark(op, here, op.step.name, { 'fault.latency_ms': ms });
        if (ms >= op.timeoutMs) {
          await sleep(op.timeoutMs);
          op.outcome = {
            kind: 'uncertain',
            error: `no answer within ${op.timeoutMs} ms (${said}: latency ${ms} ms)`,
            annotations: tag,
          };
          return;
        }
        await sleep(ms);
      }
    }
    const there = call ? board.match({ side: 'participant', ...point }, random) : undefined;
    if (!there || !call) return next();
    const latency = there.kind === 'latency' ? latencyOf(there, random) : undefined;
    mark(op, there, `${call.participant}.${call.method}`, latency === undefined ? {} : { 'fault.latency_ms': latency });
    op.transport.fault = encodeDirective({
      kind: there.kind,
      rule: there.id,
      ...(latency === undefined ? {} : { latency_ms: latency }),
    });
    try {
      await next();
    } finally {
      delete op.transport.fault;
    }
    // A refusal is the rule's only when the participant says so; an unknown outcome is, unless the
    // rule was a refusal (then the uncertainty is the link's, not the fault's).
    const o = op.outcome;
    const caused =
      (o?.kind === 'failed' && o.code === 'fault_injected') || (o?.kind === 'uncertain' && there.kind !== 'error');
    if (o && caused) op.outcome = { ...o, annotations: { fault_rule: there.id } };
  }
}
