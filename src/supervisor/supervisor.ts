/**
 * Starts the system's processes as children and watches them. Used by `sagas start` and by tests
 * that need real processes (integration and failure tests: kill -9 one, restart it, check).
 *
 * A child is "up" when it sends the `ready` IPC message of `notifyReady` (src/platform/process/lifecycle.ts)
 * with the address it really listens on, so port 0 (OS-chosen) works everywhere.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import {
  addr,
  DEFAULT_ADDRS,
  formatAddr,
  grpcSecurity,
  isPostgresUrl,
  redactPassword,
  type AddrVar,
} from '../platform/config/config.js';
import { hostPortOf, hostPortOrOff, readVariables } from '../platform/config/config-schema.js';
import { ConfigError } from '../platform/errors.js';
import { issueIdentities, MIGRATED_CA_FOLDER } from '../platform/grpc/tls.js';
import { METRICS_PORTS } from '../services/shared/config.js';

export const SERVICE_NAMES = ['order', 'inventory', 'payment', 'gateway'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

export function isServiceName(s: string): s is ServiceName {
  return (SERVICE_NAMES as readonly string[]).includes(s);
}

/** The participants: the services that may run as several replicas. */
export const PARTICIPANT_NAMES = ['order', 'inventory', 'payment'] as const;
export type ParticipantServiceName = (typeof PARTICIPANT_NAMES)[number];

/** Where each participant keeps its state when not in its SQLite file: replicas share it. */
export const DB_URL_VARS: Readonly<Record<ParticipantServiceName, string>> = {
  order: 'ORDER_DB_URL',
  inventory: 'INVENTORY_DB_URL',
  payment: 'PAYMENT_DB_URL',
};

/** The repository root (this file is <root>/src/supervisor/supervisor.ts, or compiled <root>/dist/cli/supervisor.js). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Whether this module runs compiled (dist/, `npm start` and `sagas`) or as TypeScript through tsx
 * (the tests, the bench): the services it starts run the same way.
 */
const COMPILED = import.meta.url.endsWith('.js');

/** A module of the product, beside this one: dist/…/x.js when compiled, src/…/x.ts otherwise. */
const productModule = (rel: string) => fileURLToPath(new URL(`../${rel}.${COMPILED ? 'js' : 'ts'}`, import.meta.url));

/** Each service's entry module, relative to src/ (or dist/), without its extension. */
const SERVICE_MODULES: Readonly<Record<ServiceName, string>> = {
  order: 'services/order/main',
  inventory: 'services/inventory/main',
  payment: 'services/payment/main',
  gateway: 'gateway/main',
};

/** `f` of each service's entry module. */
const eachService = <T>(f: (module: string) => T): Record<ServiceName, T> =>
  Object.fromEntries(Object.entries(SERVICE_MODULES).map(([name, module]) => [name, f(module)])) as Record<
    ServiceName,
    T
  >;

export const SERVICE_ENTRIES: Readonly<Record<ServiceName, string>> = eachService(productModule);

/** Each service's entry in a copy of dist/ at `dir` (the bench's --compiled, the tests' compiled product). */
export function compiledEntriesIn(dir: string): Record<ServiceName, { entry: string }> {
  return eachService((module) => ({ entry: path.join(dir, `${module}.js`) }));
}

/** The variable that tells each process where to listen (and the gateway where to dial). */
export const ADDR_VARS: Readonly<Record<ServiceName, AddrVar>> = {
  order: 'ORDER_SERVICE_ADDR',
  inventory: 'INVENTORY_SERVICE_ADDR',
  payment: 'PAYMENT_SERVICE_ADDR',
  gateway: 'HTTP_ADDR',
};

/**
 * How a service's module is loaded: compiled, with source maps; as TypeScript, through the tsx
 * loader (a dev dependency, resolved from here rather than from the child's working directory,
 * so that it works whatever directory the command runs from). An entry of another kind than the
 * product's (a test's fake service in TypeScript) is loaded as what it is.
 */
function loaderFlags(entry: string): string[] {
  return entry.endsWith('.ts') ? ['--import', import.meta.resolve('tsx')] : ['--enable-source-maps'];
}

/**
 * V8's heap sizing, for a resident size that stays flat under sustained load (bench/README.md,
 * "Memory"). With V8's defaults each process let its young generation grow to 64 MiB and its old
 * generation to several times its live objects (25 MiB in a participant, 47 MiB in the gateway,
 * flat from 0 to 20,000 sagas in heap snapshots: garbage, not a leak), and kept the pages:
 * participants 300-375 MiB, the gateway 575-750 MiB after 30,000-60,000 sagas.
 * `--heap-growing-percent=50`: a full collection once the old generation is 1.5 × what the last
 * one left. `--max-semi-space-size`: 8 MiB in a participant (its objects die young: no more
 * scavenge time per saga than with the default), 16 MiB in the gateway, whose objects live as long
 * as a saga and are copied more often by a smaller young generation.
 *
 * No other flag. `--single-threaded-gc` was one (collecting on the main thread alone took the
 * open-loop p99 at 200 orders/s from 55 to 47 ms on 2 cores, on Node 20); on Node 24, alternated on
 * one machine, the gateway's CPU per saga was lower without it (medians 1.92 against 2.33 ms at 64
 * in flight; 3.04 against 3.23 ms at 230 orders/s), the open-loop p99 no worse (376 against 490
 * ms), and it kept the pages V8 pools after a collection: the gateway 322-350 MiB with it, 203-205
 * MiB without (bench/README.md, issue 27).
 */
