/**
 * The `sagas` command. Run it through bin/sagas.js (or `node --import tsx src/cli/main.ts`).
 *
 *   sagas start [--gateways N] [--json]  all four processes (N gateways), output streamed with a [name] tag
 *   sagas start <service> [--json]       one of them alone
 */
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { dataDir, redactPassword } from '../platform/config.js';
import { ConfigError } from '../platform/errors.js';
import { failureSummary, formatLine, formatTag, tagWidthFor, useColor } from './format.js';
import {
  MAX_GATEWAYS,
  SERVICE_NAMES,
  ServiceStartError,
  describeExit,
  everyProcess,
  gatewayName,
  isServiceName,
  parseGatewayCount,
  planGateways,
  spawnService,
  startSystem,
  type ExitStatus,
  type ManagedProcess,
  type RunningSystem,
  type ServiceName,
  type StartSystemOptions,
} from './supervisor.js';

export const USAGE = `Usage: sagas <command> [options]

Commands:
  start [--gateways N] [--json]
                             Start order, inventory, payment and the gateway as child
                             processes and stream their logs. Ctrl-C stops them all
                             (gateways first); a second Ctrl-C kills them.
  start <service> [--json]   Start one process alone: ${SERVICE_NAMES.join(' | ')}.
  bench [options]            Load-test the saga end to end and against its floor
                             (sagas bench --help; npm run bench -- [options]).
  inspect [<saga_id>]        Show sagas (--status PARKED, --limit N) or one saga's timeline,
                             read from the saga log (sagas inspect --help).
  help                       Show this text.

Options:
  --gateways N               Run N gateways (1-${MAX_GATEWAYS}, default 1) on HTTP_ADDR's port, port + 1, ...
                             (:8080, :8081, ...), sharing one PostgreSQL saga log: needs
                             SAGA_LOG_URL. Any of them answers for any order, and a dead
                             one's sagas are taken over when their leases expire.
  --json                     Print the processes' raw JSON log lines (also LOG_FORMAT=json).

Environment:
  HTTP_ADDR                  Gateway HTTP address            (default :8080)
  ORDER_SERVICE_ADDR         Order service gRPC address      (default 127.0.0.1:9090)
  PAYMENT_SERVICE_ADDR       Payment service gRPC address    (default 127.0.0.1:9091)
  INVENTORY_SERVICE_ADDR     Inventory service gRPC address  (default 127.0.0.1:9092)
                             The same variable tells a service where to listen and the
                             gateway where to dial; port 0 lets the OS pick a free port.
  DATA_DIR                   Where the databases live        (default ./data)
  SAGA_LOG_URL               PostgreSQL saga log, postgres://user:password@host:5432/db
                             (default: SQLite, DATA_DIR/saga.db); required for more than one
                             gateway
  SAGA_LOG_POOL_SIZE         PostgreSQL connections per gateway (default 10)
  SAGA_LEASE_MS              How long a gateway's claim on a running saga lasts: after this
                             long another gateway takes over a dead one's sagas (default 15000)
  SAGA_RECOVERY_INTERVAL_MS  How often leases are renewed and expired sagas looked for
                             (default lease / 6, at least 250)
  REDIS_URL                  Shared Redis                    (default redis://127.0.0.1:6379)
  LOG_LEVEL                  trace | debug | info | warn | error | fatal | silent (default info)
  LOG_FORMAT                 json to print raw JSON log lines
  NO_COLOR                   Set to disable colors
`;

export interface MainDeps {
  env?: NodeJS.ProcessEnv;
  stdout?: NodeJS.WritableStream & { isTTY?: boolean };
  stderr?: NodeJS.WritableStream;
  /** Replace the entry files (tests run fake services this way). */
  entries?: StartSystemOptions['entries'];
}

interface Out {
  /** A child's line, tagged and pretty-printed (or raw JSON). */
  child(name: string, line: string): void;
  /** A supervisor message, tagged [sagas]. */
  say(text: string): void;
  /** A loud supervisor message. */
  alarm(text: string): void;
  /** Untagged text (copy-pastable commands). */
  raw(text: string): void;
  color: boolean;
}

