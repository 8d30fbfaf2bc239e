/**
 * The shape every `sagas` command has: the router (src/cli/main.ts) finds a command by name,
 * gives it the arguments after its name, and exits with what `run` resolves to.
 */

/** Documented exit codes of every command (README, `sagas help`). */
export const EXIT = {
  ok: 0,
  /** The command ran and failed (a process died, a saga log unreachable, a saga not found...). */
  failure: 1,
  /** The command line or the configuration is wrong; nothing was done. */
  usage: 2,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT] | number;

export interface CommandIo {
  env: NodeJS.ProcessEnv;
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream;
}

export interface Command<Io extends CommandIo = CommandIo> {
  name: string;
  /** One line for `sagas help`. */
  summary: string;
  /** The full text `sagas <name> --help` prints. */
  usage: string;
  /** Runs with the arguments after the command's name; resolves with the exit code. */
  run(argv: readonly string[], io: Io): Promise<ExitCode>;
}

/** A command line a command cannot run: the router prints it with the command's usage, exit 2. */
export class UsageError extends Error {
  readonly code = 'usage';
}
