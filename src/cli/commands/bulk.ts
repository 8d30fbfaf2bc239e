/**
 * `sagas bulk dry-run|start|list|show|pause|resume|cancel`: bulk operator actions through the
 * admin API (/api/bulk…): what a filter selects and what the action would move, then a job that
 * acts on that selection (frozen, at most --cap sagas) at --rate sagas a second, and its
 * per-saga results.
 */
import { formatCents, OPERATOR_ACTIONS } from '../../saga/index.js';
import { ADMIN_ENV_USAGE, ADMIN_EXIT_USAGE, withAdmin, type AdminOk, type AdminRequestBody } from '../admin-client.js';
import { UsageError, parseCommandArgs, type Command, type CommandIo } from '../command.js';

export const BULK_USAGE = `Usage: sagas bulk dry-run <action> --cap N [filters] [--note "…"] [--json]
       sagas bulk start <action> --cap N [--rate R] [filters] [--note "…"] [--json]
       sagas bulk list [--limit N] [--json]
       sagas bulk show <bulk_id> [--after P] [--limit N] [--json]
       sagas bulk pause|resume|cancel <bulk_id> [--json]

One operator action (${OPERATOR_ACTIONS.join(', ')}) on the sagas a filter selects, with a limit on
the blast radius. dry-run changes nothing: how many sagas it selects, how many the engine would
refuse and why, and the money and stock the others would move. start freezes the selection (the
newest --cap sagas that match) and acts on one saga after another at --rate a second, each an
OPERATOR_ACTION under the job's id (a saga acted on already is never acted on twice, also when
the job is resumed by another gateway). pause, resume and cancel take effect before its next
saga; show lists what the action did to each saga.
  --cap N                    the most sagas to act on (required, 1-10000)
  --rate R                   sagas per second (0.1-50, default 5)
  --note TEXT                why (required for resolve; at most 1000 characters)
  --status S                 filter: the saga's status (e.g. PARKED)
  --step NAME                filter: the step it is at or stuck on
  --failure-code CODE        filter: its failure's code (e.g. payment_declined)
  --customer ID              filter: the customer it acts for
  --from TIME, --to TIME     filter: created at or after / at or before (ISO 8601 with its zone,
                             a date, or epoch ms)
  --after P, --limit N       show: the results after position P, at most N (1-1000, default 100)
  --json                     the API's answer as JSON
  -h, --help                 show this text

${ADMIN_ENV_USAGE}
${ADMIN_EXIT_USAGE}`;

const SUBCOMMANDS = ['dry-run', 'start', 'list', 'show', 'pause', 'resume', 'cancel'] as const;
type Sub = (typeof SUBCOMMANDS)[number];

type Job = AdminOk<'getBulk'>['job'];

function jobLine(j: Job): string {
  const c = j.counts;
  const done = j.total - c.pending;
  return `${j.id}  ${j.action.padEnd(10)} ${j.state.padEnd(9)} ${done}/${j.total}  applied ${c.applied}, replayed ${c.replayed}, refused ${c.refused}, failed ${c.failed}  ${j.rate}/s  by ${j.actor}  ${j.created_at}`;
}

function printDryRun(out: NodeJS.WritableStream, d: AdminOk<'dryRunBulk'>, cap: number): void {
  out.write(
    `dry run: ${d.action} would select ${d.count} saga(s)${d.truncated ? ` (more match: only the newest ${cap}, --cap)` : ''}; nothing was changed\n`,
  );
  out.write(`  allowed now: ${d.allowed}\n`);
  for (const r of d.refused) out.write(`  refused: ${r.count} × ${r.code} (e.g. ${r.example})\n`);
  const t = d.totals;
  const sums = [
    t.charge_cents > 0 ? `charges ${formatCents(t.charge_cents)}` : '',
    t.refund_cents > 0 ? `refunds ${formatCents(t.refund_cents)}` : '',
    ...t.stock.map((m) => `${m.direction}s ${m.quantity} × ${m.item}`),
  ].filter(Boolean);
  out.write(`  for certain: ${sums.length > 0 ? sums.join(', ') : 'no money or stock moves'}\n`);
  if (d.sample.length > 0) out.write(`  first: ${d.sample.slice(0, 5).join(', ')}${d.count > 5 ? ', …' : ''}\n`);
}

