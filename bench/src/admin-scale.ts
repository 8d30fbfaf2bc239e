/**
 * The admin console's reads at scale (issue 12 part 6):
 *
 *   node --import tsx bench/src/admin-scale.ts [--sagas 100000] [--saga-log sqlite|postgres] [--runs 20]
 *
 * Seeds a fresh saga log with N place-order sagas in a realistic mix (about 85 % COMPLETED, 12 %
 * COMPENSATED, 1 % PARKED, a few RESOLVED, and about 500 in flight among the newest 1,000),
 * 5,000 customers, created over 30 days, then times each read the console makes (the list's
 * first page with each single filter, a second page, the counts per status, the PARKED queue,
 * the overview) `--runs` times in a row and prints the median and the max (the first, cold, run
 * included). Seeding goes through the SagaLog port itself: `create` with each saga's final row
 * (status, step, failure, results) and its SAGA_STARTED event, 2,000 at a time, which the log's
 * group commit writes as a few transactions; no other event is written (the reads timed here
 * never touch the events table). PostgreSQL: a fresh database sagas_bench_<time> on the server
 * of SAGA_LOG_URL (default postgres://postgres@127.0.0.1:5432/postgres), VACUUM ANALYZE after
 * the seed (what autovacuum does to a table that grew by this much; --no-vacuum skips it), dropped at the end.
 * SQLite: a file in a temporary folder, removed at the end; no ANALYZE (the store never runs it).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import type { Json } from '../../src/saga/definition.js';
import type { ListQuery, NewEvent, SagaLog, SagaRecord, SagaStatus } from '../../src/saga/model.js';
import { PostgresSagaLog } from '../../src/saga/stores/postgres.js';
import { SqliteSagaLog } from '../../src/saga/stores/sqlite.js';
import { prng } from '../../src/chaos/nemesis-schedule.js';
import { createBenchDatabase, DEFAULT_BENCH_SERVER_URL, type BenchDatabase } from './postgres.js';

const USAGE = `Usage: node --import tsx bench/src/admin-scale.ts [--sagas N] [--saga-log sqlite|postgres] [--runs R]

  --sagas N        sagas seeded (default 100000)
  --saga-log S     sqlite (default; a temporary file) or postgres (a fresh database on the
                   server of SAGA_LOG_URL, default ${DEFAULT_BENCH_SERVER_URL}, dropped after)
  --runs R         timed runs of each query (default 20)
  --no-vacuum      PostgreSQL: time the queries straight after the seed, before any VACUUM
                   ANALYZE (no planner statistics, no visibility map)
  --keep           keep the seeded log (SQLite file or PostgreSQL database) and print where
`;

const STEPS = ['create_order', 'reserve_stock', 'charge_payment', 'confirm_order', 'commit_stock'] as const;
const CUSTOMERS = 5_000;
const DAY = 86_400_000;
const SPAN_MS = 30 * DAY;

const customer = (n: number) => `cust_${String(n).padStart(5, '0')}`;

function seedSaga(
  i: number,
  n: number,
  end: number,
  rand: () => number,
): { saga: SagaRecord; started: NewEvent; leaseMs: number } {
  const id = randomUUID();
  const createdAt = Math.round(end - SPAN_MS + (i / n) * SPAN_MS + rand() * 2_000);
  const r = rand();
  // In flight: only among the newest 1,000 (a saga lives seconds, not days).
  const inFlight = i >= n - 1_000 && rand() < 0.5;
  const status: SagaStatus = inFlight
    ? rand() < 0.8
      ? 'RUNNING'
      : 'COMPENSATING'
    : r < 0.855
      ? 'COMPLETED'
      : r < 0.985
        ? 'COMPENSATED'
        : r < 0.995
          ? 'PARKED'
          : 'RESOLVED';
  const items = Array.from({ length: 1 + Math.floor(rand() * 3) }, () => ({
    product_id: `prod_${1 + Math.floor(rand() * 1000)}`,
    quantity: 1 + Math.floor(rand() * 3),
    unit_price_cents: 100 + Math.floor(rand() * 20_000),
  }));
  const cust = customer(1 + Math.floor(rand() * CUSTOMERS));
  const input: Json = {
    order_id: id,
    customer_id: cust,
    items,
    total_cents: items.reduce((t, x) => t + x.quantity * x.unit_price_cents, 0),
    created_at_ms: createdAt,
    fingerprint: randomBytes(32).toString('hex'),
    request_id: randomUUID(),
  };
  let stepIndex: number;
  let compIndex = -1;
  let failure: SagaRecord['failure'] = null;
  let currentStep: string | null = null;
  const results: Record<string, Json> = {};
  const done = (k: number) => {
    for (let s = 0; s < k; s++)
      results[STEPS[s] as string] = s === 2 ? { payment_id: randomUUID(), amount_cents: 1234 } : null;
  };
  if (status === 'COMPLETED' || status === 'RESOLVED') {
    stepIndex = 5;
    done(5);
  } else if (status === 'COMPENSATED') {
    const failedAt = rand() < 0.6 ? 2 : 1;
    failure =
      failedAt === 2
        ? { step: 'charge_payment', code: 'payment_declined', message: 'card declined' }
        : { step: 'reserve_stock', code: 'insufficient_stock', message: 'not enough stock' };
    stepIndex = failedAt;
    done(failedAt);
  } else if (status === 'RUNNING') {
    stepIndex = Math.floor(rand() * 5);
    done(stepIndex);
    currentStep = STEPS[stepIndex] as string;
  } else if (status === 'COMPENSATING') {
    stepIndex = 2;
    compIndex = Math.floor(rand() * 2);
    done(2);
    failure = { step: 'charge_payment', code: 'payment_declined', message: 'card declined' };
    currentStep = STEPS[compIndex] as string;
  } else {
    // PARKED: half stuck compensating (a participant refusing an undo), half after the pivot.
    if (rand() < 0.5) {
      stepIndex = 2;
      compIndex = Math.floor(rand() * 2);
      done(2);
      failure = { step: 'charge_payment', code: 'payment_declined', message: 'card declined' };
      currentStep = STEPS[compIndex] as string;
    } else {
      stepIndex = 4;
      done(4);
      failure = { step: 'commit_stock', code: 'forward_attempts_exhausted', message: 'inventory unavailable' };
      currentStep = 'commit_stock';
    }
  }
  const traceparent = `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`;
  const live = status === 'RUNNING' || status === 'COMPENSATING';
  const saga: SagaRecord = {
    id,
    definition: 'place_order',
    version: 1,
    status,
    stepIndex,
    compIndex,
    attempt: 0,
    input,
    results,
    failure,
    traceparent,
    idempotencyKey: rand() < 0.7 ? `idem-${randomUUID()}` : null,
    leaseOwner: live ? 'bench-seed' : null,
    leaseExpiresAt: 0,
    deadlineAt: createdAt + 120_000,
    createdAt,
    updatedAt: createdAt + 300 + Math.floor(rand() * 5_000),
    subject: cust,
    currentStep,
  };
  const started: NewEvent = {
    type: 'SAGA_STARTED',
    data: { input, traceparent, definition: 'place_order', version: 1 },
  };
  return { saga, started, leaseMs: live ? 24 * 3_600_000 : 0 };
}

interface Opened {
  log: SagaLog;
  where: string;
  /** After the seed: what keeps the store's statistics as they would be in use. */
  settle(): Promise<void>;
  cleanup(): Promise<void>;
}

