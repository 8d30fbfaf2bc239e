/**
 * The gateway's pruner (src/gateway/retention.ts) on a real SQLite saga log: passes of bounded
 * batches with the event loop free between them, the metric and the log line, a failing prune
 * survived, and stop.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { spawnSync } from 'node:child_process';
import { after, test } from 'node:test';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { pino } from 'pino';
import { startPruner } from '../../src/gateway/retention.js';
import { openDatabase } from '../../src/platform/storage/db.js';
import { DEFAULT_RETENTION_AGES, type RetentionPolicy } from '../../src/saga/retention.js';
import { SqliteSagaLog } from '../../src/saga/stores/sqlite.js';
import { MIGRATIONS } from '../../src/saga/stores/sqlite-migrations.js';
import { STARTED, newSaga, uniqueId } from '../helpers/saga-log-work.js';
import { eventually } from '../helpers/system.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sagas-pruner-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));
let n = 0;

const DEFAULT: RetentionPolicy = { enabled: true, ages: DEFAULT_RETENTION_AGES };
const DAY = 86_400_000;

/** A logger whose JSON lines the test reads. */
function capturedLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n').filter(Boolean))
        lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

/** Reads the metrics on demand (the SDK's own reader contract). */
class OnDemandReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

async function prunedTotal(reader: OnDemandReader): Promise<number> {
  const { resourceMetrics } = await reader.collect();
  for (const sm of resourceMetrics.scopeMetrics)
    for (const m of sm.metrics)
      if (m.descriptor.name === 'saga_pruned') return m.dataPoints.reduce((a, p) => a + (p.value as number), 0);
  return 0;
}

/** A log with `old` COMPLETED sagas ended 10 days ago and `young` ended now. */
async function logWith(old: number, young: number): Promise<{ log: SqliteSagaLog; file: string }> {
  const file = path.join(root, String(++n), 'saga.db');
  const log = new SqliteSagaLog({ file });
  const ids = await Promise.all(
    Array.from({ length: old + young }, async () => {
      const res = await log.create(newSaga(uniqueId()), [STARTED], 60_000);
      assert.ok(res.created);
      await log.append(res.saga.id, 'owner-a', { status: 'COMPLETED', leaseOwner: null, leaseExpiresAt: 0 }, [
        { type: 'SAGA_COMPLETED' },
      ]);
      return res.saga.id;
    }),
  );
  const db = openDatabase(file, { migrations: MIGRATIONS });
  try {
    const age = db.prepare('UPDATE sagas SET updated_at = updated_at - ? WHERE id = ?');
    db.transaction(() => ids.slice(0, old).forEach((id) => age.run(10 * DAY, id)))();
  } finally {
    db.close();
  }
  return { log, file };
}

test('off (or every outcome kept for ever): no pruner, and the log says so', () => {
  const { logger, lines } = capturedLogger();
  const log = { prune: () => assert.fail('never called') };
  assert.equal(startPruner({ log, policy: { enabled: false }, logger }), undefined);
  assert.equal(startPruner({ log, policy: { enabled: true, ages: {} }, logger }), undefined);
  assert.equal(lines.filter((l) => /retention is off/.test(String(l.msg))).length, 2);
});

test('a pass prunes batch after batch until one comes back short, letting the event loop run between them', async () => {
  const { log } = await logWith(1_234, 10);
  const { logger, lines } = capturedLogger();
  const reader = new OnDemandReader();
  const meter = new MeterProvider({ readers: [reader] }).getMeter('test');
  const pruner = startPruner({ log, policy: DEFAULT, logger, meter, batch: 500, intervalMs: 3_600_000 });
  assert.ok(pruner);
  let turns = 0;
  const ticker = setInterval(() => turns++, 0);
  try {
    const r = await pruner.runPass();
    assert.deepEqual(r, { sagas: 1_234, events: 2 * 1_234, batches: 3 });
    assert.ok(turns >= 2, `timers ran between the batches (${turns})`);
    assert.equal(await prunedTotal(reader), 1_234, 'saga_pruned_total');
    const line = lines.find((l) => l.pruned_sagas !== undefined);
    assert.ok(line, 'a line for the pass');
    assert.equal(line.msg, 'saga retention: pruned 1234 finished sagas (2468 events)');
    assert.equal(line.retention, 'COMPLETED=7d,COMPENSATED=30d,RESOLVED=90d');
    assert.equal(line.batches, 3);
    assert.equal((await log.countByStatus()).COMPLETED, 10, 'the young ones stay');
    const before = lines.length;
    assert.deepEqual(await pruner.runPass(), { sagas: 0, events: 0, batches: 1 });
    assert.equal(lines.length, before, 'a pass that pruned nothing says nothing');
  } finally {
    clearInterval(ticker);
    await pruner.stop();
    await log.close();
  }
});

test('a pass stops at its cap of batches; the next pass goes on', async () => {
  const { log } = await logWith(250, 0);
  const { logger } = capturedLogger();
  const pruner = startPruner({ log, policy: DEFAULT, logger, batch: 50, maxBatchesPerPass: 2, intervalMs: 3_600_000 });
  assert.ok(pruner);
  try {
    assert.deepEqual(await pruner.runPass(), { sagas: 100, events: 200, batches: 2 });
    assert.deepEqual(await pruner.runPass(), { sagas: 100, events: 200, batches: 2 });
    assert.deepEqual(
      await pruner.runPass(),
      { sagas: 50, events: 100, batches: 2 },
      'a full last batch: one more finds none',
    );
  } finally {
    await pruner.stop();
    await log.close();
  }
});

test('on its timer: passes run every interval until stopped', async () => {
  const { log } = await logWith(120, 0);
  const { logger } = capturedLogger();
  const pruner = startPruner({ log, policy: DEFAULT, logger, batch: 50, intervalMs: 20 });
  assert.ok(pruner);
  try {
    await eventually('the timer’s passes to prune everything', async () =>
      (await log.countByStatus()).COMPLETED === 0 ? true : undefined,
    );
  } finally {
    await pruner.stop();
    await log.close();
  }
});

test('a prune that fails (the log gone) is logged; the pass ends without throwing', async () => {
  const { log } = await logWith(5, 0);
  const { logger, lines } = capturedLogger();
  const pruner = startPruner({ log, policy: DEFAULT, logger, intervalMs: 3_600_000 });
  assert.ok(pruner);
  await log.close();
  assert.deepEqual(await pruner.runPass(), { sagas: 0, events: 0, batches: 0 });
  const warn = lines.find((l) => l.level === 40);
  assert.match(String(warn?.msg), /^saga retention: a prune failed: /);
  await pruner.stop();
});

test('a gateway refuses to start with a retention shorter than IDEMPOTENCY_TTL, naming the variable', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/gateway/main.ts'], {
    cwd: path.resolve(import.meta.dirname, '../..'),
    env: {
      ...process.env,
      SAGA_RETENTION: 'COMPLETED=12h',
      IDEMPOTENCY_TTL: '24h',
      DATA_DIR: path.join(root, 'refused'),
    },
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(r.status, 1, r.stderr);
  assert.match(
    r.stderr,
    /^gateway: invalid configuration: SAGA_RETENTION: expected no outcome kept COMPLETED \(12h\) shorter than IDEMPOTENCY_TTL \(1d\)/,
  );
  assert.equal(fs.existsSync(path.join(root, 'refused')), false, 'nothing was opened');
});
