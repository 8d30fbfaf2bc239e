/**
 * What a nemesis run reports, and how `sagas chaos --nemesis` prints it. Pure.
 */
import type { Disagreement, TimelineEvent } from './nemesis-books.js';
import type { NemesisOrderKind } from './nemesis-schedule.js';
import { formatDuration } from './nemesis-schedule.js';

export interface NemesisReport {
  seed: number;
  system: { mode: 'started' | 'running'; gateways: number; saga_log: 'sqlite' | 'postgres' | 'unknown' };
  /** The schedule's length, and how long the run really took (start-up, settling and the check included). */
  duration_ms: number;
  ran_ms: number;
  orders: {
    sent: number;
    accepted: number;
    /** Distinct orders (sagas) the 201s named. */
    distinct: number;
    by_kind: Partial<
      Record<
        NemesisOrderKind,
        { sent: number; accepted: number; refused: number; unanswered: number; outcomes: Record<string, number> }
      >
    >;
    /** Answers retried with the same key, by status and error code (`503 participant_unavailable`, `no connection`). */
    retried: Record<string, number>;
    unanswered: number;
  };
  sagas: { by_status: Record<string, number> };
  kills: {
    /** SIGKILLs the nemesis sent, by target. */
    by_target: Record<string, number>;
    /** Scheduled kills that found their target not up. */
    skipped: Record<string, number>;
    /** Kills (or outages) that kept a participant down past a step's attempt budget. */
    long_outages: number;
    /** Outages through the switchboard (a running system), by participant. */
    outages: Record<string, number>;
    /** Deaths the nemesis did not cause (crash faults), by target. */
    deaths: Record<string, number>;
    /** Exits other than by SIGKILL (a process fell over by itself): each is suspect. */
    unexpected_exits: Array<{ target: string; exit: string; output: string[] }>;
  };
  faults: {
    /** Plans of the schedule installed (on every gateway up at the time). */
    plans_installed: number;
    /** Installs of a plan again on a gateway that came back (its board had restarted empty). */
    reinstalls: number;
    rules: number;
    /** Firings of the plans' rules and of the switchboard outages. */
    fired: number;
    fired_by_kind: Record<string, number>;
    /** Latency rules held on before kills (so that kills meet sagas in flight), and how often they held one. */
    drags: number;
    drag_fired: number;
  };
  parked_seen: number;
  operator: {
    applied: Record<string, number>;
    refused: Record<string, number>;
    /** Refusals by code (action_not_allowed...). */
    refused_codes: Record<string, number>;
  };
  /** The end: faults cleared, everything restarted, every saga settled, the PARKED ones retried or compensated. */
  repair: {
    parked: number;
    retried: number;
    compensated: number;
    refused: number;
    still_parked: number;
    settled: boolean;
  };
  books: { ok: boolean; checked: number; by_status: Record<string, number> };
  disagreements: Array<Disagreement & { timeline?: { status: string; failure: unknown; events: TimelineEvent[] } }>;
  /** Problems of the run itself (an answer no order should get, a process that would not start): they do not fail the run but deserve a look. */
  notes: string[];
  ok: boolean;
}

const kv = (o: Record<string, number>): string =>
  Object.entries(o)
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ') || 'none';

const sum = (o: Record<string, number>): number => Object.values(o).reduce((a, b) => a + b, 0);

function timelineLines(t: NonNullable<NemesisReport['disagreements'][number]['timeline']>): string[] {
  return [
    `      saga ${t.status}${t.failure ? `, failure ${JSON.stringify(t.failure)}` : ''}`,
    ...t.events.map(
      (e) =>
        `      #${e.seq} ${e.time} ${e.type}${e.step ? ` ${e.step}` : ''}${e.attempt ? ` attempt ${e.attempt}` : ''}${e.error ? ` — ${e.error.slice(0, 160)}` : ''}`,
    ),
  ];
}

