/**
 * `sagas start`: runs the system's processes as children (src/supervisor/supervisor.ts), streams their
 * output tagged with their names, and stops them in order on Ctrl-C. The whole system and one
 * process alone are the same loop (`supervise`) over a list of processes.
 */
import { constants as osConstants } from 'node:os';
import { dataDir, redactPassword } from '../../platform/config/config.js';
import { EXIT, UsageError, parseCommandArgs, type Command, type CommandIo, type ExitCode } from '../command.js';
import { failureSummary, formatLine, formatTag, tagWidthFor, useColor } from '../format.js';
import {
  DEFAULT_PARTICIPANTS_SERVER,
  ParticipantDatabaseError,
  prepareParticipantDatabases,
} from '../../supervisor/participant-databases.js';
import {
  DB_URL_VARS,
  MAX_GATEWAYS,
  MAX_REPLICAS,
  PARTICIPANT_NAMES,
  SERVICE_NAMES,
  ServiceStartError,
  describeExit,
  everyProcess,
  gatewayName,
  isServiceName,
  parseGatewayCount,
  parseReplicaCount,
  planAdmins,
  planGateways,
  planReplicas,
  replicaName,
  spawnService,
  startSystem,
  type ExitStatus,
  type ManagedProcess,
  type RunningSystem,
  type ServiceName,
  type StartSystemOptions,
} from '../../supervisor/supervisor.js';

/** Exit code after a second Ctrl-C (128 + SIGINT, as a shell reports a job it interrupted). */
const KILLED = 130;

export const START_USAGE = `Usage: sagas start [--gateways N] [--replicas N [--participants-db URL]] [--json]
       sagas start <service> [--json]

Starts order, inventory and payment, then the gateway, as child processes and streams their logs,
each line tagged with its process's name. Ctrl-C stops them all (gateways first); a second
Ctrl-C kills them. Nothing is restarted: when a process dies the others are stopped (a replica
of a participant that has others running is only reported: the gateways call those).
sagas start <service> runs one process alone: ${SERVICE_NAMES.join(' | ')}.

Options:
  --gateways N               Run N gateways (1-${MAX_GATEWAYS}, default 1) on HTTP_ADDR's port, port + 1, ...
                             (:8080, :8081, ...), sharing one PostgreSQL saga log: needs
                             SAGA_LOG_URL. Any of them answers for any order, and a dead
                             one's sagas are taken over when their leases expire.
  --replicas N               Run N processes of each participant (1-${MAX_REPLICAS}, default 1), each on
                             its own port (9090, 9093, ... for order), sharing the participant's
                             PostgreSQL database; the gateways spread calls over them and move off
                             a dead one at once. The databases: ORDER_DB_URL, INVENTORY_DB_URL,
                             PAYMENT_DB_URL when set, else sagas_order, sagas_inventory and
                             sagas_payment on --participants-db (made if missing).
  --participants-db URL      The PostgreSQL server of the participants' databases
                             (default ${DEFAULT_PARTICIPANTS_SERVER.replace(/\/postgres$/, '')});
                             with --replicas 1, the participants on PostgreSQL all the same.
  --json                     Print the processes' raw JSON log lines (also LOG_FORMAT=json);
                             with <service>, untagged, as a log collector wants them.
  -h, --help                 Show this text.

Exit codes:
  0                          Stopped by Ctrl-C (or SIGTERM), or startup cancelled by it.
  1                          A process died or could not start; the others were stopped. Or,
                             with --replicas, no PostgreSQL for the participants' databases.
  2                          A wrong command line or configuration; nothing was started.
  ${KILLED}                        A second Ctrl-C killed the processes.
  sagas start <service> exits with its process's own exit code (128 + n if signal n killed
  it; 1 if it died with code 0 or could not be started).

Environment:
  HTTP_ADDR                  Gateway HTTP address            (default :8080)
  ADMIN_ADDR                 Gateway admin listener (console, saga list, operator actions)
                             (default 127.0.0.1:8081; off disables it); with --gateways N,
                             its port + i, after the HTTP ports when the two would meet
  ADMIN_TOKENS               name:role:token,... (role viewer or operator); unset: the admin
                             listener serves loopback clients only
  ORDER_SERVICE_ADDR         Order service gRPC address      (default 127.0.0.1:9090)
  PAYMENT_SERVICE_ADDR       Payment service gRPC address    (default 127.0.0.1:9091)
  INVENTORY_SERVICE_ADDR     Inventory service gRPC address  (default 127.0.0.1:9092)
                             The same variable tells a service where to listen and the
                             gateway where to dial; port 0 lets the OS pick a free port.
                             A gateway started alone takes several, host:port,host:port
                             (one per replica); with --replicas N, sagas start gives them.
  ORDER_DB_URL, INVENTORY_DB_URL, PAYMENT_DB_URL
                             A participant's PostgreSQL database (default: SQLite under
                             DATA_DIR); required for more than one replica
  DATA_DIR                   Where the databases live        (default ./data)
  SAGA_LOG_URL               PostgreSQL saga log, postgres://user:password@host:5432/db
                             (default: SQLite, DATA_DIR/saga.db); required for more than one
                             gateway
  SAGA_LOG_POOL_SIZE         PostgreSQL connections per gateway (default 10)
  SAGA_LOG_TIMEOUT_MS        How long a gateway waits for the PostgreSQL log: to connect, and
                             for a statement's answer, before it gives up on the statement and
                             its connection (default 10000)
  SAGA_LEASE_MS              How long a gateway's claim on a running saga lasts: after this
                             long another gateway takes over a dead one's sagas (default 15000)
  SAGA_RECOVERY_INTERVAL_MS  How often leases are renewed and expired sagas looked for
                             (default lease / 6, at least 250)
  REDIS_URL                  Shared Redis                    (default redis://127.0.0.1:6379)
  LOG_LEVEL                  trace | debug | info | warn | error | fatal | silent (default info)
  LOG_FORMAT                 json to print raw JSON log lines
  NO_COLOR                   Set to disable colors
`;

