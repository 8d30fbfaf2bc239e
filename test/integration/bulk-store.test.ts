// The bulk jobs' store (src/saga/bulk.ts's BulkJobStore), one suite against both saga logs: a
// real SQLite file, and a fresh database on the machine's PostgreSQL.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { BulkJobStore, NewBulkJob } from '../../src/saga/bulk.js';
import type { SagaLog } from '../../src/saga/model.js';
import { PostgresSagaLog } from '../../src/saga/stores/postgres.js';
import { SqliteSagaLog } from '../../src/saga/stores/sqlite.js';
import { uuidv7 } from '../../src/platform/ids.js';
import { createTempDatabase, type TempDatabase } from '../helpers/postgres.js';
import { tempDir } from '../helpers/participants.js';

const newJob = (over: Partial<NewBulkJob> = {}): NewBulkJob => ({
  id: `bulk_${uuidv7()}`,
  action: 'retry',
  note: null,
  filter: { status: 'PARKED', failureCode: 'payment_declined' },
  rate: 5,
  cap: 100,
  actor: 'ops',
  ...over,
});

function conformance(name: string, open: () => Promise<{ log: SagaLog; close: () => Promise<void> }>) {
  describe(`bulk jobs on ${name}`, () => {
    let log: SagaLog;
    let close: () => Promise<void>;
    let store: BulkJobStore;
    before(async () => {
      ({ log, close } = await open());
      const jobs = log.bulkJobs?.();
      assert.ok(jobs, 'the log keeps bulk jobs');
      store = jobs;
    });
    after(async () => close());

    test('a job is stored with its frozen selection, running, every saga pending', async () => {
      const ids = Array.from({ length: 250 }, (_, i) => `saga-${i}`);
      const job = await store.create(newJob({ note: 'n' }), ids);
      assert.equal(job.state, 'running');
      assert.equal(job.total, 250);
      assert.deepEqual(job.counts, { pending: 250, applied: 0, replayed: 0, refused: 0, failed: 0 });
      assert.deepEqual(job.filter, { status: 'PARKED', failureCode: 'payment_declined' });
      assert.equal(job.note, 'n');
      assert.equal(job.lastActedAt, null);
      assert.equal(job.finishedAt, null);
      const page = await store.items(job.id, -1, 100);
      assert.deepEqual(
        page.map((i) => i.sagaId),
        ids.slice(0, 100),
      );
      const next = await store.items(job.id, page.at(-1)!.position, 1000);
      assert.deepEqual(
        next.map((i) => i.sagaId),
        ids.slice(100),
      );
    });

    test('results are recorded once: a second record of a saga does not overwrite the first', async () => {
      const job = await store.create(newJob(), ['a', 'b', 'c']);
      const [first] = await store.pending(job.id, 1);
      assert.equal(first?.sagaId, 'a');
      assert.equal(await store.record(job.id, 0, 'applied', null, null), true);
      assert.equal(await store.record(job.id, 0, 'replayed', null, null), false);
      assert.equal(await store.record(job.id, 1, 'refused', 'action_not_allowed', 'cannot'), true);
      assert.deepEqual(
        (await store.pending(job.id, 10)).map((i) => i.sagaId),
        ['c'],
      );
      const got = await store.get(job.id);
      assert.deepEqual(got?.counts, { pending: 1, applied: 1, replayed: 0, refused: 1, failed: 0 });
      assert.ok(got?.lastActedAt);
      const items = await store.items(job.id, -1, 10);
      assert.deepEqual(
        items.map((i) => [i.result, i.code, i.message]),
        [
          ['applied', null, null],
          ['refused', 'action_not_allowed', 'cannot'],
          ['pending', null, null],
        ],
      );
      assert.ok(items[0]?.at);
    });

    test('state changes are conditional on the state they start from', async () => {
      const job = await store.create(newJob(), ['a']);
      assert.equal((await store.setState(job.id, ['running'], 'paused'))?.state, 'paused');
      assert.equal(await store.setState(job.id, ['running'], 'paused'), undefined);
      assert.equal((await store.setState(job.id, ['paused'], 'running'))?.state, 'running');
      const cancelled = await store.setState(job.id, ['running', 'paused'], 'cancelled');
      assert.equal(cancelled?.state, 'cancelled');
      assert.ok(cancelled?.finishedAt);
      assert.equal(await store.setState(job.id, ['running', 'paused'], 'running'), undefined);
      assert.equal(await store.setState('bulk_nope', ['running'], 'paused'), undefined);
    });

    test('one runner holds a running job at a time; an expired or released lease is claimed again', async () => {
      const job = await store.create(newJob(), ['a']);
      const mine = await store.claim('gw-1', 60_000);
      assert.ok(mine.some((j) => j.id === job.id));
      assert.ok(!(await store.claim('gw-2', 60_000)).some((j) => j.id === job.id), 'held by gw-1');
      assert.ok(
        (await store.claim('gw-1', 60_000)).some((j) => j.id === job.id),
        'its holder claims it again',
      );
      assert.equal(await store.renew(job.id, 'gw-2', 60_000), false);
      assert.equal(await store.renew(job.id, 'gw-1', 60_000), true);
      await store.release(job.id, 'gw-1');
      assert.ok(
        (await store.claim('gw-2', 1)).some((j) => j.id === job.id),
        'released',
      );
      await new Promise((r) => setTimeout(r, 20));
      assert.ok(
        (await store.claim('gw-3', 60_000)).some((j) => j.id === job.id),
        'expired',
      );
      await store.setState(job.id, ['running'], 'paused');
      assert.ok(!(await store.claim('gw-4', 60_000)).some((j) => j.id === job.id), 'a paused job is not run');
      // Leave nothing running for the other tests' claims.
      await store.setState(job.id, ['paused'], 'cancelled');
    });

    test('jobs are listed newest first, in pages', async () => {
      const a = await store.create(newJob(), []);
      await new Promise((r) => setTimeout(r, 2));
      const b = await store.create(newJob(), []);
      const first = await store.list(1);
      assert.equal(first[0]?.id, b.id);
      const second = await store.list(1, b.id);
      assert.equal(second[0]?.id, a.id);
      assert.equal(await store.get('bulk_missing'), undefined);
    });
  });
}

conformance('SQLite', async () => {
  const log = new SqliteSagaLog({ file: path.join(tempDir('bulk-store'), 'saga.db') });
  return { log, close: () => log.close() };
});

let pgDb: TempDatabase | undefined;
conformance('PostgreSQL', async () => {
  pgDb = await createTempDatabase('bulk_store_test');
  const log = await PostgresSagaLog.open({ url: pgDb.url, poolSize: 4, synchronousCommit: 'on' });
  return {
    log,
    close: async () => {
      await log.close();
      await pgDb?.drop();
    },
  };
});
