/** `sagas show <id>`: one saga and its timeline, operator actions included, from the admin API. */
import { ADMIN_ENV_USAGE, ADMIN_EXIT_USAGE, summaryLine, withAdmin, type AdminOk } from '../admin-client.js';
import { UsageError, parseCommandArgs, type Command } from '../command.js';

export const SHOW_USAGE = `Usage: sagas show <saga_id> [--json]

One saga: its state, its failure, the link to its trace (TRACE_URL_TEMPLATE) and every event of
its timeline, operator actions with who did them, through the admin API (GET /api/sagas/<id>).
A saga in flight or parked also says what it waits for and until when, and whether it is stuck
(GET /api/sagas/<id>/waiting).
  --json                     the API's answer as JSON (with \`waiting\`)
  -h, --help                 show this text

${ADMIN_ENV_USAGE}
${ADMIN_EXIT_USAGE}`;

interface EventView {
  seq: number;
  type: string;
  step: string | null;
  time: string;
  attempt: number | null;
  error: string | null;
  retryable: boolean | null;
  data: unknown;
  trace_id: string | null;
}

function eventLine(e: EventView): string {
  const step = e.step ? ` ${e.step}` : '';
  const attempt = e.attempt ? ` #${e.attempt}` : '';
  const error = e.error ? `  ${e.error}${e.retryable ? ' (retrying)' : ''}` : '';
  let action = '';
  if (e.type === 'OPERATOR_ACTION' && e.data && typeof e.data === 'object') {
    const d = e.data as { action?: string; actor?: string; note?: string | null; action_id?: string };
    action = ` ${d.action ?? '?'} by ${d.actor ?? '?'}${d.note ? `: "${d.note}"` : ''} (action id ${d.action_id ?? '?'})`;
  }
  return `  ${String(e.seq).padStart(3)} ${e.time} ${e.type}${step}${attempt}${action}${error}`;
}

/** The saga as the API answers it, with what it waits for (null: nothing, or it could not be read). */
type Shown = AdminOk<'getSaga'> & { waiting: AdminOk<'getSagaWaiting'>['waiting'] };

/** The statuses of a saga that waits for something (in flight, or parked for an operator). */
const WAITS: ReadonlySet<string> = new Set(['RUNNING', 'COMPENSATING', 'PARKED']);

export const showCommand: Command = {
  name: 'show',
  summary: 'Show one saga and its timeline, from the admin API',
  usage: SHOW_USAGE,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(argv, {
      allowPositionals: true,
      options: { json: { type: 'boolean' } },
    });
    if (positionals.length !== 1)
      throw new UsageError(
        positionals.length === 0
          ? 'which saga? give its id'
          : `one saga id at a time, got ${positionals.map((a) => `"${a}"`).join(', ')}`,
      );
    const id = positionals[0] as string;
    return withAdmin<Shown>(
      'show',
      io,
      values.json ?? false,
      async (c) => {
        const saga = await c.getSaga(id);
        if (!saga.ok) return saga;
        if (!WAITS.has(saga.body.status)) return { ...saga, body: { ...saga.body, waiting: null } };
        // What it waits for: asked after the saga, so a saga finished meanwhile says null.
        const w = await c.getSagaWaiting(id);
        return { ...saga, body: { ...saga.body, waiting: w.ok ? w.body.waiting : null } };
      },
      (s) => {
        io.stdout.write(`${summaryLine(s)}\n`);
        io.stdout.write(`  ${s.definition} v${s.version}, updated ${s.updated_at}\n`);
        const waiting = s.waiting;
        if (waiting) io.stdout.write(`  ${waiting.stuck ? 'STUCK; ' : ''}waiting: ${waiting.sentence}\n`);
        if (s.failure) io.stdout.write(`  failure: ${s.failure.code} at ${s.failure.step}: ${s.failure.message}\n`);
        if (s.trace_url) io.stdout.write(`  trace: ${s.trace_url}\n`);
        else if (s.trace_id) io.stdout.write(`  trace id: ${s.trace_id}\n`);
        for (const e of s.events as EventView[]) io.stdout.write(`${eventLine(e)}\n`);
        if (s.next_after_seq !== null)
          io.stdout.write(`  (more events: --json, then the API's after_seq=${s.next_after_seq})\n`);
      },
    );
  },
};
