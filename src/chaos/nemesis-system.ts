/**
 * The system the nemesis plays against, and its hands on it: a system it starts (the four
 * services, N gateways, its own redis-server on a free port, and with a PostgreSQL saga log its own
 * database), with small realistic retry budgets so that they are really exhausted; or a running
 * system it only reaches through its APIs. For a started system, a keeper that SIGKILLs any
 * process, starts it again when told, and starts again at once a process that died by itself (a
 * `crash` fault), as an orchestrator's supervisor would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import {
  describeExit,
  gatewayName,
  startSystem,
  type ExitStatus,
  type ManagedProcess,
  type RunningSystem,
  type ServiceName,
} from '../supervisor/supervisor.js';
import { freePort, jsonClient, type JsonCall } from '../platform/json-client.js';
import { chaosSystemEnv } from './run.js';

/** The machine's PostgreSQL, where a run on a PostgreSQL saga log creates (and drops) its database. */
export const DEFAULT_POSTGRES_SERVER = 'postgres://postgres@127.0.0.1:5432/postgres';

/**
 * The budgets of a started system: small, as a deployment that wants a customer's answer within
 * seconds would set them (contrast `sagas chaos`, whose huge budgets ride every fault out), so a
 * participant down for a few seconds exhausts a step's attempts and the saga's deadline, and
 * compensations run out and park.
 */
export const NEMESIS_BUDGETS = {
  SAGA_STEP_MAX_ATTEMPTS: 3,
  SAGA_RETRY_INITIAL_BACKOFF_MS: 200,
  SAGA_RETRY_MAX_BACKOFF_MS: 1000,
  SAGA_COMPENSATION_MAX_ATTEMPTS: 5,
  SAGA_COMPENSATION_INITIAL_BACKOFF_MS: 250,
  SAGA_COMPENSATION_MAX_BACKOFF_MS: 2000,
  SAGA_FORWARD_MAX_ATTEMPTS: 6,
  SAGA_FORWARD_MAX_BACKOFF_MS: 2000,
  SAGA_STEP_TIMEOUT_MS: 1500,
  SAGA_DEADLINE_MS: 10_000,
  // A dead gateway's sagas are taken over (or recovered by its restart) within seconds.
  SAGA_LEASE_MS: 2000,
  SAGA_RECOVERY_INTERVAL_MS: 250,
} as const;

/**
 * The longest a step's attempts can take under NEMESIS_BUDGETS (every attempt timing out, every
 * backoff at its ceiling), or the saga's deadline if longer: an outage longer than this is one no
 * retry rides out.
 */
export function stepBudgetMs(b: typeof NEMESIS_BUDGETS = NEMESIS_BUDGETS): number {
  const attempts =
    b.SAGA_STEP_MAX_ATTEMPTS * b.SAGA_STEP_TIMEOUT_MS + (b.SAGA_STEP_MAX_ATTEMPTS - 1) * b.SAGA_RETRY_MAX_BACKOFF_MS;
  return Math.max(attempts, b.SAGA_DEADLINE_MS);
}

export type SagaLogKind = 'sqlite' | 'postgres';

/** How the nemesis reaches a system: the public API and the admin API of each gateway. */
export interface NemesisEndpoints {
  /** 'started': the nemesis started it and can kill its processes; 'running': APIs only. */
  readonly mode: 'started' | 'running';
  /** Each gateway's public API and admin API, and whether its process is up (always, for a running system). */
  gateways(): Array<{ index: number; name: string; api: JsonCall; admin: JsonCall; up: boolean }>;
}

/** What the nemesis may kill, for a started system. */
export interface ProcessControl {
  /** Gateways (as `gatewayName` names them), order, inventory, payment, redis. */
  readonly targets: readonly string[];
  isUp(target: string): boolean;
  /** SIGKILL; 'not_up' when it was already down (it is then left alone). Waits for a restart in progress first. */
  kill(target: string): Promise<'killed' | 'not_up'>;
  /** Start it again (no-op when up). Rejects when it cannot be started within about a minute. */
  restart(target: string): Promise<void>;
  /** Targets down now (killed and not yet started again). */
  down(): string[];
  /** Deaths the nemesis did not cause (crash faults; anything else is suspect), by target. */
  readonly deaths: Readonly<Record<string, number>>;
  /** Exits other than by SIGKILL: a process that fell over by itself, with its last lines. */
  readonly unexpectedExits: ReadonlyArray<{ target: string; exit: string; output: string[] }>;
  /** Called once a process is up again (the runner re-installs the fault plan on a gateway). */
  onUp: (target: string) => Promise<void> | void;
}

