/**
 * `sagas chaos <scenario> [--orders N] [--url <admin url>] [--json]`: rehearses a failure
 * (scenarios/*.yaml) against a running system or one it starts; src/chaos/run.ts does the work.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseScenario, ScenarioError } from '../../chaos/scenario.js';
import { formatReport, runChaos } from '../../chaos/run.js';
import { REPO_ROOT } from '../supervisor.js';
import { EXIT, UsageError, parseCommandArgs, type Command } from '../command.js';

const USAGE = `Usage: sagas chaos <scenario> [--orders N] [--concurrency C] [--url <admin url>] [--api-url <url>] [--seed S] [--json]

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

Environment:
  SAGAS_ADMIN_TOKEN          an operator token of the gateway's ADMIN_TOKENS (with --url)

Exit codes:
  0  the invariants hold and the scenario's expectations are met
  1  an invariant or an expectation failed, or the system could not be reached or started
  2  a wrong command line or scenario file
`;

/** A scenario named on the command line: a path, or a name in scenarios/. */
export function scenarioPath(arg: string): string {
  if (fs.existsSync(arg)) return arg;
  const named = path.join(REPO_ROOT, 'scenarios', arg.endsWith('.yaml') ? arg : `${arg}.yaml`);
  if (fs.existsSync(named)) return named;
  const known = fs.existsSync(path.join(REPO_ROOT, 'scenarios')) ? fs.readdirSync(path.join(REPO_ROOT, 'scenarios')).filter((f) => f.endsWith('.yaml')).map((f) => f.replace(/\.yaml$/, '')) : [];
  throw new UsageError(`no scenario "${arg}": not a file, nor one of scenarios/ (${known.join(', ')})`);
}

function count(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 100_000) throw new UsageError(`--${name} must be a whole number from 1 to 100000, got "${v}"`);
  return Number(v);
}

export const chaosCommand: Command = {
  name: 'chaos',
  summary: 'Rehearse a failure: run a fault scenario of scenarios/ under load, check the invariants',
  usage: USAGE,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(
      argv,
      {
        allowPositionals: true,
        options: { orders: { type: 'string' }, concurrency: { type: 'string' }, url: { type: 'string' }, 'api-url': { type: 'string' }, seed: { type: 'string' }, json: { type: 'boolean' } },
      },
      { orders: 'a number of orders', concurrency: 'a number', url: 'the admin URL', 'api-url': 'the public URL', seed: 'a number' },
    );
    if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'which scenario? give a file or a name in scenarios/' : 'one scenario at a time');
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
    if (seed !== undefined && !Number.isInteger(seed)) throw new UsageError(`--seed must be a whole number, got "${values.seed}"`);
    for (const [k, u] of [['url', values.url], ['api-url', values['api-url']]] as const) {
      if (u !== undefined && !/^https?:\/\/[^/@]+/.test(u)) throw new UsageError(`--${k} must be an http(s):// URL, got "${u}"`);
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