/** The report as printed: the seed first (to replay the run), the figures, then every disagreement with its saga's timeline. */
export function formatNemesisReport(r: NemesisReport): string {
  const o = r.orders;
  const lines = [
    `nemesis seed ${r.seed}: ${r.ok ? 'the books agree' : `${r.disagreements.length} DISAGREEMENT(S)`} (${formatDuration(r.duration_ms)} of nemesis, ${formatDuration(r.ran_ms)} in all)`,
    `  system      ${r.system.mode === 'started' ? 'started for the run' : 'a running system'}: ${r.system.gateways} gateway(s), saga log ${r.system.saga_log}`,
    `  orders      ${o.sent} sent, ${o.accepted} answered 201 (${o.distinct} distinct orders), ${o.unanswered} unanswered; retried: ${kv(o.retried)}`,
    ...Object.entries(o.by_kind).map(
      ([k, v]) =>
        `    ${k.padEnd(10)} ${v.sent} sent, ${v.accepted} accepted, ${v.refused} refused${v.unanswered ? `, ${v.unanswered} unanswered` : ''} → ${kv(v.outcomes)}`,
    ),
    `  sagas       ${kv(r.sagas.by_status)}`,
    `  kills       ${sum(r.kills.by_target)}: ${kv(r.kills.by_target)}; long outages ${r.kills.long_outages}${sum(r.kills.skipped) ? `; skipped (target not up) ${kv(r.kills.skipped)}` : ''}`,
    ...(sum(r.kills.outages) ? [`  outages     through the switchboard: ${kv(r.kills.outages)}`] : []),
    `  deaths      not by the nemesis (crash faults): ${kv(r.kills.deaths)}`,
    `  faults      ${r.faults.plans_installed} plan(s) installed (${r.faults.rules} rules, ${r.faults.reinstalls} re-installs after a restart); fired ${r.faults.fired}: ${kv(r.faults.fired_by_kind)}; ${r.faults.drags} drag(s) before kills held ${r.faults.drag_fired} attempt(s)`,
    `  parked      ${r.parked_seen} saga(s) seen PARKED during the run`,
    `  operator    applied ${kv(r.operator.applied)}; refused ${kv(r.operator.refused)}${sum(r.operator.refused_codes) ? ` (${kv(r.operator.refused_codes)})` : ''}`,
    `  repair      ${r.repair.parked} PARKED at the end: ${r.repair.retried} retried, ${r.repair.compensated} compensated, ${r.repair.refused} refused, ${r.repair.still_parked} still PARKED${r.repair.settled ? '' : '; NOT every saga settled'}`,
    `  books       GET /api/reconcile: ${r.books.checked} sagas checked, ${r.books.ok ? 'they agree' : 'DISAGREEMENTS'}`,
  ];
  for (const d of r.disagreements) {
    const where = [d.saga_id && `saga ${d.saga_id}`, d.product_id && `product ${d.product_id}`]
      .filter(Boolean)
      .join(', ');
    lines.push(`    - [${d.kind}]${where ? ` ${where}:` : ''} ${d.message}`);
    if (d.timeline) lines.push(...timelineLines(d.timeline));
  }
  for (const n of r.notes) lines.push(`  note        ${n}`);
  for (const u of r.kills.unexpected_exits)
    lines.push(`  exit        ${u.target} ${u.exit}`, ...u.output.slice(-5).map((l) => `      ${l.slice(0, 200)}`));
  const system =
    r.system.mode === 'running'
      ? ' --url <admin url> --api-url <url>'
      : `${r.system.gateways > 1 ? ` --gateways ${r.system.gateways}` : ''}${r.system.saga_log === 'postgres' ? ' --saga-log postgres' : ''}`;
  lines.push(
    `  replay      sagas chaos --nemesis --seed ${r.seed} --duration ${formatDuration(r.duration_ms)}${system}`,
  );
  return `${lines.join('\n')}\n`;
}