export interface StartIo extends CommandIo {
  /** Replace the entry files (tests run fake services this way). */
  entries?: StartSystemOptions['entries'];
}

export interface StartArgs {
  /** The service to start alone, or undefined for the whole system. */
  target: ServiceName | undefined;
  json: boolean;
  /** undefined when not given (then 1). */
  gateways: number | undefined;
  /** Absent when not given (then 1). */
  replicas?: number;
  /** --participants-db: the server of the participants' databases; absent when not given. */
  participantsDb?: string;
}

/** `sagas start`'s arguments (argv without the word `start`). Throws UsageError. */
export function parseStartArgs(argv: readonly string[]): StartArgs {
  const { values, positionals } = parseCommandArgs(
    argv,
    {
      allowPositionals: true,
      options: {
        gateways: { type: 'string' },
        replicas: { type: 'string' },
        'participants-db': { type: 'string' },
        json: { type: 'boolean' },
      },
    },
    {
      gateways: `a number of gateways, from 1 to ${MAX_GATEWAYS}`,
      replicas: `a number of replicas of each participant, from 1 to ${MAX_REPLICAS}`,
      'participants-db': "a postgres:// URL of the server for the participants' databases",
    },
  );
  if (positionals.length > 1)
    throw new UsageError(
      `unexpected argument ${positionals
        .slice(1)
        .map((a) => `"${a}"`)
        .join(', ')}`,
    );
  let gateways: number | undefined;
  if (values.gateways !== undefined) {
    try {
      gateways = parseGatewayCount(values.gateways);
    } catch (err) {
      if (!(err instanceof RangeError)) throw err;
      throw new UsageError(err.message);
    }
  }
  let replicas: number | undefined;
  if (values.replicas !== undefined) {
    try {
      replicas = parseReplicaCount(values.replicas);
    } catch (err) {
      if (!(err instanceof RangeError)) throw err;
      throw new UsageError(err.message);
    }
  }
  const participantsDb = values['participants-db'];
  if (participantsDb !== undefined && !/^postgres(ql)?:\/\/[^/]/i.test(participantsDb.trim()))
    throw new UsageError(
      `--participants-db must be a postgres://user[:password]@host[:port] URL, got "${redactPassword(participantsDb)}"`,
    );
  const target = positionals[0];
  if (target !== undefined && !isServiceName(target))
    throw new UsageError(`unknown service "${target}" (expected one of ${SERVICE_NAMES.join(', ')})`);
  for (const [flag, given] of [
    ['--gateways', gateways],
    ['--replicas', replicas],
    ['--participants-db', participantsDb],
  ] as const) {
    if (target !== undefined && given !== undefined)
      throw new UsageError(`${flag} starts the whole system; it does not go with "start ${target}"`);
  }
  return {
    target,
    json: values.json ?? false,
    gateways,
    ...(replicas === undefined ? {} : { replicas }),
    ...(participantsDb === undefined ? {} : { participantsDb: participantsDb.trim() }),
  };
}

