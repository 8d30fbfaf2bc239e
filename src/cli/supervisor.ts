/**
 * Starts the system's processes as children and watches them. Used by `sagas start` and by tests
 * that need real processes (integration and failure tests: kill -9 one, restart it, check).
 *
 * A child is "up" when it sends the `ready` IPC message of `notifyReady` (src/platform/lifecycle.ts)
 * with the address it really listens on, so port 0 (OS-chosen) works everywhere.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { AddrVar } from '../platform/config.js';

export const SERVICE_NAMES = ['order', 'inventory', 'payment', 'gateway'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

export function isServiceName(s: string): s is ServiceName {
  return (SERVICE_NAMES as readonly string[]).includes(s);
}

/** The repository root (this file is <root>/src/cli/supervisor.ts). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export const SERVICE_ENTRIES: Readonly<Record<ServiceName, string>> = {
  order: path.join(REPO_ROOT, 'src/services/order/main.ts'),
  inventory: path.join(REPO_ROOT, 'src/services/inventory/main.ts'),
  payment: path.join(REPO_ROOT, 'src/services/payment/main.ts'),
  gateway: path.join(REPO_ROOT, 'src/gateway/main.ts'),
};

/** The variable that tells each process where to listen (and the gateway where to dial). */
export const ADDR_VARS: Readonly<Record<ServiceName, AddrVar>> = {
  order: 'ORDER_SERVICE_ADDR',
  inventory: 'INVENTORY_SERVICE_ADDR',
  payment: 'PAYMENT_SERVICE_ADDR',
  gateway: 'HTTP_ADDR',
};

/**
 * The tsx loader, resolved from here rather than from the child's working directory, so the
 * command works whatever directory it is run from.
 */
const TSX_LOADER = import.meta.resolve('tsx');

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
   * dies: their IPC channel closes and lifecycle.onShutdown treats that as SIGTERM.
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
    const tail = output.length ? `\n--- last ${output.length} lines of ${service} ---\n${output.join('\n')}` : ` (${service} printed nothing)`;
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

function isReadyMessage(m: unknown): m is { type: 'ready'; address: string; metrics?: unknown } {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'ready' && typeof (m as { address?: unknown }).address === 'string';
}

/** Forks one process and resolves once it reports ready. */
export function spawnService(name: string, opts: SpawnOptions): Promise<ManagedProcess> {
  const entry = opts.entry ?? (isServiceName(name) ? SERVICE_ENTRIES[name] : undefined);
  if (!entry) return Promise.reject(new Error(`spawnService: no entry file for "${name}"`));
  const readyTimeoutMs = opts.readyTimeoutMs ?? 20_000;
  if (opts.signal?.aborted) return Promise.reject(new ServiceStartError(name, 'was not started: startup aborted', undefined, [], true));

  const buffer = new RingBuffer(opts.outputLimit ?? 200);
  const child = fork(entry, opts.args ?? [], {
    execArgv: ['--import', TSX_LOADER],
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
      void stop('SIGTERM', 5_000).then((s) => fail(`was stopped before it was ready: startup aborted (${describeExit(s)})`, s, true));
    };
    child.on('message', onMessage);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    timer = setTimeout(() => {
      if (done) return;
      done = true;
      void stop('SIGTERM', 2_000).then((s) => fail(`was not ready within ${readyTimeoutMs} ms and was stopped (${describeExit(s)})`, s));
    }, readyTimeoutMs);
    void exited.then((s) => {
      if (done) return;
      fail(spawnError ? `could not be started: ${spawnError.message}` : `${describeExit(s)} before it was ready`, s);
    });
  });
}

export interface StartSystemOptions {
  /** DATA_DIR for every process (created if missing). */
  dataDir: string;
  /** Added to process.env for every child. */
  env?: NodeJS.ProcessEnv;
  /**
   * 'default': each listens where env (or its default) says. 'ephemeral': each on 127.0.0.1:0,
   * so many systems (tests) can run side by side.
   */
  ports?: 'default' | 'ephemeral';
  onLine?: OnLine;
  readyTimeoutMs?: number;
  /** Grace for each stop before SIGKILL. Default 10 s. */
  stopTimeoutMs?: number;
  /** Replace entry files (tests run fake services this way). */
  entries?: Partial<Record<ServiceName, { entry: string; args?: string[] }>>;
  /** Aborting during startup stops what was started and rejects (no effect once started). */
  signal?: AbortSignal;
}

