/**
 * `sagas config`: the configuration each process would run with in this environment — every
 * variable it reads, its effective value and whether that came from the environment or is the
 * default — with secrets redacted, and every invalid variable named at once.
 */
import { resolveVariables, type Setting, type Variables } from '../../platform/config/config-schema.js';
import type { InvalidVariable } from '../../platform/errors.js';
import { GATEWAY_VARIABLES } from '../../gateway/config.js';
import { ORDER_VARIABLES } from '../../services/order/config.js';
import { INVENTORY_VARIABLES } from '../../services/inventory/config.js';
import { PAYMENT_VARIABLES } from '../../services/payment/config.js';
import { EXIT, UsageError, parseCommandArgs, type Command } from '../command.js';

/** Each process's schema, in the order `sagas config` shows them. */
export const PROCESS_VARIABLES: Readonly<Record<string, Variables>> = {
  gateway: GATEWAY_VARIABLES,
  order: ORDER_VARIABLES,
  inventory: INVENTORY_VARIABLES,
  payment: PAYMENT_VARIABLES,
};

const PROCESSES = Object.keys(PROCESS_VARIABLES);

export const CONFIG_USAGE = `Usage: sagas config [gateway|order|inventory|payment] [--json]

Shows the configuration each process would start with in this environment: every variable it
reads, its effective value, and whether the value comes from the environment (env) or is the
default. Secrets are redacted: passwords in SAGA_LOG_URL and REDIS_URL, the values of
OTEL_EXPORTER_OTLP_HEADERS. (sagas start also sets DATA_DIR and the addresses of the processes
it starts.)
  sagas config              all four processes
  sagas config payment      one process
  --json                    machine-readable output
  -h, --help                show this text

Exit codes:
  0  every shown configuration is valid
  2  a wrong command line, or an invalid configuration (each invalid variable is named with
     the form it must have)
`;

interface ProcessReport {
  process: string;
  valid: boolean;
  variables: (Setting & { valid: boolean })[];
  invalid: InvalidVariable[];
}

function report(name: string, env: NodeJS.ProcessEnv): ProcessReport {
  const r = resolveVariables(PROCESS_VARIABLES[name] as Variables, env);
  const bad = new Set(r.invalid.map((i) => i.variable));
  return {
    process: name,
    valid: r.invalid.length === 0,
    variables: r.settings.map((s) => ({ ...s, valid: !bad.has(s.variable) })),
    invalid: r.invalid,
  };
}

function describeInvalid(i: InvalidVariable): string {
  return `${i.variable}: expected ${i.expected}${i.got === undefined ? '' : `, got ${JSON.stringify(i.got)}`}`;
}

function table(r: ProcessReport): string {
  const rows = r.variables.map((v) => [v.variable, v.value ?? '(unset)', v.valid ? v.source : `${v.source}, INVALID`]);
  const width = (i: number) => Math.max(...rows.map((row) => (row[i] as string).length));
  const [w0, w1] = [width(0), width(1)];
  const lines = rows.map(
    ([name, value, source]) => `  ${(name as string).padEnd(w0)}  ${(value as string).padEnd(w1)}  ${source}`,
  );
  return `${r.process}${r.valid ? '' : ' (invalid)'}\n${lines.join('\n')}\n`;
}

export const configCommand: Command = {
  name: 'config',
  summary: 'Show the effective configuration of each process (secrets redacted), or what is invalid in it',
  usage: CONFIG_USAGE,
  async run(argv, io) {
    // The router answers --help before run; a direct caller (a test) gets it here too.
    const { values, positionals } = parseCommandArgs(argv, {
      allowPositionals: true,
      options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    });
    if (values.help) {
      io.stdout.write(CONFIG_USAGE);
      return EXIT.ok;
    }
    if (positionals.length > 1)
      throw new UsageError(`one process at a time, got ${positionals.map((p) => `"${p}"`).join(', ')}`);
    const only = positionals[0];
    if (only !== undefined && !PROCESSES.includes(only))
      throw new UsageError(`unknown process "${only}": expected one of ${PROCESSES.join(', ')}`);

    const reports = (only === undefined ? PROCESSES : [only]).map((name) => report(name, io.env));
    const valid = reports.every((r) => r.valid);
    if (values.json) {
      io.stdout.write(`${JSON.stringify({ valid, processes: reports }, null, 2)}\n`);
    } else {
      io.stdout.write(reports.map(table).join('\n'));
      for (const r of reports.filter((x) => !x.valid)) {
        io.stderr.write(
          `sagas config: invalid configuration of ${r.process}: ${r.invalid.map(describeInvalid).join('; ')}\n`,
        );
      }
    }
    return valid ? EXIT.ok : EXIT.usage;
  },
};