async function openStore(kind: 'sqlite' | 'postgres'): Promise<Opened> {
  if (kind === 'sqlite') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sagas-admin-scale-'));
    const file = path.join(dir, 'saga.db');
    const log = new SqliteSagaLog({ file, synchronous: 'normal' });
    return {
      log,
      where: file,
      settle: async () => undefined,
      cleanup: async () => fs.rmSync(dir, { recursive: true, force: true }),
    };
  }
  const db: BenchDatabase = await createBenchDatabase(process.env.SAGA_LOG_URL ?? DEFAULT_BENCH_SERVER_URL);
  try {
    const log = await PostgresSagaLog.open({ url: db.url, poolSize: 8, synchronousCommit: 'off' });
    return {
      log,
      where: `${db.server} database ${db.name}`,
      async settle() {
        const c = new pg.Client({ connectionString: db.url });
        await c.connect();
        try {
          await c.query('VACUUM ANALYZE sagas');
        } finally {
          await c.end();
        }
      },
      cleanup: () => db.drop(),
    };
  } catch (err) {
    await db.drop();
    throw err;
  }
}

async function seed(log: SagaLog, n: number, out: NodeJS.WriteStream): Promise<{ ids: string[]; ms: number }> {
  const rand = prng(12);
  const end = Date.now() - 60_000;
  const ids: string[] = [];
  const t0 = performance.now();
  const CHUNK = 2_000;
  for (let i = 0; i < n; i += CHUNK) {
    const chunk = Array.from({ length: Math.min(CHUNK, n - i) }, (_, k) => seedSaga(i + k, n, end, rand));
    const res = await Promise.all(chunk.map((x) => log.create(x.saga, [x.started], x.leaseMs)));
    for (const r of res) if (!r.created) throw new Error('seed: a saga was not created');
    ids.push(...chunk.map((x) => x.saga.id));
    if (out.isTTY) out.write(`\rseeding ${ids.length}/${n}`);
  }
  if (out.isTTY) out.write('\r\x1b[K');
  return { ids, ms: performance.now() - t0 };
}