function makeOut(deps: MainDeps, json: boolean, untagged = false, tagWidth?: number): Out {
  const env = deps.env ?? process.env;
  const stdout = deps.stdout ?? process.stdout;
  const color = useColor(stdout, env);
  const write = (s: string) => {
    try {
      stdout.write(`${s}\n`);
    } catch {
      // stdout closed (e.g. piped into head): keep supervising anyway
    }
  };
  const red = (s: string) => (color ? `\u001b[1;31m${s}\u001b[0m` : s);
  return {
    color,
    // One process in JSON mode (a container) prints its lines as they are, for a log collector.
    child: (name, line) => write(untagged ? line : formatLine(name, line, { color, json, tagWidth })),
    say: (text) => write(text.split('\n').map((l) => formatTag('sagas', { color, tagWidth }) + l).join('\n')),
    alarm: (text) => write(text.split('\n').map((l) => formatTag('sagas', { color, tagWidth }) + red(l)).join('\n')),
    raw: write,
  };
}

/** `http://0.0.0.0:8080` → `http://localhost:8080`: what to paste into a terminal. */
export function friendlyUrl(address: string): string {
  const m = /^(https?:\/\/)?(\[[^\]]*\]|[^:/]*):(\d+)/.exec(address);
  if (!m) return address;
  const host = m[2] as string;
  const local = ['', '0.0.0.0', '[::]', '127.0.0.1', '[::1]', 'localhost'].includes(host);
  return `http://${local ? 'localhost' : host}:${m[3]}`;
}

export function curlExamples(baseUrl: string): string[] {
  const body = JSON.stringify({
    customer_id: 'cust_123',
    items: [
      { product_id: 'prod_1', quantity: 2, price: 50.0 },
      { product_id: 'prod_2', quantity: 1, price: 30.0 },
    ],
  }).replace(/"price":(\d+)([,}])/g, '"price":$1.00$2');
  return [
    `curl -s -X POST ${baseUrl}/orders -H 'Content-Type: application/json' -H 'Prefer: wait=5' -d '${body}'`,
    `curl -s ${baseUrl}/products`,
  ];
}

function exitCodeOf(s: ExitStatus): number {
  if (s.code !== null) return s.code;
  const n = s.signal ? (osConstants.signals as Record<string, number | undefined>)[s.signal] : undefined;
  return n ? 128 + n : 1;
}

