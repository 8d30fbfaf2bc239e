import { createHash } from 'node:crypto';
import { isParticipantKey } from '../../contracts/ids.js';
import { LIMITS } from '../../contracts/limits.js';
import type { Db } from './db.js';
import { AppError } from '../errors.js';
import type { IdempotencyGuard } from './idempotency.js';
import { GroupCommit } from './group-commit.js';

/**
 * The participants' idempotency inbox: a write RPC's key, the fingerprint of its request and the
 * response it produced, stored in the same transaction as the effect. A repeat of the key gets
 * the stored response and repeats no effect, across retries, restarts and replicas.
 */
export const INBOX_MIGRATION = `
CREATE TABLE inbox (
  key         TEXT PRIMARY KEY,
  method      TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  response    TEXT NOT NULL,
  created_at  INTEGER NOT NULL
) WITHOUT ROWID;
`;

export function fingerprint(method: string, request: unknown): string {
  return createHash('sha256').update(method).update('\0').update(JSON.stringify(request)).digest('base64url');
}

export function validateIdempotencyKey(key: string | undefined): string {
  if (key === undefined || key === '') {
    throw new AppError('idempotency_key_required', 'metadata x-idempotency-key is required on write calls');
  }
  if (!isParticipantKey(key)) {
    throw new AppError(
      'invalid_idempotency_key',
      `idempotency key must be 1-${LIMITS.idempotencyKeyMax} printable ASCII characters without spaces`,
    );
  }
  return key;
}

export interface Inbox {
  /**
   * `once`, with the fast path in front: a repeat found in Redis is answered without touching the
   * database, and a fresh answer is left there for the next repeat. The database transaction stays
   * the only guard; two replicas racing on one key are serialised by it.
   */
  run<Res>(
    key: string | undefined,
    method: string,
    request: unknown,
    effect: () => Res,
  ): Promise<{ response: Res; replayed: boolean }>;
  /**
   * Runs `effect` at most once per key, atomically with its inbox record, in a transaction of its
   * own (`run` group-commits). `effect` must be synchronous database work so that it shares the
   * transaction.
   */
  once<Res>(
    key: string | undefined,
    method: string,
    request: unknown,
    effect: () => Res,
  ): { response: Res; replayed: boolean };
}

export function createInbox(db: Db, now: () => number = Date.now, fastPath?: IdempotencyGuard<unknown>): Inbox {
  const get = db.prepare<[string], { method: string; fingerprint: string; response: string }>(
    'SELECT method, fingerprint, response FROM inbox WHERE key = ?',
  );
  const put = db.prepare('INSERT INTO inbox (key, method, fingerprint, response, created_at) VALUES (?, ?, ?, ?, ?)');
  const reused = (key: string) =>
    new AppError('idempotency_key_reused', `idempotency key ${key} was used for a different request`);

  /** The durable part, for a key already validated and a request already fingerprinted: run inside a transaction. */
  const applyOnce =
    <Res>(key: string, method: string, fp: string, effect: () => Res) =>
    (): { response: Res; replayed: boolean } => {
      const seen = get.get(key);
      if (seen) {
        if (seen.method !== method || seen.fingerprint !== fp) throw reused(key);
        return { response: JSON.parse(seen.response) as Res, replayed: true };
      }
      const response = effect();
      put.run(key, method, fp, JSON.stringify(response), now());
      return { response, replayed: false };
    };
  // The writes of one event-loop turn commit together (group-commit.ts): the answer goes back
  // once its own write is durable.
  const commits = new GroupCommit(db);
  const apply = <Res>(key: string, method: string, fp: string, effect: () => Res) =>
    commits.run(applyOnce(key, method, fp, effect));

  const inbox: Inbox = {
    async run<Res>(rawKey: string | undefined, method: string, request: unknown, effect: () => Res) {
      const key = validateIdempotencyKey(rawKey);
      const fp = fingerprint(method, request);
      if (!fastPath) return apply(key, method, fp, effect);
      const seen = await fastPath.begin(key, fp);
      if (seen.kind !== 'acquired') {
        // Redis is never the truth: a replay or a mismatch it reports is confirmed by this
        // service's own inbox, which answers. What the inbox does not back is ignored.
        const stored = get.get(key);
        if (stored) {
          if (stored.method !== method || stored.fingerprint !== fp) throw reused(key);
          return { response: JSON.parse(stored.response) as Res, replayed: true };
        }
        if (seen.kind === 'replay') fastPath.untrusted(key, 'unbacked');
      }
      try {
        const out = await apply(key, method, fp, effect);
        // The answer is durable; the fast-path copy need not hold the caller up.
        fastPath.complete(key, fp, out.response).catch(() => undefined);
        return out;
      } catch (err) {
        await fastPath.abandon(key);
        throw err;
      }
    },
    once<Res>(rawKey: string | undefined, method: string, request: unknown, effect: () => Res) {
      const key = validateIdempotencyKey(rawKey);
      return db.transaction(applyOnce(key, method, fingerprint(method, request), effect)).immediate();
    },
  };
  return inbox;
}
