/**
 * Hosts made of Linux network namespaces, for the tests that place each process on an address of
 * its own (test/hosts, `npm run test:hosts`). A lab is one namespace per host and a hub namespace
 * that routes between them: each host has one veth pair to the hub, a /30 of 198.51.100.0/24 (a
 * documentation range) on it, and a route to that /24 through the hub — no default route, no NAT,
 * no link to the machine's own namespace or interfaces, IPv6 off. Forwarding is switched on in the
 * hub only, and a partition is a pair of iptables DROP rules in the hub's FORWARD chain.
 *
 * Everything is named with the `sgh-` prefix and kept under /tmp/sgh-hosts, so that what a crashed
 * run left behind (namespaces, the processes still inside them, their files) is found and removed
 * at the start of the next one. A lab also removes itself on SIGINT, SIGTERM and on the process's
 * exit, when the test body never reached its own `destroy()`.
 */
import { execFile, execFileSync, fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { serviceV8Flags } from '../../src/supervisor/supervisor.js';

const run = promisify(execFile);

/** Every namespace, interface comment and folder of these tests starts with it. */
export const PREFIX = 'sgh-';
/** The only addresses a lab uses. */
export const SUBNET = '198.51.100.0/24';
/** Where runs keep their files; a run's own folder is below it. */
export const STATE_ROOT = '/tmp/sgh-hosts';
const OWNER_FILE = path.join(STATE_ROOT, 'owner.pid');
const HUB = `${PREFIX}hub`;
/** The hub's chains: FORWARD jumps to the cuts (DROP rules), then the counters, then accepts the lab's subnet. */
const CUTS = `${PREFIX}cuts`;
const COUNTS = `${PREFIX}counts`;
/** 198.51.100.0/24 in /30s: host i (0-based) gets .4i+1 (its hub side) and .4i+2 (itself). */
const MAX_HOSTS = 63;
const HOST_NAME = /^[a-z][a-z0-9]{0,9}$/;

/** The command lines the lab runs, resolved once (sbin is not on every PATH). */
function tool(name: 'ip' | 'iptables'): string {
  for (const dir of ['/usr/sbin', '/sbin', '/usr/bin', '/bin']) {
    const p = path.join(dir, name);
    if (fs.existsSync(p)) return p;
  }
  return name;
}
/** The `ip` command (iproute2). */
export const IP = tool('ip');
const IPTABLES = tool('iptables');

async function sh(cmd: string, args: readonly string[]): Promise<string> {
  try {
    const { stdout } = await run(cmd, args, { timeout: 30_000 });
    return stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`, { cause: err });
  }
}

/** The same, synchronously, ignoring failure: for the cleanup on a signal or at exit. */
function shSync(cmd: string, args: readonly string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 15_000 });
  } catch {
    return '';
  }
}

/**
 * Why namespaces cannot be made here (the reason a hosts test skips with), or undefined when a
 * probe namespace with iptables inside it could be made and removed.
 */
export async function whyNoNamespaces(): Promise<string | undefined> {
  if (process.platform !== 'linux') return `network namespaces are Linux's; this is ${process.platform}`;
  if (process.getuid?.() !== 0)
    return 'making network namespaces (ip netns add) needs root; run npm run test:hosts as root';
  for (const [cmd, args, pkg] of [
    [IP, ['-V'], 'iproute2'],
    [IPTABLES, ['-V'], 'iptables'],
  ] as const) {
    try {
      await run(cmd, [...args]);
    } catch {
      return `${path.basename(cmd)} is missing (install Debian's ${pkg}: apt-get install -y ${pkg})`;
    }
  }
  const probe = `${PREFIX}probe-${process.pid}`;
  try {
    await sh(IP, ['netns', 'add', probe]);
    await sh(IP, ['netns', 'exec', probe, IPTABLES, '-S', 'FORWARD']);
    return undefined;
  } catch (err) {
    return `a network namespace with iptables inside could not be made: ${(err as Error).message}`;
  } finally {
    shSync(IP, ['netns', 'del', probe]);
  }
}

function ourNamespaces(): string[] {
  return shSync(IP, ['netns', 'list'])
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n.startsWith(PREFIX));
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Kills what runs inside the namespaces of the lab (every process there is one a hosts test
 * started, found by its namespace, killed by its id) and removes them, hosts first, the hub last.
 */
function removeNamespaces(names: readonly string[]): void {
  for (const ns of names) {
    for (const pid of shSync(IP, ['netns', 'pids', ns]).split(/\s+/).filter(Boolean).map(Number)) {
      if (Number.isInteger(pid) && pid > 1 && pid !== process.pid) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone already */
        }
      }
    }
  }
  for (const ns of [...names].sort((a, b) => Number(a === HUB) - Number(b === HUB))) shSync(IP, ['netns', 'del', ns]);
}

