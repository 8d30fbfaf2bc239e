/**
 * `npm run bench:sqlite -- [--rounds 3] [--sagas 6000]`: what SQLite costs the product's own store
 * code, without gRPC, HTTP or other processes in the way. Each measurement runs in a fresh child
 * process on a fresh file (WAL, synchronous=NORMAL) and reports the CPU (user+system) and wall time
 * per item (bench/README.md: node:sqlite against better-sqlite3, measured with this file at cf403b6,
 * where both drivers sat behind Db):
 *
 * - saga log: the commits of a happy five-step saga, 64 sagas at a time: created 64 per turn of the
 *   event loop (one group commit), each with SAGA_STARTED and its first step's intent (as the
 *   engine creates a saga), then 5 appends each, 64 per turn (a patch and two events, as a step
 *   ending and the next starting; the last one, the end, in the same shape): 6 commits per saga;
 * - payment inbox: charges through the inbox (`Inbox.run`: the idempotency record and the effect in
 *   one transaction, group-committed), 64 per turn.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const WORKLOADS = ['saga-log', 'payment-inbox'] as const;
type Workload = (typeof WORKLOADS)[number];
const BATCH = 64;
/** The appends after the create: a happy five-step saga commits 6 times, its create included. */
const APPENDS = 5;

interface Figure {
  items: number;
  cpuMs: number;
  wallMs: number;
}

async function runWorkload(workload: Workload, n: number, dir: string): Promise<Figure> {
  const { uuidv7 } = await import('../../src/platform/ids.js');
  const { benchSaga, STARTED } = await import('./saga-record.js');
  if (workload === 'saga-log') {
    const firstIntent = { type: 'STEP_STARTED', step: 'step_0', attempt: 1 } as const;
    const { SqliteSagaLog } = await import('../../src/saga/stores/sqlite.js');
    const log = new SqliteSagaLog({ file: path.join(dir, 'sagas.db'), synchronous: 'normal' });
    const now = Date.now();
    const started = process.cpuUsage();
    const t0 = performance.now();
    for (let done = 0; done < n; done += BATCH) {
      const ids = Array.from({ length: Math.min(BATCH, n - done) }, () => uuidv7());
      await Promise.all(
        ids.map((id) =>
          log.create({ ...benchSaga(id, now), attempt: 1, currentStep: 'step_0' }, [STARTED, firstIntent], 600_000),
        ),
      );
      for (let r = 0; r < APPENDS; r++) {
        const step = `step_${r}`;
        await Promise.all(
          ids.map((id) =>
            log.append(id, 'bench', { stepIndex: r + 1, currentStep: step, results: { [step]: { order_id: id } } }, [
              { type: 'STEP_SUCCEEDED', step, attempt: 1, data: { round: r } },
              { type: 'STEP_STARTED', step: `step_${r + 1}`, attempt: 1 },
            ]),
          ),
        );
      }
    }
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(started);
    await log.close();
    return { items: n, cpuMs: (cpu.user + cpu.system) / 1000, wallMs };
  }
  const { openPaymentDatabase, createPaymentStore } = await import('../../src/services/payment/store.js');
  const { createInbox } = await import('../../src/platform/storage/inbox.js');
  const { validateCharge } = await import('../../src/services/payment/domain.js');
  const db = openPaymentDatabase(path.join(dir, 'payment.db'));
  const store = createPaymentStore(db, { chargeLimitCents: 50_000 });
  const inbox = createInbox(db);
  const started = process.cpuUsage();
  const t0 = performance.now();
  for (let done = 0; done < n; done += BATCH) {
    const orders = Array.from({ length: Math.min(BATCH, n - done) }, () => uuidv7());
    await Promise.all(
      orders.map((orderId) => {
        const req = validateCharge({ orderId, amountCents: 2468 });
        return inbox.run(`${orderId}:charge`, 'Charge', req, () => store.charge(req));
      }),
    );
  }
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(started);
  db.close();
  return { items: n, cpuMs: (cpu.user + cpu.system) / 1000, wallMs };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

async function main(): Promise<void> {
  // The child: one workload, one fresh folder; prints its Figure.
  if (process.env.BENCH_SQLITE_CHILD) {
    const [workload, n] = process.env.BENCH_SQLITE_CHILD.split(':') as [Workload, string];
    const dir = mkdtempSync(path.join(tmpdir(), 'bench-sqlite-'));
    try {
      process.stdout.write(JSON.stringify(await runWorkload(workload, Number(n), dir)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return;
  }
  const { values } = parseArgs({
    options: { rounds: { type: 'string', default: '3' }, sagas: { type: 'string', default: '6000' } },
  });
  const rounds = Number(values.rounds);
  const n = Number(values.sagas);
  if (!Number.isInteger(rounds) || rounds < 1 || !Number.isInteger(n) || n < BATCH) {
    console.error('usage: npm run bench:sqlite -- [--rounds <n ≥ 1>] [--sagas <n ≥ 64>]');
    process.exit(2);
  }
  const self = fileURLToPath(import.meta.url);
  const results = new Map<string, Figure[]>();
  console.log(
    `Node ${process.version}, node:sqlite; ${n} items per run, ${BATCH} per turn, ${rounds} rounds; CPU and wall ms per item`,
  );
  for (let r = 1; r <= rounds; r++) {
    for (const workload of WORKLOADS) {
      const child = spawnSync(process.execPath, [...process.execArgv, self], {
        env: { ...process.env, BENCH_SQLITE_CHILD: `${workload}:${n}` },
        encoding: 'utf8',
      });
      if (child.status !== 0) throw new Error(`${workload} failed: ${child.stderr}`);
      const f = JSON.parse(child.stdout) as Figure;
      results.set(workload, [...(results.get(workload) ?? []), f]);
      console.log(
        `round ${r}  ${workload.padEnd(14)} cpu ${(f.cpuMs / f.items).toFixed(4)} ms  wall ${(f.wallMs / f.items).toFixed(4)} ms`,
      );
    }
  }
  console.log('\nmedians (ms per item)  cpu      wall');
  for (const [key, fs] of results) {
    const cpu = median(fs.map((f) => f.cpuMs / f.items));
    const wall = median(fs.map((f) => f.wallMs / f.items));
    console.log(`${key.padEnd(22)} ${cpu.toFixed(4)}   ${wall.toFixed(4)}`);
  }
}

await main();
