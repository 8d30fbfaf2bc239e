import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { SqliteSagaLog } from '../../src/saga/stores/sqlite.js';
import type { SagaLog, SagaRecord } from '../../src/saga/model.js';
import { openSagaLog } from '../../src/saga/stores/open.js';
import { createTempDatabase } from '../helpers/postgres.js';
import { main } from '../../src/cli/main.js';

function saga(id: string, over: Partial<SagaRecord> = {}): SagaRecord {
  return {
    id,
    definition: 'place_order',
    version: 1,
    status: 'RUNNING',
    stepIndex: 0,
    compIndex: -1,
    attempt: 0,
    input: {},
    results: {},
    failure: null,
    traceparent: null,
    idempotencyKey: null,
    leaseOwner: 'me',
    leaseExpiresAt: 0,
    deadlineAt: 0,
    createdAt: 1_700_000_000_000,
    updatedAt: 1_700_000_000_000,
    subject: null,
    currentStep: null,
    ...over,
  };
}

async function inspect(args: string[], env: NodeJS.ProcessEnv) {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (c) => (stdout += String(c)));
  err.on('data', (c) => (stderr += String(c)));
  const code = await main(['inspect', ...args], { stdout: out, stderr: err, env });
  return { code, stdout, stderr };
}

/** The same saga log contents in any store, then the same checks through `sagas inspect`. */
async function checkInspect(log: SagaLog, env: NodeJS.ProcessEnv): Promise<void> {
  await log.create(saga('s-ok'), [{ type: 'SAGA_STARTED' }], 60_000);
  await log.create(saga('s-parked'), [{ type: 'SAGA_STARTED' }], 60_000);
  await log.append(
    's-parked',
    'me',
    { status: 'PARKED', failure: { step: 'reserve_stock', code: 'payment_declined', message: 'declined' } },
    [
      {
        type: 'COMPENSATION_FAILED',
        step: 'reserve_stock',
        attempt: 3,
        error: 'unavailable',
        retryable: true,
        traceId: 'a'.repeat(32),
      },
      { type: 'SAGA_PARKED', step: 'reserve_stock' },
    ],
  );
  const all = await inspect([], env);
  assert.equal(all.code, 0, all.stderr);
  assert.match(all.stdout, /PARKED 1/);
  assert.ok(all.stdout.indexOf('s-parked') < all.stdout.indexOf('s-ok'), 'newest first');
  const parked = await inspect(['--status', 'parked'], env);
  assert.ok(parked.stdout.includes('s-parked') && !parked.stdout.includes('s-ok  '));
  const one = await inspect(['s-parked'], env);
  assert.equal(one.code, 0);
  assert.match(one.stdout, /COMPENSATION_FAILED reserve_stock #3 {2}unavailable \(retrying\) {2}trace a{32}/);
  assert.match(one.stdout, /SAGA_PARKED reserve_stock/);
  const json = await inspect(['s-parked', '--json'], env);
  assert.equal(JSON.parse(json.stdout).events.length, 3);
  assert.equal((await inspect(['nope'], env)).code, 1);
  const limited = await inspect(['--limit', '1', '--json'], env);
  assert.deepEqual(
    JSON.parse(limited.stdout).map((s: SagaRecord) => s.id),
    ['s-parked'],
  );
  const badStatus = await inspect(['--status', 'NOPE'], env);
  assert.equal(badStatus.code, 2);
  assert.match(
    badStatus.stderr,
    /^sagas inspect: --status must be one of RUNNING, .*, got "NOPE"\n\nUsage: sagas inspect/,
  );
  assert.equal((await inspect(['s-ok', 's-parked'], env)).code, 2);
}

test('sagas inspect lists sagas, filters by status and shows one timeline, read-only (SQLite)', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inspect-'));
  const log = new SqliteSagaLog({ file: path.join(dir, 'saga.db') });
  try {
    await checkInspect(log, { DATA_DIR: dir });
  } finally {
    await log.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('sagas inspect reads the PostgreSQL saga log when SAGA_LOG_URL says so', async () => {
  const db = await createTempDatabase('sagas_inspect');
  const log = await openSagaLog({ kind: 'postgres', url: db.url, poolSize: 2, synchronousCommit: 'on' });
  try {
    await checkInspect(log, { SAGA_LOG_URL: db.url, DATA_DIR: path.join(os.tmpdir(), 'inspect-no-such-dir') });
  } finally {
    await log.close();
    await db.drop();
  }
});

test('sagas inspect refuses a SAGA_LOG_URL that is not PostgreSQL', async () => {
  const r = await inspect([], { SAGA_LOG_URL: 'mysql://x@y/z' });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /SAGA_LOG_URL: expected postgres:\/\//);
});

test('sagas inspect says clearly when there is no saga log', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inspect-empty-'));
  const r = await inspect([], { DATA_DIR: dir });
  fs.rmSync(dir, { recursive: true, force: true });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot open the saga log .*saga\.db/);
});
