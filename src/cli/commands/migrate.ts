/**
 * `sagas migrate`: moves in-flight sagas of one version of a definition to another through the
 * admin API (POST /api/migrations), after a dry run. A real migration is an operator's act: on a
 * terminal it shows the dry run and asks; elsewhere (a script, a pipe) it needs --yes, so that
 * nothing moves sagas without someone having said so.
 */
import { createInterface } from 'node:readline/promises';
import { uuidv7 } from '../../platform/ids.js';
import { parseStepMap } from '../../saga/index.js';
import { ADMIN_ENV_USAGE, ADMIN_EXIT_USAGE, withAdmin, type AdminOk, type AdminRequestBody } from '../admin-client.js';
import { EXIT, UsageError, parseCommandArgs, type Command, type CommandIo } from '../command.js';

/** Lines of sagas printed at most; the counts above them are exact, and --json has them all (up to the API's cap). */
export const MIGRATE_LINES_MAX = 50;

export const MIGRATE_USAGE = `Usage: sagas migrate --definition NAME --from N --to M [--map old=new,...]
                    [--dry-run | --yes] [--note "…"] [--action-id ID] [--limit N] [--json]

Moves the in-flight sagas (RUNNING, COMPENSATING, PARKED) of version N of a saga definition to
version M, saga by saga, through the admin API (POST /api/migrations). A saga moves only when
nothing it has done would be lost or done twice: every step it has completed or is running exists
in version M with the same kind, a step it runs again keeps its name (its idempotency key), and a
saga past its pivot stays past it; the others stay on N, each with a code and a reason. Each moved saga's timeline records it (OPERATOR_ACTION migrate, with your token's
name and the note). Both versions must be registered by the gateway asked.

Without --dry-run or --yes, on a terminal: the dry run is shown first and you are asked to
confirm. Without a terminal, a real migration needs --yes (exit 2 otherwise).
  --definition NAME          the saga definition (e.g. place_order)
  --from N                   the version the sagas run on
  --to M                     the version to move them to
  --map old=new,...          steps renamed in version M (a step not named keeps its name)
  --dry-run                  list what would move and what could not; change nothing (any role)
  --yes                      move without asking (operator role)
  --note TEXT                why (kept in each moved saga's event; at most 1000 characters)
  --action-id ID             the migration's id (default: migrate_<uuid>): the same id again
                             moves no saga twice
  --limit N                  look at N in-flight sagas at most (1-10000, default 10000)
  --json                     the API's answer as JSON (a real one needs --yes)
  -h, --help                 show this text

Codes of a saga that stays: not_in_flight, wrong_version, finishing, step_missing,
kind_changed, reopens_pivot, renamed_replay (the reason says which step).

${ADMIN_ENV_USAGE}
${ADMIN_EXIT_USAGE}`;

type Report = AdminOk<'migrateSagas'>;
type Body = AdminRequestBody<'migrateSagas'>;

/** What `migrate` needs besides the other commands' io: where a confirmation is read from. */
export interface MigrateIo extends CommandIo {
  /** Default process.stdin; asked only when it is a terminal. */
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
}

const positive = (flag: string, raw: string | undefined, max = 1_000_000): number => {
  if (raw === undefined) throw new UsageError(`${flag} is required`);
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < 1 || n > max)
    throw new UsageError(`${flag} must be a whole number from 1 to ${max}, got "${raw}"`);
  return n;
};

/** The report as lines: the counts, the stays by code, then one line per saga (at most `max`). */
export function reportLines(r: Report, max = MIGRATE_LINES_MAX): string[] {
  const ref = `${r.definition}@${r.from}`;
  const movedWord = r.dry_run ? 'would move' : 'moved';
  const out = [
    `${r.dry_run ? 'dry run: ' : ''}${ref} → version ${r.to}: ${r.scanned} saga(s) in flight looked at; ${r.moved} ${movedWord}, ${r.stayed} stay${r.changed > 0 ? `, ${r.changed} changed meanwhile (run it again)` : ''}`,
  ];
  const codes = Object.entries(r.by_code).filter(([, n]) => n > 0);
  if (codes.length > 0) {
    out.push('stay, by code:');
    const w = Math.max(...codes.map(([c]) => c.length));
    for (const [code, n] of codes.sort((a, b) => b[1] - a[1])) out.push(`  ${code.padEnd(w)}  ${n}`);
  }
  const shown = r.items.slice(0, max);
  for (const i of shown) {
    const at = i.from_step ?? 'the end';
    if (i.outcome === 'stay')
      out.push(`  ${i.saga_id}  ${i.status}  stays at ${at}: ${i.code ?? '?'}: ${i.reason ?? ''}`);
    else if (i.outcome === 'changed') out.push(`  ${i.saga_id}  ${i.status}  changed while migrating: run it again`);
    else {
      const notes = [
        i.added.length > 0 ? `runs ${i.added.join(', ')} for the first time` : '',
        i.replayed.length > 0 ? `runs ${i.replayed.join(', ')} again (same keys: no second effect)` : '',
        i.unrun.length > 0 ? `compensates ${i.unrun.join(', ')} it never ran` : '',
      ].filter(Boolean);
      const also = notes.length > 0 ? ` (${notes.join('; ')})` : '';
      out.push(`  ${i.saga_id}  ${i.status}  ${movedWord}: ${at} → ${i.to_step ?? 'the end'}${also}`);
    }
  }
  const more = r.items.length - shown.length + r.items_omitted;
  if (more > 0) out.push(`  … and ${more} more saga(s) (--json lists up to 1000; the console lists them too)`);
  if (r.truncated) out.push(`more in-flight sagas of ${ref} exist past --limit: run it again for them`);
  if (!r.dry_run) out.push(`action id ${r.action_id}`);
  return out;
}

