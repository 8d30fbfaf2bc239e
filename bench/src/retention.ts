/**
 * `npm run bench:retention -- [--sagas 1000000] [--days 60] [--every 100000]`: the SQLite saga
 * log's size under the default retention policy (COMPLETED 7 d, COMPENSATED 30 d, RESOLVED 90 d,
 * PARKED kept), driven through the store code directly (no gRPC, no HTTP), with the gateway's own
 * pruner (src/gateway/retention.ts: batches of 500, incremental vacuum after each) running on a
 * real timer beside the writers.
 *
 * The log's clock is simulated: it advances so that `--sagas` sagas span `--days` days, so the
 * policy's windows come and go within one run. Each saga writes what the place-order saga writes
 * (bench/README.md, "Retention"): a SAGA_STARTED with the order, each step's STEP_STARTED and
 * STEP_SUCCEEDED with trace ids and results, and its end. The mix: 90 % completed (1 in 100 after
 * a retried step, 1 in 1000 parked instead and left so), 8 % compensated after a declined charge,
 * 1 % parked then resolved by an operator.
 *
 * Every `--every` sagas it prints the simulated day, the file's size (database + WAL), its pages,
 * the rows of both tables, what was pruned, how long prune batches took, how long callbacks waited
 * for the event loop (p99, max), and the process's RSS. `--no-retention` runs without the pruner,
 * for comparison.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pino } from 'pino';
import { startPruner } from '../../src/gateway/retention.js';
import { openDatabase, type Db } from '../../src/platform/storage/db.js';
import type { NewEvent, SagaLog, SagaRecord } from '../../src/saga/model.js';
import { DEFAULT_RETENTION_AGES } from '../../src/saga/retention.js';
import { SqliteSagaLog } from '../../src/saga/stores/sqlite.js';

const { values: args } = parseArgs({
  options: {
    sagas: { type: 'string', default: '1000000' },
    days: { type: 'string', default: '60' },
    every: { type: 'string', default: '100000' },
    concurrency: { type: 'string', default: '64' },
    'interval-ms': { type: 'string', default: '1000' },
    batch: { type: 'string', default: '500' },
    'no-retention': { type: 'boolean', default: false },
    dir: { type: 'string' },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});

if (args.help) {
  process.stdout.write(`npm run bench:retention -- [options]
  --sagas <n>         sagas to write (default 1000000)
  --days <d>          simulated days they span (default 60)
  --every <n>         a line of figures every n sagas (default 100000)
  --concurrency <n>   sagas written at once (default 64)
  --interval-ms <ms>  the pruner's interval, real time (default 1000)
  --batch <n>         sagas per prune batch (default 500)
  --no-retention      no pruner: the log as it grows without one
  --dir <dir>         where the log goes (kept); default a temporary folder, removed at the end
  --keep              keep the temporary folder
`);
  process.exit(0);
}

const SAGAS = Number(args.sagas);
const DAYS = Number(args.days);
const EVERY = Number(args.every);
const CONCURRENCY = Number(args.concurrency);
const DAY = 86_400_000;
const STEP_MS = (DAYS * DAY) / SAGAS;

const dir = args.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'sagas-bench-retention-'));
const file = path.join(dir, 'saga.db');
const START = Date.now() - DAYS * DAY;
let simNow = START;
const log = new SqliteSagaLog({ file, synchronous: 'normal', now: () => simNow });

const STEPS = ['create_order', 'reserve_stock', 'charge_payment', 'confirm_order', 'commit_stock'] as const;
const hex = (n: number, len: number) => n.toString(16).padStart(len, '0').slice(-len);

/** A place-order saga as the engine creates it. */
function saga(i: number): { record: SagaRecord; started: NewEvent; trace: string } {
  const id = `ord_${hex(i, 8)}${hex(Math.imul(i, 2_654_435_761) >>> 0, 8)}`;
  const trace = `${hex(i, 16)}${hex(Math.imul(i, 40_503) >>> 0, 16)}`;
  const items = [
    { product_id: `prod_${i % 1000}`, quantity: 1 + (i % 3), price_cents: 2_500 + (i % 700) },
    { product_id: `prod_${(i * 7) % 1000}`, quantity: 1, price_cents: 1_299 },
  ];
  const total = items.reduce((a, it) => a + it.quantity * it.price_cents, 0);
  const input = { order_id: id, customer_id: `cust_${i % 50_000}`, items, total_cents: total };
  const traceparent = `00-${trace}-${hex(i, 16)}-01`;
  return {
    trace,
    record: {
      id,
      definition: 'place_order',
      version: 1,
      status: 'RUNNING',
      stepIndex: 0,
      compIndex: -1,
      attempt: 0,
      input,
      results: {},
      failure: null,
      traceparent,
      idempotencyKey: `idem-${id}`,
      leaseOwner: 'bench',
      leaseExpiresAt: 0,
      deadlineAt: simNow + 600_000,
      createdAt: simNow,
      updatedAt: simNow,
      subject: input.customer_id,
      currentStep: STEPS[0],
    },
    started: {
      type: 'SAGA_STARTED',
      data: { input, traceparent, definition: 'place_order', version: 1 },
      traceId: trace,
      spanId: hex(i * 3, 16),
    },
  };
}

