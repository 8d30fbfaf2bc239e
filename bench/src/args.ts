/** The bench's command line: its usage text, and argv → BenchOptions (or a UsageError). */
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Mix } from './orders.js';
import { DEFAULT_BENCH_SERVER_URL } from './postgres.js';
import { REPO_ROOT, parseGatewayCount, parseReplicaCount } from '../../src/supervisor/supervisor.js';

export const BENCH_USAGE = `Usage: npm run bench -- [options]     (node --import tsx bench/src/main.ts [options])

Places orders through POST /orders (Prefer: wait=30) and reports completed sagas/s, latency,
outcomes, errors and CPU per process; then measures the floor: the same gRPC calls straight to
the participants from this process, without the gateway and its saga log.

Target:
  --url <url>            Bench a running gateway (no floor, no process CPU: the bench cannot
                         see the participants). Default: start a fresh system on ephemeral
                         ports with a temporary data folder and 1000 products, stop it after.
  --saga-log sqlite|postgres
                         The saga log of the system it starts (default sqlite). postgres: a
                         fresh database sagas_bench_<time> on the server of SAGA_LOG_URL
                         (default ${DEFAULT_BENCH_SERVER_URL}),
                         dropped after the run.
  --gateways <n>         Gateways of the system it starts (default 1; more than one needs
                         --saga-log postgres). Orders go to them in turn; the CPU of each, and
                         their sum, are reported.
  --replicas <n>         Processes of each participant in the system it starts (default 1), all
                         dialled by every gateway; more than one puts the participants on
                         PostgreSQL (as --participants postgres). CPU is reported per replica.
  --participants sqlite|postgres
                         Where the participants keep their state (default sqlite, one file each;
                         postgres: a fresh database each, sagas_bench_<time>_<name>, on the
                         server of SAGA_LOG_URL or the default above, dropped after the run).
  --sync normal|full     SAGA_LOG_SYNC of the system it starts (default normal; SQLite only).
  --log-level L          LOG_LEVEL of the system it starts (default info, the default setting).

Load:
  --concurrency <n>      Closed loop: n orders in flight, each sent when one answers (default 64).
  --rate <r>             Open loop: r orders a second on a fixed timetable, whatever the answers;
                         latency counts from the scheduled time. The floor runs closed-loop at
                         --concurrency.
  --duration <s>         Measure for s seconds (default 10), after --warmup.
  --count <n>            Or measure exactly n orders.
  --warmup <s>           Unmeasured load first (default 3 with --duration, 0 with --count).
  --mix happy|mixed      happy (default), or ~80 % happy, 10 % declined (> $500), 10 % short
                         of stock.
  --no-floor             Skip the floor.

Output:
  --out <file>           Result JSON (default bench/results/<timestamp>-<mode>.json); an SVG
                         chart is written next to it with the same name.
  --quiet                No progress bar and no status lines (the report still goes to stdout).
  --memory               Sample each process's memory (RSS from /proc, V8 heap through a test
                         hook) at idle, every --memory-every sagas and at the end; print it and
                         write bench/results/memory-<name>.{csv,json}. Implies --no-floor, and
                         --count 1000000 unless --count or --duration is given.
  --memory-every <n>     Sagas between two samples (default 100000).
  --heap-snapshots <dir> With --memory: a heap snapshot of every process at each sample.
  --compiled             Run the system's processes from a copy of dist/ (as npm start does;
                         build first) instead of the TypeScript sources through tsx.
  --profile <dir>        Sample the CPU of the system's processes (V8 profiler) and write
                         <dir>/*.cpuprofile when they stop (node bench/profile-summary.mjs).
  -h, --help             This text.
`;

export interface BenchOptions {
  url: string | undefined;
  loop: 'closed' | 'open';
  concurrency: number;
  rate: number | undefined;
  durationS: number | undefined;
  count: number | undefined;
  warmupS: number;
  mix: Mix;
  sync: 'normal' | 'full';
  sagaLog: 'sqlite' | 'postgres';
  gateways: number;
  /** Processes of each participant. */
  replicas: number;
  /** Where the participants keep their state (postgres whenever replicas > 1). */
  participants: 'sqlite' | 'postgres';
  logLevel: string;
  floor: boolean;
  out: string;
  quiet: boolean;
  profileDir: string | undefined;
  /** --memory: sagas between two samples; undefined without --memory. */
  memoryEvery: number | undefined;
  heapSnapshotDir: string | undefined;
  compiled: boolean;
}

/** A command line the bench refuses: the entry prints it with the usage and exits 2. */
export class UsageError extends Error {}

function num(
  name: string,
  v: string | undefined,
  { integer = false, min = 0, exclusive = true } = {},
): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || (exclusive ? n <= min : n < min)) {
    throw new UsageError(
      `--${name} must be a ${integer ? 'whole ' : ''}number ${exclusive ? '>' : '>='} ${min}, got "${v}"`,
    );
  }
  return n;
}

function stamp(d: Date): string {
  return d
    .toISOString()
    .replace(/\.\d+Z$/, 'Z')
    .replace(/[-:]/g, '')
    .replace('T', '-');
}

