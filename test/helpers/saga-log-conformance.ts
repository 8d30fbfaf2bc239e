/**
 * What every SagaLog must do, as node:test tests: `sagaLogConformance('SQLite', factory)`
 * registers them. Each test gets fresh, empty storage from the factory and may open several
 * instances on it (two gateways sharing a log) and a child process (another machine's gateway).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import {
  InvalidCursorError,
  LeaseLostError,
  SAGA_STATUSES,
  encodeCursor,
  type Cursor,
  type ListQuery,
  type NewEvent,
  type SagaLog,
  type SagaRecord,
  type SagaStatus,
} from '../../src/saga/model.js';
import type { SagaLogConfig } from '../../src/saga/stores/open.js';
import type { ChildReport, ChildSpec } from './saga-log-child.js';
import { eventually } from './system.js';
import {
  SPAN_ID,
  STARTED,
  TRACE_ID,
  appendRounds,
  claimAll,
  newSaga,
  uniqueId,
  type StartOutcome,
} from './saga-log-work.js';

/** One empty log's storage (a file, a database). */
export interface SagaLogStorage {
  /** Opens an instance on this storage; each call is another instance, as another gateway would hold. */
  open(): Promise<SagaLog>;
  /** What another process passes to openSagaLog to reach the same storage. */
  config: SagaLogConfig;
  /** Removes the storage; every instance opened on it is closed by then. */
  destroy(): Promise<void>;
}

export interface SagaLogFactory {
  /** Fresh, empty storage for one test. */
  fresh(): Promise<SagaLogStorage>;
  /** Whether an instance hears of sagas finished through another instance (PostgreSQL's LISTEN), not only its own. */
  sharedNotifications: boolean;
}

/** The log's clock and the test's are the same machine's; the slack covers a slow scheduler. */
const CLOCK_SLACK_MS = 2_000;
const OWNER = 'owner-a';

/** Runs `fn` on fresh storage, closing every instance it opened and removing the storage after. */
async function withStorage(
  factory: SagaLogFactory,
  fn: (open: () => Promise<SagaLog>, storage: SagaLogStorage) => Promise<void>,
): Promise<void> {
  const storage = await factory.fresh();
  const opened: SagaLog[] = [];
  const open = async () => {
    const log = await storage.open();
    opened.push(log);
    return log;
  };
  try {
    await fn(open, storage);
  } finally {
    await Promise.allSettled(opened.map((l) => l.close()));
    await storage.destroy();
  }
}

/** Creates a saga leased to `owner` (for `leaseMs`) and returns the stored record. */
async function started(log: SagaLog, over: Partial<SagaRecord> = {}, leaseMs = 60_000): Promise<SagaRecord> {
  const res = await log.create(newSaga(over.id ?? uniqueId(), over), [STARTED], leaseMs);
  assert.ok(res.created, 'a new saga is created');
  return res.saga;
}

/** Moves a saga to `status` with the event that says so. */
async function finish(log: SagaLog, id: string, status: SagaStatus, owner = OWNER): Promise<void> {
  const type: NewEvent['type'] =
    status === 'COMPLETED'
      ? 'SAGA_COMPLETED'
      : status === 'COMPENSATED'
        ? 'SAGA_COMPENSATED'
        : status === 'PARKED'
          ? 'SAGA_PARKED'
          : status === 'RESOLVED'
            ? 'OPERATOR_ACTION'
            : 'COMPENSATION_STARTED';
  await log.append(id, owner, { status }, [{ type }]);
}

const pick5 = (from: string[], ...is: number[]) => is.map((i) => from[i] as string);

async function allPages(log: SagaLog, limit: number, status?: SagaStatus): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let cursor: Cursor | undefined;
  let pages = 0;
  do {
    const page = await log.list({ limit, status, cursor });
    pages++;
    assert.ok(page.sagas.length <= limit);
    ids.push(...page.sagas.map((s) => s.id));
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined);
  return { ids, pages };
}

