/** `sagas reconcile`: the saga log against the participants' own books, through the admin API. */
import { ADMIN_ENV_USAGE, withAdmin } from '../admin-client.js';
import { EXIT, UsageError, parseCommandArgs, type Command } from '../command.js';
import { DISAGREEMENT_KINDS, DISAGREEMENT_TITLES, type Disagreement } from '../../reconcile/rules.js';
import { type ReconcileReport } from '../../reconcile/read.js';
import { LIMITS } from '../../contracts/limits.js';

const KINDS_USAGE = DISAGREEMENT_KINDS.map((k) => `  ${k.padEnd(31)} ${DISAGREEMENT_TITLES[k]}`).join('\n');

export const RECONCILE_USAGE = `Usage: sagas reconcile [--settled] [--page-size N] [--json]

Compares the saga log with what the order, payment and inventory services hold by their own
account (read through their gRPC List methods, page by page), through the gateway's admin API
(GET /api/reconcile; a viewer token is enough), and lists every disagreement in business words:
money charged without a confirmed order, a confirmed order without its charge or with another
amount or refunded, stock held or sold without a live or completed saga, an order whose status
does not match its saga, a PARKED saga that neither retry nor compensate can finish, a product
whose stock does not add up (available + reserved + sold = the stock ever supplied).

Sagas still in flight are counted, not judged (their books are moving); RESOLVED ones, closed by
an operator after a repair by hand, are counted, not judged.
  --settled                  every saga should have ended: one still in flight is a disagreement
                             (after a test, a chaos run, a soak)
  --page-size N              sagas and records read per page (1-${LIMITS.listPageSizeMax}, default ${LIMITS.listPageSizeDefault})
  --json                     the API's answer as JSON ({ok, checked, by_status, disagreements, ...})
  -h, --help                 show this text

Kinds of disagreement (the "kind" of each, for machines):
${KINDS_USAGE}

${ADMIN_ENV_USAGE}
Exit codes:
  0  the books agree
  1  the books disagree (each disagreement is listed), or the admin API refused (the code and
     message are printed: participant_unavailable, unauthenticated...) or cannot be reached
  2  a wrong command line, or a wrong SAGAS_ADMIN_URL
`;

function checkedText(r: ReconcileReport): string {
  const c = r.checked;
  return `${c.sagas} sagas, ${c.orders} orders, ${c.payments} payments, ${c.reservations} reservations, ${c.products} products`;
}

function statusText(r: ReconcileReport): string {
  const counts = Object.entries(r.by_status).filter(([, n]) => n > 0);
  return counts.length === 0 ? '' : ` (${counts.map(([s, n]) => `${s} ${n}`).join(', ')})`;
}

/** What was not judged, as lines: nothing hidden behind an "agree". */
function notJudgedLines(r: ReconcileReport): string[] {
  const n = r.not_judged;
  const lines: string[] = [];
  if (n.in_flight > 0)
    lines.push(`${n.in_flight} saga(s) in flight, not judged (--settled requires every saga to have ended)`);
  if (n.moved_while_reading > 0)
    lines.push(
      `${n.moved_while_reading} disagreement(s) left out: their sagas moved while the books were read; run again`,
    );
  if (n.resolved > 0) lines.push(`${n.resolved} RESOLVED saga(s), closed by an operator: counted, not judged`);
  if (n.other_definition > 0) lines.push(`${n.other_definition} saga(s) of another definition, not judged`);
  if (n.pruned > 0)
    lines.push(
      `${n.pruned} order(s) older than the retention horizon without their saga (pruned, SAGA_RETENTION): their records still judged against each other`,
    );
  if (!r.stock_sums_compared)
    lines.push(
      'reserved and sold stock not compared with the reservations: the saga log moved while the books were read',
    );
  return lines;
}

/** The disagreements grouped by kind, most serious first, each kind under its title. */
export function formatReconcile(r: ReconcileReport): string {
  const out: string[] = [];
  if (r.ok) {
    out.push(`the books agree: ${checkedText(r)}${statusText(r)}`);
  } else {
    out.push(`the books disagree: ${r.disagreements.length} disagreement(s) in ${checkedText(r)}${statusText(r)}`);
    const byKind = new Map<string, Disagreement[]>();
    for (const d of r.disagreements) byKind.set(d.kind, [...(byKind.get(d.kind) ?? []), d]);
    for (const [kind, list] of byKind) {
      out.push('', `${DISAGREEMENT_TITLES[kind as Disagreement['kind']] ?? kind} (${kind}): ${list.length}`);
      for (const d of list) out.push(`  - ${d.message}`);
    }
  }
  const notes = notJudgedLines(r);
  if (notes.length > 0) out.push('', ...notes.map((l) => `note: ${l}`));
  return `${out.join('\n')}\n`;
}

export const reconcileCommand: Command = {
  name: 'reconcile',
  summary: "Compare the saga log with the participants' own books; list every disagreement",
  usage: RECONCILE_USAGE,
  async run(argv, io) {
    const { values } = parseCommandArgs(
      argv,
      { options: { settled: { type: 'boolean' }, 'page-size': { type: 'string' }, json: { type: 'boolean' } } },
      { 'page-size': `a number of records, from 1 to ${LIMITS.listPageSizeMax}` },
    );
    const raw = values['page-size'];
    const pageSize = raw === undefined ? undefined : Number(raw);
    if (pageSize !== undefined && (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > LIMITS.listPageSizeMax)) {
      throw new UsageError(`--page-size must be a whole number from 1 to ${LIMITS.listPageSizeMax}, got "${raw}"`);
    }
    return withAdmin(
      'reconcile',
      io,
      values.json ?? false,
      (c) =>
        c.reconcileBooks({
          ...(values.settled ? { settled: 'true' } : {}),
          ...(pageSize === undefined ? {} : { page_size: pageSize }),
        }),
      (body) => io.stdout.write(formatReconcile(body)),
      (body) => (body.ok ? EXIT.ok : EXIT.failure),
    );
  },
};
