/**
 * `sagas chaos <scenario> [--orders N] [--url <admin url>] [--json]`: rehearses a failure
 * (scenarios/*.yaml) against a running system or one it starts; src/chaos/run.ts does the work.
 * `sagas chaos --nemesis [--duration 5m] [--seed S]`: searches for violations with a seeded
 * schedule of faults, kills and operator actions; src/chaos/nemesis.ts does the work.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseScenario, ScenarioError } from '../../chaos/scenario.js';
import { formatReport, runChaos } from '../../chaos/run.js';
import { NemesisError, runNemesis } from '../../chaos/nemesis.js';
import { BooksCheckError } from '../../chaos/nemesis-books.js';
import { formatNemesisReport } from '../../chaos/nemesis-report.js';
import { parseDuration } from '../../chaos/nemesis-schedule.js';
import { DEFAULT_POSTGRES_SERVER } from '../../chaos/nemesis-system.js';
import { parseGatewayCount, REPO_ROOT } from '../../supervisor/supervisor.js';
import { EXIT, UsageError, parseCommandArgs, type Command, type CommandIo } from '../command.js';

const USAGE = `Usage: sagas chaos <scenario> [--orders N] [--concurrency C] [--url <admin url>] [--api-url <url>] [--seed S] [--json]
       sagas chaos --nemesis [--duration 5m] [--seed S] [--gateways N] [--saga-log sqlite|postgres] [--rate R]
                   [--url <admin url>] [--api-url <url>] [--json] [--verbose]

Rehearses a failure: applies the scenario's fault rules (PUT /api/faults), sends a mix of orders
(happy, declined, short of stock), removes the faults (once the orders are sent, after the
scenario's duration_s, or once every saga has ended: its "until"), waits for every saga to end,
runs the scenario's operator fix (then: retry-parked: the console's retry on every PARKED saga),
checks the invariants (every saga ended, CONFIRMED iff completed, stock and money conserved, one
saga per key) and prints a report: outcomes, retries, recoveries, parked, duration percentiles,
faults fired per rule.

  <scenario>                 a scenario file, or the name of one in scenarios/ (payment-after-effect)
  --orders N                 how many orders (default: the scenario's, else 40)
  --concurrency C            orders in flight at once (default: the scenario's, else 4)
  --url URL                  the admin listener of a running system started with FAULTS_ENABLED=1
                             (default: start one on free ports, FAULTS_ENABLED=1, a temporary
                             DATA_DIR, and restart its gateway when a crash rule kills it)
  --api-url URL              that system's public API (default SAGAS_API_URL, else http://127.0.0.1:8080)
  --seed S                   the load generator's seed (to replay a run)
  --json                     the report as JSON
  -h, --help                 show this text

The nemesis (--nemesis) searches for violations instead of rehearsing one case. For --duration
it sends a seeded mix of orders (happy, declined, out of stock, repeats of an idempotency key
with the same body and with another) while, at instants drawn from the seed, it installs random
transient fault plans (after_effect, uncertain, error, latency up to 5 s, crash; at any step,
action or compensation, or participant method; each rule with a count limit) and removes them,
SIGKILLs a gateway, a participant or Redis and starts it again after a random delay (at times a
participant stays down longer than a step's attempt budget and the saga's deadline; before a
kill, a latency rule often holds sagas at a step so that the kill finds them in flight), and runs
operator actions (retry, compensate) on PARKED sagas. At the end it clears the faults, starts
whatever is down, waits for every saga to settle, retries (or compensates) each PARKED saga as
an operator would, settles again, and checks the books: GET /api/reconcile?settled=1 on the admin
listener (what sagas reconcile --settled prints). It prints the seed
first; the same seed replays the same schedule (the system's own timing varies). The report:
orders by kind and outcome, kills by process, fault plans, faults fired, sagas seen PARKED,
operator actions, and each disagreement with its saga's timeline.

  --nemesis                  run the nemesis (no scenario)
  --duration D               how long the nemesis acts: 90s, 5m, 1h30m (default 5m); settling
                             and the books check come after
  --seed S                   the schedule's seed (default: a random one, printed)
  --gateways N               gateways of the system it starts (default 1; more need --saga-log postgres)
  --saga-log sqlite|postgres the saga log of the system it starts (default sqlite); postgres:
                             a database nemesis_<random> it creates on NEMESIS_POSTGRES_URL and
                             drops at the end
  --rate R                   orders a second (default 10)
  --url, --api-url           a running system (FAULTS_ENABLED=1) instead of one it starts: only
                             faults and operator actions then (its processes are not the nemesis's
                             to kill: a participant "down" is every call to it failing uncertain)
  --verbose                  every line of every process of the system it starts, on stderr

A system the nemesis starts runs on free ports in a temporary DATA_DIR with FAULTS_ENABLED=1,
its own redis-server on a free port (the nemesis kills that one, never the machine's), and
small budgets: 3 attempts a step, 5 a compensation, 1.5 s an attempt, a 10 s saga deadline.

Environment:
  SAGAS_ADMIN_TOKEN          an operator token of the gateway's ADMIN_TOKENS (with --url)
  NEMESIS_POSTGRES_URL       the PostgreSQL server for --saga-log postgres
                             (default ${DEFAULT_POSTGRES_SERVER})

Exit codes:
  0  the invariants hold and the scenario's expectations are met; the nemesis: the books agree
  1  an invariant or an expectation failed, the nemesis found a disagreement, or the system
     could not be reached or started
  2  a wrong command line or scenario file
`;

/** A scenario named on the command line: a path, or a name in scenarios/. */
export function scenarioPath(arg: string): string {
  if (fs.existsSync(arg)) return arg;
  const named = path.join(REPO_ROOT, 'scenarios', arg.endsWith('.yaml') ? arg : `${arg}.yaml`);
  if (fs.existsSync(named)) return named;
  const known = fs.existsSync(path.join(REPO_ROOT, 'scenarios'))
    ? fs
        .readdirSync(path.join(REPO_ROOT, 'scenarios'))
        .filter((f) => f.endsWith('.yaml'))
        .map((f) => f.replace(/\.yaml$/, ''))
    : [];
  throw new UsageError(`no scenario "${arg}": not a file, nor one of scenarios/ (${known.join(', ')})`);
}