/**
 * The environment the system runs with: `io.env`, and with several replicas (or
 * --participants-db) each participant's database URL. Resolves undefined after saying why on
 * stderr when the server cannot be reached or would not make them.
 */
async function withParticipantDatabases(
  io: CommandIo,
  replicas: number,
  participantsDb: string | undefined,
): Promise<{ env: NodeJS.ProcessEnv; note: string | undefined } | undefined> {
  if (replicas === 1 && participantsDb === undefined) return { env: io.env, note: undefined };
  const server = participantsDb ?? DEFAULT_PARTICIPANTS_SERVER;
  try {
    const dbs = await prepareParticipantDatabases(server, io.env);
    const names = PARTICIPANT_NAMES.map((n) => {
      const url = dbs.env[DB_URL_VARS[n]] as string;
      return dbs.fromEnv.includes(n)
        ? `${n} ${redactPassword(url)} (${DB_URL_VARS[n]})`
        : `${n} ${new URL(url).pathname.slice(1)}`;
    });
    const made = dbs.created.length ? `; made ${dbs.created.join(', ')}` : '';
    const where = dbs.fromEnv.length === PARTICIPANT_NAMES.length ? '' : ` on ${redactPassword(server)}`;
    return {
      env: { ...io.env, ...dbs.env },
      note: `participants on PostgreSQL, ${replicas} ${replicas === 1 ? 'replica' : 'replicas'} each: ${names.join(', ')}${where}${made}`,
    };
  } catch (err) {
    if (!(err instanceof ParticipantDatabaseError)) throw err;
    io.stderr.write(`sagas start: --replicas ${replicas}: ${err.message}\n`);
    return undefined;
  }
}

export const startCommand: Command<StartIo> = {
  name: 'start',
  summary: 'Start the services and the gateway(s), or one process alone, and stream their logs',
  usage: START_USAGE,
  async run(argv, io) {
    const { target, json: jsonFlag, gateways = 1, replicas = 1, participantsDb } = parseStartArgs(argv);
    // Before anything starts: several gateways need a shared (PostgreSQL) saga log, several
    // replicas a shared database per participant. A ConfigError is the router's exit 2.
    let systemIo: StartIo = io;
    let note: string | undefined;
    if (target === undefined) {
      planGateways(gateways, io.env);
      planAdmins(gateways, io.env);
      const prepared = await withParticipantDatabases(io, replicas, participantsDb);
      if (!prepared) return EXIT.failure;
      systemIo = { ...io, env: prepared.env };
      note = prepared.note;
      planReplicas(replicas, systemIo.env);
    }
    const json = jsonFlag || (io.env.LOG_FORMAT ?? '').toLowerCase() === 'json';
    const plan = target === undefined ? systemPlan(systemIo, gateways, replicas, note) : alonePlan(target, io);
    // One process in JSON mode (a container) prints its lines as they are, for a log collector.
    const out = makeOut(io, json, json && target !== undefined, tagWidthFor(plan.names));
    return supervise(plan, out);
  },
};

interface Out {
  /** A child's line, tagged and pretty-printed (or raw JSON). */
  child(name: string, line: string): void;
  /** A supervisor message, tagged [sagas]. */
  say(text: string): void;
  /** A loud supervisor message. */
  alarm(text: string): void;
  /** Untagged text (copy-pastable commands). */
  raw(text: string): void;
}