type Outcome = 'COMPLETED' | 'RETRIED' | 'COMPENSATED' | 'RESOLVED' | 'PARKED';

function outcomeOf(i: number): Outcome {
  if (i % 1000 === 999) return 'PARKED';
  const r = i % 100;
  if (r < 89) return 'COMPLETED';
  if (r === 89) return 'RETRIED';
  if (r < 98) return 'COMPENSATED';
  return r === 98 ? 'RESOLVED' : 'COMPLETED';
}

const END = { status: 'COMPLETED', leaseOwner: null, leaseExpiresAt: 0 } as const;

/** One saga from its creation to its end, one write per step boundary as the engine makes them. */
async function run(i: number): Promise<void> {
  const { record, started, trace } = saga(i);
  const res = await log.create(record, [started], 600_000);
  if (!res.created) throw new Error(`saga ${record.id} not created`);
  const id = record.id;
  const ev = (e: NewEvent, k: number): NewEvent => ({ ...e, traceId: trace, spanId: hex(i * 31 + k, 16) });
  const outcome = outcomeOf(i);
  const results: Record<string, { amount_cents: number } | null> = {};
  const lastStep = outcome === 'COMPENSATED' ? 2 : STEPS.length - 1;
  await log.append(id, 'bench', { attempt: 1 }, [ev({ type: 'STEP_STARTED', step: STEPS[0], attempt: 1 }, 0)]);
  for (let s = 0; s <= lastStep; s++) {
    const step = STEPS[s] as string;
    if (outcome === 'COMPENSATED' && s === 2) {
      await log.append(id, 'bench', { status: 'COMPENSATING', compIndex: 1, attempt: 0, currentStep: STEPS[1] }, [
        ev(
          {
            type: 'STEP_FAILED',
            step,
            attempt: 1,
            error: 'payment declined: insufficient funds',
            retryable: false,
            data: { code: 'payment_declined' },
          },
          10,
        ),
        ev({ type: 'COMPENSATION_STARTED', step: STEPS[1], attempt: 1 }, 11),
      ]);
      await log.append(id, 'bench', { compIndex: 0, currentStep: STEPS[0] }, [
        ev({ type: 'COMPENSATION_SUCCEEDED', step: STEPS[1], attempt: 1 }, 12),
        ev({ type: 'COMPENSATION_STARTED', step: STEPS[0], attempt: 1 }, 13),
      ]);
      await log.append(
        id,
        'bench',
        {
          status: 'COMPENSATED',
          compIndex: -1,
          currentStep: null,
          failure: { step, code: 'payment_declined', message: 'payment declined: insufficient funds' },
          leaseOwner: null,
          leaseExpiresAt: 0,
        },
        [
          ev({ type: 'COMPENSATION_SUCCEEDED', step: STEPS[0], attempt: 1 }, 14),
          ev({ type: 'SAGA_COMPENSATED', data: { code: 'payment_declined', step } }, 15),
        ],
      );
      return;
    }
    if (outcome === 'RETRIED' && s === 1) {
      await log.append(id, 'bench', { attempt: 2 }, [
        ev(
          {
            type: 'STEP_FAILED',
            step,
            attempt: 1,
            error: 'deadline exceeded',
            retryable: true,
            data: { code: 'deadline_exceeded', retry_at: simNow + 400 },
          },
          20,
        ),
        ev({ type: 'STEP_STARTED', step, attempt: 2 }, 21),
      ]);
    }
    if (step === 'charge_payment')
      results[step] = { amount_cents: (record.input as { total_cents: number }).total_cents };
    const succeeded = ev({ type: 'STEP_SUCCEEDED', step, attempt: 1, data: results[step] ?? null }, 2 * s + 1);
    const next = STEPS[s + 1];
    if (next === undefined) {
      if (outcome === 'PARKED' || outcome === 'RESOLVED') {
        await log.append(id, 'bench', { status: 'PARKED', leaseOwner: null, leaseExpiresAt: 0, results }, [
          ev(
            {
              type: 'STEP_FAILED',
              step,
              attempt: 50,
              error: 'inventory unavailable',
              retryable: true,
              data: { code: 'unavailable' },
            },
            30,
          ),
          ev({ type: 'SAGA_PARKED', step, error: 'inventory unavailable', data: { code: 'unavailable' } }, 31),
        ]);
        if (outcome === 'RESOLVED') {
          await log.takeOver(
            id,
            { status: 'PARKED' },
            'operator',
            60_000,
            { status: 'RESOLVED', leaseOwner: null, leaseExpiresAt: 0 },
            [
              ev(
                {
                  type: 'OPERATOR_ACTION',
                  data: { action: 'resolve', action_id: `act-${id}`, actor: 'ops', note: 'stock committed by hand' },
                },
                32,
              ),
            ],
          );
        }
        return;
      }
      await log.append(id, 'bench', { ...END, stepIndex: s + 1, currentStep: null, results }, [
        succeeded,
        ev({ type: 'SAGA_COMPLETED' }, 40),
      ]);
      return;
    }
    await log.append(id, 'bench', { stepIndex: s + 1, attempt: 1, currentStep: next, results }, [
      succeeded,
      ev({ type: 'STEP_STARTED', step: next, attempt: 1 }, 2 * s + 2),
    ]);
  }
}