/** Asks on the terminal; true only for an answer starting with y. */
async function confirm(stdin: NodeJS.ReadableStream, out: NodeJS.WritableStream, question: string): Promise<boolean> {
  const rl = createInterface({ input: stdin, output: out, terminal: false });
  try {
    const closed = new Promise<string>((resolve) => rl.once('close', () => resolve('')));
    const answer = await Promise.race([rl.question(question), closed]);
    return /^\s*y(es)?\s*$/i.test(answer);
  } finally {
    rl.close();
  }
}

export const migrateCommand: Command<MigrateIo> = {
  name: 'migrate',
  summary: 'Move in-flight sagas from one version of a definition to another (dry run first), through the admin API',
  usage: MIGRATE_USAGE,
  async run(argv, io) {
    const { values } = parseCommandArgs(
      argv,
      {
        options: {
          definition: { type: 'string' },
          from: { type: 'string' },
          to: { type: 'string' },
          map: { type: 'string' },
          'dry-run': { type: 'boolean' },
          yes: { type: 'boolean' },
          note: { type: 'string' },
          'action-id': { type: 'string' },
          limit: { type: 'string' },
          json: { type: 'boolean' },
        },
      },
      {
        definition: 'a saga definition name',
        from: 'a version number',
        to: 'a version number',
        map: 'old=new,old2=new2',
        note: 'a note',
        'action-id': 'an action id',
        limit: 'a number of sagas, from 1 to 10000',
      },
    );
    const definition = values.definition;
    if (definition === undefined || !/^[A-Za-z0-9_.-]{1,100}$/.test(definition))
      throw new UsageError(
        definition === undefined
          ? '--definition is required (e.g. --definition place_order)'
          : `--definition must be a definition name (letters, digits, _ . -), got "${definition}"`,
      );
    const from = positive('--from', values.from);
    const to = positive('--to', values.to);
    if (from === to) throw new UsageError(`--from and --to are both ${from}: nothing to move`);
    if (values.map !== undefined) {
      try {
        parseStepMap(values.map);
      } catch (err) {
        if (err instanceof RangeError) throw new UsageError(`--map: ${err.message}`);
        throw err;
      }
    }
    const dryRun = values['dry-run'] ?? false;
    const yes = values.yes ?? false;
    if (dryRun && yes) throw new UsageError('--dry-run and --yes: choose one');
    const note = values.note;
    if (note !== undefined && note.length > 1000)
      throw new UsageError(`--note is at most 1000 characters, got ${note.length}`);
    const actionId = values['action-id'] ?? `migrate_${uuidv7()}`;
    if (!/^[\x21-\x7e]{1,100}$/.test(actionId))
      throw new UsageError(`--action-id must be 1-100 printable ASCII characters without spaces, got "${actionId}"`);
    const limit = values.limit === undefined ? undefined : positive('--limit', values.limit, 10_000);
    const json = values.json ?? false;
    const stdin = io.stdin ?? process.stdin;
    const asks = !dryRun && !yes;
    if (asks && json) throw new UsageError('--json with a real migration needs --yes (or use --dry-run)');
    if (asks && stdin.isTTY !== true) {
      io.stderr.write(
        'sagas migrate: a real migration is confirmed on a terminal, and this is not one: pass --yes to migrate (or --dry-run to see what would move); nothing was done\n',
      );
      return EXIT.usage;
    }
    const body = (dry: boolean): Body => ({
      definition,
      from,
      to,
      dry_run: dry,
      action_id: actionId,
      ...(values.map === undefined ? {} : { map: values.map }),
      ...(note === undefined ? {} : { note }),
      ...(limit === undefined ? {} : { limit }),
    });
    const print = (r: Report) => io.stdout.write(`${reportLines(r).join('\n')}\n`);
    if (asks) {
      let planned: Report | undefined;
      const code = await withAdmin(
        'migrate',
        io,
        false,
        (c) => c.migrateSagas(body(true)),
        (r) => {
          planned = r;
          print(r);
        },
      );
      if (code !== EXIT.ok || !planned) return code;
      if (planned.moved === 0) {
        io.stdout.write('nothing would move: nothing done\n');
        return EXIT.ok;
      }
      const ok = await confirm(
        stdin,
        io.stderr,
        `Move ${planned.moved} saga(s) of ${definition}@${from} to version ${to}? [y/N] `,
      );
      if (!ok) {
        io.stdout.write('not confirmed: nothing done\n');
        return EXIT.ok;
      }
    }
    return withAdmin('migrate', io, json, (c) => c.migrateSagas(body(dryRun)), print);
  },
};