function count(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 100_000)
    throw new UsageError(`--${name} must be a whole number from 1 to 100000, got "${v}"`);
  return Number(v);
}

export const chaosCommand: Command = {
  name: 'chaos',
  summary: 'Rehearse a failure (a scenario of scenarios/ under load), or search for one (--nemesis); check the books',
  usage: USAGE,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(
      argv,
      {
        allowPositionals: true,
        options: {
          orders: { type: 'string' },
          concurrency: { type: 'string' },
          url: { type: 'string' },
          'api-url': { type: 'string' },
          seed: { type: 'string' },
          json: { type: 'boolean' },
          nemesis: { type: 'boolean' },
          duration: { type: 'string' },
          gateways: { type: 'string' },
          'saga-log': { type: 'string' },
          rate: { type: 'string' },
          verbose: { type: 'boolean' },
        },
      },
      {
        orders: 'a number of orders',
        concurrency: 'a number',
        url: 'the admin URL',
        'api-url': 'the public URL',
        seed: 'a number',
        duration: 'a duration (90s, 5m)',
        gateways: 'a number of gateways',
        'saga-log': 'sqlite or postgres',
        rate: 'orders a second',
      },
    );
    if (values.nemesis) return runNemesisCommand(values, positionals, io);
    for (const only of ['duration', 'gateways', 'saga-log', 'rate', 'verbose'] as const) {
      if (values[only] !== undefined) throw new UsageError(`--${only} is an option of the nemesis (--nemesis)`);
    }
    if (positionals.length !== 1)
      throw new UsageError(
        positionals.length === 0 ? 'which scenario? give a file or a name in scenarios/' : 'one scenario at a time',
      );
    const file = scenarioPath(positionals[0] as string);
    let scenario;
    try {
      scenario = parseScenario(fs.readFileSync(file, 'utf8'), path.basename(file));
    } catch (err) {
      if (err instanceof ScenarioError) {
        io.stderr.write(`sagas chaos: ${err.message}\n`);
        return EXIT.usage;
      }
      throw err;
    }
    const seed = values.seed === undefined ? undefined : Number(values.seed);
    if (seed !== undefined && !Number.isInteger(seed))
      throw new UsageError(`--seed must be a whole number, got "${values.seed}"`);
    for (const [k, u] of [
      ['url', values.url],
      ['api-url', values['api-url']],
    ] as const) {
      if (u !== undefined && !/^https?:\/\/[^/@]+/.test(u))
        throw new UsageError(`--${k} must be an http(s):// URL, got "${u}"`);
    }
    const json = values.json ?? false;
    try {
      const report = await runChaos(scenario, {
        orders: count('orders', values.orders),
        concurrency: count('concurrency', values.concurrency),
        adminUrl: values.url,
        apiUrl: values['api-url'] ?? (io.env.SAGAS_API_URL?.trim() || 'http://127.0.0.1:8080'),
        token: io.env.SAGAS_ADMIN_TOKEN?.trim() || undefined,
        seed,
        log: json ? undefined : (line) => io.stderr.write(`chaos: ${line}\n`),
      });
      io.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
      return report.ok ? EXIT.ok : EXIT.failure;
    } catch (err) {
      io.stderr.write(`sagas chaos: ${scenario.name}: ${err instanceof Error ? err.message : String(err)}\n`);
      return EXIT.failure;
    }
  },
};