/**
 * Removes what an earlier run left (it crashed, or was killed with SIGKILL) and claims the lab for
 * this process; refuses while another live process holds it (two runs at once would cut each
 * other's links).
 */
function claim(): void {
  fs.mkdirSync(STATE_ROOT, { recursive: true, mode: 0o711 });
  fs.chmodSync(STATE_ROOT, 0o711);
  const owner = fs.existsSync(OWNER_FILE) ? Number(fs.readFileSync(OWNER_FILE, 'utf8').trim()) : NaN;
  if (Number.isInteger(owner) && owner !== process.pid && pidAlive(owner))
    throw new Error(`another hosts test (pid ${owner}) holds the ${PREFIX}* namespaces; wait for it to end`);
  const left = ourNamespaces();
  if (left.length > 0) {
    console.log(`# removing ${left.length} namespace(s) left by an earlier run: ${left.join(', ')}`);
    removeNamespaces(left);
  }
  for (const f of fs.readdirSync(STATE_ROOT))
    if (f.startsWith('run-')) fs.rmSync(path.join(STATE_ROOT, f), { recursive: true, force: true });
  fs.writeFileSync(OWNER_FILE, String(process.pid));
}

export interface NsProcess {
  readonly name: string;
  readonly host: string;
  readonly pid: number;
  /** What the ready message said: where it listens. */
  readonly address: string;
  readonly adminAddress: string | undefined;
  readonly metricsAddress: string | undefined;
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly running: boolean;
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<void>;
  /** The last lines it wrote (stdout and stderr, interleaved). */
  output(limit?: number): string[];
}

export interface SpawnInOptions {
  /** The child's whole environment. */
  env: NodeJS.ProcessEnv;
  args?: string[];
  /** node flags before the entry (default: source maps and the V8 flags the supervisor gives a process of that name). */
  nodeArgs?: string[];
  readyTimeoutMs?: number;
  /** Every line, as it comes (E2E_LOGS=1 prints them). */
  onLine?: (name: string, line: string) => void;
}

interface ReadyMessage {
  type: 'ready';
  address: string;
  admin?: unknown;
  metrics?: unknown;
}

function isReady(m: unknown): m is ReadyMessage {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'ready';
}

