import assert from 'node:assert/strict';
import { after } from 'node:test';
import path from 'node:path';
import type { handleUnaryCall } from '@grpc/grpc-js';
import type { Db } from '../../src/platform/storage/db.js';
import { failureCode, invoke, tempDir } from './participants.js';

/**
 * For the property tests of the participants (test/unit/*-properties.test.ts): sends write RPCs
 * with idempotency keys drawn from a small pool, and checks the inbox's side of each answer as it
 * goes, so that each property can look only at fresh answers:
 * - a key seen before with the same method and request must replay the stored answer exactly;
 * - a key seen before with another request must be refused with idempotency_key_reused.
 */
export class KeyedCalls {
  private readonly seen = new Map<string, { request: string; response: string }>();

  /** `prefix` keeps the keys of one run apart from those of the runs before it on the same database. */
  constructor(private readonly prefix: string) {}

  /** The fresh answer, or undefined when the call was a replay or a refused key reuse (both checked here). */
  async send<Req, Res>(
    method: string,
    handler: handleUnaryCall<Req, Res>,
    request: Req,
    poolKey: string,
  ): Promise<Res | undefined> {
    const key = `${this.prefix}:${poolKey}`;
    const fp = `${method} ${JSON.stringify(request)}`;
    const prev = this.seen.get(key);
    let response: Res;
    try {
      response = await invoke(handler, request, key);
    } catch (err) {
      const code = failureCode(err);
      if (prev !== undefined && prev.request !== fp) {
        assert.equal(code, 'idempotency_key_reused', `${key}: ${fp} after ${prev.request}`);
        return undefined;
      }
      throw err;
    }
    // The stored copy is JSON, where an absent field has no key: compare as JSON.
    const json = JSON.stringify(response);
    if (prev !== undefined) {
      assert.equal(prev.request, fp, `key ${key} reused for another request yet answered`);
      assert.deepEqual(JSON.parse(json), JSON.parse(prev.response), `replay of ${key} (${fp})`);
      return undefined;
    }
    this.seen.set(key, { request: fp, response: json });
    return response;
  }
}

/**
 * A database file for a whole property, closed when the test file ends. Each run uses an order id
 * (and keys) of its own on it: a fresh file per run would cost more in file creation than the run.
 */
export function tempDb(open: (file: string) => Db, name: string): Db {
  const db = open(path.join(tempDir(`${name}-properties`), `${name}.db`));
  after(() => db.close());
  return db;
}

let runs = 0;
/** An id for one run of a property: its order id, and its keys' prefix. */
export const nextRun = (): string => `run-${runs++}`;
