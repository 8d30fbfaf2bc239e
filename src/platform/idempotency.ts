import type { FastKv } from './fast-kv.js';

/**
 * The request-level idempotency protocol on the fast store, shared by the gateway (HTTP) and the
 * participants (gRPC): the first request with a key takes it (SET NX) as in flight with the
 * request's fingerprint; when it is done the key holds the response for `ttlMs`.
 */
type Held<T> = { s: 'in_flight'; fp: string } | { s: 'done'; fp: string; r: T };

export type Begin<T> =
  | { kind: 'acquired' }
  | { kind: 'replay'; response: T }
  | { kind: 'in_flight' }
  | { kind: 'mismatch' };

export interface IdempotencyGuard<T> {
  begin(key: string, fingerprint: string): Promise<Begin<T>>;
  complete(key: string, fingerprint: string, response: T): Promise<void>;
  /** Frees the key after a failure that stored nothing, so that a retry may run. */
  abandon(key: string): Promise<void>;
}

export interface GuardOptions {
  /** Key prefix, e.g. `ecommerce-sagas:gateway:idem:`. */
  namespace: string;
  /** How long a finished response is replayed. */
  ttlMs: number;
  /** How long an in-flight claim lasts if its holder dies without finishing. */
  lockMs: number;
}

export function createIdempotencyGuard<T>(kv: FastKv, opts: GuardOptions): IdempotencyGuard<T> {
  const k = (key: string) => opts.namespace + key;
  return {
    async begin(key, fingerprint) {
      const claim: Held<T> = { s: 'in_flight', fp: fingerprint };
      const current = await kv.setIfAbsent(k(key), JSON.stringify(claim), opts.lockMs);
      if (current === null) return { kind: 'acquired' };
      let held: Held<T>;
      try {
        held = JSON.parse(current) as Held<T>;
      } catch {
        // Not ours (or corrupted): the durable store decides.
        await kv.del(k(key));
        return { kind: 'acquired' };
      }
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
  };
}
