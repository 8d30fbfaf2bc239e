/**
 * `sagas retry|compensate|resolve <id>`: an operator action through the admin API
 * (POST /api/sagas/<id>/actions). Each invocation sends a fresh action id (or --action-id), so
 * running the same command line again is a second action, and a repeat with --action-id a replay.
 * With --dry-run: what the action would do, in business words (GET /api/sagas/<id>/preview, the
 * engine's previewAction), and nothing is changed.
 */
import { randomUUID } from 'node:crypto';
import { formatCents } from '../../saga/index.js';
import { ADMIN_ENV_USAGE, ADMIN_EXIT_USAGE, summaryLine, withAdmin, type AdminOk } from '../admin-client.js';
import { EXIT, UsageError, parseCommandArgs, type Command } from '../command.js';

type Action = 'retry' | 'compensate' | 'resolve';

const WHAT: Record<Action, { summary: string; text: string }> = {
  retry: {
    summary: 'Retry a PARKED saga (its compensation, its pivot, or its step after the pivot), through the admin API',
    text: 'Retries a PARKED saga: its compensation, its pivot (parked while fencing it), or its step\nafter the pivot resumes with a fresh attempt budget. Refused (action_not_allowed) for a saga\nthat is not PARKED.',
  },
  compensate: {
    summary: 'Compensate a saga that has not passed its pivot, through the admin API',
    text: "Stops a RUNNING saga still before its pivot from going forward (e.g. retrying an unavailable\nparticipant) and compensates it now, or resumes a PARKED saga's compensation (parked at its\npivot: the pivot's fence runs first, and a pivot found done goes forward). Refused with\npivot_uncertain while the saga is at its pivot, and with action_not_allowed past it or once ended.",
  },
  resolve: {
    summary: 'Close a PARKED saga repaired by hand as RESOLVED, with a note, through the admin API',
    text: 'Closes a PARKED saga that an operator has repaired by hand: terminal RESOLVED, with the note\nsaying what was done (required). Refused (action_not_allowed) for a saga that is not PARKED.',
  },
};

function usageOf(action: Action): string {
  const note = action === 'resolve' ? ' --note "…"' : ' [--note "…"]';
  return `Usage: sagas ${action} <saga_id>${note} [--action-id ID] [--dry-run] [--json]

${WHAT[action].text}
Recorded in the saga's timeline with your token's name, logged and counted.
  --note TEXT                ${action === 'resolve' ? 'what was repaired (required; at most 1000 characters)' : 'why (optional; at most 1000 characters)'}
  --action-id ID             the action's id (1-100 characters; default: a new one each time):
                             the same id again answers the first action's result (a replay)
  --dry-run                  change nothing: print what the action would do, in business words
                             (the money and stock it moves, what follows for certain and what
                             only may), or why it would be refused (exit 1)
  --json                     the API's answer as JSON ({saga, replayed}; with --dry-run the preview)
  -h, --help                 show this text

${ADMIN_ENV_USAGE}
${ADMIN_EXIT_USAGE}`;
}

export function actionCommand(action: Action): Command {
  return {
    name: action,
    summary: WHAT[action].summary,
    usage: usageOf(action),
    async run(argv, io) {
      const { values, positionals } = parseCommandArgs(
        argv,
        {
          allowPositionals: true,
          options: {
            note: { type: 'string' },
            'action-id': { type: 'string' },
            'dry-run': { type: 'boolean' },
            json: { type: 'boolean' },
          },
        },
        { note: 'a note', 'action-id': 'an action id' },
      );
      if (positionals.length !== 1)
        throw new UsageError(
          positionals.length === 0
            ? 'which saga? give its id'
            : `one saga id at a time, got ${positionals.map((a) => `"${a}"`).join(', ')}`,
        );
      const note = values.note;
      const id = positionals[0] as string;
      // A dry run needs no note: the preview tells what to write in it.
      if (values['dry-run']) {
        return withAdmin(
          action,
          io,
          values.json ?? false,
          (c) => c.previewAction(id, { action }),
          (p) => printPreview(io.stdout, p),
          (p) => (p.allowed ? EXIT.ok : EXIT.failure),
        );
      }
      if (action === 'resolve' && (note === undefined || note.trim() === ''))
        throw new UsageError('resolve needs --note "what was repaired by hand"');
      if (note !== undefined && note.length > 1000)
        throw new UsageError(`--note is at most 1000 characters, got ${note.length}`);
      const actionId = values['action-id'] ?? `cli-${randomUUID()}`;
      if (!/^[\x21-\x7e]{1,100}$/.test(actionId))
        throw new UsageError(`--action-id must be 1-100 printable ASCII characters without spaces, got "${actionId}"`);
      const body = { action, action_id: actionId, ...(note === undefined ? {} : { note }) };
      return withAdmin(
        action,
        io,
        values.json ?? false,
        (c) => c.actOnSaga(id, body),
        (r) => {
          io.stdout.write(
            `${action} of ${id} ${r.replayed ? 'was already done (replayed: nothing new)' : 'done'}; the saga is now ${r.saga.status} (action id ${actionId})\n`,
          );
          io.stdout.write(`${summaryLine(r.saga)}\n`);
        },
      );
    },
  };
}

/**
 * A preview as the dry run prints it: the summary, then one line per call, `will` or `may` (with
 * its condition), then the sums of what follows for certain, or what a resolve leaves half-done.
 */
export function printPreview(out: NodeJS.WritableStream, p: AdminOk<'previewAction'>): void {
  const head = p.allowed
    ? `dry run: ${p.action} of ${p.saga_id}`
    : `dry run: ${p.action} of ${p.saga_id} would be refused (${p.refusal?.code ?? 'refused'})`;
  out.write(`${head}; nothing was changed\n${p.summary}\n`);
  for (const e of p.effects) {
    const label = e.phase === 'action' ? e.step : `${e.step} (undo)`;
    const when = e.condition ? ` ${e.condition}:` : '';
    out.write(`  ${e.certainty.padEnd(4)} ${label}:${when} ${e.effect.words}\n`);
  }
  for (const h of p.half_done ?? []) {
    const label = h.phase === 'action' ? h.step : `${h.step} (undo)`;
    out.write(`  left ${h.state.padEnd(7)} ${label}: ${h.effect.words}\n`);
  }
  const t = p.totals;
  const sums = [
    t.charge_cents > 0 ? `charges ${formatCents(t.charge_cents)}` : '',
    t.refund_cents > 0 ? `refunds ${formatCents(t.refund_cents)}` : '',
    ...t.stock.map((m) => `${m.direction}s ${m.quantity} × ${m.item}`),
  ].filter(Boolean);
  if (p.allowed && p.action !== 'resolve')
    out.write(`for certain: ${sums.length > 0 ? sums.join(', ') : 'no money or stock moves'}\n`);
}
