/**
 * Counting the faults that fired, pure. Each gateway has its own switchboard: its counts restart
 * at 0 whenever its plan is replaced and are lost when it dies. So the nemesis reads them (GET
 * /api/faults) often, and always before it replaces a plan or kills a gateway, and keeps for each
 * gateway and rule the counts of its earlier installs (`base`) and the last one read of the
 * current install (`current`).
 */
import type { FaultKind } from '../faults/plan.js';
import type { FaultRuleSpec } from './nemesis-schedule.js';

interface Count {
  kind: FaultKind;
  /** Firings on this gateway's earlier installs of the rule. */
  base: number;
  /** Firings read from this gateway's current install. */
  current: number;
}

export class FaultTally {
  /** gateway index → rule id → counts. */
  private readonly byGateway = new Map<number, Map<string, Count>>();

  private counts(gateway: number): Map<string, Count> {
    let m = this.byGateway.get(gateway);
    if (!m) this.byGateway.set(gateway, (m = new Map()));
    return m;
  }

  /** What GET /api/faults of `gateway` says now (counts only grow within one install). */
  observe(gateway: number, rules: ReadonlyArray<{ id: string; kind: FaultKind; fired: number }>): void {
    const m = this.counts(gateway);
    for (const r of rules) {
      const c = m.get(r.id) ?? { kind: r.kind, base: 0, current: 0 };
      c.current = Math.max(c.current, r.fired);
      m.set(r.id, c);
    }
  }

  /** `gateway`'s plan is being replaced, or it died: what it counted so far is kept, its board starts at 0. */
  reinstalled(gateway: number): void {
    for (const c of this.counts(gateway).values()) {
      c.base += c.current;
      c.current = 0;
    }
  }

  /** Firings of rule `id` on `gateway` so far. */
  firedOn(gateway: number, id: string): number {
    const c = this.byGateway.get(gateway)?.get(id);
    return c ? c.base + c.current : 0;
  }

  /** Firings of every rule on every gateway, in total and by kind. */
  totals(): { total: number; byKind: Partial<Record<FaultKind, number>>; byRule: Record<string, number> } {
    const byKind: Partial<Record<FaultKind, number>> = {};
    const byRule: Record<string, number> = {};
    let total = 0;
    for (const m of this.byGateway.values()) {
      for (const [id, c] of m) {
        const n = c.base + c.current;
        total += n;
        byKind[c.kind] = (byKind[c.kind] ?? 0) + n;
        byRule[id] = (byRule[id] ?? 0) + n;
      }
    }
    return { total, byKind, byRule };
  }
}

/**
 * The rules to install on `gateway` when its board starts again (a restart, or another rule
 * joining the plan): each rule's count limit lessened by what it already fired there, a rule
 * that used its count left out. `fresh`: the gateway died and came back; gateway-side crash rules
 * are then left out, since the crash that killed it may have fired after the last count was read,
 * and installing it again could kill it again without end.
 */
export function carryOver(
  rules: readonly FaultRuleSpec[],
  firedOn: (id: string) => number,
  fresh: boolean,
): FaultRuleSpec[] {
  const out: FaultRuleSpec[] = [];
  for (const r of rules) {
    const gatewayCrash = r.kind === 'crash' && r.target.participant === undefined && r.target.method === undefined;
    if (fresh && gatewayCrash) continue;
    const count = r.limit?.count;
    if (count === undefined) {
      out.push(r);
      continue;
    }
    const left = count - firedOn(r.id);
    if (left <= 0) continue;
    out.push({ ...r, limit: { ...r.limit, count: left } });
  }
  return out;
}
