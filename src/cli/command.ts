/**
 * The shape every `sagas` command has: the router (src/cli/main.ts) finds a command by name,
 * answers `--help` with its usage, gives it the arguments after its name, and exits with what
 * `run` resolves to. A command reads its arguments with `parseCommandArgs` and throws
 * `UsageError` for a command line it cannot run; the router prints that with the usage (exit 2).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** Documented exit codes of every command (docs/cli.md, `sagas help`). */
export const EXIT = {
  ok: 0,
  /** The command ran and failed (a process died, a saga log unreachable, a saga not found...). */
  failure: 1,
  /** The command line or the configuration is wrong; nothing was done. */
  usage: 2,
} as const;

/** One of EXIT, or a code a command passes through (`sagas start <service>`: the process's own). */
export type ExitCode = number;

export interface CommandIo {
  env: NodeJS.ProcessEnv;
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream;
}

export interface Command<Io extends CommandIo = CommandIo> {
  name: string;
  /** One line for `sagas help`. */
  summary: string;
  /** The full text `sagas <name> --help` and `sagas help <name>` print. */
  usage: string;
  /** Runs with the arguments after the command's name; resolves with the exit code. */
  run(argv: readonly string[], io: Io): Promise<ExitCode>;
}

/** What the router and `sagas help` know of a command without running it. */
export type CommandInfo = Pick<Command, 'name' | 'summary' | 'usage'>;

/** A command line a command cannot run: the router prints it with the command's usage, exit 2. */
export class UsageError extends Error {
  readonly code = 'usage';
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** `--help` / `-h` before a `--`: the router answers it for every command, whatever else is there. */
export function asksForHelp(argv: readonly string[]): boolean {
  for (const a of argv) {
    if (a === '--') return false;
    if (a === '--help' || a === '-h') return true;
  }
  return false;
}

/** What a string option's value is, for the message when it is missing: `{ gateways: 'a number of gateways' }`. */
export type ValueHints = Readonly<Record<string, string>>;

/**
 * `node:util` parseArgs, always strict (an unknown option, a missing value or an unexpected
 * positional is an error), its errors turned into a UsageError that names the argument.
 */
export function parseCommandArgs<T extends ParseArgsConfig & { strict?: true; tokens?: false }>(
  argv: readonly string[],
  config: T,
  hints: ValueHints = {},
): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs<T>({ ...config, args: [...argv] });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (typeof code !== 'string' || !code.startsWith('ERR_PARSE_ARGS_')) throw err;
    throw new UsageError(describeParseError(code, argv, config, hints) ?? (err as Error).message);
  }
}

/**
 * Node's messages name the option but explain `--` quoting at length; this names the argument
 * and what was expected. Re-reads the line leniently to find the culprit: undefined when it
 * cannot (the caller then uses Node's message).
 */
function describeParseError(
  code: string,
  argv: readonly string[],
  config: ParseArgsConfig,
  hints: ValueHints,
): string | undefined {
  const options = config.options ?? {};
  const { tokens } = parseArgs({ args: [...argv], options, allowPositionals: true, strict: false, tokens: true });
  for (const t of tokens) {
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && t.kind === 'option' && !Object.hasOwn(options, t.name))
      return `unknown option "${t.rawName}"`;
    if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL' && t.kind === 'positional')
      return `unexpected argument "${t.value}"`;
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && t.kind === 'option') {
      const type = options[t.name]?.type;
      if (type === 'boolean' && t.value !== undefined) return `${t.rawName} takes no value, got "${t.value}"`;
      // Lenient parsing takes `--gateways -1` as a value where strict parsing calls it ambiguous.
      if (type === 'string' && (t.value === undefined || (!t.inlineValue && t.value.startsWith('-')))) {
        const got = t.value === undefined ? '' : `, got "${t.value}"`;
        return `${t.rawName} needs ${hints[t.name] ?? 'a value'}${got}`;
      }
    }
  }
  return undefined;
}
