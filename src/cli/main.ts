/**
 * The `sagas` command: a router over one file per command (src/cli/commands/). Run it through
 * bin/sagas.js (or `node --import tsx src/cli/main.ts`).
 *
 *   sagas <command> [options]     sagas help, sagas <command> --help
 *
 * The router owns what every command shares: `--help`, and turning a UsageError or a
 * ConfigError into the message, the usage and exit 2 (src/cli/command.ts says the shape).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../platform/errors.js';
import { EXIT, UsageError, asksForHelp, type Command, type ExitCode } from './command.js';
import { helpCommand } from './commands/help.js';
import { configCommand } from './commands/config.js';
import { inspectCommand } from './commands/inspect.js';
import { startCommand, type StartIo } from './commands/start.js';
import { listCommand } from './commands/list.js';
import { showCommand } from './commands/show.js';
import { retryCommand } from './commands/retry.js';
import { compensateCommand } from './commands/compensate.js';
import { resolveCommand } from './commands/resolve.js';
import { reconcileCommand } from './commands/reconcile.js';
import { chaosCommand } from './commands/chaos.js';
import { healthCommand } from './commands/health.js';
import { certsCommand } from './commands/certs.js';
import { versionsCommand } from './commands/versions.js';
import { migrateCommand } from './commands/migrate.js';
import { bulkCommand } from './commands/bulk.js';

/** Every command, in the order `sagas help` lists them. A new command: import it, list it here. */
export const COMMANDS: readonly Command<StartIo>[] = [
  startCommand,
  listCommand,
  showCommand,
  retryCommand,
  compensateCommand,
  resolveCommand,
  bulkCommand,
  reconcileCommand,
  versionsCommand,
  migrateCommand,
  inspectCommand,
  chaosCommand,
  healthCommand,
  certsCommand,
  configCommand,
];

const help = helpCommand(COMMANDS);
const ROUTES: readonly Command<StartIo>[] = [...COMMANDS, help];

/** What `sagas help` prints. */
export const OVERVIEW = help.overview;

export interface MainDeps {
  env?: NodeJS.ProcessEnv;
  stdout?: NodeJS.WritableStream & { isTTY?: boolean };
  stderr?: NodeJS.WritableStream;
  /** Replace the entry files (tests run fake services this way). */
  entries?: StartIo['entries'];
}

/** Runs the command line (argv without node and the script); resolves with the exit code. */
export async function main(argv: readonly string[], deps: MainDeps = {}): Promise<ExitCode> {
  const io: StartIo = {
    env: deps.env ?? process.env,
    stdout: deps.stdout ?? process.stdout,
    stderr: deps.stderr ?? process.stderr,
    entries: deps.entries,
  };
  const [name, ...rest] = argv;
  if (name === '--help' || name === '-h') {
    io.stdout.write(OVERVIEW);
    return EXIT.ok;
  }
  const command = ROUTES.find((c) => c.name === name);
  if (!command) {
    const why =
      name === undefined
        ? 'no command given'
        : name.startsWith('-')
          ? `the command comes first, got "${name}"`
          : `unknown command "${name}"`;
    io.stderr.write(`sagas: ${why}\n\n${OVERVIEW}`);
    return EXIT.usage;
  }
  if (asksForHelp(rest)) {
    io.stdout.write(command.usage);
    return EXIT.ok;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`sagas ${command.name}: ${err.message}\n\n${command.usage}`);
      return EXIT.usage;
    }
    // The message names the variable and its expected form; the usage would bury it.
    if (err instanceof ConfigError) {
      io.stderr.write(`sagas ${command.name}: ${err.message}\n`);
      return EXIT.usage;
    }
    throw err;
  }
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
      process.exit(EXIT.failure);
    },
  );
}