// The pruner, as the gateway runs it, timed around each batch: the delete's transaction, a turn of
// the event loop (the writers' commits may run in it), and the incremental vacuum. What the event
// loop was held for, by the pruner and the writers alike, is the loop delay.
const batchMs: number[] = [];
const pruned = { sagas: 0, events: 0 };
const timed: Pick<SagaLog, 'prune'> = {
  async prune(ages, limit) {
    const t = performance.now();
    const r = await log.prune(ages, limit);
    batchMs.push(performance.now() - t);
    pruned.sagas += r.sagas;
    pruned.events += r.events;
    return r;
  },
};
const pruner = args['no-retention']
  ? undefined
  : startPruner({
      log: timed,
      policy: { enabled: true, ages: DEFAULT_RETENTION_AGES },
      logger: pino({ level: 'warn' }, pino.destination(2)),
      batch: Number(args.batch),
      intervalMs: Number(args['interval-ms']),
    });

const side: Db = openDatabase(file, { migrations: [], readonly: true });
const one = (sql: string): number => Object.values(side.prepare<[], Record<string, number>>(sql).get() ?? {})[0] ?? 0;
const mib = (b: number) => (b / 1048576).toFixed(1);
const size = (f: string) => (fs.existsSync(f) ? fs.statSync(f).size : 0);

const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();

function report(done: number, t0: number): Record<string, number | string> {
  const pages = one('PRAGMA page_count');
  const free = one('PRAGMA freelist_count');
  const sorted = [...batchMs].sort((a, b) => a - b);
  const row = {
    sagas_written: done,
    sim_day: ((simNow - START) / DAY).toFixed(1),
    db_mib: mib(size(file)),
    wal_mib: mib(size(`${file}-wal`)),
    pages,
    free_pages: free,
    saga_rows: one('SELECT count(*) FROM sagas'),
    event_rows: one('SELECT count(*) FROM saga_events'),
    pruned_sagas: pruned.sagas,
    prune_batches: batchMs.length,
    batch_p50_ms: (sorted[Math.floor(sorted.length / 2)] ?? 0).toFixed(1),
    batch_p99_ms: (sorted[Math.floor(sorted.length * 0.99)] ?? 0).toFixed(1),
    batch_max_ms: (sorted[sorted.length - 1] ?? 0).toFixed(1),
    // How long callbacks waited for the event loop since the last line (writers and pruner alike).
    loop_delay_p99_ms: (loop.percentile(99) / 1e6).toFixed(1),
    loop_delay_max_ms: (loop.max / 1e6).toFixed(1),
    rss_mib: mib(process.memoryUsage().rss),
    heap_mib: mib(process.memoryUsage().heapUsed),
    elapsed_s: ((performance.now() - t0) / 1000).toFixed(0),
  };
  loop.reset();
  return row;
}

async function main(): Promise<void> {
  process.stderr.write(
    `saga log ${file}; ${SAGAS} sagas over ${DAYS} simulated days, ${CONCURRENCY} at a time; retention ${args['no-retention'] ? 'off' : 'default'}\n`,
  );
  const t0 = performance.now();
  const rows: Array<Record<string, number | string>> = [];
  let nextReport = EVERY;
  for (let done = 0; done < SAGAS;) {
    const wave = Math.min(CONCURRENCY, SAGAS - done);
    simNow = START + done * STEP_MS;
    await Promise.all(Array.from({ length: wave }, (_, k) => run(done + k)));
    done += wave;
    if (done >= nextReport || done === SAGAS) {
      nextReport += EVERY;
      const row = report(done, t0);
      rows.push(row);
      console.log(JSON.stringify(row));
    }
  }
  // The last pass, as the gateway's next interval would run it, then the figures once more.
  if (pruner) await pruner.runPass();
  // A checkpoint copies the WAL back and truncates the file to its pages.
  const writer = openDatabase(file, { migrations: [] });
  writer.exec('PRAGMA wal_checkpoint(TRUNCATE)');
  writer.close();
  const last = report(SAGAS, t0);
  console.log(JSON.stringify({ final: true, ...last }));
  await pruner?.stop();
  await log.close();
  side.close();
  if (!args.keep && !args.dir) fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