const SERVICE_V8_FLAGS = {
  participant: ['--max-semi-space-size=8', '--heap-growing-percent=50'],
  gateway: ['--max-semi-space-size=16', '--heap-growing-percent=50'],
};

/**
 * The V8 flags of the process named `name` (`gateway`, `gateway-2`, `order`, `order-1`…).
 * `V8_FLAGS_GATEWAY` / `V8_FLAGS_PARTICIPANTS` in `env`, when set (empty included), replace the
 * gateways' / the participants' flags: for measuring another setting with the same processes
 * (bench/README.md), not a tuning knob a deployment needs.
 */
export function serviceV8Flags(name: string, env: NodeJS.ProcessEnv = process.env): string[] {
  const gateway = name === 'gateway' || name.startsWith('gateway-');
  const override = env[gateway ? 'V8_FLAGS_GATEWAY' : 'V8_FLAGS_PARTICIPANTS'];
  if (override !== undefined) return override.split(/\s+/).filter((f) => f !== '');
  return [...SERVICE_V8_FLAGS[gateway ? 'gateway' : 'participant']];
}

export type OutputStream = 'stdout' | 'stderr';
export type OnLine = (name: string, line: string, stream: OutputStream) => void;

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnOptions {
  /** The child's whole environment (not merged with process.env here). */
  env: NodeJS.ProcessEnv;
  /** Called for every line the child writes to stdout or stderr, as it arrives. */
  onLine?: OnLine;
  /** How long to wait for the ready message. Default 20 s. */
  readyTimeoutMs?: number;
  /** Entry file; defaults to SERVICE_ENTRIES[name] (required when name is not a service). */
  entry?: string;
  args?: string[];
  cwd?: string;
  /** Lines kept for diagnostics. Default 200. */
  outputLimit?: number;
  /**
   * Run the child in its own session (default true), so a terminal's Ctrl-C reaches only the
   * supervisor, which then stops the children in order. Children still exit if the supervisor
   * dies, even by SIGKILL: the kernel closes its end of their IPC channel, and lifecycle.ts treats
   * the 'disconnect' as SIGTERM with a grace short enough (ORPHAN_GRACE_MS) that all are gone
   * within 2 s, or exits at once while the child is still starting.
   */
  detached?: boolean;
  /** Aborting while the child starts stops it and rejects. */
  signal?: AbortSignal;
}

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  /** As reported in the ready message: `host:port`, or `http://host:port` for the gateway. */
  readonly address: string;
  /** Where its Prometheus metrics are served, when it reported one (`host:port`). */
  readonly metricsAddress: string | undefined;
  /** A gateway's admin listener (`http://host:port`), when it reported one (ADMIN_ADDR not `off`). */
  readonly adminAddress: string | undefined;
  readonly child: ChildProcess;
  /** Resolves (never rejects) once the child has exited and its output is drained. */
  readonly exited: Promise<ExitStatus>;
  /** Set once the child has exited (and `exited` has resolved). */
  readonly exitStatus: ExitStatus | undefined;
  /** False as soon as the child has exited. */
  readonly running: boolean;
  /** Sends `signal`, waits for exit, SIGKILLs after `timeoutMs` (default 10 s). Idempotent. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<ExitStatus>;
  /** SIGKILL, and wait for the exit. */
  kill(): Promise<ExitStatus>;
  /** The last `limit` lines (default: all kept) of stdout and stderr, interleaved, oldest first. */
  output(limit?: number): string[];
}

/** A child that exited, timed out or was aborted before it was ready. */
export class ServiceStartError extends Error {
  constructor(
    readonly service: string,
    /** What happened, without the output: "exited with code 1 before it was ready". */
    readonly reason: string,
    readonly status: ExitStatus | undefined,
    /** The child's last output lines. */
    readonly output: string[],
    /** It was stopped because startup was aborted (another process failed, or Ctrl-C). */
    readonly aborted = false,
  ) {
    const tail = output.length
      ? `\n--- last ${output.length} lines of ${service} ---\n${output.join('\n')}`
      : ` (${service} printed nothing)`;
    super(`${service} ${reason}${tail}`);
    this.name = 'ServiceStartError';
  }
}

export function describeExit(s: ExitStatus): string {
  return s.signal ? `was killed by ${s.signal}` : `exited with code ${s.code}`;
}

class RingBuffer {
  private readonly items: string[] = [];
  constructor(private readonly capacity: number) {}
  push(s: string): void {
    this.items.push(s);
    if (this.items.length > this.capacity) this.items.splice(0, this.items.length - this.capacity);
  }
  last(n = this.items.length): string[] {
    return n <= 0 ? [] : this.items.slice(-n);
  }
}

const ERROR_TAIL = 20;
/** After 'exit', how long to wait for the pipes to drain (a grandchild could hold them open). */
const DRAIN_GRACE_MS = 2_000;

function isReadyMessage(m: unknown): m is { type: 'ready'; address: string; metrics?: unknown; admin?: unknown } {
  return (
    typeof m === 'object' &&
    m !== null &&
    (m as { type?: unknown }).type === 'ready' &&
    typeof (m as { address?: unknown }).address === 'string'
  );
}