function reportStartFailure(out: Out, err: unknown): void {
  if (err instanceof ServiceStartError) {
    out.alarm(`✖ ${err.service} failed to start: it ${err.reason}`);
    const summary = failureSummary(err.output);
    if (summary.length) {
      out.alarm(`  ${err.service} said:`);
      for (const l of summary) out.alarm(`    ${l}`);
    }
  } else {
    out.alarm(`✖ startup failed: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function reportUnexpectedExit(out: Out, p: ManagedProcess, s: ExitStatus): void {
  out.alarm(`✖ ${p.name} (pid ${p.pid}) ${describeExit(s)} unexpectedly. Nothing is restarted.`);
  const last = p.output(20);
  if (last.length) {
    out.alarm(`  last ${last.length} lines of ${p.name}:`);
    for (const l of last) out.child(p.name, l);
  }
}

type Stage = 'starting' | 'running' | 'stopping';

/**
 * Ctrl-C / SIGTERM handling: the first signal calls `graceful`, a second calls `force`.
 * Returns a function that removes the handlers.
 */
function onSignals(graceful: (sig: NodeJS.Signals) => void, force: (sig: NodeJS.Signals) => void): () => void {
  let count = 0;
  const handler = (sig: NodeJS.Signals) => (++count === 1 ? graceful(sig) : force(sig));
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}

async function startAll(out: Out, env: NodeJS.ProcessEnv, deps: MainDeps, gateways: number): Promise<number> {
  let stage: Stage = 'starting';
  let forced = false;
  let system: RunningSystem | undefined;
  const startup = new AbortController();
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));
  const finish = (code: number) => resolveDone(forced ? 130 : code);

  const services = SERVICE_NAMES.filter((n) => n !== 'gateway');
  const theGateways = gateways === 1 ? 'the gateway' : `the ${gateways} gateways`;
  const stopAll = async (code: number) => {
    if (system) {
      await system.stop();
      const statuses = everyProcess(system).map((p) => `${p.name} ${describeExit(p.exitStatus ?? { code: null, signal: null })}`);
      out.say(`stopped: ${statuses.join(', ')}`);
    }
    finish(code);
  };
  const removeSignals = onSignals(
    (sig) => {
      if (stage === 'stopping') return;
      if (stage === 'starting') {
        out.say(`${sig}: cancelling startup (again to kill)`);
        stage = 'stopping';
        startup.abort();
        return;
      }
      stage = 'stopping';
      out.say(`${sig}: stopping ${theGateways}, then the services (again to kill)`);
      void stopAll(0);
    },
    (sig) => {
      forced = true;
      out.alarm(`${sig} again: killing all processes`);
      // Children still starting have no handle here; our exit closes their IPC channel and they
      // shut down on it (lifecycle.onShutdown).
      const procs = system ? everyProcess(system) : [];
      void Promise.all(procs.map((p) => p.kill())).then(() => finish(130));
    },
  );

  const sagaLog = env.SAGA_LOG_URL ? redactPassword(env.SAGA_LOG_URL) : undefined;
  out.say(`starting ${services.join(', ')}, then ${theGateways} (DATA_DIR=${dataDir(env)}${sagaLog ? `, saga log ${sagaLog}` : ''})`);
  startSystem({
    dataDir: dataDir(env),
    env,
    ports: 'default',
    gateways,
    onLine: (name, line) => out.child(name, line),
    entries: deps.entries,
    signal: startup.signal,
  }).then(
    (sys) => {
      system = sys;
      if (stage !== 'starting') {
        void stopAll(0); // a signal arrived just as the last process became ready
        return;
      }
      stage = 'running';
      const procs = everyProcess(sys);
      const width = Math.max(...procs.map((p) => p.name.length));
      const urls = sys.gateways.map((g) => friendlyUrl(g.address));
      const url = urls[0] as string;
      out.say('all processes are up:');
      for (const p of procs) out.say(`  ${p.name.padEnd(width)}  ${sys.gateways.includes(p) ? friendlyUrl(p.address) : p.address}  (pid ${p.pid})`);
      if (urls.length > 1) out.say(`${urls.length} gateways share the saga log${sagaLog ? ` ${sagaLog}` : ''}; any of them answers for any order: ${urls.join(' ')}`);
      out.say('try:');
      for (const c of curlExamples(url)) out.raw(`  ${c}`);
      out.say('Ctrl-C stops everything.');
      for (const p of procs) {
        void p.exited.then((s) => {
          if (stage !== 'running') return;
          stage = 'stopping';
          reportUnexpectedExit(out, p, s);
          out.alarm('stopping the other processes');
          void stopAll(1);
        });
      }
    },
    (err: unknown) => {
      if (startup.signal.aborted) {
        out.say('startup cancelled; all processes stopped');
        finish(0);
      } else {
        stage = 'stopping';
        reportStartFailure(out, err);
        out.alarm('all processes stopped');
        finish(1);
      }
    },
  );
  try {
    return await done;
  } finally {
    removeSignals();
  }
}

async function startOne(name: ServiceName, out: Out, env: NodeJS.ProcessEnv, deps: MainDeps): Promise<number> {
  let stage: Stage = 'starting';
  let forced = false;
  let proc: ManagedProcess | undefined;
  const startup = new AbortController();
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));
  const finish = (code: number) => resolveDone(forced ? 130 : code);

  const removeSignals = onSignals(
    (sig) => {
      if (stage === 'stopping') return;
      out.say(`${sig}: stopping ${name} (again to kill)`);
      if (stage === 'starting') startup.abort();
      else void proc?.stop('SIGTERM');
      stage = 'stopping';
    },
    (sig) => {
      forced = true;
      out.alarm(`${sig} again: killing ${name}`);
      if (proc) void proc.kill().then(() => finish(130));
      else finish(130);
    },
  );

  spawnService(name, {
    env,
    onLine: (n, line) => out.child(n, line),
    entry: deps.entries?.[name]?.entry,
    args: deps.entries?.[name]?.args,
    signal: startup.signal,
  }).then(
    (p) => {
      proc = p;
      if (stage === 'starting') {
        stage = 'running';
        const where = name === 'gateway' ? friendlyUrl(p.address) : p.address;
        out.say(`${name} is up at ${where} (pid ${p.pid}). Ctrl-C stops it.`);
        if (name === 'gateway') {
          out.say('try:');
          for (const c of curlExamples(where)) out.raw(`  ${c}`);
        }
      } else {
        void p.stop('SIGTERM'); // a signal arrived just as it became ready
      }
      void p.exited.then((s) => {
        if (stage === 'running') {
          stage = 'stopping';
          reportUnexpectedExit(out, p, s);
          finish(exitCodeOf(s) || 1);
        } else {
          out.say(`${name} ${describeExit(s)}`);
          finish(exitCodeOf(s));
        }
      });
    },
    (err: unknown) => {
      if (err instanceof ServiceStartError && err.aborted) {
        out.say(`${name} stopped before it was ready`);
        finish(0);
        return;
      }
      stage = 'stopping';
      reportStartFailure(out, err);
      finish(err instanceof ServiceStartError && err.status ? exitCodeOf(err.status) || 1 : 1);
    },
  );
  try {
    return await done;
  } finally {
    removeSignals();
  }
}

/** A command line `sagas start` cannot run: exit 2 with the message. */
export class UsageError extends Error {}

/** Flags of `start` that take a value (`--gateways 3` or `--gateways=3`). */
const START_VALUE_FLAGS = new Set(['--gateways']);

/** Where the command is: the first argument that is neither a flag nor a flag's value (-1: none). */
function commandIndex(argv: readonly string[]): number {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (START_VALUE_FLAGS.has(a)) i++;
    else if (!a.startsWith('-')) return i;
  }
  return -1;
}

export interface StartArgs {
  /** The service to start alone, or undefined for the whole system. */
  target: ServiceName | undefined;
  json: boolean;
  /** undefined when not given (then 1). */
  gateways: number | undefined;
  help: boolean;
}

/** `sagas start`'s arguments (argv without the word `start`). Throws UsageError. */
export function parseStartArgs(argv: readonly string[]): StartArgs {
  const rest: string[] = [];
  const unexpected: string[] = [];
  let json = false;
  let help = false;
  let gateways: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--gateways' || a.startsWith('--gateways=')) {
      const v = a === '--gateways' ? argv[++i] : a.slice('--gateways='.length);
      if (v === undefined) throw new UsageError(`--gateways needs a number of gateways, from 1 to ${MAX_GATEWAYS}`);
      try {
        gateways = parseGatewayCount(v);
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
    } else if (a === '--json') json = true;
    else if (a === '--help' || a === '-h') help = true;
    else if (a.startsWith('-')) unexpected.push(a);
    else rest.push(a);
  }
  if (unexpected.length || rest.length > 1) throw new UsageError(`unexpected argument ${[...unexpected, ...rest.slice(1)].map((a) => `"${a}"`).join(', ')}`);
  const target = rest[0];
  if (target !== undefined && !isServiceName(target)) throw new UsageError(`unknown service "${target}" (expected one of ${SERVICE_NAMES.join(', ')})`);
  if (target !== undefined && gateways !== undefined) throw new UsageError(`--gateways starts the whole system; it does not go with "start ${target}"`);
  return { target: target as ServiceName | undefined, json, gateways, help };
}

/** Runs the command; resolves with the exit code. */
export async function main(argv: readonly string[], deps: MainDeps = {}): Promise<number> {
  const env = deps.env ?? process.env;
  const stdout = deps.stdout ?? process.stdout;
  const stderr = deps.stderr ?? process.stderr;
  const flags = argv.filter((a) => a.startsWith('-'));
  const at = commandIndex(argv);
  const command = at < 0 ? undefined : argv[at];

  if (command === 'help' || (command === undefined && flags.some((f) => f === '--help' || f === '-h'))) {
    stdout.write(USAGE);
    return 0;
  }
  if (command === 'bench') {
    const { runBench } = await import('./bench.js');
    return runBench(argv.slice(at + 1), { stdout, stderr, env });
  }
  if (command === 'inspect') {
    const { runInspect } = await import('./commands/inspect.js');
    return runInspect(argv.slice(at + 1), { stdout, stderr, env });
  }
  if (command !== 'start') {
    if (command !== undefined) stderr.write(`sagas: unknown command "${command}"\n\n`);
    stderr.write(USAGE);
    return 2;
  }

  let start: StartArgs;
  try {
    start = parseStartArgs([...argv.slice(0, at), ...argv.slice(at + 1)]);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    stderr.write(`sagas start: ${err.message}\n\n${USAGE}`);
    return 2;
  }
  if (start.help) {
    stdout.write(USAGE);
    return 0;
  }
  const { target } = start;
  const gateways = start.gateways ?? 1;
  if (target === undefined) {
    // Before anything starts: several gateways need a shared (PostgreSQL) saga log.
    try {
      planGateways(gateways, env);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      stderr.write(`sagas start: ${err.message}\n`);
      return 2;
    }
  }

  const json = start.json || (env.LOG_FORMAT ?? '').toLowerCase() === 'json';
  const names = target === undefined ? [...SERVICE_NAMES.filter((n) => n !== 'gateway'), ...Array.from({ length: gateways }, (_, i) => gatewayName(i, gateways))] : [target];
  const out = makeOut({ ...deps, stdout }, json, json && target !== undefined, tagWidthFor(names));
  return target === undefined ? startAll(out, env, deps, gateways) : startOne(target, out, env, deps);
}

function isEntrypoint(): boolean {
  const script = process.argv[1];
  return script !== undefined && path.resolve(script) === fileURLToPath(import.meta.url);
}

if (isEntrypoint()) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`sagas: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