export class Lab {
  /** This run's folder (0711, under STATE_ROOT): data folders, sockets, the PostgreSQL cluster. */
  readonly dir: string;
  private readonly procs = new Set<NsProcess>();
  private readonly cuts = new Set<string>();
  private destroyed = false;
  private readonly onSignal = (sig: NodeJS.Signals) => {
    console.error(`# ${sig}: removing the hosts test's namespaces`);
    this.destroySync();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  private readonly onExit = () => this.destroySync();
  /** Run just before the namespaces go (stopping a server cleanly), on every path out. */
  private readonly beforeRemoval: Array<() => void> = [];

  private constructor(
    readonly hosts: readonly string[],
    private readonly index: ReadonlyMap<string, number>,
  ) {
    this.dir = fs.mkdtempSync(path.join(STATE_ROOT, 'run-'));
    fs.chmodSync(this.dir, 0o711);
    process.once('SIGINT', this.onSignal);
    process.once('SIGTERM', this.onSignal);
    process.once('exit', this.onExit);
  }

  /**
   * Makes the hub and one namespace per host (names of 1-10 lower-case letters and digits), in
   * that order of addresses. Removes an earlier run's leftovers first. On any failure, whatever
   * was made is removed before the error is thrown.
   */
  static async create(hosts: readonly string[]): Promise<Lab> {
    if (new Set(hosts).size !== hosts.length) throw new Error(`host names repeat: ${hosts.join(', ')}`);
    if (hosts.length > MAX_HOSTS) throw new Error(`at most ${MAX_HOSTS} hosts, got ${hosts.length}`);
    for (const h of hosts) if (!HOST_NAME.test(h) || h === 'hub') throw new Error(`bad host name "${h}"`);
    claim();
    const lab = new Lab(hosts, new Map(hosts.map((h, i) => [h, i])));
    try {
      await lab.build();
      return lab;
    } catch (err) {
      lab.destroySync();
      throw err;
    }
  }

  /** The namespace of `host`. */
  ns(host: string): string {
    this.indexOf(host);
    return `${PREFIX}${host}`;
  }

  /** The address of `host` (its end of its veth pair). */
  addr(host: string): string {
    return `198.51.100.${4 * this.indexOf(host) + 2}`;
  }

  private hubAddr(host: string): string {
    return `198.51.100.${4 * this.indexOf(host) + 1}`;
  }

  private indexOf(host: string): number {
    const i = this.index.get(host);
    if (i === undefined) throw new Error(`no host "${host}" in this lab (${this.hosts.join(', ')})`);
    return i;
  }

  private async build(): Promise<void> {
    const inNs = (ns: string, ...args: string[]) => sh(IP, ['netns', 'exec', ns, ...args]);
    const quiet = (ns: string) =>
      // IPv6 off: only the lab's IPv4 /30s carry anything, no link-local chatter.
      inNs(ns, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1');
    await sh(IP, ['netns', 'add', HUB]);
    await quiet(HUB);
    await sh(IP, ['-n', HUB, 'link', 'set', 'lo', 'up']);
    await inNs(HUB, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1');
    // Only the lab's own addresses are forwarded (there is nothing else, but say so), after the
    // partitions' DROP rules and the counters.
    await inNs(HUB, IPTABLES, '-N', CUTS);
    await inNs(HUB, IPTABLES, '-N', COUNTS);
    await inNs(HUB, IPTABLES, '-P', 'FORWARD', 'DROP');
    await inNs(HUB, IPTABLES, '-A', 'FORWARD', '-j', CUTS);
    await inNs(HUB, IPTABLES, '-A', 'FORWARD', '-j', COUNTS);
    await inNs(HUB, IPTABLES, '-A', 'FORWARD', '-s', SUBNET, '-d', SUBNET, '-j', 'ACCEPT');
    for (const host of this.hosts) {
      const ns = this.ns(host);
      await sh(IP, ['netns', 'add', ns]);
      await quiet(ns);
      // Made directly inside the two namespaces: the pair never exists in the machine's own.
      await sh(IP, ['link', 'add', `v-${host}`, 'netns', HUB, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      await sh(IP, ['-n', HUB, 'addr', 'add', `${this.hubAddr(host)}/30`, 'dev', `v-${host}`]);
      await sh(IP, ['-n', HUB, 'link', 'set', `v-${host}`, 'up']);
      await sh(IP, ['-n', ns, 'addr', 'add', `${this.addr(host)}/30`, 'dev', 'eth0']);
      await sh(IP, ['-n', ns, 'link', 'set', 'eth0', 'up']);
      await sh(IP, ['-n', ns, 'link', 'set', 'lo', 'up']);
      await sh(IP, ['-n', ns, 'route', 'add', SUBNET, 'via', this.hubAddr(host), 'dev', 'eth0']);
    }
  }

  /** Runs a command inside `host`'s namespace; its stdout. */
  exec(host: string, cmd: string, args: readonly string[]): Promise<string> {
    return sh(IP, ['netns', 'exec', this.ns(host), cmd, ...args]);
  }

  private cutRule(a: string, b: string): string[] {
    return ['-s', this.addr(a), '-d', this.addr(b), '-j', 'DROP'];
  }

  /**
   * Cuts `a` from `b`, both ways: every packet between them is dropped in the hub (a silent
   * partition: no refusal, no reset; a connection open across it hangs until the cut heals).
   */
  async cut(a: string, b: string): Promise<void> {
    const key = [a, b].sort().join('|');
    if (this.cuts.has(key)) return;
    await sh(IP, ['netns', 'exec', HUB, IPTABLES, '-A', CUTS, ...this.cutRule(a, b)]);
    await sh(IP, ['netns', 'exec', HUB, IPTABLES, '-A', CUTS, ...this.cutRule(b, a)]);
    this.cuts.add(key);
  }

  /** Heals a cut made by `cut(a, b)`. */
  async heal(a: string, b: string): Promise<void> {
    const key = [a, b].sort().join('|');
    if (!this.cuts.has(key)) return;
    await sh(IP, ['netns', 'exec', HUB, IPTABLES, '-D', CUTS, ...this.cutRule(a, b)]);
    await sh(IP, ['netns', 'exec', HUB, IPTABLES, '-D', CUTS, ...this.cutRule(b, a)]);
    this.cuts.delete(key);
  }

  /**
   * Starts counting the packets from `from` to each of `to` whose IP length is at least
   * `minLength` (a call carries a request; a bare ACK or a keepalive ping is shorter). Read with
   * `packets(name)`.
   */
  async count(name: string, from: string, to: readonly string[], minLength: number): Promise<void> {
    for (const t of to)
      await sh(IP, [
        'netns',
        'exec',
        HUB,
        IPTABLES,
        '-A',
        COUNTS,
        '-s',
        this.addr(from),
        '-d',
        this.addr(t),
        '-m',
        'length',
        '--length',
        `${minLength}:65535`,
        '-m',
        'comment',
        '--comment',
        `${PREFIX}count:${name}`,
      ]);
  }

  /** The packets counted under `name` so far. */
  async packets(name: string): Promise<number> {
    const out = await sh(IP, ['netns', 'exec', HUB, IPTABLES, '-L', COUNTS, '-nvx']);
    return out
      .split('\n')
      .filter((l) => l.includes(`/* ${PREFIX}count:${name} */`))
      .reduce((sum, l) => sum + Number(l.trim().split(/\s+/)[0]), 0);
  }

  /**
   * Forks `node <entry>` inside `host`'s namespace (`ip netns exec` runs node in place, so the pid
   * and the IPC channel are the child's own), and resolves once it sends the `ready` message of
   * src/platform/process/lifecycle.ts. It exits when this process dies (its IPC channel closes).
   */
  spawn(host: string, name: string, entry: string, opts: SpawnInOptions): Promise<NsProcess> {
    const lines: string[] = [];
    const child = fork(entry, opts.args ?? [], {
      execPath: IP,
      execArgv: [
        'netns',
        'exec',
        this.ns(host),
        process.execPath,
        ...(opts.nodeArgs ?? ['--enable-source-maps', ...serviceV8Flags(name)]),
      ],
      env: opts.env,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      // Its own session: a terminal's Ctrl-C reaches this process, which removes the lab.
      detached: true,
    });
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
        lines.push(line);
        if (lines.length > 300) lines.splice(0, lines.length - 300);
        opts.onLine?.(name, line);
      });
    }
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    const running = () => child.exitCode === null && child.signalCode === null;
    const stop = async (signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000) => {
      if (running()) child.kill(signal);
      let timer: NodeJS.Timeout | undefined;
      const late = await Promise.race([
        exited.then(() => false),
        new Promise<boolean>((r) => (timer = setTimeout(() => r(true), timeoutMs))),
      ]);
      clearTimeout(timer);
      if (late && running()) {
        child.kill('SIGKILL');
        await exited;
      }
    };
    const output = (limit = lines.length) => lines.slice(-limit);
    return new Promise<NsProcess>((resolve, reject) => {
      const timer = setTimeout(() => {
        void stop('SIGKILL');
        reject(
          new Error(
            `${name} on ${host} was not ready within ${opts.readyTimeoutMs ?? 30_000} ms:\n${output(30).join('\n')}`,
          ),
        );
      }, opts.readyTimeoutMs ?? 30_000);
      void exited.then((s) => {
        clearTimeout(timer);
        reject(
          new Error(`${name} on ${host} exited (${s.signal ?? s.code}) before it was ready:\n${output(30).join('\n')}`),
        );
      });
      child.on('message', (m: unknown) => {
        if (!isReady(m)) return;
        clearTimeout(timer);
        const p: NsProcess = {
          name,
          host,
          pid: child.pid as number,
          address: m.address,
          adminAddress: typeof m.admin === 'string' ? m.admin : undefined,
          metricsAddress: typeof m.metrics === 'string' ? m.metrics : undefined,
          child,
          exited,
          get running() {
            return running();
          },
          stop,
          output,
        };
        this.procs.add(p);
        void exited.then(() => this.procs.delete(p));
        resolve(p);
      });
    });
  }

  /** Runs `fn` on every way out (the normal one, a failure, a signal), before the namespaces go. */
  atRemoval(fn: () => void): void {
    this.beforeRemoval.push(fn);
  }

  /** Stops the processes started here (SIGTERM, then SIGKILL), then removes everything. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    await Promise.all([...this.procs].map((p) => p.stop('SIGTERM', 5_000)));
    this.destroySync();
  }

  /**
   * Removes the lab at once, synchronously (it runs in signal and exit handlers): the servers'
   * own clean-ups, then every process left in its namespaces (SIGKILL), the namespaces (their
   * veth pairs and iptables rules go with them), this run's folder and the claim.
   */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
    process.off('exit', this.onExit);
    for (const fn of this.beforeRemoval.splice(0).reverse()) {
      try {
        fn();
      } catch {
        /* the namespaces go anyway */
      }
    }
    removeNamespaces([...this.hosts.map((h) => `${PREFIX}${h}`), HUB]);
    fs.rmSync(this.dir, { recursive: true, force: true });
    try {
      if (Number(fs.readFileSync(OWNER_FILE, 'utf8').trim()) === process.pid) fs.rmSync(OWNER_FILE);
    } catch {
      /* not ours, or gone */
    }
  }

  /** Whether anything of this lab is still there (for the test that checks the clean-up). */
  static leftovers(): string[] {
    return ourNamespaces();
  }
}