/** Forks one process and resolves once it reports ready. */
export function spawnService(name: string, opts: SpawnOptions): Promise<ManagedProcess> {
  const entry = opts.entry ?? (isServiceName(name) ? SERVICE_ENTRIES[name] : undefined);
  if (!entry) return Promise.reject(new Error(`spawnService: no entry file for "${name}"`));
  const readyTimeoutMs = opts.readyTimeoutMs ?? 20_000;
  if (opts.signal?.aborted)
    return Promise.reject(new ServiceStartError(name, 'was not started: startup aborted', undefined, [], true));

  const buffer = new RingBuffer(opts.outputLimit ?? 200);
  const child = fork(entry, opts.args ?? [], {
    execArgv: [...loaderFlags(entry), ...serviceV8Flags(name, opts.env ?? process.env)],
    env: opts.env,
    cwd: opts.cwd,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    detached: opts.detached ?? true,
  });

  const drained: Promise<void>[] = [];
  for (const stream of ['stdout', 'stderr'] as const) {
    const input = child[stream];
    if (!input) continue;
    const rl = createInterface({ input, crlfDelay: Infinity });
    rl.on('line', (line) => {
      buffer.push(line);
      opts.onLine?.(name, line, stream);
    });
    drained.push(new Promise((resolve) => rl.once('close', resolve)));
  }

  let exitStatus: ExitStatus | undefined;
  let spawnError: Error | undefined;
  const exited = new Promise<ExitStatus>((resolve) => {
    let settled = false;
    const finish = (status: ExitStatus) => {
      if (settled) return;
      settled = true;
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<void>((r) => (timer = setTimeout(r, DRAIN_GRACE_MS)));
      void Promise.race([Promise.all(drained), grace]).then(() => {
        clearTimeout(timer);
        exitStatus = status;
        resolve(status);
      });
    };
    child.once('exit', (code, signal) => finish({ code, signal }));
    // 'error' without 'exit' happens when the process could not be spawned at all.
    child.on('error', (err) => {
      spawnError ??= err;
      if (child.pid === undefined) finish({ code: null, signal: null });
    });
  });

  const stop = async (signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<ExitStatus> => {
    if (exitStatus) return exitStatus;
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)));
    const first = await Promise.race([exited, timedOut]);
    clearTimeout(timer);
    if (first !== 'timeout') return first;
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    return exited;
  };
  const kill = () => stop('SIGKILL', 60_000);

  return new Promise<ManagedProcess>((resolve, reject) => {
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    const cleanup = () => {
      done = true;
      clearTimeout(timer);
      child.off('message', onMessage);
      opts.signal?.removeEventListener('abort', onAbort);
    };
    const fail = (reason: string, status?: ExitStatus, aborted = false) => {
      cleanup();
      reject(new ServiceStartError(name, reason, status, buffer.last(ERROR_TAIL), aborted));
    };
    const onMessage = (m: unknown) => {
      if (done || !isReadyMessage(m)) return;
      cleanup();
      const address = m.address;
      resolve({
        name,
        pid: child.pid as number,
        address,
        metricsAddress: typeof m.metrics === 'string' ? m.metrics : undefined,
        adminAddress: typeof m.admin === 'string' ? m.admin : undefined,
        child,
        exited,
        get exitStatus() {
          return exitStatus;
        },
        get running() {
          return child.exitCode === null && child.signalCode === null;
        },
        stop,
        kill,
        output: (limit?: number) => buffer.last(limit),
      });
    };
    const onAbort = () => {
      if (done) return;
      done = true;
      void stop('SIGTERM', 5_000).then((s) =>
        fail(`was stopped before it was ready: startup aborted (${describeExit(s)})`, s, true),
      );
    };
    child.on('message', onMessage);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    timer = setTimeout(() => {
      if (done) return;
      done = true;
      void stop('SIGTERM', 2_000).then((s) =>
        fail(`was not ready within ${readyTimeoutMs} ms and was stopped (${describeExit(s)})`, s),
      );
    }, readyTimeoutMs);
    void exited.then((s) => {
      if (done) return;
      fail(spawnError ? `could not be started: ${spawnError.message}` : `${describeExit(s)} before it was ready`, s);
    });
  });
}

/** More gateways than this is surely a typo: each takes a port (HTTP_ADDR's port + i) and a pool of saga-log connections. */
export const MAX_GATEWAYS = 16;

/** The `[name]` of gateway `index` (0-based) of `count`: `gateway` alone, `gateway-1`, `gateway-2`… when several. */
export function gatewayName(index: number, count: number): string {
  return count === 1 ? 'gateway' : `gateway-${index + 1}`;
}

/** A gateway count as typed (`--gateways 3`); a RangeError names what is expected. */
export function parseGatewayCount(raw: string): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || n < 1 || n > MAX_GATEWAYS)
    throw new RangeError(`--gateways must be a whole number from 1 to ${MAX_GATEWAYS}, got "${raw}"`);
  return n;
}

/** More replicas of each participant than this is surely a typo: each takes a port and a pool of database connections. */
export const MAX_REPLICAS = 8;

/** The `[name]` of replica `index` (0-based) of `count` of a participant: `order` alone, `order-1`, `order-2`… when several. */
export function replicaName(service: ParticipantServiceName, index: number, count: number): string {
  return count === 1 ? service : `${service}-${index + 1}`;
}