interface NemesisArgs {
  url?: string;
  'api-url'?: string;
  seed?: string;
  json?: boolean;
  duration?: string;
  gateways?: string;
  'saga-log'?: string;
  rate?: string;
  verbose?: boolean;
  orders?: string;
  concurrency?: string;
}

/** `sagas chaos --nemesis …`: the options checked (exit 2 before anything starts), the run, the report. */
async function runNemesisCommand(values: NemesisArgs, positionals: readonly string[], io: CommandIo): Promise<number> {
  if (positionals.length > 0) throw new UsageError(`the nemesis takes no scenario, got "${positionals[0]}"`);
  for (const only of ['orders', 'concurrency'] as const)
    if (values[only] !== undefined)
      throw new UsageError(
        `--${only} is not an option of the nemesis (its load is --rate orders a second for --duration)`,
      );
  const durationMs = parseDuration(values.duration ?? '5m');
  if (durationMs === undefined || durationMs < 1000 || durationMs > 7 * 24 * 3_600_000)
    throw new UsageError(
      `--duration must be a duration from 1s to 7 days such as 90s, 5m or 1h30m, got "${values.duration}"`,
    );
  const seed = values.seed === undefined ? undefined : Number(values.seed);
  if (seed !== undefined && (!/^\d+$/.test(values.seed ?? '') || !Number.isSafeInteger(seed)))
    throw new UsageError(`--seed must be a whole number, got "${values.seed}"`);
  let gateways = 1;
  if (values.gateways !== undefined) {
    try {
      gateways = parseGatewayCount(values.gateways);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  }
  const sagaLog = values['saga-log'] ?? 'sqlite';
  if (sagaLog !== 'sqlite' && sagaLog !== 'postgres')
    throw new UsageError(`--saga-log must be sqlite or postgres, got "${sagaLog}"`);
  if (gateways > 1 && sagaLog !== 'postgres')
    throw new UsageError(`${gateways} gateways share one saga log: add --saga-log postgres`);
  const rate = values.rate === undefined ? undefined : Number(values.rate);
  if (rate !== undefined && (!Number.isFinite(rate) || rate <= 0 || rate > 1000))
    throw new UsageError(`--rate must be a number of orders a second above 0, at most 1000, got "${values.rate}"`);
  for (const [k, u] of [
    ['url', values.url],
    ['api-url', values['api-url']],
  ] as const) {
    if (u !== undefined && !/^https?:\/\/[^/@]+/.test(u))
      throw new UsageError(`--${k} must be an http(s):// URL, got "${u}"`);
  }
  if (values.url !== undefined && (values.gateways !== undefined || values['saga-log'] !== undefined))
    throw new UsageError('--gateways and --saga-log describe a system the nemesis starts: not with --url');
  const json = values.json ?? false;
  // Ctrl-C: stop the run and clean up (processes, database, folder) rather than leave them behind.
  const stop = new AbortController();
  const onSigint = () => stop.abort();
  process.on('SIGINT', onSigint);
  try {
    const report = await runNemesis({
      seed,
      durationMs,
      gateways,
      sagaLog,
      postgresServer: io.env.NEMESIS_POSTGRES_URL?.trim() || undefined,
      ratePerSecond: rate,
      adminUrl: values.url,
      apiUrl: values['api-url'] ?? (io.env.SAGAS_API_URL?.trim() || 'http://127.0.0.1:8080'),
      token: io.env.SAGAS_ADMIN_TOKEN?.trim() || undefined,
      log: (line) => io.stderr.write(`nemesis: ${line}\n`),
      onLine: values.verbose ? (name, line) => io.stderr.write(`[${name}] ${line}\n`) : undefined,
      signal: stop.signal,
    });
    io.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : formatNemesisReport(report));
    return report.ok ? EXIT.ok : EXIT.failure;
  } catch (err) {
    if (err instanceof NemesisError || err instanceof BooksCheckError)
      io.stderr.write(`sagas chaos --nemesis: ${err.message}\n`);
    else io.stderr.write(`sagas chaos --nemesis: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return EXIT.failure;
  } finally {
    process.off('SIGINT', onSigint);
  }
}