export function sagaLogConformance(name: string, factory: SagaLogFactory): void {
  const it = (title: string, fn: (open: () => Promise<SagaLog>, storage: SagaLogStorage) => Promise<void>): void => {
    test(title, { timeout: 30_000 }, () => withStorage(factory, fn));
  };

  describe(`SagaLog conformance: ${name}`, () => {
    it('create stores the saga as given, with its SAGA_STARTED event, leased by the log clock', async (open) => {
      const log = await open();
      const saga = newSaga(uniqueId(), { idempotencyKey: uniqueId('key'), leaseExpiresAt: 1 });
      const before = Date.now();
      const res = await log.create(saga, [STARTED], 30_000);
      const after = Date.now();
      assert.ok(res.created);
      const stored = res.saga;
      assert.ok(
        stored.leaseExpiresAt >= before + 30_000 - CLOCK_SLACK_MS &&
          stored.leaseExpiresAt <= after + 30_000 + CLOCK_SLACK_MS,
        'lease = now + leaseMs',
      );
      const { progressAt, ...given } = stored;
      assert.equal(progressAt, saga.updatedAt, 'its creation is its progress so far');
      assert.deepEqual({ ...given, leaseExpiresAt: saga.leaseExpiresAt }, saga, 'everything else as given');
      assert.deepEqual(await log.get(saga.id), stored);
      assert.deepEqual(await log.getByIdempotencyKey(saga.idempotencyKey as string), stored);
      // JSON comes back as written: same keys in the same order, same text.
      assert.equal(JSON.stringify((await log.get(saga.id))?.input), JSON.stringify(saga.input));
      const events = await log.events(saga.id);
      assert.equal(events.length, 1);
      assert.deepEqual(events[0], {
        sagaId: saga.id,
        seq: 1,
        type: 'SAGA_STARTED',
        step: null,
        attempt: null,
        error: null,
        retryable: null,
        data: STARTED.data,
        traceId: TRACE_ID,
        spanId: SPAN_ID,
        at: events[0]?.at,
      });
      assert.equal(typeof events[0]?.at, 'number');
    });

    it('create with several events commits them all, numbered from 1; a create refused by its key writes none', async (open) => {
      const log = await open();
      const other = await open();
      const key = uniqueId('key');
      // The engine's create: the saga at its first attempt, SAGA_STARTED and that attempt's intent.
      const saga = newSaga(uniqueId(), { idempotencyKey: key, attempt: 1, currentStep: 'create_order' });
      const intent: NewEvent = {
        type: 'STEP_STARTED',
        step: 'create_order',
        attempt: 1,
        traceId: TRACE_ID,
        spanId: SPAN_ID,
      };
      const res = await log.create(saga, [STARTED, intent], 60_000);
      assert.ok(res.created);
      assert.deepEqual(
        [res.saga.attempt, res.saga.currentStep, res.saga.progressAt],
        [1, 'create_order', saga.updatedAt],
      );
      assert.deepEqual(await other.get(saga.id), res.saga, 'committed when it resolves');
      const events = await other.events(saga.id);
      const at = events[0]?.at;
      assert.deepEqual(events, [
        {
          sagaId: saga.id,
          seq: 1,
          type: 'SAGA_STARTED',
          step: null,
          attempt: null,
          error: null,
          retryable: null,
          data: STARTED.data,
          traceId: TRACE_ID,
          spanId: SPAN_ID,
          at,
        },
        {
          sagaId: saga.id,
          seq: 2,
          type: 'STEP_STARTED',
          step: 'create_order',
          attempt: 1,
          error: null,
          retryable: null,
          data: null,
          traceId: TRACE_ID,
          spanId: SPAN_ID,
          at,
        },
      ]);
      await log.append(saga.id, OWNER, { stepIndex: 1, attempt: 0 }, [
        { type: 'STEP_SUCCEEDED', step: 'create_order', attempt: 1 },
      ]);
      assert.deepEqual(
        (await log.events(saga.id)).map((e) => [e.seq, e.type]),
        [
          [1, 'SAGA_STARTED'],
          [2, 'STEP_STARTED'],
          [3, 'STEP_SUCCEEDED'],
        ],
        'appends number on after the create’s events',
      );
      // Several in one turn (one batch: PostgreSQL's batch statement), one of them a replay of the key.
      const fresh = Array.from({ length: 12 }, () => newSaga(uniqueId(), { attempt: 1 }));
      const replay = newSaga(uniqueId(), { idempotencyKey: key, attempt: 1 });
      const three = (id: string): NewEvent[] => [
        STARTED,
        { ...intent, data: { id } },
        { type: 'STEP_FAILED', step: 'create_order', attempt: 1, retryable: true },
      ];
      const results = await Promise.all([...fresh, replay].map((s) => log.create(s, three(s.id), 60_000)));
      assert.deepEqual(results.at(-1), { created: false, existingId: saga.id });
      for (const s of fresh) {
        const got = await other.events(s.id);
        assert.deepEqual(
          got.map((e) => [e.seq, e.type, e.data]),
          [
            [1, 'SAGA_STARTED', STARTED.data],
            [2, 'STEP_STARTED', { id: s.id }],
            [3, 'STEP_FAILED', null],
          ],
        );
        await log.append(s.id, OWNER, { attempt: 2 }, [{ type: 'STEP_STARTED', step: 'create_order', attempt: 2 }]);
        assert.deepEqual(
          (await log.events(s.id, { afterSeq: 3 })).map((e) => e.seq),
          [4],
        );
      }
      assert.equal(await other.get(replay.id), undefined);
      assert.equal((await other.events(saga.id)).length, 3, 'the replayed key wrote nothing to its holder');
    });

    it('append applies the patch and numbers each saga’s events 1..n, committed when it resolves', async (open) => {
      const log = await open();
      const other = await open();
      const a = await started(log);
      const b = await started(log);
      await log.append(
        a.id,
        OWNER,
        { stepIndex: 1, attempt: 1, results: { create_order: { orderId: 'o-1', lines: [1, 2] } } },
        [
          { type: 'STEP_STARTED', step: 'create_order', attempt: 1, traceId: TRACE_ID, spanId: SPAN_ID },
          { type: 'STEP_SUCCEEDED', step: 'create_order', attempt: 1, data: { orderId: 'o-1' } },
        ],
      );
      // Resolved means committed: another instance reads it at once.
      assert.equal((await other.get(a.id))?.stepIndex, 1);
      await log.append(b.id, OWNER, { attempt: 1 }, [{ type: 'STEP_STARTED', step: 'create_order', attempt: 1 }]);
      const failure = { step: 'charge_payment', code: 'card_declined', message: 'declined' };
      await log.append(a.id, OWNER, { status: 'COMPENSATING', compIndex: 0, attempt: 0, failure }, [
        { type: 'STEP_FAILED', step: 'charge_payment', attempt: 1, error: 'declined', retryable: false },
        { type: 'COMPENSATION_STARTED', step: 'create_order', attempt: 1 },
      ]);
      await log.append(a.id, OWNER, { attempt: 2 }, []);
      await log.append(a.id, OWNER, {}, [
        { type: 'COMPENSATION_FAILED', step: 'create_order', attempt: 2, error: 'timeout', retryable: true },
      ]);

      const eventsA = await other.events(a.id);
      assert.deepEqual(
        eventsA.map((e) => e.seq),
        [1, 2, 3, 4, 5, 6],
      );
      assert.deepEqual(
        eventsA.map((e) => e.type),
        [
          'SAGA_STARTED',
          'STEP_STARTED',
          'STEP_SUCCEEDED',
          'STEP_FAILED',
          'COMPENSATION_STARTED',
          'COMPENSATION_FAILED',
        ],
      );
      assert.deepEqual(eventsA[1], {
        sagaId: a.id,
        seq: 2,
        type: 'STEP_STARTED',
        step: 'create_order',
        attempt: 1,
        error: null,
        retryable: null,
        data: null,
        traceId: TRACE_ID,
        spanId: SPAN_ID,
        at: eventsA[1]?.at,
      });
      assert.deepEqual(eventsA[2]?.data, { orderId: 'o-1' });
      assert.equal(eventsA[3]?.retryable, false);
      assert.equal(eventsA[5]?.retryable, true);
      assert.equal(eventsA[5]?.error, 'timeout');
      assert.deepEqual(
        (await log.events(b.id)).map((e) => e.seq),
        [1, 2],
      );

      const got = await other.get(a.id);
      assert.ok(got);
      assert.deepEqual(
        {
          status: got.status,
          stepIndex: got.stepIndex,
          compIndex: got.compIndex,
          attempt: got.attempt,
          results: got.results,
          failure: got.failure,
        },
        {
          status: 'COMPENSATING',
          stepIndex: 1,
          compIndex: 0,
          attempt: 2,
          results: { create_order: { orderId: 'o-1', lines: [1, 2] } },
          failure,
        },
      );
      assert.ok(got.updatedAt >= a.createdAt - CLOCK_SLACK_MS);
      assert.equal(got.leaseOwner, OWNER);
    });

    it('group commit: the writes of one turn all commit, and a lost lease fails alone', async (open) => {
      const log = await open();
      const ids = (await Promise.all(Array.from({ length: 40 }, () => started(log)))).map((s) => s.id);
      const stolen = await started(log, { leaseOwner: 'owner-b' });
      const newcomer = newSaga(uniqueId());
      // All issued in this one turn.
      const writes = [
        ...ids.map((id, i) =>
          log.append(id, OWNER, { attempt: 1, stepIndex: i % 3 }, [{ type: 'STEP_STARTED', step: 's', attempt: 1 }]),
        ),
        log.append(stolen.id, OWNER, { attempt: 9 }, [{ type: 'STEP_STARTED', step: 's', attempt: 9 }]),
        log.create(newcomer, [STARTED], 60_000),
        ...ids.map((id) => log.append(id, 'owner-b', { attempt: 7 }, [{ type: 'STEP_FAILED', step: 's' }])),
      ];
      const settled = await Promise.allSettled(writes);
      const rejected = settled.flatMap((s, i) => (s.status === 'rejected' ? [{ i, reason: s.reason as unknown }] : []));
      assert.deepEqual(
        rejected.map((r) => r.i),
        [ids.length, ...ids.map((_, k) => ids.length + 2 + k)],
      );
      for (const r of rejected) {
        assert.ok(r.reason instanceof LeaseLostError);
        assert.equal(r.reason.code, 'lease_lost');
      }
      for (const id of ids) {
        assert.deepEqual(
          (await log.events(id)).map((e) => [e.seq, e.type]),
          [
            [1, 'SAGA_STARTED'],
            [2, 'STEP_STARTED'],
          ],
        );
        assert.equal((await log.get(id))?.attempt, 1);
      }
      assert.equal((await log.events(stolen.id)).length, 1, 'the refused append wrote nothing');
      assert.equal((await log.get(stolen.id))?.attempt, 0);
      assert.equal((await log.get(newcomer.id))?.id, newcomer.id);
    });

    it('writes to one saga commit in the order issued, even across turns without awaiting', async (open) => {
      const log = await open();
      const crowd = (await Promise.all(Array.from({ length: 100 }, () => started(log)))).map((s) => s.id);
      const fresh = newSaga(uniqueId());
      const writes: Array<Promise<unknown>> = [];
      const turn = () => new Promise<void>((r) => setImmediate(r));
      // Turn 1: a large batch, with the saga's create at its end; then one append per turn.
      writes.push(...crowd.map((id) => log.append(id, OWNER, { attempt: 1 }, [{ type: 'STEP_STARTED', step: 's' }])));
      writes.push(log.create(fresh, [STARTED], 60_000));
      for (let k = 1; k <= 5; k++) {
        await turn();
        writes.push(log.append(fresh.id, OWNER, { attempt: k }, [{ type: 'STEP_STARTED', step: 's', attempt: k }]));
      }
      await Promise.all(writes);
      const events = await log.events(fresh.id);
      assert.deepEqual(
        events.map((e) => [e.seq, e.attempt]),
        [
          [1, null],
          [2, 1],
          [3, 2],
          [4, 3],
          [5, 4],
          [6, 5],
        ],
      );
      assert.equal((await log.get(fresh.id))?.attempt, 5);
    });

    it('one idempotency key holds one saga, also when two instances start it twenty times at once', async (open) => {
      const [a, b] = [await open(), await open()];
      const key = uniqueId('order-key');
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          (i % 2 === 0 ? a : b).create(newSaga(`dup-${i}-${uniqueId()}`, { idempotencyKey: key }), [STARTED], 60_000),
        ),
      );
      const winners = results.flatMap((r) => (r.created ? [r.saga.id] : []));
      assert.equal(winners.length, 1, 'exactly one saga is created');
      const winner = winners[0] as string;
      for (const r of results) if (!r.created) assert.equal(r.existingId, winner);
      assert.equal((await a.getByIdempotencyKey(key))?.id, winner);
      assert.equal((await b.getByIdempotencyKey(key))?.id, winner);
      assert.equal((await a.list({ limit: 100 })).sagas.length, 1);
      assert.equal((await b.events(winner)).length, 1);
      // A create retried after an unknown outcome finds its own saga.
      const again = await a.create(newSaga(winner, { idempotencyKey: key }), [STARTED], 60_000);
      assert.deepEqual(again, { created: false, existingId: winner });
      const keyless = await started(a);
      assert.deepEqual(await b.create(newSaga(keyless.id), [STARTED], 60_000), {
        created: false,
        existingId: keyless.id,
      });
      assert.equal((await a.events(keyless.id)).length, 1);
    });

    it('get, getByIdempotencyKey and events of what does not exist', async (open) => {
      const log = await open();
      await started(log, { idempotencyKey: 'present' });
      assert.equal(await log.get('missing'), undefined);
      assert.equal(await log.getByIdempotencyKey('missing'), undefined);
      assert.deepEqual(await log.events('missing'), []);
    });

    it('events page: after a seq, at most a limit, in order', async (open) => {
      const log = await open();
      const saga = await started(log, { leaseOwner: OWNER });
      await log.append(saga.id, OWNER, {}, [
        { type: 'STEP_STARTED', step: 'a' },
        { type: 'STEP_SUCCEEDED', step: 'a' },
        { type: 'STEP_STARTED', step: 'b' },
      ]);
      const seqs = async (page: { afterSeq?: number; limit?: number }) =>
        (await log.events(saga.id, page)).map((e) => e.seq);
      assert.deepEqual(await seqs({}), [1, 2, 3, 4]);
      assert.deepEqual(await seqs({ limit: 2 }), [1, 2]);
      assert.deepEqual(await seqs({ afterSeq: 2, limit: 1 }), [3]);
      assert.deepEqual(await seqs({ afterSeq: 2 }), [3, 4]);
      assert.deepEqual(await seqs({ afterSeq: 4 }), []);
    });

    it('list pages newest first with cursors, filters by status, and refuses a cursor it did not issue', async (open) => {
      const log = await open();
      const ids: string[] = [];
      for (let i = 0; i < 7; i++) ids.push((await started(log)).id);
      for (const i of [1, 3, 4]) await finish(log, ids[i] as string, 'COMPLETED');
      await finish(log, ids[5] as string, 'PARKED');
      const newestFirst = [...ids].reverse();

      const first = await log.list({ limit: 3 });
      assert.deepEqual(
        first.sagas.map((s) => s.id),
        newestFirst.slice(0, 3),
      );
      assert.ok(first.nextCursor);
      assert.deepEqual(await allPages(log, 3), { ids: newestFirst, pages: 3 });
      assert.deepEqual(await allPages(log, 7), { ids: newestFirst, pages: 1 }, 'no cursor when nothing is left');
      assert.deepEqual(await allPages(log, 100), { ids: newestFirst, pages: 1 });
      assert.deepEqual(await allPages(log, 2, 'COMPLETED'), { ids: [ids[4], ids[3], ids[1]], pages: 2 });
      assert.deepEqual((await allPages(log, 2, 'RUNNING')).ids, [ids[6], ids[2], ids[0]]);
      assert.deepEqual((await log.list({ limit: 5, status: 'COMPENSATED' })).sagas, []);
      // A page read through a cursor is the same from another instance (the cursor is the log's, not the instance's).
      const second = await (await open()).list({ limit: 3, cursor: first.nextCursor });
      assert.deepEqual(
        second.sagas.map((s) => s.id),
        newestFirst.slice(3, 6),
      );

      for (const bad of [
        'not-a-cursor',
        Buffer.from('s1 OR 1=1').toString('base64url'),
        Buffer.from('x5').toString('base64url'),
        '',
      ]) {
        await assert.rejects(log.list({ limit: 3, cursor: bad }), (err: unknown) => {
          assert.ok(err instanceof InvalidCursorError, `${bad}: ${String(err)}`);
          assert.equal(err.code, 'invalid_cursor');
          return true;
        });
      }
      assert.deepEqual(
        (await log.list({ limit: 3, cursor: encodeCursor(1) })).sagas,
        [],
        'before the first saga there is nothing',
      );
    });

    it('list filters by subject, current step, creation time and id prefix, alone and together, newest first with cursors', async (open) => {
      const log = await open();
      const t0 = 1_700_000_000_000;
      const ids: string[] = [];
      // Twelve sagas a second apart: ord-00, ref-01, ord-02, …; subjects cust_a, cust_b, none in turn.
      for (let i = 0; i < 12; i++) {
        const id = `${i % 2 ? 'ref' : 'ord'}-${String(i).padStart(2, '0')}`;
        const subject = i % 3 === 0 ? 'cust_a' : i % 3 === 1 ? 'cust_b' : null;
        ids.push(
          (
            await started(log, {
              id,
              subject,
              currentStep: i % 4 === 0 ? 'reserve' : 'charge',
              createdAt: t0 + i * 1000,
            })
          ).id,
        );
      }
      // Another gateway's clock: created last, stamped between the first two.
      const late = (
        await started(log, { id: 'ord_late', subject: 'cust_a', currentStep: 'charge', createdAt: t0 + 500 })
      ).id;
      const byTimeDesc = [...ids.slice(1).reverse(), late, ids[0] as string];
      const list = async (q: Omit<ListQuery, 'limit' | 'cursor'>, limit = 2) => {
        const got: string[] = [];
        let cursor: Cursor | undefined;
        do {
          const page = await log.list({ ...q, limit, cursor });
          assert.ok(page.sagas.length <= limit);
          got.push(...page.sagas.map((s) => s.id));
          cursor = page.nextCursor ?? undefined;
        } while (cursor !== undefined);
        return got;
      };
      const pick = (from: string[], ...is: number[]) => is.map((i) => from[i] as string);

      assert.deepEqual(await list({ subject: 'cust_a' }), [late, ...pick(ids, 9, 6, 3, 0)]);
      assert.deepEqual(await list({ subject: 'cust_b' }, 100), pick(ids, 10, 7, 4, 1));
      assert.deepEqual(await list({ subject: 'nobody' }), []);
      assert.deepEqual(await list({ step: 'reserve' }), pick(ids, 8, 4, 0));
      assert.deepEqual(
        await list({ idPrefix: 'ord-' }),
        pick(ids, 10, 8, 6, 4, 2, 0),
        'a prefix, not a pattern: ord_late does not match',
      );
      assert.deepEqual(await list({ idPrefix: 'ord' }, 3), [late, ...pick(ids, 10, 8, 6, 4, 2, 0)]);
      assert.deepEqual(await list({ idPrefix: 'ord_' }), [late]);
      assert.deepEqual(await list({ idPrefix: 'ref-1' }), pick(ids, 11));
      assert.deepEqual(await list({ idPrefix: 'ORD-' }), [], 'case-sensitive');
      assert.deepEqual(await list({ idPrefix: '%' }), []);

      // A time range lists by creation time, newest first, whatever the creation order.
      assert.deepEqual(await list({ createdFrom: t0 }, 5), byTimeDesc);
      assert.deepEqual(await list({ createdTo: t0 + 1000 }), pick(ids, 1).concat(late, ids[0] as string));
      assert.deepEqual(
        await list({ createdFrom: t0 + 2000, createdTo: t0 + 5000 }),
        pick(ids, 5, 4, 3, 2),
        'both bounds included',
      );
      assert.deepEqual(await list({ createdFrom: t0 + 12_000 }), []);

      // Together.
      assert.deepEqual(await list({ subject: 'cust_a', createdTo: t0 + 3000 }), [
        ids[3] as string,
        late,
        ids[0] as string,
      ]);
      assert.deepEqual(await list({ subject: 'cust_a', step: 'reserve' }), pick(ids, 0));
      assert.deepEqual(await list({ idPrefix: 'ord-', step: 'reserve', createdFrom: t0 + 1 }), pick(ids, 8, 4));

      // The step follows the saga: patched by append and takeOver, and cleared when it ends.
      await log.append(ids[5] as string, OWNER, { currentStep: 'reserve', compIndex: 0 }, [
        { type: 'COMPENSATION_STARTED', step: 'reserve' },
      ]);
      await log.append(ids[8] as string, OWNER, { status: 'COMPLETED', currentStep: null }, [
        { type: 'SAGA_COMPLETED' },
      ]);
      await log.append(ids[4] as string, OWNER, { status: 'PARKED', leaseOwner: null, leaseExpiresAt: 0 }, [
        { type: 'SAGA_PARKED', step: 'reserve' },
      ]);
      assert.deepEqual(await list({ step: 'reserve' }), pick(ids, 5, 4, 0));
      assert.deepEqual(await list({ step: 'reserve', status: 'PARKED' }), pick(ids, 4));
      assert.equal((await log.get(ids[5] as string))?.currentStep, 'reserve');
      const taken = await log.takeOver(
        ids[4] as string,
        { status: 'PARKED' },
        'owner-b',
        30_000,
        { status: 'COMPENSATING', currentStep: 'charge' },
        [{ type: 'OPERATOR_ACTION' }],
      );
      assert.equal(taken?.currentStep, 'charge');
      assert.deepEqual(await list({ step: 'reserve' }), pick(ids, 5, 0));
      assert.deepEqual(await list({ subject: 'cust_b', step: 'charge', status: 'COMPENSATING' }), pick(ids, 4));
      assert.deepEqual((await log.get(late))?.subject, 'cust_a');

      // A cursor is its listing's: one by creation order is refused by a listing by time, and back.
      const bySeq = await log.list({ limit: 1 });
      const byTime = await log.list({ limit: 1, createdFrom: t0 });
      assert.ok(bySeq.nextCursor && byTime.nextCursor);
      await assert.rejects(log.list({ limit: 1, createdFrom: t0, cursor: bySeq.nextCursor }), InvalidCursorError);
      await assert.rejects(log.list({ limit: 1, cursor: byTime.nextCursor }), InvalidCursorError);
      const next = await (await open()).list({ limit: 2, createdFrom: t0, cursor: byTime.nextCursor });
      assert.deepEqual(
        next.sagas.map((s) => s.id),
        byTimeDesc.slice(1, 3),
      );
    });

    it('parked: the PARKED queue, longest parked first, leaves the sagas an operator moved on', async (open) => {
      const log = await open();
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await started(log)).id);
      assert.deepEqual(await log.parked(10), []);
      // Parked in the order 3, 1, 4, 0 (the log's clock stamps updatedAt); 2 keeps running.
      for (const i of [3, 1, 4, 0]) {
        await finish(log, ids[i] as string, 'PARKED');
        await new Promise((r) => setTimeout(r, 5));
      }
      const queue = await log.parked(10);
      assert.deepEqual(
        queue.map((s) => s.id),
        pick5(ids, 3, 1, 4, 0),
      );
      assert.ok(queue.every((s) => s.status === 'PARKED'));
      assert.deepEqual(
        (await log.parked(2)).map((s) => s.id),
        pick5(ids, 3, 1),
      );
      await log.takeOver(
        ids[1] as string,
        { status: 'PARKED' },
        'owner-b',
        30_000,
        { status: 'RESOLVED', leaseOwner: null, leaseExpiresAt: 0 },
        [{ type: 'OPERATOR_ACTION' }],
      );
      assert.deepEqual(
        (await log.parked(10)).map((s) => s.id),
        pick5(ids, 3, 4, 0),
      );
    });

    it('an expired lease is taken over; the previous owner’s writes are then refused', async (open) => {
      const log = await open();
      const live = await started(log, {}, 60_000);
      assert.deepEqual(await log.claimExpired('owner-b', 60_000, 10), [], 'a live lease is not claimable');
      const saga = await started(log, {}, 200);
      const claimed = await eventually('the 200 ms lease to expire', async () => {
        const got = await log.claimExpired('owner-b', 60_000, 10);
        return got.length > 0 ? got : undefined;
      });
      const now = Date.now();
      assert.deepEqual(
        claimed.map((s) => s.id),
        [saga.id],
      );
      assert.equal(claimed[0]?.leaseOwner, 'owner-b');
      assert.ok((claimed[0]?.leaseExpiresAt ?? 0) > now + 60_000 - CLOCK_SLACK_MS);
      assert.deepEqual(await log.get(saga.id), claimed[0]);
      await assert.rejects(
        log.append(saga.id, OWNER, { attempt: 1 }, [{ type: 'STEP_STARTED', step: 's' }]),
        (err: unknown) => {
          assert.ok(err instanceof LeaseLostError);
          assert.equal(err.code, 'lease_lost');
          return true;
        },
      );
      await log.append(saga.id, 'owner-b', { attempt: 1 }, [{ type: 'SAGA_RESUMED' }]);
      assert.deepEqual(
        (await log.events(saga.id)).map((e) => [e.seq, e.type]),
        [
          [1, 'SAGA_STARTED'],
          [2, 'SAGA_RESUMED'],
        ],
      );
      assert.deepEqual(await log.claimExpired('owner-c', 60_000, 10), []);
      assert.equal((await log.get(live.id))?.leaseOwner, OWNER, 'the live lease stayed where it was');
    });

    it('renewLeases extends the leases still held and returns the lost ones', async (open) => {
      const log = await open();
      const kept = await started(log, {}, 30_000);
      const lost = await started(log, {}, 0);
      assert.deepEqual(
        (await log.claimExpired('owner-b', 60_000, 10)).map((s) => s.id),
        [lost.id],
      );
      assert.deepEqual(await log.renewLeases(OWNER, [kept.id, lost.id, 'never-existed'], 120_000), [
        lost.id,
        'never-existed',
      ]);
      assert.ok(
        ((await log.get(kept.id))?.leaseExpiresAt ?? 0) > kept.leaseExpiresAt + 60_000,
        'the held lease is extended by the log clock',
      );
      assert.equal((await log.get(lost.id))?.leaseOwner, 'owner-b', 'the lost lease is not taken back');
      assert.deepEqual(await log.renewLeases(OWNER, [], 120_000), []);
    });

    it('releaseLeases makes a saga claimable at once, and only its owner can release it', async (open) => {
      const log = await open();
      const saga = await started(log, {}, 60_000);
      await log.releaseLeases('owner-b', [saga.id]);
      assert.equal((await log.get(saga.id))?.leaseOwner, OWNER, 'a non-owner releases nothing');
      assert.deepEqual(await log.claimExpired('owner-b', 60_000, 10), []);
      await log.releaseLeases(OWNER, [saga.id]);
      assert.equal((await log.get(saga.id))?.leaseOwner, null);
      assert.deepEqual(
        (await log.claimExpired('owner-b', 60_000, 10)).map((s) => s.id),
        [saga.id],
      );
    });

    it('claimExpired never hands a saga to two claimers, even from two instances at once', async (open) => {
      const [a, b] = [await open(), await open()];
      const ids = (await Promise.all(Array.from({ length: 30 }, () => started(a, {}, 0)))).map((s) => s.id);
      const got = await Promise.all([
        claimAll(a, 'claimer-1', 3),
        claimAll(b, 'claimer-2', 3),
        claimAll(a, 'claimer-3', 4),
        claimAll(b, 'claimer-4', 2),
      ]);
      const all = got.flat();
      assert.equal(new Set(all).size, all.length, 'no saga claimed twice');
      assert.deepEqual([...all].sort(), [...ids].sort(), 'every expired saga claimed');
      for (const [k, claimerIds] of got.entries()) {
        for (const id of claimerIds) assert.equal((await b.get(id))?.leaseOwner, `claimer-${k + 1}`);
      }
    });

    it('recovery claims unfinished sagas (running, compensating) only, oldest first', async (open) => {
      const log = await open();
      const running = await started(log, {}, 0);
      const compensating = await started(log, {}, 0);
      await finish(log, compensating.id, 'COMPENSATING');
      for (const status of ['COMPLETED', 'COMPENSATED', 'PARKED'] as const)
        await finish(log, (await started(log, {}, 0)).id, status);
      const live = await started(log, {}, 60_000);
      const claimed = await log.claimExpired('owner-b', 60_000, 100);
      assert.deepEqual(
        claimed.map((s) => [s.id, s.status]),
        [
          [running.id, 'RUNNING'],
          [compensating.id, 'COMPENSATING'],
        ],
      );
      assert.deepEqual(await log.claimExpired('owner-c', 60_000, 0), []);
      assert.equal((await log.get(live.id))?.leaseOwner, OWNER);
    });

    it('recovery can claim only the definition versions it knows, leaving the others to who knows them', async (open) => {
      const log = await open();
      const known = await started(log, {}, 0);
      const other = await log.create(newSaga(uniqueId(), { definition: 'newer_saga' }), [STARTED], 0);
      const newer = await log.create(newSaga(uniqueId(), { version: 4 }), [STARTED], 0);
      assert.ok(other.created && newer.created);
      const v = (definition: string, version: number) => ({ definition, version });
      const mine = await log.claimExpired('owner-old', 60_000, 100, [v('conformance', 3), v('absent', 3)]);
      assert.deepEqual(
        mine.map((s) => s.id),
        [known.id],
        'neither another definition nor another version of its own',
      );
      assert.deepEqual(await log.claimExpired('owner-none', 60_000, 100, []), []);
      const rest = await log.claimExpired('owner-new', 60_000, 100, [v('newer_saga', 3), v('conformance', 4)]);
      assert.deepEqual(rest.map((s) => s.id).sort(), [other.saga.id, newer.saga.id].sort());
    });

    it('versionCounts counts the sagas in flight (RUNNING, COMPENSATING, PARKED) per definition version', async (open) => {
      const log = await open();
      const base = await log.versionCounts();
      const mk = async (version: number, status: 'COMPENSATING' | 'PARKED' | 'COMPLETED' | null) => {
        const r = await log.create(newSaga(uniqueId(), { version, definition: 'counted' }), [STARTED], 60_000);
        assert.ok(r.created);
        if (status) await log.append(r.saga.id, OWNER, { status }, []);
      };
      await mk(1, null);
      await mk(1, null);
      await mk(1, 'PARKED');
      await mk(2, 'COMPENSATING');
      await mk(2, 'COMPLETED');
      await mk(3, 'COMPLETED');
      const counts = (await log.versionCounts()).filter((c) => c.definition === 'counted');
      assert.deepEqual(counts, [
        { definition: 'counted', version: 1, running: 2, compensating: 0, parked: 1 },
        { definition: 'counted', version: 2, running: 0, compensating: 1, parked: 0 },
      ]);
      assert.deepEqual(
        (await log.versionCounts()).filter((c) => c.definition !== 'counted'),
        base.filter((c) => c.definition !== 'counted'),
      );
    });

    it('takeOver can be conditional on compIndex and version, and can move a saga to another version', async (open) => {
      const log = await open();
      const saga = await started(log, {}, 60_000);
      await log.append(saga.id, OWNER, { status: 'COMPENSATING', stepIndex: 2, compIndex: 1 }, []);
      const event: NewEvent = { type: 'OPERATOR_ACTION', step: 'b', data: { action: 'migrate', action_id: 'm-1' } };
      const patch = { version: 4, stepIndex: 3, compIndex: 2, results: { b2: 1 } };
      const expect = { status: 'COMPENSATING', stepIndex: 2 } as const;
      assert.equal(await log.takeOver(saga.id, { ...expect, compIndex: 0 }, 'mig', 30_000, patch, [event]), undefined);
      assert.equal(await log.takeOver(saga.id, { ...expect, version: 4 }, 'mig', 30_000, patch, [event]), undefined);
      assert.equal((await log.get(saga.id))?.version, 3, 'nothing written');
      const taken = await log.takeOver(saga.id, { ...expect, compIndex: 1, version: 3 }, 'mig', 30_000, patch, [event]);
      assert.ok(taken);
      assert.deepEqual(
        [taken.version, taken.stepIndex, taken.compIndex, taken.results, taken.leaseOwner],
        [4, 3, 2, { b2: 1 }, 'mig'],
      );
      assert.deepEqual(await log.get(saga.id), taken);
    });

    it("clock reads the log's own clock (what leases are stamped with), in epoch ms, never going back", async (open) => {
      const log = await open();
      const t0 = Date.now();
      const a = await log.clock();
      const b = await log.clock();
      // This machine's log and this process share one clock: within the call's own time.
      assert.ok(Number.isInteger(a) && Math.abs(a - t0) < 1_000, `clock ${a - t0} ms from this process's`);
      assert.ok(b >= a, 'never back');
      const s = await started(log);
      const leased = (await log.get(s.id))?.leaseExpiresAt ?? 0;
      const after = await log.clock();
      assert.ok(leased > a && leased <= after + 60_000, 'a lease is stamped by the same clock');
    });

    it('countByStatus counts every status; liveStats counts in-flight and parked sagas and ages the oldest', async (open) => {
      const log = await open();
      assert.deepEqual(await log.countByStatus(), Object.fromEntries(SAGA_STATUSES.map((s) => [s, 0])));
      assert.deepEqual(await log.liveStats(), { inflight: 0, parked: 0, oldestAgeSeconds: 0, stuck: 0 });
      await started(log, { createdAt: Date.now() - 5_000 });
      await started(log);
      await finish(log, (await started(log)).id, 'COMPENSATING');
      await finish(log, (await started(log)).id, 'PARKED');
      for (let i = 0; i < 2; i++)
        await finish(log, (await started(log, { createdAt: Date.now() - 60_000 })).id, 'COMPLETED');
      assert.deepEqual(await log.countByStatus(), {
        RUNNING: 2,
        COMPENSATING: 1,
        COMPLETED: 2,
        COMPENSATED: 0,
        PARKED: 1,
        RESOLVED: 0,
      });
      const stats = await log.liveStats();
      assert.equal(stats.inflight, 3);
      assert.equal(stats.parked, 1);
      assert.ok(
        stats.oldestAgeSeconds >= 5 - CLOCK_SLACK_MS / 1000 && stats.oldestAgeSeconds < 30,
        `oldest ${stats.oldestAgeSeconds}s`,
      );
    });

    it(`onFinished hears every saga that ends${factory.sharedNotifications ? ', in this instance and in the others, once each' : ''}`, async (open) => {
      const log = await open();
      const heard: string[] = [];
      const off = log.onFinished((id) => heard.push(id));
      const [done, parked, compensating] = [await started(log), await started(log), await started(log)];
      await finish(log, done.id, 'COMPLETED');
      await finish(log, parked.id, 'PARKED');
      await finish(log, compensating.id, 'COMPENSATING');
      await eventually('both ends heard', async () => (heard.length >= 2 ? true : undefined));
      off();
      const late = await started(log);
      await finish(log, late.id, 'COMPENSATED');
      assert.deepEqual(heard, [done.id, parked.id], 'terminal statuses only, none after unsubscribing');
      if (!factory.sharedNotifications) return;

      const other = await open();
      const here: string[] = [];
      const there: string[] = [];
      log.onFinished((id) => here.push(id));
      other.onFinished((id) => there.push(id));
      const mine = await started(log);
      await finish(log, mine.id, 'COMPLETED');
      await eventually('the other instance to hear of a saga finished here', async () =>
        there.includes(mine.id) ? true : undefined,
      );
      const theirs = await started(other, { leaseOwner: 'owner-b' });
      await finish(other, theirs.id, 'COMPENSATED', 'owner-b');
      await eventually('this instance to hear of a saga finished there', async () =>
        here.includes(theirs.id) ? true : undefined,
      );
      // Notifications arrive in commit order: had an echo of `mine` come, it came before `theirs`.
      assert.deepEqual(here, [mine.id, theirs.id]);
      assert.deepEqual(there, [mine.id, theirs.id]);
    });

    it('takeOver applies a patch and events if the row still matches, whoever holds the lease, and moves the lease', async (open) => {
      const log = await open();
      const other = await open();
      const saga = await started(log, {}, 60_000);
      await log.append(saga.id, OWNER, { stepIndex: 1, attempt: 2 }, [{ type: 'STEP_STARTED', step: 'b', attempt: 2 }]);
      const action: NewEvent = {
        type: 'OPERATOR_ACTION',
        step: 'b',
        data: { action: 'compensate', action_id: 'act-1', actor: 'alice', note: null },
        traceId: TRACE_ID,
        spanId: SPAN_ID,
      };
      const failure = { step: 'b', code: 'operator_compensate', message: 'asked' };
      const patch = { status: 'COMPENSATING', compIndex: 1, attempt: 0, failure } as const;
      // Refused: another status, another step, no such saga. Nothing is written.
      assert.equal(await other.takeOver(saga.id, { status: 'PARKED' }, 'owner-b', 30_000, patch, [action]), undefined);
      assert.equal(
        await other.takeOver(saga.id, { status: 'RUNNING', stepIndex: 0 }, 'owner-b', 30_000, patch, [action]),
        undefined,
      );
      assert.equal(
        await other.takeOver('never-existed', { status: 'RUNNING' }, 'owner-b', 30_000, patch, [action]),
        undefined,
      );
      assert.equal((await log.events(saga.id)).length, 2, 'a refused takeOver writes no event');
      assert.equal((await log.get(saga.id))?.leaseOwner, OWNER, 'nor moves the lease');

      const before = Date.now();
      const taken = await other.takeOver(saga.id, { status: 'RUNNING', stepIndex: 1 }, 'owner-b', 30_000, patch, [
        action,
      ]);
      const after = Date.now();
      assert.ok(taken);
      assert.deepEqual(await log.get(saga.id), taken, 'returns the row as committed');
      assert.deepEqual(
        {
          status: taken.status,
          stepIndex: taken.stepIndex,
          compIndex: taken.compIndex,
          attempt: taken.attempt,
          failure: taken.failure,
          leaseOwner: taken.leaseOwner,
        },
        { status: 'COMPENSATING', stepIndex: 1, compIndex: 1, attempt: 0, failure, leaseOwner: 'owner-b' },
      );
      assert.ok(
        taken.leaseExpiresAt >= before + 30_000 - CLOCK_SLACK_MS &&
          taken.leaseExpiresAt <= after + 30_000 + CLOCK_SLACK_MS,
        'leased by the log clock',
      );
      const events = await log.events(saga.id);
      assert.deepEqual(
        events.map((e) => [e.seq, e.type]),
        [
          [1, 'SAGA_STARTED'],
          [2, 'STEP_STARTED'],
          [3, 'OPERATOR_ACTION'],
        ],
      );
      assert.deepEqual(events[2], {
        sagaId: saga.id,
        seq: 3,
        type: 'OPERATOR_ACTION',
        step: 'b',
        attempt: null,
        error: null,
        retryable: null,
        data: action.data,
        traceId: TRACE_ID,
        spanId: SPAN_ID,
        at: events[2]?.at,
      });
      await assert.rejects(
        log.append(saga.id, OWNER, { attempt: 3 }, [{ type: 'STEP_FAILED', step: 'b', attempt: 3 }]),
        LeaseLostError,
        'the previous owner is refused',
      );
      await other.append(saga.id, 'owner-b', { attempt: 1 }, [{ type: 'COMPENSATION_STARTED', step: 'b', attempt: 1 }]);
      assert.deepEqual(
        (await log.events(saga.id)).map((e) => e.seq),
        [1, 2, 3, 4],
      );
      assert.deepEqual(await log.claimExpired('owner-c', 60_000, 10), [], 'the new lease is live');
    });

    it('takeOver to RESOLVED gives the lease up and counts as terminal: heard, counted, listed, never claimed', async (open) => {
      const log = await open();
      const heard: string[] = [];
      log.onFinished((id) => heard.push(id));
      const saga = await started(log, {}, 0);
      await finish(log, saga.id, 'PARKED');
      heard.length = 0;
      const action: NewEvent = {
        type: 'OPERATOR_ACTION',
        data: { action: 'resolve', action_id: 'r-1', actor: 'bob', note: 'refunded by hand' },
      };
      const taken = await log.takeOver(
        saga.id,
        { status: 'PARKED' },
        'owner-b',
        30_000,
        { status: 'RESOLVED', leaseOwner: null, leaseExpiresAt: 0 },
        [action],
      );
      assert.equal(taken?.status, 'RESOLVED');
      assert.equal(taken?.leaseOwner, null);
      assert.equal(taken?.leaseExpiresAt, 0);
      await eventually('the end to be heard', async () => (heard.includes(saga.id) ? true : undefined));
      assert.equal(
        await log.takeOver(
          saga.id,
          { status: 'PARKED' },
          'owner-c',
          30_000,
          { status: 'RESOLVED', leaseOwner: null, leaseExpiresAt: 0 },
          [action],
        ),
        undefined,
        'once only',
      );
      assert.equal((await log.events(saga.id)).filter((e) => e.type === 'OPERATOR_ACTION').length, 1);
      const counts = await log.countByStatus();
      assert.equal(counts.RESOLVED, 1);
      assert.equal(counts.PARKED, 0);
      assert.deepEqual(
        { ...(await log.liveStats()), oldestAgeSeconds: 0 },
        { inflight: 0, parked: 0, oldestAgeSeconds: 0, stuck: 0 },
      );
      assert.deepEqual(
        (await log.list({ limit: 10, status: 'RESOLVED' })).sagas.map((s) => s.id),
        [saga.id],
      );
      assert.deepEqual(await log.claimExpired('owner-d', 60_000, 10), [], 'recovery never claims a resolved saga');
    });

    it('takeOver: of two instances taking one saga over at once, exactly one wins', async (open) => {
      const [a, b] = [await open(), await open()];
      const ids = (await Promise.all(Array.from({ length: 10 }, () => started(a)))).map((s) => s.id);
      for (const id of ids) await finish(a, id, 'PARKED');
      const patch = { status: 'COMPENSATING', attempt: 0 } as const;
      const ev = (who: string): NewEvent[] => [
        { type: 'OPERATOR_ACTION', data: { action: 'retry', action_id: who, actor: who, note: null } },
      ];
      const results = await Promise.all(
        ids.flatMap((id) => [
          a.takeOver(id, { status: 'PARKED' }, 'taker-a', 30_000, patch, ev('a')),
          b.takeOver(id, { status: 'PARKED' }, 'taker-b', 30_000, patch, ev('b')),
        ]),
      );
      for (const [k, id] of ids.entries()) {
        const pair = [results[2 * k], results[2 * k + 1]];
        assert.equal(pair.filter((r) => r !== undefined).length, 1, `one winner for ${id}`);
        const winner = pair[0] ? 'taker-a' : 'taker-b';
        assert.equal((await a.get(id))?.leaseOwner, winner);
        assert.equal((await a.events(id)).filter((e) => e.type === 'OPERATOR_ACTION').length, 1);
      }
    });

    it('close() commits the writes still pending, and a reopened log has them', async (open, storage) => {
      const log = await open();
      const ids = (await Promise.all(Array.from({ length: 5 }, () => started(log)))).map((s) => s.id);
      const pending = ids.map((id) =>
        log.append(id, OWNER, { attempt: 1 }, [{ type: 'STEP_STARTED', step: 's', attempt: 1 }]),
      );
      const newcomer = newSaga(uniqueId());
      const creating = log.create(newcomer, [STARTED], 60_000);
      await log.close();
      await Promise.all(pending);
      assert.ok((await creating).created);
      const reopened = await storage.open();
      try {
        for (const id of ids) assert.equal((await reopened.events(id)).length, 2);
        assert.equal((await reopened.get(newcomer.id))?.id, newcomer.id);
      } finally {
        await reopened.close();
      }
    });

    it('two processes append, start and claim at once: nothing lost, nothing twice', async (open, storage) => {
      const log = await open();
      const ROUNDS = 12;
      const mine = (await Promise.all(Array.from({ length: 15 }, () => started(log, { leaseOwner: 'parent' })))).map(
        (s) => s.id,
      );
      const theirs = (await Promise.all(Array.from({ length: 15 }, () => started(log, { leaseOwner: 'child' })))).map(
        (s) => s.id,
      );
      const expired = (
        await Promise.all(Array.from({ length: 40 }, () => started(log, { leaseOwner: 'dead' }, 0)))
      ).map((s) => s.id);
      const keys = Array.from({ length: 20 }, () => uniqueId('key'));
      const spec: ChildSpec = {
        config: storage.config,
        owner: 'child',
        appendTo: theirs,
        appends: ROUNDS,
        keys,
        claimLimit: 3,
      };

      const child = spawn(
        process.execPath,
        ['--import', 'tsx', fileURLToPath(new URL('./saga-log-child.ts', import.meta.url)), JSON.stringify(spec)],
        {
          stdio: ['pipe', 'pipe', 'inherit'],
        },
      );
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      const lines = readline.createInterface({ input: child.stdout });
      const output: string[] = [];
      const ready = new Promise<void>((resolve, reject) => {
        lines.on('line', (l) => {
          output.push(l);
          if (l.includes('"ready"')) resolve();
        });
        void exited.then((code) => reject(new Error(`child exited (${code}) before it was ready`)));
      });
      try {
        await ready;
        child.stdin.write('go\n');
        const [, starts, claimed] = await Promise.all([
          appendRounds(log, 'parent', mine, ROUNDS),
          Promise.all(
            keys.map(async (key): Promise<StartOutcome> => {
              const res = await log.create(
                newSaga(`parent-${key}`, { idempotencyKey: key, leaseOwner: 'parent' }),
                [STARTED],
                60_000,
              );
              return { key, id: res.created ? res.saga.id : res.existingId, created: res.created };
            }),
          ),
          claimAll(log, 'parent', 3),
        ]);
        assert.equal(await exited, 0, 'the child ends well');
        const report = JSON.parse(output[output.length - 1] ?? '{}') as ChildReport;
        assert.deepEqual(report.errors, []);

        for (const id of [...mine, ...theirs]) {
          const events = await log.events(id);
          assert.deepEqual(
            events.map((e) => e.seq),
            Array.from({ length: 1 + 2 * ROUNDS }, (_, i) => i + 1),
            `events of ${id}`,
          );
          assert.deepEqual(
            events.slice(1).map((e) => e.attempt),
            Array.from({ length: 2 * ROUNDS }, (_, i) => Math.floor(i / 2) + 1),
          );
          assert.equal((await log.get(id))?.attempt, ROUNDS);
        }
        for (const key of keys) {
          const both = [...starts, ...report.starts].filter((s) => s.key === key);
          assert.equal(both.length, 2);
          assert.equal(both.filter((s) => s.created).length, 1, `one saga for ${key}`);
          const holder = (await log.getByIdempotencyKey(key))?.id;
          assert.ok(both.every((s) => s.id === holder));
        }
        const allClaimed = [...claimed, ...report.claimed];
        assert.equal(new Set(allClaimed).size, allClaimed.length, 'no saga claimed by both processes');
        assert.deepEqual([...allClaimed].sort(), [...expired].sort());
        const counts = await log.countByStatus();
        assert.equal(counts.RUNNING, mine.length + theirs.length + expired.length + keys.length);
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
        lines.close();
      }
    });
  });
}