export const bulkCommand: Command = {
  name: 'bulk',
  summary: 'Bulk operator actions with a cap and a rate: dry-run, start, list, show, pause, resume, cancel',
  usage: BULK_USAGE,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(
      argv,
      {
        allowPositionals: true,
        options: {
          cap: { type: 'string' },
          rate: { type: 'string' },
          note: { type: 'string' },
          status: { type: 'string' },
          step: { type: 'string' },
          'failure-code': { type: 'string' },
          customer: { type: 'string' },
          from: { type: 'string' },
          to: { type: 'string' },
          after: { type: 'string' },
          limit: { type: 'string' },
          json: { type: 'boolean' },
        },
      },
      {
        cap: 'a number of sagas, 1-10000',
        rate: 'sagas per second, 0.1-50',
        note: 'a note',
        status: 'a status',
        step: 'a step name',
        'failure-code': 'a failure code',
        customer: 'a customer id',
        from: 'a time',
        to: 'a time',
        after: 'a position',
        limit: 'a number',
      },
    );
    const [sub, ...rest] = positionals;
    if (!SUBCOMMANDS.includes(sub as Sub))
      throw new UsageError(
        sub === undefined
          ? `what? one of ${SUBCOMMANDS.join(', ')}`
          : `no subcommand "${sub}": one of ${SUBCOMMANDS.join(', ')}`,
      );
    const json = values.json ?? false;
    const one = (what: string): string => {
      if (rest.length !== 1)
        throw new UsageError(rest.length === 0 ? `which ${what}? give its id` : `one ${what} at a time`);
      return rest[0] as string;
    };
    const whole = (name: string, v: string | undefined, min: number, max: number): number | undefined => {
      if (v === undefined) return undefined;
      const n = Number(v);
      if (!Number.isInteger(n) || n < min || n > max)
        throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, got "${v}"`);
      return n;
    };
    switch (sub as Sub) {
      case 'dry-run':
      case 'start': {
        const action = one('action');
        if (!OPERATOR_ACTIONS.includes(action as never))
          throw new UsageError(`the action must be one of ${OPERATOR_ACTIONS.join(', ')}, got "${action}"`);
        const cap = whole('cap', values.cap, 1, 10_000);
        if (cap === undefined) throw new UsageError('--cap is required: the most sagas the job may act on');
        let rate: number | undefined;
        if (values.rate !== undefined) {
          rate = Number(values.rate);
          if (!Number.isFinite(rate) || rate < 0.1 || rate > 50)
            throw new UsageError(`--rate must be from 0.1 to 50 sagas per second, got "${values.rate}"`);
        }
        const filter = Object.fromEntries(
          (
            [
              ['status', values.status],
              ['step', values.step],
              ['failure_code', values['failure-code']],
              ['customer', values.customer],
              ['from', values.from],
              ['to', values.to],
            ] as const
          ).filter(([, v]) => v !== undefined),
        );
        const body: AdminRequestBody<'startBulk'> = {
          action,
          cap,
          filter,
          ...(rate === undefined ? {} : { rate }),
          ...(values.note === undefined ? {} : { note: values.note }),
        };
        if (sub === 'dry-run')
          return withAdmin(
            'bulk dry-run',
            io,
            json,
            (c) => c.dryRunBulk(body),
            (d) => printDryRun(io.stdout, d, cap),
          );
        return withAdmin(
          'bulk start',
          io,
          json,
          (c) => c.startBulk(body),
          (j) => {
            io.stdout.write(`started ${j.id}: ${j.action} of ${j.total} saga(s) at ${j.rate}/s\n${jobLine(j)}\n`);
            io.stdout.write(`follow it: sagas bulk show ${j.id}\n`);
          },
        );
      }
      case 'list': {
        const limit = whole('limit', values.limit, 1, 200) ?? 20;
        return withAdmin(
          'bulk list',
          io,
          json,
          (c) => c.listBulk({ limit }),
          (b) => {
            if (b.jobs.length === 0) io.stdout.write('no bulk job\n');
            for (const j of b.jobs) io.stdout.write(`${jobLine(j)}\n`);
          },
        );
      }
      case 'show': {
        const id = one('bulk job');
        const after = whole('after', values.after, -1, Number.MAX_SAFE_INTEGER);
        const limit = whole('limit', values.limit, 1, 1000);
        return withAdmin(
          'bulk show',
          io,
          json,
          (c) =>
            c.getBulk(id, { ...(after === undefined ? {} : { after }), ...(limit === undefined ? {} : { limit }) }),
          (b) => printJob(io, b),
        );
      }
      case 'pause':
      case 'resume':
      case 'cancel': {
        const id = one('bulk job');
        const command = sub as 'pause' | 'resume' | 'cancel';
        return withAdmin(
          `bulk ${command}`,
          io,
          json,
          (c) => c.commandBulk(id, command),
          (j) => io.stdout.write(`${jobLine(j)}\n`),
        );
      }
    }
  },
};

function printJob(io: CommandIo, b: AdminOk<'getBulk'>): void {
  const j = b.job;
  io.stdout.write(`${jobLine(j)}\n`);
  const f = Object.entries(j.filter)
    .filter(([, v]) => v !== null)
    .map(([k, v]) => `${k}=${String(v)}`);
  io.stdout.write(
    `  filter: ${f.length > 0 ? f.join(' ') : 'none'}; cap ${j.cap}${j.note ? `; note: ${j.note}` : ''}\n`,
  );
  for (const i of b.items) {
    const why = i.code ? `  ${i.code}: ${i.message ?? ''}` : i.message ? `  ${i.message}` : '';
    io.stdout.write(
      `  ${String(i.position).padStart(5)}  ${i.saga_id}  ${i.result.padEnd(8)}${i.at ? `  ${i.at}` : ''}${why}\n`,
    );
  }
  if (b.next_after !== null) io.stdout.write(`(more: --after ${b.next_after})\n`);
}
