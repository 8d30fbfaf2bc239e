/**
 * One bench run: load-tests the place-order saga end to end over HTTP, then measures the floor —
 * the same gRPC calls straight to the participants, without the gateway and its saga log — and
 * writes the JSON result and the SVG chart, and prints the report. See bench/README.md.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { BenchOptions } from './args.js';
import { cpuReport, snapshot, type CpuSnapshot } from './cpu.js';
import { floorJob, floorParticipants } from './floor.js';
import { compiledEntries, type CompiledCopy } from './compiled.js';
import { memoryCsv, memoryTable, sampleLine, watchMemory, type MemorySample } from './memory.js';
import { httpClient, httpJob, roundRobin } from './http.js';
import { newLiveState, runLoad, type Job, type LoadPlan } from './load.js';
import { ownCatalog, ownPool, poolFromProducts, type ProductPool } from './orders.js';
import { DEFAULT_BENCH_SERVER_URL, createBenchDatabase, type BenchDatabase } from './postgres.js';
import { progress, type Terminal } from './progress.js';
import { chartTitles, describePlan, reportText, resultJson, type Phase } from './report.js';
import { renderSvg } from './svg.js';
import { grpcSecurity, redactPassword } from '../../src/platform/config/config.js';
import {
  DB_URL_VARS,
  PARTICIPANT_NAMES,
  REPO_ROOT,
  describeExit,
  dialableAddr,
  everyProcess,
  startSystem,
  type ParticipantServiceName,
  type RunningSystem,
} from '../../src/supervisor/supervisor.js';

export interface BenchDeps {
  stdout?: NodeJS.WritableStream;
  stderr?: Terminal;
  env?: NodeJS.ProcessEnv;
}

async function fetchPool(url: string): Promise<ProductPool> {
  const client = httpClient(url, 1, 10_000);
  try {
    const r = await client.request('GET', '/products');
    if (r.status !== 200) throw new Error(`GET ${url}/products answered ${r.status}: ${r.body.slice(0, 200)}`);
    const { products } = JSON.parse(r.body) as { products: { product_id: string; available: number }[] };
    const pool = poolFromProducts(products);
    if (pool.stocked.length === 0) throw new Error(`no product of ${url} has stock to order`);
    return pool;
  } finally {
    client.destroy();
  }
}

/**
 * Runs the bench with parsed options (`argv` as given, for the result and for warnings about
 * options that do not apply); resolves with the exit code: 0, 1 on failure, 130 interrupted.
 */
