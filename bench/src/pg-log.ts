/**
 * `npm run bench:pg-log -- [server URL]`: what one group commit of the PostgreSQL saga log costs,
 * by batch size. For each size n, n sagas each get one append (a patch and two events, as a step
 * ending and the next starting) in one turn of the event loop — one batch — 100 times in a row,
 * on a database of its own (created on the server, default the machine's, and dropped after).
 * Prints the wall time per batch and per write: the round trip, the statement(s), the commit's
 * WAL flush; and the CPU the database's server backends spent per batch (from /proc: a local
 * server only), which a busy machine disturbs less than the wall time. Run it in a worktree of an
 * older commit for that commit's figures: it only uses the SagaLog port.
 *
 *   npm run bench:pg-log -- [server URL] [batches per size, default 100]
 */
import { PostgresSagaLog } from '../../src/saga/stores/postgres.js';
import { benchSaga as saga, STARTED } from './saga-record.js';
import { uuidv7 } from '../../src/platform/ids.js';
import { createBenchDatabase, DEFAULT_BENCH_SERVER_URL, type BenchDatabase } from './postgres.js';
import { procCpu } from './cpu.js';

const SIZES = [1, 2, 5, 15, 50];
const ROUNDS = Number(process.argv[3] ?? 100);

/** CPU seconds the database's backends have used so far (undefined: not measurable here). */
async function backendCpu(db: BenchDatabase): Promise<number | undefined> {
  const pids = await db.backends();
  if (!Array.isArray(pids)) return undefined;
  let s = 0;
  for (const pid of pids) {
    const c = procCpu(pid);
    if (c) s += c.user + c.system;
  }
  return s;
}

async function main(): Promise<void> {
  const db = await createBenchDatabase(process.argv[2] ?? DEFAULT_BENCH_SERVER_URL);
  const log = await PostgresSagaLog.open({ url: db.url, poolSize: 10, synchronousCommit: 'on' });
  try {
    console.log(
      `PostgreSQL saga log, one batch of n appends at a time, ${ROUNDS} batches per size (synchronous_commit on)`,
    );
    for (const n of SIZES) {
      const ids = Array.from({ length: n }, () => uuidv7());
      await Promise.all(ids.map((id) => log.create(saga(id, Date.now()), [STARTED], 60_000)));
      const cpu0 = await backendCpu(db);
      const t0 = performance.now();
      for (let r = 0; r < ROUNDS; r++) {
        const step = `step_${r % 5}`;
        await Promise.all(
          ids.map((id) =>
            log.append(
              id,
              'bench',
              { stepIndex: r + 1, currentStep: step, results: { [step]: { order_id: id, round: r } } },
              [
                { type: 'STEP_SUCCEEDED', step, attempt: 1, data: { round: r } },
                { type: 'STEP_STARTED', step: `step_${(r + 1) % 5}`, attempt: 1 },
              ],
            ),
          ),
        );
      }
      const perBatch = (performance.now() - t0) / ROUNDS;
      const cpu1 = await backendCpu(db);
      const cpu =
        cpu0 === undefined || cpu1 === undefined
          ? ''
          : `  backends ${(((cpu1 - cpu0) / ROUNDS) * 1000).toFixed(2).padStart(5)} ms CPU per batch`;
      console.log(
        `  n = ${String(n).padStart(2)}  ${perBatch.toFixed(2).padStart(6)} ms per batch  ${((perBatch / n) * 1000).toFixed(0).padStart(5)} µs per write${cpu}`,
      );
    }
  } finally {
    await log.close();
    await db.drop();
  }
}

await main();
