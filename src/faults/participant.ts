/**
 * The participant side of the fault switchboard (FAULTS_ENABLED=1): wraps every unary method of a
 * service so that it does what the gateway's `x-fault` directive says. The gRPC platform knows
 * nothing of it: a participant's main passes `aroundWithFaults(...)` to startGrpcServer.
 */
import { Metadata, status, type handleUnaryCall, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { metrics, propagation, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import {
  CALLER,
  IDEMPOTENCY_KEY_MD,
  callerIdentity,
  firstValue,
  metadataGetter,
  splitPath,
  throttledWarning,
  type ServiceBinding,
} from '../platform/grpc/grpc.js';
import { crashNow } from '../platform/process/crash.js';
import type { Logger } from '../platform/telemetry/logger.js';
import { FAULT_METADATA, parseDirective, type FaultDirective } from './plan.js';

const tracer = trace.getTracer('ecommerce-sagas/grpc');

/** A participant with FAULTS_ENABLED=1: it honours the gateway's `x-fault` directives. */
export interface ServerFaults {
  /** The participant's name (`payment`), the metric's target prefix. */
  service: string;
  logger: Logger;
}

let faultsInjected: ReturnType<ReturnType<typeof metrics.getMeter>['createCounter']> | undefined;

/** `grpc.ServerUnaryCall`'s callback, as a fault answers it. */
function refusal(code: status, message: string, errorCode?: string) {
  const metadata = new Metadata();
  if (errorCode) metadata.set('x-error-code', errorCode);
  return { code, details: message, metadata, name: 'Error', message };
}

/**
 * The participant side of the fault switchboard: a wrapper of every unary method that does what
 * the gateway's `x-fault` directive says — `latency` (sleep, then the handler), `error` (a
 * definite refusal, FAILED_PRECONDITION with x-error-code fault_injected, handler not run),
 * `uncertain` (UNAVAILABLE, handler not run), `after_effect` (the handler runs and its effect
 * commits, then UNAVAILABLE instead of its answer), `crash` (SIGKILL before the handler). Each
 * fault: a span with `fault.kind`, `fault.rule_id` and a `fault.injected` event, a warning line,
 * `faults_injected_total{target,kind}`.
 * A directive is obeyed only from a caller authenticated as the gateway (mutual TLS, its
 * certificate's CN). In plaintext (GRPC_INSECURE=1) no caller is authenticated, so every
 * directive is ignored — with a warning, at most once a minute: anyone who reaches the port could
 * otherwise crash the service.
 */
function honourFaults<B extends ServiceBinding>(binding: B, faults: ServerFaults): B {
  const implementation: UntypedServiceImplementation = { ...binding.implementation };
  const ignored = throttledWarning(
    faults.logger,
    'an x-fault directive from a caller not authenticated as the gateway is ignored',
  );
  for (const [name, method] of Object.entries(binding.definition)) {
    const handler = binding.implementation[name] as handleUnaryCall<unknown, unknown> | undefined;
    if (method.requestStream || method.responseStream || handler === undefined) continue;
    implementation[name] = ((call, callback) => {
      const raw = firstValue(call.metadata, FAULT_METADATA);
      if (raw === undefined) return handler(call, callback);
      const { name: path, service, method: rpcMethod } = splitPath(call.getPath());
      const caller = callerIdentity(call.getAuthContext());
      if (caller !== CALLER) {
        ignored({ rpc: path, caller: caller ?? null, peer: call.getPeer(), x_fault: raw.slice(0, 100) });
        return handler(call, callback);
      }
      const d: FaultDirective | undefined = parseDirective(raw);
      const log = faults.logger.child({ rpc: path });
      if (!d) {
        log.warn({ x_fault: raw.slice(0, 100) }, 'an x-fault directive that is not one is ignored');
        return handler(call, callback);
      }
      const rule = d.rule ?? 'unnamed';
      const parent = propagation.extract(ROOT_CONTEXT, call.metadata, metadataGetter);
      const attributes = {
        'fault.kind': d.kind,
        'fault.rule_id': rule,
        'rpc.service': service,
        'rpc.method': rpcMethod,
      };
      const span = tracer.startSpan(`fault ${d.kind}`, { attributes }, parent);
      span.addEvent('fault.injected', {
        'fault.kind': d.kind,
        'fault.rule_id': rule,
        ...(d.latency_ms !== undefined ? { 'fault.latency_ms': d.latency_ms } : {}),
      });
      log.warn(
        {
          kind: d.kind,
          rule_id: rule,
          latency_ms: d.latency_ms,
          idempotency_key: firstValue(call.metadata, IDEMPOTENCY_KEY_MD),
        },
        `fault injected: ${d.kind}`,
      );
      faultsInjected ??= metrics.getMeter('ecommerce-sagas/faults').createCounter('faults_injected', {
        description: 'Faults injected by the fault switchboard, by target and kind',
      });
      faultsInjected.add(1, { target: `${faults.service}.${rpcMethod}`, kind: d.kind });
      const said = `fault injected by rule ${rule}`;
      switch (d.kind) {
        case 'crash':
          span.end();
          crashNow();
          return;
        case 'latency':
          setTimeout(() => {
            span.end();
            handler(call, callback);
          }, d.latency_ms ?? 0);
          return;
        case 'error':
          span.end();
          callback(refusal(status.FAILED_PRECONDITION, `${said}: ${rpcMethod} refused`, 'fault_injected'));
          return;
        case 'uncertain':
          span.end();
          callback(refusal(status.UNAVAILABLE, `${said}: ${rpcMethod} unavailable, not run`));
          return;
        case 'after_effect':
          handler(call, (err, ...rest) => {
            span.end();
            if (err) callback(err, ...rest);
            else callback(refusal(status.UNAVAILABLE, `${said}: ${rpcMethod} done, its answer lost`));
          });
          return;
      }
    }) satisfies handleUnaryCall<unknown, unknown>;
  }
  return { ...binding, implementation };
}

/** What a participant passes to startGrpcServer (`around`) to honour the gateway's directives. */
export function aroundWithFaults(faults: ServerFaults): (binding: ServiceBinding) => ServiceBinding {
  return (binding) => honourFaults(binding, faults);
}
