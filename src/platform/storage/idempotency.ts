import type { Meter } from '@opentelemetry/api';
import type { FastKv } from './fast-kv.js';
import type { Logger } from '../telemetry/logger.js';

/**
 * The request-level idempotency protocol on the fast store, shared by the gateway (HTTP) and the
 * participants (gRPC): the first request with a key takes it (SET NX) as in flight with the
 * request's fingerprint; when it is done the key holds the response for `ttlMs`.
 */
type Held<T> = { s: 'in_flight'; fp: string } | { s: 'done'; fp: string; r: T };

export type Begin<T> =
  { kind: 'acquired' } | { kind: 'replay'; response: T } | { kind: 'in_flight' } | { kind: 'mismatch' };

export interface IdempotencyGuard<T> {
  begin(key: string, fingerprint: string): Promise<Begin<T>>;
  complete(key: string, fingerprint: string, response: T): Promise<void>;
  /** Frees the key after a failure that stored nothing, so that a retry may run. */
  abandon(key: string): Promise<void>;
  /** Says that what the fast store held for `key` was not backed by the database, and was ignored. */
  untrusted(key: string, why: UntrustedReason): void;
}

/**
 * Why a fast-store value was ignored: not of the shape this guard writes (`malformed`), set to
 * outlive anything this guard sets (`no_expiry`: without an expiry it would hold its key forever),
 * or not backed by the database (`unbacked`).
 */
export type UntrustedReason = 'malformed' | 'no_expiry' | 'unbacked';

export interface GuardOptions {
  /** Key prefix, e.g. `ecommerce-sagas:gateway:idem:`. */
  namespace: string;
  /**
   * Hears of every fast-store value that was ignored: one not of this guard's shape (not JSON,
   * `null`, wrong types), or one its caller found the database does not back. It counts and logs.
   */
  onUntrusted?: (key: string, why: UntrustedReason) => void;
  /** How long a finished response is replayed. */
  ttlMs: number;
  /** How long an in-flight claim lasts if its holder dies without finishing. */
  lockMs: number;
}

/**
 * A held value, if it has the shape this guard writes. The shape is all that can be checked here:
 * a replayed response is a hint its caller verifies against its own database before using it.
 */
function parseHeld<T>(text: string): Held<T> | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const h = v as Record<string, unknown>;
  if (typeof h.fp !== 'string' || (h.s !== 'in_flight' && h.s !== 'done')) return undefined;
  if (h.s === 'done' && !('r' in h)) return undefined;
  return h as Held<T>;
}

export function createIdempotencyGuard<T>(kv: FastKv, opts: GuardOptions): IdempotencyGuard<T> {
  const k = (key: string) => opts.namespace + key;
  /**
   * This guard sets every value with an expiry (lockMs in flight, ttlMs done): one with none, or
   * longer, was put there by someone else, and would answer "in flight" or "another request" for
   * its key forever. Read only when the key is taken, which a first request never finds.
   */
  const outlivesThisGuard = async (key: string, held: Held<T>): Promise<boolean> => {
    const left = await kv.ttlMs(k(key));
    return left === null || (left !== undefined && left > (held.s === 'done' ? opts.ttlMs : opts.lockMs));
  };
  return {
    async begin(key, fingerprint) {
      const claim: Held<T> = { s: 'in_flight', fp: fingerprint };
      const current = await kv.setIfAbsent(k(key), JSON.stringify(claim), opts.lockMs);
      if (current === null) return { kind: 'acquired' };
      // Not ours (corrupted, or planted to pin the key): ignored, and the durable store decides.
      const ignore = async (why: UntrustedReason): Promise<Begin<T>> => {
        opts.onUntrusted?.(key, why);
        await kv.del(k(key));
        return { kind: 'acquired' };
      };
      const held = parseHeld<T>(current);
      if (!held) return ignore('malformed');
      if (await outlivesThisGuard(key, held)) return ignore('no_expiry');
      if (held.fp !== fingerprint) return { kind: 'mismatch' };
      return held.s === 'done' ? { kind: 'replay', response: held.r } : { kind: 'in_flight' };
    },
    async complete(key, fingerprint, response) {
      const done: Held<T> = { s: 'done', fp: fingerprint, r: response };
      await kv.set(k(key), JSON.stringify(done), opts.ttlMs);
    },
    async abandon(key) {
      await kv.del(k(key));
    },
    untrusted(key, why) {
      opts.onUntrusted?.(key, why);
    },
  };
}

/**
 * What a process does with an ignored fast-store value: counts it (`idempotency_fast_path_ignored`,
 * by reason) and logs the first one, since a forged value would otherwise arrive in floods.
 */
export function observeUntrusted(meter: Meter, logger: Logger): (key: string, why: UntrustedReason) => void {
  const ignored = meter.createCounter('idempotency_fast_path_ignored', {
    description:
      'Values in the idempotency fast path (Redis) that were ignored: malformed, or not backed by the database',
  });
  let logged = false;
  return (key, why) => {
    ignored.add(1, { reason: why });
    if (!logged) {
      logged = true;
      logger.warn(
        { idempotency_key: key, reason: why },
        'ignored a fast-path (Redis) value the database does not back; counted from now on in idempotency_fast_path_ignored',
      );
    }
  };
}