/** A replica count as typed (`--replicas 2`); a RangeError names what is expected. */
export function parseReplicaCount(raw: string): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || n < 1 || n > MAX_REPLICAS)
    throw new RangeError(`--replicas must be a whole number from 1 to ${MAX_REPLICAS}, got "${raw}"`);
  return n;
}

/**
 * Checks that `count` replicas of each participant can run with `env` (the children's
 * environment) and returns where each listens, per participant: `undefined` = where env says
 * (one replica, as always); 'ephemeral': 127.0.0.1:0 each; several on default ports: replica i
 * on its address's port + i × stride, the stride being the span of the three participants' ports
 * (9090-9092 by default: order on 9090 and 9093, payment on 9091 and 9094…), so no two meet.
 * Throws ConfigError (several replicas need each participant's *_DB_URL to be a postgres:// URL
 * they share; a port past 65535) and RangeError (a count that is not 1..MAX_REPLICAS), before
 * anything is started.
 */
export function planReplicas(
  count: number,
  env: NodeJS.ProcessEnv,
  ports: 'default' | 'ephemeral' = 'default',
): Record<ParticipantServiceName, (string | undefined)[]> {
  if (!Number.isInteger(count) || count < 1 || count > MAX_REPLICAS)
    throw new RangeError(`replicas must be a whole number from 1 to ${MAX_REPLICAS}, got ${count}`);
  if (count > 1) {
    const missing = PARTICIPANT_NAMES.filter((n) => !isPostgresUrl(env[DB_URL_VARS[n]]));
    if (missing.length)
      throw new ConfigError(
        missing.map((n) => ({
          variable: DB_URL_VARS[n],
          expected:
            `a postgres://user:password@host:5432/database URL: ${count} replicas of ${n} share one database ` +
            `(the default, a SQLite file under DATA_DIR, is one process's; \`sagas start --replicas ${count}\` makes one on the local PostgreSQL)`,
          ...(env[DB_URL_VARS[n]] ? { got: redactPassword(env[DB_URL_VARS[n]] as string) } : {}),
        })),
      );
  }
  const each = (f: (n: ParticipantServiceName) => (string | undefined)[]) =>
    ({ order: f('order'), inventory: f('inventory'), payment: f('payment') }) as Record<
      ParticipantServiceName,
      (string | undefined)[]
    >;
  if (ports === 'ephemeral') return each(() => Array.from({ length: count }, () => '127.0.0.1:0'));
  if (count === 1) return each(() => [undefined]);
  const base = each((n) => [formatAddr(addr(env, ADDR_VARS[n]))]);
  const at = (n: ParticipantServiceName) => hostPortOf(base[n][0] as string) as { host: string; port: number };
  const fixed = PARTICIPANT_NAMES.map(at).filter((a) => a.port !== 0);
  const stride = fixed.length ? Math.max(...fixed.map((a) => a.port)) - Math.min(...fixed.map((a) => a.port)) + 1 : 1;
  return each((n) => {
    const { host, port } = at(n);
    // Port 0 stays 0 for each: the OS picks a free port per replica.
    if (port !== 0 && port + (count - 1) * stride > 65535)
      throw new ConfigError(
        ADDR_VARS[n],
        `${count} replicas of ${n} listen on ports ${port}, ${port + stride}, … ${port + (count - 1) * stride}, past 65535`,
      );
    return Array.from({ length: count }, (_, i) => formatAddr({ host, port: port === 0 ? 0 : port + i * stride }));
  });
}

/**
 * METRICS_ADDR of replica `index` of several on default ports: the participant's default metrics
 * port (9464-9466) + index × 3, so that replicas do not fight over it; undefined (as env says, or
 * port 0 on ephemeral ports) otherwise.
 */
function replicaMetricsAddr(
  name: ParticipantServiceName,
  index: number,
  count: number,
  env: NodeJS.ProcessEnv,
  ports: 'default' | 'ephemeral',
): string | undefined {
  if (count === 1 || index === 0 || env.METRICS_ADDR !== undefined || ports === 'ephemeral') return undefined;
  const defaults = Object.values(METRICS_PORTS);
  const stride = Math.max(...defaults) - Math.min(...defaults) + 1;
  return `127.0.0.1:${METRICS_PORTS[name] + index * stride}`;
}

/** Every process of a system: each participant's replicas, then the gateways. */
export function everyProcess(sys: RunningSystem): ManagedProcess[] {
  return [...PARTICIPANT_NAMES.flatMap((n) => sys.replicas[n]), ...sys.gateways];
}

/**
 * Checks that `count` gateways can run with `env` (the children's environment) and returns where
 * each listens: `undefined` = where env says (one gateway, as always); with several on default
 * ports, HTTP_ADDR's port + i on its host. Throws ConfigError (SAGA_LOG_URL: several gateways
 * need a shared PostgreSQL saga log; HTTP_ADDR: a port past 65535) and RangeError (a count that
 * is not 1..MAX_GATEWAYS), before anything is started.
 */
