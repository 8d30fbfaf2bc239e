/**
 * The gateway side of the fault switchboard (FAULTS_ENABLED=1): a saga interceptor that acts
 * around each attempt's call as the board's rules say. The engine knows nothing of it: the
 * gateway's main (the composition root) puts it in the engine's interceptor chain.
 */
import { trace, type Meter } from '@opentelemetry/api';
import type { AttemptContext, SagaInterceptor } from '../saga/index.js';
import { crashNow } from '../platform/process/crash.js';
import type { Logger } from '../platform/telemetry/logger.js';
import { encodeDirective, latencyOf, type FaultBoard, type FaultRule } from './plan.js';

/** The participant method an attempt calls (`payment`, `Charge`): what participant-side fault rules target. */
export interface FaultCall {
  participant: string;
  method: string;
}

export interface FaultsOptions {
  logger: Pick<Logger, 'warn'>;
  /** The gateway's meter: faults_injected_total{target,kind}. */
  meter: Meter;
  /** The call an attempt makes, when it calls a participant (the definition's own table). */
  callOf?: (ctx: AttemptContext) => FaultCall | undefined;
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
    const call = opts.callOf?.(ctx);
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
    at(checkpoint, ctx) {
      const { point } = pointOf(ctx);
      const rule = board.match({ side: 'gateway', ...point, checkpoint }, random);
      if (!rule) return;
      mark(ctx, rule, ctx.step.name, { checkpoint });
      crashNow();
    },
    async aroundCall(ctx, next) {
      const { call, point } = pointOf(ctx);
      const here = board.match({ side: 'gateway', ...point }, random);
      if (here) {
        const said = `fault injected by rule ${here.id}`;
        if (here.kind === 'error') {
          mark(ctx, here, ctx.step.name);
          return { kind: 'failed', code: 'fault_injected', message: `${said}: ${ctx.step.name} refused`, raised: true };
        }
        if (here.kind === 'uncertain') {
          mark(ctx, here, ctx.step.name);
          return { kind: 'uncertain', error: `${said}: ${ctx.step.name} unavailable, not called` };
        }
        if (here.kind === 'latency') {
          const ms = latencyOf(here, random);
          mark(ctx, here, ctx.step.name, { 'fault.latency_ms': ms });
          if (ms >= ctx.timeoutMs) {
            await sleep(ctx.timeoutMs);
            return { kind: 'uncertain', error: `no answer within ${ctx.timeoutMs} ms (${said}: latency ${ms} ms)` };
          }
          await sleep(ms);
        }
      }
      const there = call ? board.match({ side: 'participant', ...point }, random) : undefined;
      if (!there || !call) return next();
      const latency = there.kind === 'latency' ? latencyOf(there, random) : undefined;
      mark(
        ctx,
        there,
        `${call.participant}.${call.method}`,
        latency === undefined ? {} : { 'fault.latency_ms': latency },
      );
      ctx.transport.fault = encodeDirective({
        kind: there.kind,
        rule: there.id,
        ...(latency === undefined ? {} : { latency_ms: latency }),
      });
      try {
        return await next();
      } finally {
        delete ctx.transport.fault;
      }
    },
  };
}
