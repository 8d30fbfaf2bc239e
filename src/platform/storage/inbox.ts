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
 *
 * Two halves: the records (InboxRecords), one implementation per database — SQLite here,
 * PostgreSQL in pg-inbox.ts — and the rules every inbox follows whatever keeps its records
 * (inboxOver): the key's form, the request's fingerprint, a reused key refused, the Redis fast
 * path in front.
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

export type Awaitable<T> = T | Promise<T>;

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

/** What an inbox holds for a key: the request it answered (method, fingerprint) and the answer, as JSON. */
export interface StoredAnswer {
  method: string;
  fingerprint: string;
  response: string;
}

/** The effect ran and its answer was committed with it, or the key already held an answer. */
export type OnceOutcome<Res> = { kind: 'applied'; response: Res } | { kind: 'stored'; answer: StoredAnswer };

/**
 * The durable half of an inbox, on one database. `Tx` is what an effect is given to write with:
 * the store's writes bound to the transaction the record is committed in.
 */
export interface InboxRecords<Tx> {
  /** The answer held for `key`, read outside any write (the fast path's confirmation). */
  find(key: string): Promise<StoredAnswer | undefined>;
  /**
   * Runs `effect` at most once per key: in one transaction, the key is looked up, and when it holds
   * nothing the effect runs and its answer is recorded under it. A key racing itself (two replicas,
   * two connections) ends with one effect; the other call finds the first one's answer.
   */
  once<Res>(
    key: string,
    method: string,
    fingerprint: string,
    effect: (tx: Tx) => Awaitable<Res>,
  ): Promise<OnceOutcome<Res>>;
}

export interface Inbox<Tx = void> {
  /**
   * Runs `effect` at most once per idempotency key, atomically with its inbox record, with the
   * fast path (when there is one) in front: a repeat found in Redis is confirmed by the inbox and
   * answered without running anything, and a fresh answer is left there for the next repeat. The
   * database transaction stays the only guard.
   */
  run<Res>(
    key: string | undefined,
    method: string,
    request: unknown,
    effect: (tx: Tx) => Awaitable<Res>,
  ): Promise<{ response: Res; replayed: boolean }>;
}

const reused = (key: string) =>
  new AppError('idempotency_key_reused', `idempotency key ${key} was used for a different request`);

/** A stored answer as the reply to a request: the same request replays it, another is refused. */
function replayOf<Res>(key: string, method: string, fp: string, answer: StoredAnswer) {
  if (answer.method !== method || answer.fingerprint !== fp) throw reused(key);
  return { response: JSON.parse(answer.response) as Res, replayed: true };
}

/** The inbox's rules over its records, with the Redis fast path in front when given. */
export function inboxOver<Tx>(records: InboxRecords<Tx>, fastPath?: IdempotencyGuard<unknown>): Inbox<Tx> {
  const apply = async <Res>(key: string, method: string, fp: string, effect: (tx: Tx) => Awaitable<Res>) => {
    const out = await records.once(key, method, fp, effect);
    return out.kind === 'applied'
      ? { response: out.response, replayed: false }
      : replayOf<Res>(key, method, fp, out.answer);
  };
  return {
    async run<Res>(rawKey: string | undefined, method: string, request: unknown, effect: (tx: Tx) => Awaitable<Res>) {
      const key = validateIdempotencyKey(rawKey);
      const fp = fingerprint(method, request);
      if (!fastPath) return apply(key, method, fp, effect);
      const seen = await fastPath.begin(key, fp);
      if (seen.kind !== 'acquired') {
        // Redis is never the truth: a replay or a mismatch it reports is confirmed by this
        // service's own inbox, which answers. What the inbox does not back is ignored.
        const stored = await records.find(key);
        if (stored) return replayOf<Res>(key, method, fp, stored);
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
  };
}

/** A SQLite inbox's extra: `once` run synchronously, in a transaction of its own (tests, tools). */
export interface SqliteInbox<Tx = void> extends Inbox<Tx> {
  once<Res>(
    key: string | undefined,
    method: string,
    request: unknown,
    effect: (tx: Tx) => Res,
  ): { response: Res; replayed: boolean };
}

/**
 * The inbox's records in a SQLite database (INBOX_MIGRATION applied). The writes of one event-loop
 * turn commit together (group-commit.ts): each caller's answer comes back once its own write is
 * durable. An effect is given `tx` and must be synchronous database work on `db`, so that it shares
 * the transaction (and it may run twice, the first time undone: see GroupCommit).
 */
export function sqliteInboxRecords<Tx>(
  db: Db,
  tx: Tx,
  now: () => number = Date.now,
): InboxRecords<Tx> & {
  onceNow<Res>(key: string, method: string, fp: string, effect: (tx: Tx) => Res): OnceOutcome<Res>;
} {
  const get = db.prepare<[string], StoredAnswer>('SELECT method, fingerprint, response FROM inbox WHERE key = ?');
  const put = db.prepare('INSERT INTO inbox (key, method, fingerprint, response, created_at) VALUES (?, ?, ?, ?, ?)');
  /** The durable part, inside a transaction. */
  const applyOnce =
    <Res>(key: string, method: string, fp: string, effect: (tx: Tx) => Awaitable<Res>) =>
    (): OnceOutcome<Res> => {
      const seen = get.get(key);
      // A copy: node:sqlite's rows have no prototype.
      if (seen)
        return {
          kind: 'stored',
          answer: { method: seen.method, fingerprint: seen.fingerprint, response: seen.response },
        };
      const response = effect(tx);
      if (response instanceof Promise) {
        // Awaiting it would commit the transaction before the effect's writes: a bug, refused loudly.
        response.catch(() => undefined);
        throw new TypeError(`the effect of ${method} must be synchronous work on the SQLite database`);
      }
      put.run(key, method, fp, JSON.stringify(response), now());
      return { kind: 'applied', response };
    };
  const commits = new GroupCommit(db);
  return {
    find: async (key) => {
      const seen = get.get(key);
      return seen && { method: seen.method, fingerprint: seen.fingerprint, response: seen.response };
    },
    once: (key, method, fp, effect) => commits.run(applyOnce(key, method, fp, effect)),
    onceNow: (key, method, fp, effect) => db.transaction(applyOnce(key, method, fp, effect)).immediate(),
  };
}

/** The inbox of a SQLite database whose effects are given nothing (they close over their store). */
export function createInbox(db: Db, now: () => number = Date.now, fastPath?: IdempotencyGuard<unknown>): SqliteInbox {
  const records = sqliteInboxRecords<void>(db, undefined, now);
  return {
    ...inboxOver(records, fastPath),
    once<Res>(rawKey: string | undefined, method: string, request: unknown, effect: () => Res) {
      const key = validateIdempotencyKey(rawKey);
      const fp = fingerprint(method, request);
      const out = records.onceNow(key, method, fp, effect);
      return out.kind === 'applied'
        ? { response: out.response, replayed: false }
        : replayOf<Res>(key, method, fp, out.answer);
    },
  };
}
