/**
 * `sagas help [<command>]`: the overview built from the router's list of commands, or one
 * command's usage.
 */
import { EXIT, UsageError, parseCommandArgs, type Command, type CommandInfo, type CommandIo } from '../command.js';

export interface HelpCommand extends Command {
  /** What `sagas help` and `sagas --help` print. */
  readonly overview: string;
}

/** The `help` command for `commands` (it lists itself after them). */
export function helpCommand(commands: readonly CommandInfo[]): HelpCommand {
  const help: HelpCommand = {
    name: 'help',
    summary: "Show this text, or a command's usage",
    usage: `Usage: sagas help [<command>]

Without a command: the commands and the exit codes. With one: that command's usage, as
sagas <command> --help prints it.
`,
    get overview() {
      return overviewOf([...commands, help]);
    },
    async run(argv: readonly string[], io: CommandIo) {
      const { positionals } = parseCommandArgs(argv, { allowPositionals: true, options: {} });
      if (positionals.length > 1)
        throw new UsageError(`one command at a time, got ${positionals.map((a) => `"${a}"`).join(', ')}`);
      const name = positionals[0];
      if (name === undefined) {
        io.stdout.write(help.overview);
        return EXIT.ok;
      }
      const command = [...commands, help].find((c) => c.name === name);
      if (!command)
        throw new UsageError(
          `unknown command "${name}" (commands: ${[...commands, help].map((c) => c.name).join(', ')})`,
        );
      io.stdout.write(command.usage);
      return EXIT.ok;
    },
  };
  return help;
}

function overviewOf(commands: readonly CommandInfo[]): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return `Usage: sagas <command> [options]

Commands:
${commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

sagas <command> --help (or sagas help <command>) shows a command's options and environment.
The benchmark is not part of sagas: npm run bench -- --help.

Exit codes:
  ${EXIT.ok}  done
  ${EXIT.failure}  the command ran and failed (a process died or could not start, the saga log could
     not be opened, no such saga, the admin API refused or could not be reached)
  ${EXIT.usage}  a wrong command line or configuration (the message says which); nothing was done
  sagas start also exits 130 after a second Ctrl-C, and sagas start <service> with that
  process's own exit code.
`;
}