export function planGateways(
  count: number,
  env: NodeJS.ProcessEnv,
  ports: 'default' | 'ephemeral' = 'default',
): (string | undefined)[] {
  if (!Number.isInteger(count) || count < 1 || count > MAX_GATEWAYS)
    throw new RangeError(`gateways must be a whole number from 1 to ${MAX_GATEWAYS}, got ${count}`);
  if (count > 1 && !isPostgresUrl(env.SAGA_LOG_URL)) {
    const had = env.SAGA_LOG_URL ? ` (it is "${redactPassword(env.SAGA_LOG_URL)}", not a postgres:// URL)` : '';
    throw new ConfigError(
      'SAGA_LOG_URL',
      `${count} gateways need one PostgreSQL saga log to share${had}: set SAGA_LOG_URL=postgres://user:password@host:5432/database ` +
        "(the default saga log, a SQLite file under DATA_DIR, is one gateway's)",
    );
  }
  if (ports === 'ephemeral') return Array.from({ length: count }, () => '127.0.0.1:0');
  if (count === 1) return [undefined];
  const base = addr(env, 'HTTP_ADDR');
  if (base.port !== 0 && base.port + count - 1 > 65535)
    throw new ConfigError(
      'HTTP_ADDR',
      `${count} gateways listen on ports ${base.port}..${base.port + count - 1}, past 65535`,
    );
  // Port 0 stays 0 for each: the OS picks a free port per gateway.
  return Array.from({ length: count }, (_, i) =>
    formatAddr({ host: base.host, port: base.port === 0 ? 0 : base.port + i }),
  );
}

/** The gateway's admin listener, where ADMIN_ADDR (default 127.0.0.1:8081) says, or `off`. */
export const DEFAULT_ADMIN_ADDR = '127.0.0.1:8081';

/**
 * Where each of `count` gateways' admin listener goes: `undefined` = where env says (one gateway,
 * or ADMIN_ADDR=off). 'ephemeral': 127.0.0.1:0 each, unless env sets ADMIN_ADDR. Several on
 * default ports: ADMIN_ADDR's port + i, moved past the gateways' HTTP ports when the two ranges
 * would meet (HTTP 8080..8082 and admin 8081.. → admin 8083..8085). Throws ConfigError for a bad
 * ADMIN_ADDR or a port past 65535.
 */
export function planAdmins(
  count: number,
  env: NodeJS.ProcessEnv,
  ports: 'default' | 'ephemeral' = 'default',
): (string | undefined)[] {
  if (ports === 'ephemeral')
    return Array.from({ length: count }, () => (env.ADMIN_ADDR === undefined ? '127.0.0.1:0' : undefined));
  if (count === 1) return [undefined];
  const admin = readVariables({ ADMIN_ADDR: hostPortOrOff({ default: DEFAULT_ADMIN_ADDR }) }, env).ADMIN_ADDR;
  if (admin === 'off') return Array.from({ length: count }, () => undefined);
  if (admin.port === 0) return Array.from({ length: count }, () => formatAddr(admin));
  const http = addr(env, 'HTTP_ADDR');
  let base = admin.port;
  if (http.port !== 0 && base <= http.port + count - 1 && http.port <= base + count - 1) base = http.port + count;
  if (base + count - 1 > 65535)
    throw new ConfigError(
      'ADMIN_ADDR',
      `${count} gateways' admin listeners need ports ${base}..${base + count - 1}, past 65535`,
    );
  return Array.from({ length: count }, (_, i) => formatAddr({ host: admin.host, port: base + i }));
}

export interface StartSystemOptions {
  /** DATA_DIR for every process (created if missing). */
  dataDir: string;
  /** Added to process.env for every child. */
  env?: NodeJS.ProcessEnv;
  /**
   * 'default': each listens where env (or its default) says; several gateways on HTTP_ADDR's
   * port, port + 1, … 'ephemeral': each on 127.0.0.1:0, so many systems (tests) can run side by side.
   */
  ports?: 'default' | 'ephemeral';
  /**
   * How many gateways (default 1), started together once the services are up. More than one
   * needs SAGA_LOG_URL=postgres://… in the env (they share that saga log). Gateway i gets
   * GATEWAY_INDEX=i (0-based) and is named as `gatewayName` says.
   */
  gateways?: number;
  /**
   * How many processes of each participant (default 1), each on its own port, all sharing the
   * participant's database: more than one needs ORDER_DB_URL, INVENTORY_DB_URL and
   * PAYMENT_DB_URL (postgres://) in the env. The gateways are given every replica's address.
   * Replica i of `order` is named as `replicaName` says.
   */
  replicas?: number;
  onLine?: OnLine;
  readyTimeoutMs?: number;
  /** Grace for each stop before SIGKILL. Default 10 s. */
  stopTimeoutMs?: number;
  /** Replace entry files (tests run fake services this way); `gateway` is every gateway's. */
  entries?: Partial<Record<ServiceName, { entry: string; args?: string[] }>>;
  /** Aborting during startup stops what was started and rejects (no effect once started). */
  signal?: AbortSignal;
}