/** Parses the command line; throws UsageError. `now` names the default output file. */
export function parseBenchArgs(argv: readonly string[], now = new Date()): BenchOptions | 'help' {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        url: { type: 'string' },
        concurrency: { type: 'string' },
        rate: { type: 'string' },
        duration: { type: 'string' },
        count: { type: 'string' },
        warmup: { type: 'string' },
        mix: { type: 'string' },
        sync: { type: 'string' },
        'saga-log': { type: 'string' },
        gateways: { type: 'string' },
        replicas: { type: 'string' },
        participants: { type: 'string' },
        'log-level': { type: 'string' },
        'no-floor': { type: 'boolean' },
        out: { type: 'string' },
        quiet: { type: 'boolean' },
        profile: { type: 'string' },
        memory: { type: 'boolean' },
        'memory-every': { type: 'string' },
        'heap-snapshots': { type: 'string' },
        compiled: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  if (values.help) return 'help';
  const str = (k: string) => values[k] as string | undefined;
  const concurrency = num('concurrency', str('concurrency'), { integer: true, min: 0 }) ?? 64;
  const rate = num('rate', str('rate'));
  let durationS = num('duration', str('duration'));
  if (durationS !== undefined && str('count') !== undefined)
    throw new UsageError('give --duration or --count, not both');
  const memory = values.memory === true;
  const memoryEveryRaw = num('memory-every', str('memory-every'), { integer: true });
  if (!memory && (memoryEveryRaw !== undefined || str('heap-snapshots') !== undefined))
    throw new UsageError('--memory-every and --heap-snapshots go with --memory');
  if (memory && str('url') !== undefined)
    throw new UsageError('--memory needs the system the bench starts: it cannot see the processes behind --url');
  const count =
    num('count', str('count'), { integer: true }) ?? (memory && durationS === undefined ? 1_000_000 : undefined);
  if (durationS === undefined && count === undefined) durationS = 10;
  const warmupS = num('warmup', str('warmup'), { min: 0, exclusive: false }) ?? (durationS !== undefined ? 3 : 0);
  const mix = str('mix') ?? 'happy';
  if (mix !== 'happy' && mix !== 'mixed') throw new UsageError(`--mix must be happy or mixed, got "${mix}"`);
  const sync = (str('sync') ?? 'normal').toLowerCase();
  if (sync !== 'normal' && sync !== 'full') throw new UsageError(`--sync must be normal or full, got "${sync}"`);
  const sagaLog = (str('saga-log') ?? 'sqlite').toLowerCase();
  if (sagaLog !== 'sqlite' && sagaLog !== 'postgres')
    throw new UsageError(`--saga-log must be sqlite or postgres, got "${sagaLog}"`);
  const gatewaysRaw = str('gateways');
  let gateways = 1;
  try {
    if (gatewaysRaw !== undefined) gateways = parseGatewayCount(gatewaysRaw);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (gateways > 1 && sagaLog !== 'postgres')
    throw new UsageError(`--gateways ${gateways} needs --saga-log postgres: the SQLite saga log is one gateway's file`);
  let replicas = 1;
  try {
    const raw = str('replicas');
    if (raw !== undefined) replicas = parseReplicaCount(raw);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const participantsRaw = str('participants')?.toLowerCase();
  if (participantsRaw !== undefined && participantsRaw !== 'sqlite' && participantsRaw !== 'postgres')
    throw new UsageError(`--participants must be sqlite or postgres, got "${participantsRaw}"`);
  if (replicas > 1 && participantsRaw === 'sqlite')
    throw new UsageError(
      `--replicas ${replicas} needs the participants on PostgreSQL: a SQLite file is one process's (leave --participants out)`,
    );
  const participants: 'sqlite' | 'postgres' = replicas > 1 ? 'postgres' : (participantsRaw ?? 'sqlite');
  const logLevel = (str('log-level') ?? 'info').toLowerCase();
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(logLevel))
    throw new UsageError(`--log-level must be a pino level, got "${logLevel}"`);
  const url = str('url');
  if (url !== undefined) {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new UsageError(`--url must be a URL like http://localhost:8080, got "${url}"`);
    }
    if (u.protocol !== 'http:') throw new UsageError(`--url must be http://, got "${url}"`);
  }
  const loop = rate !== undefined ? 'open' : 'closed';
  const target = url ? 'url' : sagaLog === 'postgres' ? 'pg' : sync;
  const mode = [
    loop === 'open' ? `open-r${rate}` : `closed-c${concurrency}`,
    target,
    !url && gateways > 1 ? `g${gateways}` : undefined,
    !url && replicas > 1 ? `r${replicas}` : undefined,
    !url && replicas === 1 && participants === 'postgres' ? 'ppg' : undefined,
    mix === 'mixed' ? 'mixed' : undefined,
  ]
    .filter(Boolean)
    .join('-');
  const out = path.resolve(str('out') ?? path.join(REPO_ROOT, 'bench', 'results', `${stamp(now)}-${mode}.json`));
  const profile = str('profile');
  return {
    url: url?.replace(/\/+$/, ''),
    loop,
    concurrency,
    rate,
    durationS,
    count,
    warmupS,
    mix,
    sync,
    sagaLog,
    gateways,
    replicas,
    participants,
    logLevel,
    floor: !values['no-floor'] && !memory,
    out,
    quiet: values.quiet === true,
    profileDir: profile ? path.resolve(profile) : undefined,
    memoryEvery: memory ? (memoryEveryRaw ?? 100_000) : undefined,
    heapSnapshotDir: str('heap-snapshots') ? path.resolve(str('heap-snapshots') as string) : undefined,
    compiled: values.compiled === true,
  };
}
