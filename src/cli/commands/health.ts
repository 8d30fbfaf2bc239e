/**
 * `sagas health`: is this machine's process (or every process of `sagas start`) ready? It asks
 * each one's readiness endpoint where this environment says the process listens: the gateway's
 * GET /readyz on HTTP_ADDR, a participant's GET /readyz on its METRICS_ADDR. The image's
 * HEALTHCHECK runs it with no name: the one process of the container is the one that answers.
 */
import { ADDRESS_VARIABLES, formatAddr, metricsVariables, type HostPort } from '../../platform/config/config.js';
import { readVariables } from '../../platform/config/config-schema.js';
import { METRICS_PORTS } from '../../services/shared/config.js';
import { dialableAddr } from '../../supervisor/supervisor.js';
import { EXIT, UsageError, parseCommandArgs, type Command } from '../command.js';

const PROCESSES = ['gateway', 'order', 'inventory', 'payment'] as const;
type ProcessName = (typeof PROCESSES)[number];

export const HEALTH_USAGE = `Usage: sagas health [gateway|order|inventory|payment] [--timeout MS]

Asks a process whether it is ready, where this environment says it listens:
  gateway                    GET /readyz on HTTP_ADDR (200 once every participant and the saga
                             log answer)
  order, inventory, payment  GET /readyz on the service's METRICS_ADDR (200 while it serves;
                             503 once it is stopping; METRICS_ADDR=off leaves nothing to ask)
With no name, every process whose address answers must be ready, and at least one must answer:
in a container (the image's HEALTHCHECK) that is its one process; on a machine running
sagas start, all four.
  --timeout MS               how long to wait for each answer (default 3000)
  -h, --help                 show this text

Exit codes:
  0  ready
  1  not ready, or nothing answers (each process's state is printed)
  2  a wrong command line, or an invalid address variable
`;

/** Where a probe goes: an unspecified host (":8080", 0.0.0.0, ::) is asked on loopback. */
function probeUrl(where: HostPort): string {
  return `http://${dialableAddr(formatAddr(where))}/readyz`;
}

function readinessUrl(name: ProcessName, env: NodeJS.ProcessEnv): string | undefined {
  if (name === 'gateway') return probeUrl(readVariables({ HTTP_ADDR: ADDRESS_VARIABLES.HTTP_ADDR }, env).HTTP_ADDR);
  const metrics = readVariables(metricsVariables(`127.0.0.1:${METRICS_PORTS[name]}`), env).METRICS_ADDR;
  return metrics === 'off' ? undefined : probeUrl(metrics);
}

type Probe = { state: 'ready' } | { state: 'not_ready'; status: number } | { state: 'no_answer'; why: string };

async function probe(url: string, timeoutMs: number): Promise<Probe> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    return res.status === 200 ? { state: 'ready' } : { state: 'not_ready', status: res.status };
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    return { state: 'no_answer', why: cause ?? (err instanceof Error ? err.name : 'error') };
  }
}

export const healthCommand: Command = {
  name: 'health',
  summary: "ask a process (or every process) whether it is ready; the image's HEALTHCHECK",
  usage: HEALTH_USAGE,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(
      argv,
      { options: { timeout: { type: 'string' } }, allowPositionals: true, strict: true },
      { timeout: 'milliseconds' },
    );
    if (positionals.length > 1) throw new UsageError(`one process at most, got ${positionals.join(' ')}`);
    const named = positionals[0];
    if (named !== undefined && !PROCESSES.includes(named as ProcessName))
      throw new UsageError(`unknown process "${named}" (gateway, order, inventory or payment)`);
    const timeoutMs = values.timeout === undefined ? 3000 : Number(values.timeout);
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 60_000)
      throw new UsageError(`--timeout must be a whole number of milliseconds from 1 to 60000, got ${values.timeout}`);

    const names = named ? [named as ProcessName] : [...PROCESSES];
    // Several names may share one address (METRICS_ADDR set once for a container): ask it once.
    const byUrl = new Map<string, ProcessName[]>();
    const unprobed: ProcessName[] = [];
    for (const n of names) {
      const url = readinessUrl(n, io.env);
      if (url === undefined) unprobed.push(n);
      else byUrl.set(url, [...(byUrl.get(url) ?? []), n]);
    }
    const results = await Promise.all(
      [...byUrl].map(async ([url, who]) => ({ url, who, probe: await probe(url, timeoutMs) })),
    );
    for (const n of unprobed) io.stdout.write(`${n}: not asked (METRICS_ADDR=off)\n`);
    for (const { url, who, probe: p } of results) {
      const said =
        p.state === 'ready'
          ? 'ready'
          : p.state === 'not_ready'
            ? `not ready (HTTP ${p.status})`
            : `no answer (${p.why})`;
      io.stdout.write(`${who.join('/')}: ${said}  ${url}\n`);
    }
    const answered = results.filter((r) => r.probe.state !== 'no_answer');
    const ok = named
      ? results.length === 1 && results[0]?.probe.state === 'ready'
      : answered.length > 0 && answered.every((r) => r.probe.state === 'ready');
    return ok ? EXIT.ok : EXIT.failure;
  },
};