export interface RunningSystem {
  /** The first gateway's base URL, e.g. http://127.0.0.1:8080 (an unspecified host is shown as 127.0.0.1). */
  readonly url: string;
  /** Every gateway's base URL, in order (`urls[0] === url`). */
  readonly urls: readonly string[];
  /** The first gateway's admin listener URL (e.g. http://127.0.0.1:8081); undefined when ADMIN_ADDR=off. */
  readonly adminUrl: string | undefined;
  /** Every gateway's admin listener URL, in order. */
  readonly adminUrls: readonly (string | undefined)[];
  /** Where each process listens, as reported (the gateway's with http://; the first gateway's; a participant's first replica's). */
  readonly addresses: Readonly<Record<ServiceName, string>>;
  /** The current process of each service (replaced by restart); `gateway` is the first gateway, a participant its first replica. */
  readonly procs: Readonly<Record<ServiceName, ManagedProcess>>;
  /** The current process of every replica of each participant, in order (`replicas.order[0] === procs.order`). */
  readonly replicas: Readonly<Record<ParticipantServiceName, readonly ManagedProcess[]>>;
  /** The current process of every gateway, in order (replaced by restartGateway); `gateways[0] === procs.gateway`. */
  readonly gateways: readonly ManagedProcess[];
  readonly dataDir: string;
  /** SIGTERM every gateway (together) and wait, then every replica of the services together. Never rejects. */
  stop(): Promise<void>;
  /** SIGKILL one process and wait for its exit (`gateway`: the first gateway; a participant: its first replica). */
  kill(name: ServiceName): Promise<ExitStatus>;
  /** SIGKILL replica `index` (0-based) of a participant and wait for its exit. */
  killReplica(name: ParticipantServiceName, index: number): Promise<ExitStatus>;
  /** Start replica `index` of a participant again on the address it had, as `restart` does. */
  restartReplica(name: ParticipantServiceName, index: number, extraEnv?: NodeJS.ProcessEnv): Promise<ManagedProcess>;
  /**
   * Start `name` again on the address it had, with `extraEnv` for this run only (e.g. CRASH_AT).
   * A process still running is stopped (SIGTERM) first. Resolves when it is ready.
   * `gateway` is the first gateway (restartGateway(0)).
   */
  restart(name: ServiceName, extraEnv?: NodeJS.ProcessEnv): Promise<ManagedProcess>;
  /** SIGKILL gateway `index` (0-based) and wait for its exit. */
  killGateway(index: number): Promise<ExitStatus>;
  /** Start gateway `index` again on the address it had, as `restart` does. */
  restartGateway(index: number, extraEnv?: NodeJS.ProcessEnv): Promise<ManagedProcess>;
}

/** The supervisor's own lines, shaped as the children's log lines, so `sagas start` shows them alike, tagged [sagas]. */
function supervisorLine(level: 'info' | 'warn', msg: string, fields: Record<string, unknown> = {}): string {
  return JSON.stringify({ level, time: new Date().toISOString(), service: 'sagas', msg, ...fields });
}

/**
 * DATA_DIR private to this user (0700): made so, and tightened when it exists and is ours (it
 * holds every database, and by default TLS_DIR). One of another user's is left alone.
 */
function privateDataDir(dataDir: string): void {
  if (!existsSync(dataDir)) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    chmodSync(dataDir, 0o700);
    return;
  }
  const st = statSync(dataDir);
  if ((st.mode & 0o077) !== 0 && st.uid === process.getuid?.()) chmodSync(dataDir, 0o700);
}

/**
 * The supervisor is the issuer of `sagas start`: before any child starts it makes sure TLS_DIR
 * holds the four identities, one folder each (on a first start from a CA whose key is dropped
 * once they are signed), moving a TLS_DIR of the old one-folder layout first. Each child then
 * reads its own folder only. What it did is said once, through `onLine`.
 */
async function prepareIdentities(tlsDir: string, say: (line: string) => void): Promise<void> {
  const report = await issueIdentities(tlsDir);
  if (report.migrated) {
    say(
      supervisorLine(
        'warn',
        `moved ${tlsDir} from the old one-folder layout to one folder per identity (${report.migrated.identities.join(', ')}): each process now reads only its own`,
        { tls_dir: tlsDir },
      ),
    );
  }
  if (report.issued.length > 0) {
    say(
      supervisorLine(
        'info',
        `issued the mutual-TLS identities ${report.issued.join(', ')} in ${tlsDir}, one folder each; the CA's key was used for this only and not kept`,
        { tls_dir: tlsDir, issued: report.issued },
      ),
    );
  }
  // Said at every start while it stays: whoever reads it can mint a gateway certificate.
  const caKey = path.join(tlsDir, MIGRATED_CA_FOLDER, 'ca.key');
  if (existsSync(caKey)) {
    say(
      supervisorLine(
        'warn',
        `${caKey} is the CA's key (moved there from the old layout): any process of this user can read it and mint a gateway certificate; move it off this machine (\`sagas certs --ca <its folder>\` issues with it later) or delete it`,
        { ca_key: caKey },
      ),
    );
  }
}

const UNSPECIFIED_HOSTS = new Set(['0.0.0.0', '::', '[::]', '']);