export async function runBench(opts: BenchOptions, argv: readonly string[], deps: BenchDeps = {}): Promise<number> {
  const stdout = deps.stdout ?? process.stdout;
  const stderr = deps.stderr ?? process.stderr;
  const env = deps.env ?? process.env;
  const say = (s: string) => {
    if (!opts.quiet) stderr.write(`[bench] ${s}\n`);
  };
  const showProgress = !opts.quiet && stderr.isTTY === true;
  const startedAt = new Date();
  const runId = randomBytes(6).toString('hex');

  // Ctrl-C: the first stops the load and tears down; a second kills the system's processes.
  const abort = new AbortController();
  let system: RunningSystem | undefined;
  let sigints = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    sigints++;
    if (sigints === 1) {
      stderr.write(`\n[bench] ${sig}: stopping (again to kill)\n`);
      abort.abort();
    } else if (system) {
      for (const p of everyProcess(system)) void p.kill();
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let tmpDir: string | undefined;
  let db: BenchDatabase | undefined;
  /** The participants' databases (--participants postgres, --replicas N), by participant. */
  const participantDbs: Partial<Record<ParticipantServiceName, BenchDatabase>> = {};
  let failure: string | undefined;
  let stopping = false;
  const logLines: Record<string, { count: number; last: string[] }> = {};
  let compiled: CompiledCopy | undefined;
  let memorySamples: MemorySample[] | undefined;
  let exitCode = 0;
  try {
    // ---- target
    let pool: ProductPool;
    let url: string;
    if (opts.url) {
      url = opts.url;
      for (const flag of ['--sync', '--saga-log', '--gateways']) {
        if (argv.some((a) => a === flag || a.startsWith(`${flag}=`)))
          say(`${flag} is ignored with --url: it applies to the system the bench starts`);
      }
      say(`target ${url}; reading its products`);
      pool = await fetchPool(url);
      if (pool.warning) stderr.write(`[bench] warning: ${pool.warning}\n`);
      say(
        `${pool.stocked.length} products with stock${pool.short ? `; short of stock: ${pool.short.productId} × ${pool.short.quantity}` : '; none short of stock (mixed "no stock" orders will confirm)'}`,
      );
    } else {
      tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sagas-bench-'));
      const catalog = ownCatalog(1000, 1_000_000_000);
      const catalogFile = path.join(tmpDir, 'catalog.json');
      fs.writeFileSync(catalogFile, JSON.stringify(catalog));
      pool = ownPool(catalog);
      let sagaLogUrl = ''; // SQLite under the data folder, whatever the shell says
      if (opts.sagaLog === 'postgres') {
        const server = env.SAGA_LOG_URL || DEFAULT_BENCH_SERVER_URL;
        try {
          db = await createBenchDatabase(server, startedAt);
        } catch (err) {
          throw new Error(
            `cannot create the bench database on ${redactPassword(server)}: ${err instanceof Error ? err.message : String(err)}\n` +
              '(--saga-log postgres needs a PostgreSQL server where it may CREATE DATABASE: set SAGA_LOG_URL=postgres://user:password@host:5432/database)',
            { cause: err },
          );
        }
        sagaLogUrl = db.url;
        say(`created database ${db.name} on ${db.server}; it is dropped after the run`);
      }
      if (opts.participants === 'postgres') {
        const server = env.SAGA_LOG_URL || DEFAULT_BENCH_SERVER_URL;
        try {
          for (const n of PARTICIPANT_NAMES) participantDbs[n] = await createBenchDatabase(server, startedAt, n);
        } catch (err) {
          throw new Error(
            `cannot create the participants' databases on ${redactPassword(server)}: ${err instanceof Error ? err.message : String(err)}\n` +
              '(--participants postgres and --replicas need a PostgreSQL server where they may CREATE DATABASE: set SAGA_LOG_URL=postgres://user:password@host:5432/database)',
            { cause: err },
          );
        }
        say(
          `created databases ${Object.values(participantDbs)
            .map((d) => d.name)
            .join(', ')} for the participants; they are dropped after the run`,
        );
      }
      const childEnv: NodeJS.ProcessEnv = {
        LOG_LEVEL: opts.logLevel,
        INVENTORY_CATALOG: catalogFile,
        SAGA_LOG_URL: sagaLogUrl,
        SAGA_LOG_SYNC: opts.sync,
        // Its own keys in the shared Redis, gone soon after the run.
        REDIS_KEY_PREFIX: `bench-${path.basename(tmpDir)}`,
        // The load generator is one client address: the default per-address limit would measure itself.
        RATE_LIMIT_PER_MINUTE: '0',
        IDEMPOTENCY_TTL: '10m',
        INBOX_FAST_PATH_TTL: '1m',
        ...Object.fromEntries(PARTICIPANT_NAMES.map((n) => [DB_URL_VARS[n], participantDbs[n]?.url ?? ''])),
        // --memory asks the processes for their heap through the memory probe, a test hook.
        ...(opts.memoryEvery !== undefined ? { SAGAS_TEST_HOOKS: '1' } : {}),
      };
      if (opts.compiled) {
        compiled = compiledEntries(runId);
        say(`running the processes from a copy of dist/ (${compiled.dir})`);
      }
      if (opts.profileDir) {
        fs.mkdirSync(opts.profileDir, { recursive: true });
        // Node refuses --cpu-prof in NODE_OPTIONS, and the supervisor fixes the children's execArgv:
        // a preloaded module runs the inspector's profiler instead.
        childEnv.NODE_OPTIONS =
          `${process.env.NODE_OPTIONS ?? ''} --import=${pathToFileURL(path.join(REPO_ROOT, 'bench', 'cpu-profile.mjs')).href}`.trim();
        childEnv.BENCH_CPU_PROF_DIR = opts.profileDir;
      }
      const log = db ? `saga log ${db.name}` : `SAGA_LOG_SYNC=${opts.sync}`;
      say(
        `starting a fresh system (${log}${opts.gateways > 1 ? `, ${opts.gateways} gateways` : ''}${opts.replicas > 1 ? `, ${opts.replicas} replicas of each participant` : ''}, data in ${tmpDir})`,
      );
      system = await startSystem({
        dataDir: path.join(tmpDir, 'data'),
        ports: 'ephemeral',
        gateways: opts.gateways,
        replicas: opts.replicas,
        env: childEnv,
        signal: abort.signal,
        ...(compiled ? { entries: compiled.entries } : {}),
        onLine: (name, line) => {
          const l = (logLines[name] ??= { count: 0, last: [] });
          l.count++;
          l.last.push(line.slice(0, 500));
          if (l.last.length > 5) l.last.shift();
        },
      });
      url = system.url;
      say(
        `up: ${system.gateways.map((g, i) => `${g.name} ${system!.urls[i]}`).join(', ')}; ${PARTICIPANT_NAMES.flatMap(
          (n) => system!.replicas[n].map((p) => `${p.name} ${p.address}`),
        ).join(', ')}`,
      );
      for (const p of everyProcess(system)) {
        void p.exited.then((s) => {
          if (stopping || abort.signal.aborted) return;
          failure = `${p.name} (pid ${p.pid}) ${describeExit(s)} during the run; its last lines:\n${p.output(15).join('\n')}`;
          abort.abort();
        });
      }
    }

    const plan: LoadPlan = {
      loop: opts.loop,
      concurrency: opts.concurrency,
      rate: opts.rate,
      durationS: opts.durationS,
      count: opts.count,
      warmupS: opts.warmupS,
    };
    const measure = async (label: string, job: Job, p: LoadPlan, onAbort?: () => void): Promise<Phase> => {
      const live = newLiveState();
      let a: CpuSnapshot | undefined;
      let b: CpuSnapshot | undefined;
      const pending: Promise<void>[] = [];
      const take = () => {
        const { snap, done } = snapshot(system, [...(db ? [db] : []), ...Object.values(participantDbs)]);
        pending.push(done);
        return snap;
      };
      const stopProgress = showProgress ? progress(stderr, label, p, live) : undefined;
      if (opts.heapSnapshotDir) fs.mkdirSync(opts.heapSnapshotDir, { recursive: true });
      const memory =
        system && opts.memoryEvery !== undefined && label === 'system'
          ? watchMemory({
              system,
              live,
              every: opts.memoryEvery,
              snapshotDir: opts.heapSnapshotDir,
              onSample: (s) => {
                if (!opts.quiet) stderr.write(`[memory] ${sampleLine(s)}\n`);
              },
            })
          : undefined;

      const abortListener = () => onAbort?.();
      abort.signal.addEventListener('abort', abortListener, { once: true });
      try {
        await memory?.ready;
        const result = await runLoad(job, p, {
          signal: abort.signal,
          live,
          hooks: { onMeasureStart: () => (a = take()), onMeasureEnd: () => (b = take()) },
        });
        await Promise.all(pending);
        if (memory) memorySamples = await memory.finish();
        // Per saga: the sagas that ended inside the window the CPU was measured over.
        const cpu = a && b ? cpuReport(a, b, Math.round(result.sagas_per_s * result.window_s)) : null;
        return { result, cpu };
      } finally {
        abort.signal.removeEventListener('abort', abortListener);
        stopProgress?.();
      }
    };

    // ---- system phase
    const sockets = opts.loop === 'closed' ? opts.concurrency : Math.max(opts.concurrency, 256);
    // Several gateways: orders go to each in turn.
    const client = roundRobin((system ? system.urls : [url]).map((u) => httpClient(u, sockets)));
    say(`system phase: ${describePlan(opts)}`);
    let sys: Phase;
    try {
      sys = await measure('system', httpJob({ client, pool, mix: opts.mix, random: Math.random, runId }), plan, () =>
        client.destroy(),
      );
    } finally {
      client.destroy();
    }
    if (abort.signal.aborted) throw new Error(failure ?? 'interrupted');

    // ---- floor phase
    let floor: Phase | undefined;
    if (opts.floor && system) {
      // The same plan: closed loop at the same concurrency, or open loop at the same rate, so that
      // the two phases' latencies compare at the same offered load.
      const floorPlan: LoadPlan = plan;
      // Every replica, as the gateways dial them.
      const every = (n: ParticipantServiceName) => system!.replicas[n].map((p) => dialableAddr(p.address));
      const participants = floorParticipants(
        { order: every('order'), inventory: every('inventory'), payment: every('payment') },
        grpcSecurity({ ...process.env, DATA_DIR: system.dataDir }),
      );
      say(
        `floor phase: the same gRPC calls from this process, ${plan.loop === 'open' ? `open loop, ${plan.rate} orders/s` : `closed loop, ${opts.concurrency} in flight`}`,
      );
      try {
        floor = await measure(
          'floor ',
          floorJob({ participants, pool, mix: opts.mix, random: Math.random }),
          floorPlan,
        );
      } finally {
        participants.close();
      }
      if (abort.signal.aborted) throw new Error(failure ?? 'interrupted');
    } else if (opts.floor) {
      say('no floor with --url: the bench does not know where the participants are');
    }

    // ---- stop the system before writing, so its CPU profile (if any) is flushed
    if (system) {
      say('stopping the system');
      stopping = true;
      await system.stop();
    }
    const finishedAt = new Date();

    const facts = {
      argv,
      opts,
      db,
      participantDbs: Object.values(participantDbs),
      startedAt,
      finishedAt,
      system: sys,
      floor,
      requestsPerGateway: system
        ? Object.fromEntries(system.gateways.map((g, i) => [g.name, client.sent[i] ?? 0]))
        : null,
      logLines,
    };
    const result = resultJson(facts);
    fs.mkdirSync(path.dirname(opts.out), { recursive: true });
    fs.writeFileSync(opts.out, `${JSON.stringify(result, null, 2)}\n`);
    const svgFile = opts.out.replace(/\.json$/i, '') + '.svg';
    fs.writeFileSync(
      svgFile,
      renderSvg({
        ...chartTitles(facts, result),
        system: { series: sys.result.series, windowS: sys.result.window_s },
        floor: floor ? { series: floor.result.series, windowS: floor.result.window_s } : undefined,
      }),
    );
    stdout.write(reportText(facts, result, { json: opts.out, svg: svgFile }));
    if (memorySamples) {
      const base = path.join(path.dirname(opts.out), `memory-${path.basename(opts.out).replace(/\.json$/i, '')}`);
      fs.writeFileSync(`${base}.csv`, memoryCsv(memorySamples));
      fs.writeFileSync(
        `${base}.json`,
        `${JSON.stringify({ command: result.command, started_at: startedAt.toISOString(), compiled: opts.compiled, every: opts.memoryEvery, samples: memorySamples }, null, 2)}\n`,
      );
      stdout.write(`\nMemory (MiB):\n${memoryTable(memorySamples)}memory: ${base}.csv, ${base}.json\n`);
    }
    if (sys.result.completed === 0) exitCode = 1;
  } catch (err) {
    const interrupted = failure === undefined && abort.signal.aborted;
    const msg = failure ?? (err instanceof Error ? err.message : String(err));
    stderr.write(`bench: ${interrupted ? 'interrupted; nothing written' : msg}\n`);
    exitCode = interrupted ? 130 : 1;
  } finally {
    stopping = true;
    if (system) await system.stop();
    for (const pdb of Object.values(participantDbs)) {
      await pdb.drop().then(
        () => say(`dropped database ${pdb.name}`),
        (err: unknown) =>
          stderr.write(
            `[bench] warning: could not drop database ${pdb.name} on ${pdb.server}: ${err instanceof Error ? err.message : String(err)}\n`,
          ),
      );
    }
    if (db) {
      const name = db.name;
      await db.drop().then(
        () => say(`dropped database ${name}`),
        (err: unknown) =>
          stderr.write(
            `[bench] warning: could not drop database ${name} on ${db!.server}: ${err instanceof Error ? err.message : String(err)}\n`,
          ),
      );
    }
    if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
    compiled?.remove();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return exitCode;
}