interface Timing {
  name: string;
  detail: string;
  rows: number;
  median: number;
  max: number;
}

async function time(name: string, detail: string, runs: number, fn: () => Promise<number>): Promise<Timing> {
  const ms: number[] = [];
  let rows = 0;
  for (let r = 0; r < runs; r++) {
    const t = performance.now();
    rows = await fn();
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  const mid = ms.length / 2;
  const median = ms.length % 2 ? (ms[Math.floor(mid)] as number) : ((ms[mid - 1] as number) + (ms[mid] as number)) / 2;
  return { name, detail, rows, median, max: ms[ms.length - 1] as number };
}

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({
      options: {
        sagas: { type: 'string', default: '100000' },
        'saga-log': { type: 'string', default: 'sqlite' },
        runs: { type: 'string', default: '20' },
        'no-vacuum': { type: 'boolean' },
        keep: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }).values;
  } catch (err) {
    process.stderr.write(`admin-scale: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const n = Number(args.sagas);
  const runs = Number(args.runs);
  const kind = args['saga-log'];
  if (
    !Number.isInteger(n) ||
    n < 1_000 ||
    !Number.isInteger(runs) ||
    runs < 1 ||
    (kind !== 'sqlite' && kind !== 'postgres')
  ) {
    process.stderr.write(
      `admin-scale: --sagas must be an integer >= 1000, --runs >= 1, --saga-log sqlite or postgres\n\n${USAGE}`,
    );
    return 2;
  }
  const store = await openStore(kind);
  try {
    const { log } = store;
    const seeded = await seed(log, n, process.stderr);
    const t = performance.now();
    if (!args['no-vacuum']) await store.settle();
    const settleMs = performance.now() - t;
    const counts = await log.countByStatus();
    process.stdout.write(
      `admin-scale: ${n} sagas in ${kind} (${store.where}), seeded in ${(seeded.ms / 1000).toFixed(1)} s` +
        `${kind === 'postgres' ? (args['no-vacuum'] ? ', no VACUUM ANALYZE' : `, VACUUM ANALYZE ${(settleMs / 1000).toFixed(1)} s`) : ''}\n` +
        `statuses: ${Object.entries(counts)
          .map(([s, c]) => `${s} ${c}`)
          .join(', ')}\n` +
        `${runs} runs of each query, in a row; median and max in ms (the first, cold, run included)\n\n`,
    );
    const newest = await log.list({ limit: 1 });
    const someId = seeded.ids[Math.floor(n / 3)] as string;
    const now = Date.now();
    const list = (q: Omit<ListQuery, 'limit'>) => async () => (await log.list({ limit: 50, ...q })).sagas.length;
    const page1 = await log.list({ limit: 50 });
    const oldDay = now - 20 * DAY;
    const queries: Array<[string, string, () => Promise<number>]> = [
      ['list', 'first page, no filter', list({})],
      ['list', 'second page (cursor)', list({ cursor: page1.nextCursor ?? undefined })],
      ['list', 'status=COMPLETED', list({ status: 'COMPLETED' })],
      ['list', 'status=PARKED', list({ status: 'PARKED' })],
      ['list', 'status=RUNNING', list({ status: 'RUNNING' })],
      ['list', 'customer (subject)', list({ subject: customer(1234) })],
      ['list', 'step=charge_payment', list({ step: 'charge_payment' })],
      ['list', 'step=commit_stock', list({ step: 'commit_stock' })],
      ['list', 'created in the last 24 h', list({ createdFrom: now - DAY })],
      ['list', 'created on one day 20 days ago', list({ createdFrom: oldDay, createdTo: oldDay + DAY })],
      ['list', 'created up to 29 days ago', list({ createdTo: now - 29 * DAY })],
      ['list', 'id prefix (2 characters)', list({ idPrefix: someId.slice(0, 2) })],
      ['list', 'id prefix (4 characters)', list({ idPrefix: someId.slice(0, 4) })],
      ['list', 'id prefix (whole id)', list({ idPrefix: someId })],
      ['list', 'customer + status=COMPLETED', list({ subject: customer(1234), status: 'COMPLETED' })],
      ['countByStatus', 'the counts per status', async () => Object.keys(await log.countByStatus()).length],
      ['parked', 'PARKED queue, oldest first, 50', async () => (await log.parked(50)).length],
      ['liveStats', 'the overview strip', async () => ((await log.liveStats()).inflight >= 0 ? 1 : 0)],
      [
        'GET /api/sagas',
        'list + counts, together',
        async () => {
          const [p] = await Promise.all([log.list({ limit: 50 }), log.countByStatus()]);
          return p.sagas.length;
        },
      ],
    ];
    if (!newest.sagas[0]) throw new Error('the seeded log lists nothing');
    const results: Timing[] = [];
    for (const [name, detail, fn] of queries) results.push(await time(name, detail, runs, fn));
    const w = [
      Math.max(...results.map((r) => r.name.length)),
      Math.max(...results.map((r) => r.detail.length)),
    ] as const;
    const line = (a: string, b: string, c: string, d: string, e: string) =>
      `| ${a.padEnd(w[0])} | ${b.padEnd(w[1])} | ${c.padStart(4)} | ${d.padStart(9)} | ${e.padStart(6)} |\n`;
    let table = line('query', 'what', 'rows', 'median ms', 'max ms');
    table += `|${'-'.repeat(w[0] + 2)}|${'-'.repeat(w[1] + 2)}|-----:|----------:|-------:|\n`;
    for (const r of results) table += line(r.name, r.detail, String(r.rows), r.median.toFixed(2), r.max.toFixed(2));
    process.stdout.write(table);
    const slow = results.filter((r) => r.max >= 100);
    process.stdout.write(
      slow.length
        ? `\nover 100 ms: ${slow.map((r) => `${r.name} ${r.detail}`).join('; ')}\n`
        : '\nevery query under 100 ms (max)\n',
    );
    await log.close();
    return slow.length ? 1 : 0;
  } finally {
    if (args.keep) process.stdout.write(`kept: ${store.where}\n`);
    else await store.cleanup();
  }
}

process.exit(await main());