/** `host:port` as reported by a listener → an address one can dial (0.0.0.0 / :: → loopback). */
export function dialableAddr(address: string): string {
  const stripped = address.replace(/^https?:\/\//, '').replace(/\/+$/, '');
  const i = stripped.lastIndexOf(':');
  if (i < 0) return stripped;
  const host = stripped.slice(0, i);
  const port = stripped.slice(i + 1);
  if (UNSPECIFIED_HOSTS.has(host)) return host.includes(':') ? `[::1]:${port}` : `127.0.0.1:${port}`;
  return stripped;
}

/** The `host:port` part of an address (drops `http://`), for re-listening on the same place. */
function listenAddr(address: string): string {
  return address.replace(/^https?:\/\//, '').replace(/\/+$/, '');
}

function gatewayUrl(address: string): string {
  return `http://${dialableAddr(address)}`;
}

/**
 * Starts order, inventory and payment in parallel, and the gateways pointed at them: together with
 * them where their addresses are known beforehand (`ports: 'default'` and no port 0: a gateway
 * connects to a participant when it first needs it, and /readyz says when all answer), after them
 * otherwise (a gateway needs the ports they got). Throws (before starting anything) what
 * `planGateways` throws, and a TlsError when TLS_DIR's identities cannot be completed.
 */
export async function startSystem(opts: StartSystemOptions): Promise<RunningSystem> {
  const dataDir = path.resolve(opts.dataDir);
  const ports = opts.ports ?? 'default';
  const ephemeral = ports === 'ephemeral';
  const stopTimeoutMs = opts.stopTimeoutMs ?? 10_000;
  const baseEnv: NodeJS.ProcessEnv = { ...process.env, ...opts.env, DATA_DIR: dataDir };
  const gatewayCount = opts.gateways ?? 1;
  const replicaCount = opts.replicas ?? 1;
  const gatewayListen = planGateways(gatewayCount, baseEnv, ports);
  const adminListen = planAdmins(gatewayCount, baseEnv, ports);
  const replicaListen = planReplicas(replicaCount, baseEnv, ports);
  const security = grpcSecurity(baseEnv);
  privateDataDir(dataDir);
  if (security.kind === 'mtls') await prepareIdentities(security.dir, (line) => opts.onLine?.('sagas', line, 'stdout'));
  const services = PARTICIPANT_NAMES;

  const procs = {} as Record<ServiceName, ManagedProcess>;
  const addresses = {} as Record<ServiceName, string>;
  const replicas: Record<ParticipantServiceName, ManagedProcess[]> = { order: [], inventory: [], payment: [] };
  const gateways: ManagedProcess[] = [];
  const gatewayAddrs: string[] = [];

  /** Where replica `i` of a participant is told to listen: as planned, else its variable, else the default. */
  const listenOf = (s: ParticipantServiceName, i: number) =>
    replicaListen[s][i] ?? (baseEnv[ADDR_VARS[s]] || DEFAULT_ADDRS[ADDR_VARS[s]]);
  /** Where the gateways dial a participant: each replica where it said it listens, or, not started yet, where it will. */
  const dialList = (s: ParticipantServiceName) =>
    replicaListen[s].map((_, i) => dialableAddr(replicas[s][i]?.address ?? listenOf(s, i))).join(',');
  const envFor = (name: ServiceName, listen: string | undefined, extra?: NodeJS.ProcessEnv): NodeJS.ProcessEnv => {
    const env: NodeJS.ProcessEnv = { ...baseEnv };
    if (listen !== undefined) env[ADDR_VARS[name]] = listen;
    // Side by side systems (tests, benchmarks) must not fight over the default metrics ports.
    if (ephemeral && name !== 'gateway' && env.METRICS_ADDR === undefined) env.METRICS_ADDR = '127.0.0.1:0';
    if (name === 'gateway') for (const s of services) env[ADDR_VARS[s]] = dialList(s);
    return { ...env, ...extra };
  };
  const replicaEnv = (s: ParticipantServiceName, i: number, listen: string | undefined, extra?: NodeJS.ProcessEnv) => {
    const metrics = replicaMetricsAddr(s, i, replicaCount, baseEnv, ports);
    return envFor(s, listen, { ...(metrics === undefined ? {} : { METRICS_ADDR: metrics }), ...extra });
  };
  const gatewayEnv = (i: number, listen: string | undefined, extra?: NodeJS.ProcessEnv, admin = adminListen[i]) =>
    envFor('gateway', listen, {
      GATEWAY_INDEX: String(i),
      ...(admin === undefined ? {} : { ADMIN_ADDR: admin }),
      ...extra,
    });
  const spawn = (role: ServiceName, name: string, env: NodeJS.ProcessEnv, signal?: AbortSignal) =>
    spawnService(name, {
      env,
      onLine: opts.onLine,
      readyTimeoutMs: opts.readyTimeoutMs,
      entry: opts.entries?.[role]?.entry ?? SERVICE_ENTRIES[role],
      args: opts.entries?.[role]?.args,
      signal,
    });

  const abort = new AbortController();
  const onAbort = () => abort.abort();
  if (opts.signal?.aborted) abort.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const started: ManagedProcess[] = [];
  /** Starts them together; the first failure stops the ones still starting, and is the one thrown. */
  const startTogether = async (starts: Array<() => Promise<ManagedProcess>>): Promise<ManagedProcess[]> => {
    const results = await Promise.allSettled(
      starts.map(async (start) => {
        try {
          const p = await start();
          started.push(p);
          return p;
        } catch (err) {
          abort.abort();
          throw err;
        }
      }),
    );
    // Report the failure that caused the abort, not the aborted ones.
    const failures = results
      .filter((r): r is PromiseRejectedResult => r.status === 'rejected')
      .map((r) => r.reason as unknown);
    if (failures.length) throw failures.find((e) => !(e instanceof ServiceStartError && e.aborted)) ?? failures[0];
    return results.map((r) => (r as PromiseFulfilledResult<ManagedProcess>).value);
  };
  try {
    const startServices = () =>
      startTogether(
        services.flatMap((name) =>
          replicaListen[name].map(
            (listen, i) => () =>
              spawn(name, replicaName(name, i, replicaCount), replicaEnv(name, i, listen), abort.signal),
          ),
        ),
      );
    /** The started replicas, in their places (they come back in the order they were asked for). */
    const place = (ready: ManagedProcess[]) => {
      let k = 0;
      for (const name of services)
        for (let i = 0; i < replicaCount; i++) replicas[name][i] = ready[k++] as ManagedProcess;
      for (const name of services) {
        procs[name] = replicas[name][0] as ManagedProcess;
        addresses[name] = procs[name].address;
      }
    };
    const startGateways = () =>
      startTogether(
        gatewayListen.map(
          (listen, i) => () => spawn('gateway', gatewayName(i, gatewayCount), gatewayEnv(i, listen), abort.signal),
        ),
      );
    let gws: ManagedProcess[];
    // Known beforehand: no participant listens on port 0 (the kernel's choice, known once it listens).
    const knownBeforehand =
      !ephemeral && services.every((s) => replicaListen[s].every((_, i) => !/:0$/.test(listenOf(s, i))));
    if (!knownBeforehand) {
      place(await startServices());
      gws = await startGateways();
    } else {
      // Both groups settle before anything is said: a process still starting when the other group
      // failed is stopped by the abort, or is among `started` for the catch below to stop.
      const [svc, gw] = await Promise.allSettled([startServices(), startGateways()]);
      const failed = [svc, gw].flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
      if (failed.length) throw failed.find((e) => !(e instanceof ServiceStartError && e.aborted)) ?? failed[0];
      place((svc as PromiseFulfilledResult<ManagedProcess[]>).value);
      gws = (gw as PromiseFulfilledResult<ManagedProcess[]>).value;
    }
    for (const p of gws) {
      gateways.push(p);
      gatewayAddrs.push(p.address);
    }
    procs.gateway = gateways[0] as ManagedProcess;
    addresses.gateway = gatewayAddrs[0] as string;
  } catch (err) {
    await Promise.all(started.map((p) => p.stop('SIGTERM', stopTimeoutMs)));
    throw err;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }

  const checkIndex = (i: number) => {
    if (!Number.isInteger(i) || i < 0 || i >= gateways.length)
      throw new RangeError(`no gateway ${i}: there are ${gateways.length} (0..${gateways.length - 1})`);
  };
  const replicaAt = (name: ParticipantServiceName, i: number): ManagedProcess => {
    const p = Number.isInteger(i) ? replicas[name][i] : undefined;
    if (!p) throw new RangeError(`no replica ${i} of ${name}: there are ${replicaCount} (0..${replicaCount - 1})`);
    return p;
  };
  const system: RunningSystem = {
    get url() {
      return gatewayUrl(addresses.gateway);
    },
    get urls() {
      return gatewayAddrs.map(gatewayUrl);
    },
    get adminUrl() {
      return gateways[0]?.adminAddress;
    },
    get adminUrls() {
      return gateways.map((g) => g.adminAddress);
    },
    addresses,
    procs,
    replicas,
    gateways,
    dataDir,
    async stop() {
      await Promise.all(gateways.map((g) => g.stop('SIGTERM', stopTimeoutMs)));
      await Promise.all(services.flatMap((s) => replicas[s].map((p) => p.stop('SIGTERM', stopTimeoutMs))));
    },
    kill(name) {
      return name === 'gateway' ? system.killGateway(0) : system.killReplica(name, 0);
    },
    restart(name, extraEnv) {
      return name === 'gateway' ? system.restartGateway(0, extraEnv) : system.restartReplica(name, 0, extraEnv);
    },
    async killReplica(name, i) {
      return replicaAt(name, i).kill();
    },
    async restartReplica(name, i, extraEnv) {
      const old = replicaAt(name, i);
      if (old.running) await old.stop('SIGTERM', stopTimeoutMs);
      // On the address it had: the gateways dial it there. Its metrics where they were planned.
      const p = await spawn(name, old.name, replicaEnv(name, i, listenAddr(old.address), extraEnv));
      replicas[name][i] = p;
      if (i === 0) {
        procs[name] = p;
        addresses[name] = p.address;
      }
      return p;
    },
    async killGateway(i) {
      checkIndex(i);
      return (gateways[i] as ManagedProcess).kill();
    },
    async restartGateway(i, extraEnv) {
      checkIndex(i);
      const old = gateways[i] as ManagedProcess;
      if (old.running) await old.stop('SIGTERM', stopTimeoutMs);
      // Where it was asked to listen (0.0.0.0:8081 stays all interfaces), unless the OS chose the port.
      const planned = gatewayListen[i];
      const listen = planned !== undefined && !planned.endsWith(':0') ? planned : listenAddr(gatewayAddrs[i] as string);
      // The admin listener too: where it was planned, or the port the OS chose the first time.
      const plannedAdmin = adminListen[i];
      const admin =
        plannedAdmin !== undefined && !plannedAdmin.endsWith(':0')
          ? plannedAdmin
          : old.adminAddress
            ? listenAddr(old.adminAddress)
            : plannedAdmin;
      const p = await spawn('gateway', gatewayName(i, gateways.length), gatewayEnv(i, listen, extraEnv, admin));
      gateways[i] = p;
      gatewayAddrs[i] = p.address;
      if (i === 0) {
        procs.gateway = p;
        addresses.gateway = p.address;
      }
      return p;
    },
  };
  return system;
}