export interface RunningSystem {
  /** Gateway base URL, e.g. http://127.0.0.1:8080 (an unspecified host is shown as 127.0.0.1). */
  readonly url: string;
  /** Where each process listens, as reported (the gateway's with http://). */
  readonly addresses: Readonly<Record<ServiceName, string>>;
  /** The current process of each service (replaced by restart). */
  readonly procs: Readonly<Record<ServiceName, ManagedProcess>>;
  readonly dataDir: string;
  /** SIGTERM the gateway and wait, then the services together. Never rejects. */
  stop(): Promise<void>;
  /** SIGKILL one process and wait for its exit. */
  kill(name: ServiceName): Promise<ExitStatus>;
  /**
   * Start `name` again on the address it had, with `extraEnv` for this run only (e.g. CRASH_AT).
   * A process still running is stopped (SIGTERM) first. Resolves when it is ready.
   */
  restart(name: ServiceName, extraEnv?: NodeJS.ProcessEnv): Promise<ManagedProcess>;
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

/** Starts order, inventory and payment in parallel, then the gateway pointed at them. */
export async function startSystem(opts: StartSystemOptions): Promise<RunningSystem> {
  const dataDir = path.resolve(opts.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const ephemeral = (opts.ports ?? 'default') === 'ephemeral';
  const stopTimeoutMs = opts.stopTimeoutMs ?? 10_000;
  const baseEnv: NodeJS.ProcessEnv = { ...process.env, ...opts.env, DATA_DIR: dataDir };
  const services = SERVICE_NAMES.filter((n) => n !== 'gateway');

  const procs = {} as Record<ServiceName, ManagedProcess>;
  const addresses = {} as Record<ServiceName, string>;

  const envFor = (name: ServiceName, listen: string | undefined, extra?: NodeJS.ProcessEnv): NodeJS.ProcessEnv => {
    const env: NodeJS.ProcessEnv = { ...baseEnv };
    if (listen !== undefined) env[ADDR_VARS[name]] = listen;
    // Side by side systems (tests, benchmarks) must not fight over the default metrics ports.
    if (ephemeral && name !== 'gateway' && env.METRICS_ADDR === undefined) env.METRICS_ADDR = '127.0.0.1:0';
    if (name === 'gateway') for (const s of services) env[ADDR_VARS[s]] = dialableAddr(addresses[s]);
    return { ...env, ...extra };
  };
  const spawn = (name: ServiceName, env: NodeJS.ProcessEnv, signal?: AbortSignal) =>
    spawnService(name, {
      env,
      onLine: opts.onLine,
      readyTimeoutMs: opts.readyTimeoutMs,
      entry: opts.entries?.[name]?.entry,
      args: opts.entries?.[name]?.args,
      signal,
    });

  const abort = new AbortController();
  const onAbort = () => abort.abort();
  if (opts.signal?.aborted) abort.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const started: ManagedProcess[] = [];
  try {
    const results = await Promise.allSettled(
      services.map(async (name) => {
        try {
          const p = await spawn(name, envFor(name, ephemeral ? '127.0.0.1:0' : undefined), abort.signal);
          started.push(p);
          return p;
        } catch (err) {
          abort.abort(); // the first failure stops the ones still starting
          throw err;
        }
      }),
    );
    // Report the failure that caused the abort, not the aborted ones.
    const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
    if (failures.length) throw failures.find((e) => !(e instanceof ServiceStartError && e.aborted)) ?? failures[0];
    for (const p of started) {
      procs[p.name as ServiceName] = p;
      addresses[p.name as ServiceName] = p.address;
    }
    const gw = await spawn('gateway', envFor('gateway', ephemeral ? '127.0.0.1:0' : undefined), abort.signal);
    procs.gateway = gw;
    addresses.gateway = gw.address;
  } catch (err) {
    await Promise.all(started.map((p) => p.stop('SIGTERM', stopTimeoutMs)));
    throw err;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }

  const system: RunningSystem = {
    get url() {
      return gatewayUrl(addresses.gateway);
    },
    addresses,
    procs,
    dataDir,
    async stop() {
      await procs.gateway.stop('SIGTERM', stopTimeoutMs);
      await Promise.all(services.map((s) => procs[s].stop('SIGTERM', stopTimeoutMs)));
    },
    kill(name) {
      return procs[name].kill();
    },
    async restart(name, extraEnv) {
      const old = procs[name];
      if (old.running) await old.stop('SIGTERM', stopTimeoutMs);
      const p = await spawn(name, envFor(name, listenAddr(addresses[name]), extraEnv));
      procs[name] = p;
      addresses[name] = p.address;
      return p;
    },
  };
  return system;
}