export interface StartedNemesisSystem extends NemesisEndpoints {
  readonly control: ProcessControl;
  readonly sagaLog: SagaLogKind;
  /** Stops every process, drops the database, removes the data folder. Never rejects. */
  stop(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// A redis-server of the nemesis's own (never the machine's shared one)

/** A redis-server on a free loopback port, nothing on disk; killable and restartable on the same port. */
export class OwnRedis {
  private proc: ChildProcess | undefined;
  private exit: Promise<void> = Promise.resolve();
  private constructor(readonly port: number) {}

  static async start(): Promise<OwnRedis> {
    const r = new OwnRedis(await freePort());
    await r.restart();
    return r;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Resolves once the current process has exited. */
  exited(): Promise<void> {
    return this.exit;
  }

  async restart(): Promise<void> {
    const proc = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'],
      { stdio: 'ignore', detached: true },
    );
    this.proc = proc;
    // In its own process group, as the services are, so a terminal's Ctrl-C reaches only the
    // nemesis, which then stops everything in order. Unlike the services (they leave when their
    // IPC channel closes), redis-server would outlive a nemesis that exits without stopping it:
    // it goes with this process, whatever ends it.
    const orphaned = () => proc.kill('SIGKILL');
    process.once('exit', orphaned);
    this.exit = new Promise((resolve) => {
      proc.once('exit', () => {
        process.off('exit', orphaned);
        resolve();
      });
      proc.once('error', () => resolve());
    });
    const until = Date.now() + 10_000;
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null)
        throw new Error(
          `redis-server on port ${this.port} exited (${proc.exitCode ?? proc.signalCode}) before it answered; is it installed?`,
        );
      if (await pingRedis(this.port)) return;
      if (Date.now() > until) throw new Error(`redis-server on port ${this.port} did not answer PING within 10 s`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** SIGKILL, as an OOM kill would; resolves once it is gone. */
  async kill(): Promise<void> {
    const p = this.proc;
    if (p && p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await this.exit;
  }
}

/** Whether a Redis answers PING on loopback `port` (a raw RESP exchange: no client library retries). */
function pingRedis(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.once('error', () => done(false));
    s.once('connect', () => s.write('PING\r\n'));
    s.once('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}

// ---------------------------------------------------------------------------------------------
// A database of the run's own on the machine's PostgreSQL

export interface OwnDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/** One statement on a PostgreSQL server (CREATE or DROP DATABASE), on a connection of its own. */
export async function pgAdmin(serverUrl: string, sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: serverUrl });
  c.on('error', () => {}); // the query reports its own failure
  try {
    await c.connect();
    await c.query(sql);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** `nemesis_<random>` on `serverUrl`; `drop()` removes it, disconnecting whoever is still connected. */
export async function createOwnDatabase(serverUrl: string): Promise<OwnDatabase> {
  const name = `nemesis_${randomBytes(6).toString('hex')}`;
  await pgAdmin(serverUrl, `CREATE DATABASE ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return { name, url: url.toString(), drop: () => pgAdmin(serverUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

// ---------------------------------------------------------------------------------------------
// The keeper

type ProcState = 'up' | 'down' | 'starting';

/** One process the keeper can kill and start. */
interface Killable {
  start(): Promise<void>;
  kill(): Promise<void>;
  /** Resolves when the process now running exits, with how. */
  exited(): Promise<string>;
  /** Its last output lines, when it has any. */
  output(): string[];
}

const RESTART_WINDOW_MS = 60_000;

class ProcessKeeper implements ProcessControl {
  private readonly state = new Map<string, ProcState>();
  private readonly queue = new Map<string, Promise<unknown>>();
  private readonly generation = new Map<string, number>();
  private stopping = false;
  readonly deaths: Record<string, number> = {};
  readonly unexpectedExits: Array<{ target: string; exit: string; output: string[] }> = [];
  onUp: (target: string) => Promise<void> | void = () => {};

  constructor(
    private readonly procs: Readonly<Record<string, Killable>>,
    private readonly log: (line: string) => void,
  ) {
    for (const t of Object.keys(procs)) {
      this.state.set(t, 'up');
      this.watch(t);
    }
  }

  get targets(): string[] {
    return Object.keys(this.procs);
  }

  isUp(target: string): boolean {
    return this.state.get(target) === 'up';
  }

  down(): string[] {
    return this.targets.filter((t) => this.state.get(t) !== 'up');
  }

  /** Runs `fn` after whatever is queued for `target`: a kill waits for a restart in progress. */
  private serial<T>(target: string, fn: () => Promise<T>): Promise<T> {
    const p = (this.queue.get(target) ?? Promise.resolve()).then(fn, fn);
    this.queue.set(
      target,
      p.catch(() => undefined),
    );
    return p;
  }

  /** Resolves when nothing is queued any more (bounded by the caller). */
  async idle(): Promise<void> {
    await Promise.all([...this.queue.values()]);
  }

  private proc(target: string): Killable {
    const p = this.procs[target];
    if (!p) throw new RangeError(`nothing to kill called ${target} (${this.targets.join(', ')})`);
    return p;
  }

  /** Notices when the process started as generation `g` dies without the nemesis killing it. */
  private watch(target: string): void {
    const g = (this.generation.get(target) ?? 0) + 1;
    this.generation.set(target, g);
    void this.proc(target)
      .exited()
      .then((how) => {
        if (this.stopping || this.generation.get(target) !== g) return;
        this.state.set(target, 'down');
        this.deaths[target] = (this.deaths[target] ?? 0) + 1;
        // A crash fault kills with SIGKILL; any other death is the process falling over by itself.
        if (!how.includes('SIGKILL'))
          this.unexpectedExits.push({ target, exit: how, output: this.proc(target).output().slice(-20) });
        this.log(`${target} died (${how}), not by the nemesis: starting it again`);
        void this.serial(target, () => this.startNow(target)).catch((err: unknown) =>
          this.log(`${target} could not be started again: ${(err as Error).message}`),
        );
      });
  }

  kill(target: string): Promise<'killed' | 'not_up'> {
    const p = this.proc(target);
    return this.serial(target, async () => {
      if (this.stopping || this.state.get(target) !== 'up') return 'not_up' as const;
      // A new generation first, so that the watcher of the old process takes this death for ours.
      this.generation.set(target, (this.generation.get(target) ?? 0) + 1);
      this.state.set(target, 'down');
      await p.kill();
      return 'killed' as const;
    });
  }

  restart(target: string): Promise<void> {
    return this.serial(target, () => this.startNow(target));
  }

  private async startNow(target: string): Promise<void> {
    if (this.stopping || this.state.get(target) === 'up') return;
    this.state.set(target, 'starting');
    const until = Date.now() + RESTART_WINDOW_MS;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.proc(target).start();
        break;
      } catch (err) {
        // A port still held by the dead process's socket, a slow start on a loaded machine: try again.
        if (this.stopping || Date.now() > until) {
          this.state.set(target, 'down');
          throw err;
        }
        this.log(`${target} did not start (attempt ${attempt}): ${(err as Error).message.split('\n')[0]}`);
        await new Promise((r) => setTimeout(r, Math.min(5000, 500 * attempt)));
      }
    }
    this.state.set(target, 'up');
    this.watch(target);
    await this.onUp(target);
  }

  /** No more restarts: the system is being stopped. */
  async quiesce(timeoutMs: number): Promise<void> {
    this.stopping = true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.idle(), new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
  }
}

function managed(get: () => ManagedProcess, start: () => Promise<unknown>, kill: () => Promise<unknown>): Killable {
  return {
    start: async () => void (await start()),
    kill: async () => void (await kill()),
    exited: () => get().exited.then((s: ExitStatus) => describeExit(s)),
    output: () => get().output(),
  };
}

// ---------------------------------------------------------------------------------------------
// Starting a system, or reaching a running one

export interface StartNemesisSystemOptions {
  gateways: number;
  sagaLog: SagaLogKind;
  /** Where the PostgreSQL database is created (sagaLog postgres). */
  postgresServer?: string;
  log: (line: string) => void;
  /** Every line of every process, when wanted (`--verbose`). */
  onLine?: (name: string, line: string) => void;
}

/** The environment of a started system: the switchboard on, NEMESIS_BUDGETS, its own Redis and saga log. */
export function nemesisSystemEnv(dir: string, redisUrl: string, sagaLogUrl: string | undefined): NodeJS.ProcessEnv {
  return {
    ...chaosSystemEnv(dir, 'nemesis'),
    REDIS_URL: redisUrl,
    // Nothing of the caller's environment decides where this system's state goes or who may act.
    SAGA_LOG_URL: sagaLogUrl,
    ADMIN_TOKENS: undefined,
    FAULTS_FILE: undefined,
    CRASH_AT: undefined,
    IDEMPOTENCY_LOCK_TTL: '2s',
    ...Object.fromEntries(Object.entries(NEMESIS_BUDGETS).map(([k, v]) => [k, String(v)])),
  };
}

/** Starts Redis, the database (PostgreSQL), the services and the gateways; undoes what it did when a part fails. */
export async function startNemesisSystem(opts: StartNemesisSystemOptions): Promise<StartedNemesisSystem> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sagas-nemesis-'));
  let redis: OwnRedis | undefined;
  let db: OwnDatabase | undefined;
  let sys: RunningSystem | undefined;
  const cleanup = async () => {
    if (sys) await sys.stop().catch(() => undefined);
    if (redis) await redis.kill().catch(() => undefined);
    if (db)
      await db
        .drop()
        .catch((err: unknown) => opts.log(`could not drop database ${db?.name}: ${(err as Error).message}`));
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    redis = await OwnRedis.start();
    if (opts.sagaLog === 'postgres') {
      db = await createOwnDatabase(opts.postgresServer ?? DEFAULT_POSTGRES_SERVER);
      opts.log(`saga log: PostgreSQL database ${db.name} (dropped at the end)`);
    }
    opts.log(
      `starting a system in ${dir}: ${opts.gateways} gateway(s), saga log ${opts.sagaLog}, its own redis-server on port ${redis.port}`,
    );
    sys = await startSystem({
      dataDir: dir,
      ports: 'ephemeral',
      gateways: opts.gateways,
      env: nemesisSystemEnv(dir, redis.url, db?.url),
      onLine: opts.onLine ? (name, line) => opts.onLine?.(name, line) : undefined,
    });
  } catch (err) {
    await cleanup();
    throw err;
  }
  const running = sys;
  const own = redis;
  const count = opts.gateways;
  const procs: Record<string, Killable> = {};
  for (let i = 0; i < count; i++) {
    procs[gatewayName(i, count)] = managed(
      () => running.gateways[i] as ManagedProcess,
      () => running.restartGateway(i),
      () => running.killGateway(i),
    );
  }
  for (const name of ['order', 'inventory', 'payment'] as const satisfies readonly ServiceName[]) {
    procs[name] = managed(
      () => running.procs[name],
      () => running.restart(name),
      () => running.kill(name),
    );
  }
  procs.redis = {
    start: () => own.restart(),
    kill: () => own.kill(),
    exited: () => own.exited().then(() => 'redis-server exited'),
    output: () => [],
  };
  // redis-server's exit tells no signal here: only its kills by the nemesis are expected.
  const keeper = new ProcessKeeper(procs, opts.log);
  const urls = { api: running.urls, admin: running.adminUrls };
  return {
    mode: 'started',
    control: keeper,
    sagaLog: opts.sagaLog,
    gateways: () =>
      Array.from({ length: count }, (_, i) => {
        const name = gatewayName(i, count);
        return {
          index: i,
          name,
          api: jsonClient(urls.api[i] as string),
          admin: jsonClient(urls.admin[i] as string),
          up: keeper.isUp(name),
        };
      }),
    async stop() {
      await keeper.quiesce(70_000);
      await cleanup();
    },
  };
}

/** A running system, through its APIs only (one gateway's admin listener and the public API). */
export function runningSystem(apiUrl: string, adminUrl: string, token: string | undefined): NemesisEndpoints {
  const api = jsonClient(apiUrl.replace(/\/+$/, ''));
  const admin = jsonClient(adminUrl.replace(/\/+$/, ''), token);
  return { mode: 'running', gateways: () => [{ index: 0, name: 'gateway', api, admin, up: true }] };
}
