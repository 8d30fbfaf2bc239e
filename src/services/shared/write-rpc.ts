import type { handleUnaryCall } from '@grpc/grpc-js';
import { unary } from '../../platform/grpc/grpc.js';
import type { Inbox } from '../../platform/storage/inbox.js';
import type { Logger } from '../../platform/telemetry/logger.js';
import { crashPoint } from '../../platform/process/crash.js';

export interface WriteRpcSpec<Req, Valid, Res> {
  /** Checks the request before anything is stored under its key. */
  validate(req: Req): Valid;
  /** The effect: synchronous database work, committed with its inbox record. */
  effect(valid: Valid): Res;
  /**
   * The log line of the effect: its message and fields (the key and replay flag are added), at
   * `level` (info by default; warn for a refused contradiction, which someone should look at).
   */
  log(valid: Valid, res: Res): { msg: string; level?: 'info' | 'warn' } & Record<string, unknown>;
}

/**
 * The one shape of every participant write: validate, apply once per idempotency key through the
 * inbox (with the test-only crash points just before and after the commit,
 * `<service>.<name>.before_commit|after_commit`), log the outcome once, answer.
 */
export function writeRpcs(service: string, logger: Logger, inbox: Inbox) {
  return function write<Req, Valid, Res>(
    method: string,
    name: string,
    spec: WriteRpcSpec<Req, Valid, Res>,
  ): handleUnaryCall<Req, Res> {
    const point = `${service}.${name}`;
    return unary(method, logger, async (req: Req, call) => {
      const valid = spec.validate(req);
      const { response, replayed } = await inbox.run(call.idempotencyKey, method, req, () => {
        const res = spec.effect(valid);
        crashPoint(`${point}.before_commit`);
        return res;
      });
      crashPoint(`${point}.after_commit`);
      const { msg, level = 'info', ...fields } = spec.log(valid, response);
      call.logger[level]({ ...fields, idempotency_key: call.idempotencyKey, replayed }, msg);
      return response;
    });
  };
}