function makeOut(io: CommandIo, json: boolean, untagged: boolean, tagWidth: number): Out {
  const color = useColor(io.stdout, io.env);
  const write = (s: string) => {
    try {
      io.stdout.write(`${s}\n`);
    } catch {
      // stdout closed (e.g. piped into head): keep supervising anyway
    }
  };
  const red = (s: string) => (color ? `\u001b[1;31m${s}\u001b[0m` : s);
  const tagged = (text: string, paint: (l: string) => string) =>
    write(
      text
        .split('\n')
        .map((l) => formatTag('sagas', { color, tagWidth }) + paint(l))
        .join('\n'),
    );
  return {
    child: (name, line) => write(untagged ? line : formatLine(name, line, { color, json, tagWidth })),
    say: (text) => tagged(text, (l) => l),
    alarm: (text) => tagged(text, red),
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

/** A process's exit as a shell reports it: its code, or 128 + the signal's number. */
function exitCodeOf(s: ExitStatus): number {
  if (s.code !== null) return s.code;
  const n = s.signal ? (osConstants.signals as Record<string, number | undefined>)[s.signal] : undefined;
  return n ? 128 + n : EXIT.failure;
}

/** Processes that are all up. */
interface Running {
  readonly procs: readonly ManagedProcess[];
  /** Stops them in their order (gateways first); never rejects. */
  stop(): Promise<void>;
}

/** What `supervise` runs: the list of processes, how to start and stop them, what to tell. */
interface Plan<R extends Running = Running> {
  /** Every process's name, known before anything starts. A list of one passes its exit code through. */
  names: readonly string[];
  /** "all processes" or the one process's name, for the messages. */
  all: string;
  /** What a first Ctrl-C stops, in order: "the gateway, then the services". */
  stopping: string;
  /** Said before starting, if anything. */
  starting?: string;
  /** Starts them all; aborting stops what was started and rejects. Rejects on the first failure. */
  start(signal: AbortSignal, out: Out): Promise<R>;
  /** The banner once everything is up. */
  announce(running: R, out: Out): void;
  /**
   * Whether the system goes on without `gone` (a replica whose participant still has others
   * running): the names of those others, or undefined when everything must stop.
   */
  servedWithout?(running: R, gone: ManagedProcess): string | undefined;
}

function systemPlan(
  io: StartIo,
  gateways: number,
  replicas: number,
  /** Where the participants' databases are, when on PostgreSQL. */
  databases: string | undefined,
): Plan<Running & { system: RunningSystem }> {
  const services = PARTICIPANT_NAMES;
  const theGateways = gateways === 1 ? 'the gateway' : `the ${gateways} gateways`;
  const sagaLog = io.env.SAGA_LOG_URL ? redactPassword(io.env.SAGA_LOG_URL) : undefined;
  const theServices = replicas === 1 ? services.join(', ') : `${replicas} each of ${services.join(', ')}`;
  return {
    names: [
      ...services.flatMap((n) => Array.from({ length: replicas }, (_, i) => replicaName(n, i, replicas))),
      ...Array.from({ length: gateways }, (_, i) => gatewayName(i, gateways)),
    ],
    all: 'all processes',
    stopping: `${theGateways}, then the services`,
    starting:
      `starting ${theServices}, then ${theGateways} (DATA_DIR=${dataDir(io.env)}${sagaLog ? `, saga log ${sagaLog}` : ''})` +
      (databases ? `\n${databases}` : ''),
    async start(signal, out) {
      const system = await startSystem({
        dataDir: dataDir(io.env),
        env: io.env,
        ports: 'default',
        gateways,
        replicas,
        onLine: (name, line) => out.child(name, line),
        entries: io.entries,
        signal,
      });
      return { system, procs: everyProcess(system), stop: () => system.stop() };
    },
    announce({ system, procs }, out) {
      const width = Math.max(...procs.map((p) => p.name.length));
      const urls = system.gateways.map((g) => friendlyUrl(g.address));
      out.say('all processes are up:');
      for (const p of procs)
        out.say(
          `  ${p.name.padEnd(width)}  ${system.gateways.includes(p) ? friendlyUrl(p.address) : p.address}  (pid ${p.pid})`,
        );
      if (urls.length > 1)
        out.say(
          `${urls.length} gateways share the saga log${sagaLog ? ` ${sagaLog}` : ''}; any of them answers for any order: ${urls.join(' ')}`,
        );
      if (replicas > 1)
        out.say(
          `${replicas} replicas of each participant share its database; the gateway${gateways > 1 ? 's spread' : ' spreads'} calls over them and move${gateways > 1 ? '' : 's'} off one that dies (GET /readyz counts those up)`,
        );
      out.say('try:');
      for (const c of curlExamples(urls[0] as string)) out.raw(`  ${c}`);
      out.say(`the API, documented: ${urls[0] as string}/docs (OpenAPI: ${urls[0] as string}/openapi.json)`);
      const admins = system.adminUrls.filter((u): u is string => u !== undefined).map(friendlyUrl);
      if (admins.length)
        out.say(
          `the console and admin API (operators only): ${admins.join(' ')}${admins.length > 1 ? ' (one per gateway)' : ''}; sagas list|show|retry|compensate|resolve use it (SAGAS_ADMIN_URL)`,
        );
      out.say('Ctrl-C stops everything.');
    },
    servedWithout({ system }, gone) {
      // A replica is one of several on purpose: the gateways already call the others.
      const group = PARTICIPANT_NAMES.map((n) => system.replicas[n]).find((list) => list.includes(gone));
      const left = (group ?? []).filter((p) => p !== gone && p.running);
      return left.length ? left.map((p) => p.name).join(', ') : undefined;
    },
  };
}

function alonePlan(name: ServiceName, io: StartIo): Plan {
  return {
    names: [name],
    all: name,
    stopping: name,
    async start(signal, out) {
      const p = await spawnService(name, {
        env: io.env,
        onLine: (n, line) => out.child(n, line),
        entry: io.entries?.[name]?.entry,
        args: io.entries?.[name]?.args,
        signal,
      });
      return { procs: [p], stop: () => p.stop('SIGTERM').then(() => undefined) };
    },
    announce({ procs: [p] }, out) {
      if (!p) return;
      const where = name === 'gateway' ? friendlyUrl(p.address) : p.address;
      out.say(`${name} is up at ${where} (pid ${p.pid}). Ctrl-C stops it.`);
      if (p.adminAddress) out.say(`the console and admin API (operators only): ${friendlyUrl(p.adminAddress)}`);
      if (name === 'gateway') {
        out.say('try:');
        for (const c of curlExamples(where)) out.raw(`  ${c}`);
      }
    },
  };
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

type Stage = 'starting' | 'running' | 'stopping';

/**
 * Starts the plan's processes, watches them, and stops them all on a signal or when one dies.
 * Resolves with the exit code: 0 when stopped on request, 1 when one failed, 130 after a second
 * signal; a list of one process instead passes that process's own code through (0 → 1 when it
 * died unasked), as a container's entry point should.
 */
async function supervise<R extends Running>(plan: Plan<R>, out: Out): Promise<ExitCode> {
  const alone = plan.names.length === 1;
  let stage: Stage = 'starting';
  let forced = false;
  let running: R | undefined;
  const startup = new AbortController();
  let resolveDone!: (code: ExitCode) => void;
  const done = new Promise<ExitCode>((r) => (resolveDone = r));
  const finish = (code: ExitCode) => resolveDone(forced ? KILLED : code);
  const codeFor = (failed: boolean, status: ExitStatus | undefined): ExitCode => {
    const fallback = failed ? EXIT.failure : EXIT.ok;
    return alone && status ? exitCodeOf(status) || fallback : fallback;
  };

  /** Stops every process (those already gone return at once) and finishes. */
  const stopAll = async (failed: boolean, status?: ExitStatus) => {
    if (running) {
      await running.stop();
      out.say(
        `stopped: ${running.procs.map((p) => `${p.name} ${describeExit(p.exitStatus ?? { code: null, signal: null })}`).join(', ')}`,
      );
    }
    finish(codeFor(failed, status ?? running?.procs[0]?.exitStatus));
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
      out.say(`${sig}: stopping ${plan.stopping} (again to kill)`);
      void stopAll(false);
    },
    (sig) => {
      forced = true;
      out.alarm(`${sig} again: killing ${plan.all}`);
      // Children still starting have no handle here; our exit closes their IPC channel and they
      // shut down on it (lifecycle.onShutdown).
      void Promise.all((running?.procs ?? []).map((p) => p.kill())).then(() => finish(KILLED));
    },
  );

  if (plan.starting) out.say(plan.starting);
  plan.start(startup.signal, out).then(
    (r) => {
      running = r;
      if (stage !== 'starting') {
        void stopAll(false); // a signal arrived just as the last process became ready
        return;
      }
      stage = 'running';
      plan.announce(r, out);
      for (const p of r.procs) {
        void p.exited.then((s) => {
          if (stage !== 'running') return;
          const others = plan.servedWithout?.(r, p);
          if (others) {
            out.alarm(
              `✖ ${p.name} (pid ${p.pid}) ${describeExit(s)} unexpectedly; ${others} still serve${others.includes(',') ? '' : 's'}. Nothing is restarted.`,
            );
            return;
          }
          stage = 'stopping';
          reportUnexpectedExit(out, p, s);
          if (!alone) out.alarm('stopping the other processes');
          void stopAll(true, s);
        });
      }
    },
    (err: unknown) => {
      if (startup.signal.aborted) {
        out.say(`startup cancelled; ${plan.all} stopped`);
        finish(EXIT.ok);
        return;
      }
      stage = 'stopping';
      reportStartFailure(out, err);
      if (!alone) out.alarm('all processes stopped'); // startSystem stopped those that had started
      finish(codeFor(true, err instanceof ServiceStartError ? err.status : undefined));
    },
  );
  try {
    return await done;
  } finally {
    removeSignals();
  }
}
