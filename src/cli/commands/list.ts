/** `sagas list`: the newest sagas and the counts per status, from the admin API. */
import { SAGA_STATUSES } from '../../saga/index.js';
import { ADMIN_ENV_USAGE, ADMIN_EXIT_USAGE, summaryLine, withAdmin } from '../admin-client.js';
import { UsageError, parseCommandArgs, type Command } from '../command.js';

export const LIST_USAGE = `Usage: sagas list [--status S] [--stuck] [--limit N] [--json]

Lists sagas, newest first, with the count of each status, through the gateway's admin API
(GET /api/sagas). For a saga log with no gateway running: sagas inspect.
  --status S                 only sagas in that status (${SAGA_STATUSES.join(', ')})
  --stuck                    only sagas in flight without progress for longer than the gateway's
                             SAGA_STUCK_AFTER (sagas show <id> says what each waits for)
  --limit N                  at most N sagas (1-500, default 20)
  --json                     the API's answer as JSON ({sagas, next_cursor, counts})
  -h, --help                 show this text

${ADMIN_ENV_USAGE}
${ADMIN_EXIT_USAGE}`;

export const listCommand: Command = {
  name: 'list',
  summary: 'List sagas (newest first) and the counts per status, from the admin API',
  usage: LIST_USAGE,
  async run(argv, io) {
    const { values } = parseCommandArgs(
      argv,
      {
        options: {
          status: { type: 'string' },
          stuck: { type: 'boolean' },
          limit: { type: 'string' },
          json: { type: 'boolean' },
        },
      },
      { status: `a status (${SAGA_STATUSES.join(', ')})`, limit: 'a number of sagas, from 1 to 500' },
    );
    const status = values.status?.toUpperCase();
    if (status !== undefined && !SAGA_STATUSES.includes(status as never))
      throw new UsageError(`--status must be one of ${SAGA_STATUSES.join(', ')}, got "${values.status}"`);
    const limit = values.limit === undefined ? 20 : Number(values.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 500)
      throw new UsageError(`--limit must be a whole number from 1 to 500, got "${values.limit}"`);
    return withAdmin(
      'list',
      io,
      values.json ?? false,
      (c) => c.listSagas({ limit, ...(status ? { status } : {}), ...(values.stuck ? { stuck: '1' as const } : {}) }),
      (body) => {
        const counts = body.counts as Record<string, number>;
        io.stdout.write(
          `${Object.entries(counts)
            .map(([s, n]) => `${s} ${n}`)
            .join(', ')}\n`,
        );
        const what = [values.stuck ? 'stuck' : '', status ?? ''].filter(Boolean).join(' ');
        if (body.sagas.length === 0) io.stdout.write(what ? `no ${what} saga\n` : 'no saga\n');
        for (const s of body.sagas) {
          const stuck = s.waiting?.stuck ? `  STUCK: no progress for ${s.waiting.progress_age_seconds} s` : '';
          io.stdout.write(`${summaryLine(s)}${stuck}\n`);
        }
        if (body.next_cursor) io.stdout.write(`(more: --limit up to 500, or --json and the API's cursor)\n`);
      },
    );
  },
};
