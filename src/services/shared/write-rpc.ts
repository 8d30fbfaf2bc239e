import type { handleUnaryCall } from '@grpc/grpc-js';
import { unary } from '../../platform/grpc/grpc.js';
import type { Awaitable, Inbox } from '../../platform/storage/inbox.js';
import type { Logger } from '../../platform/telemetry/logger.js';
import { crashPoint } from '../../platform/process/crash.js';

export interface WriteRpcSpec<Req, Valid, W, R, Res> {
  /** Checks the request before anything is stored under its key. */
  validate(req: Req): Valid;
  /** The effect: one of the store's writes (`tx`), in the transaction its inbox record is committed in. */
  effect(tx: W, valid: Valid): Awaitable<R>;
  /** The answer to the effect's result: what the inbox keeps under the key, and every repeat gets. */
  answer(result: R, valid: Valid): Res;
  /**
   * The log line of the effect: its message and fields (the key and replay flag are added), at
   * `level` (info by default; warn for a refused contradiction, which someone should look at).
   */
  log(valid: Valid, res: Res): { msg: string; level?: 'info' | 'warn' } & Record<string, unknown>;
}

/** `f` of a value now, or once it is there: a SQLite effect stays synchronous, inside its transaction. */
function then<R, T>(value: Awaitable<R>, f: (r: R) => T): Awaitable<T> {
  return value instanceof Promise ? value.then(f) : f(value);
}

/**
 * The one shape of every participant write: validate, apply once per idempotency key through the
 * inbox (with the test-only crash points just before and after the commit,
 * `<service>.<name>.before_commit|after_commit`), log the outcome once, answer.
 */
export function writeRpcs<W>(service: string, logger: Logger, inbox: Inbox<W>) {
  return function write<Req, Valid, R, Res>(
    method: string,
    name: string,
    spec: WriteRpcSpec<Req, Valid, W, R, Res>,
  ): handleUnaryCall<Req, Res> {
    const point = `${service}.${name}`;
    return unary(method, logger, async (req: Req, call) => {
      const valid = spec.validate(req);
      const { response, replayed } = await inbox.run(call.idempotencyKey, method, req, (tx) =>
        then(spec.effect(tx, valid), (result) => {
          const res = spec.answer(result, valid);
          crashPoint(`${point}.before_commit`);
          return res;
        }),
      );
      crashPoint(`${point}.after_commit`);
      const { msg, level = 'info', ...fields } = spec.log(valid, response);
      call.logger[level]({ ...fields, idempotency_key: call.idempotencyKey, replayed }, msg);
      return response;
    });
  };
}
