/**
 * The nemesis's customers: orders of the seeded mix (nemesisOrder) at a steady rate, spread over
 * the gateways, each sent until it has an answer (a gateway killed, Redis gone, 409 while the
 * first request with its key is in flight, 503 under load: the client tries again with the same
 * key, as a payment client does). Records what each key was answered, so that one key answered
 * with two orders is seen here, whatever the books say.
 */
import type { JsonCall } from '../platform/json-client.js';
import type { Disagreement } from './nemesis-books.js';
import { nemesisOrder, type NemesisOrder, type NemesisOrderKind } from './nemesis-schedule.js';

export interface LoadGateway {
  api: JsonCall;
  up: boolean;
}

export interface SentOrder extends NemesisOrder {
  key: string;
  /** The final answer's status (201, 422...); undefined while it has none. */
  answer?: number;
  /** The order id of a 201. */
  id?: string;
}

export interface LoadOptions {
  seed: number;
  /** Unique to this run, in every key: a second run with the same seed against the same system is not a replay of the first. */
  runId: string;
  ratePerSecond: number;
  maxInFlight: number;
  gateways: () => LoadGateway[];
  log: (line: string) => void;
}

/** Statuses that mean "not now, the same request later": in flight, overloaded, down. */
const RETRY_STATUSES = new Set([409, 429, 500, 502, 503, 504]);

/** Waits `ms`, or less when `signal` aborts. */
export const pause = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted || ms <= 0) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

export class OrderLoad {
  readonly orders: SentOrder[] = [];
  /** Answers that were retried (409 in flight, 503, a gateway down), by status and error code. */
  readonly retried: Record<string, number> = {};
  /** Answers no order of the mix should get (a 400 of our own bodies, an unknown status): each is a finding. */
  readonly unexpected: string[] = [];
  private inFlight = 0;
  private readonly slotFreed: Array<() => void> = [];
  private readonly sending = new Set<Promise<void>>();

  constructor(private readonly opts: LoadOptions) {}

  private keyOf(o: NemesisOrder): string {
    return `nem-${this.opts.runId}-${o.root}`;
  }

  /** Sends the mix at the rate until `durationMs` has passed (or `signal`); the orders still unanswered are still being sent. */
  async run(durationMs: number, signal?: AbortSignal): Promise<void> {
    const t0 = Date.now();
    const gap = 1000 / this.opts.ratePerSecond;
    for (let i = 0; !signal?.aborted; i++) {
      const due = t0 + i * gap;
      if (due - t0 >= durationMs) break;
      await pause(due - Date.now(), signal);
      while (this.inFlight >= this.opts.maxInFlight && !signal?.aborted)
        await new Promise<void>((r) => this.slotFreed.push(r));
      if (signal?.aborted || Date.now() - t0 >= durationMs) break;
      const o: SentOrder = { ...nemesisOrder(this.opts.seed, i), key: '' };
      o.key = this.keyOf(o);
      this.orders.push(o);
      this.track(this.send(o, Date.now() + 30_000, signal));
    }
  }

  private track(p: Promise<void>): void {
    this.inFlight++;
    this.sending.add(p);
    void p.finally(() => {
      this.inFlight--;
      this.sending.delete(p);
      this.slotFreed.shift()?.();
    });
  }

  /** Waits for the sends in progress (each gives up at its own deadline). */
  async drain(): Promise<void> {
    await Promise.all([...this.sending]);
  }

  /** Sends every order still without an answer again, until it has one or `deadline` passes. */
  async finish(deadline: number, signal?: AbortSignal): Promise<void> {
    await this.drain();
    const open = this.orders.filter((o) => o.answer === undefined);
    if (open.length) this.opts.log(`${open.length} order(s) still unanswered: sending them again`);
    await Promise.all(open.map((o) => this.send(o, deadline, signal)));
  }

  /** One order, sent until answered, `deadline` or `signal`; to the gateways in turn, from order i's own. */
  private async send(o: SentOrder, deadline: number, signal?: AbortSignal): Promise<void> {
    for (let attempt = 0; !signal?.aborted; attempt++) {
      const gws = this.opts.gateways();
      const up = gws.filter((g) => g.up);
      const choice = (up.length ? up : gws)[(o.index + attempt) % (up.length || gws.length)] as LoadGateway;
      let status = 'no connection';
      try {
        const r = await choice.api('POST', '/orders', o.body, { 'x-idempotency-key': o.key });
        status = `${r.status}${typeof r.body?.error === 'string' ? ` ${r.body.error}` : ''}`;
        if (r.status === 201) {
          o.answer = 201;
          o.id = r.body.id as string;
          return;
        }
        if (!RETRY_STATUSES.has(r.status)) {
          o.answer = r.status;
          // 422: this key was used with another body — expected for a conflict, and for an
          // original whose conflicting repeat came first. Anything else is not ours to get.
          if (r.status !== 422)
            this.unexpected.push(
              `order ${o.index} (${o.kind}, key ${o.key}): POST /orders answered ${r.status}: ${JSON.stringify(r.body).slice(0, 200)}`,
            );
          return;
        }
      } catch {
        /* no connection: a gateway down or restarting */
      }
      this.retried[status] = (this.retried[status] ?? 0) + 1;
      if (Date.now() > deadline) return;
      await pause(Math.min(1000, 100 * 2 ** Math.min(attempt, 4)), signal);
    }
  }

  /** Every order id a 201 named. */
  acceptedIds(): Set<string> {
    return new Set(this.orders.flatMap((o) => (o.id ? [o.id] : [])));
  }

  /** DESIGN §6.5, from the customers' side: one key, one order — every 201 for a key names the same order. */
  keyDisagreements(): Disagreement[] {
    const byKey = new Map<string, Set<string>>();
    for (const o of this.orders) {
      if (!o.id) continue;
      const ids = byKey.get(o.key) ?? new Set<string>();
      ids.add(o.id);
      byKey.set(o.key, ids);
    }
    return [...byKey.entries()]
      .filter(([, ids]) => ids.size > 1)
      .map(([key, ids]) => ({
        kind: 'one_key_two_orders',
        order_id: [...ids][0],
        message: `idempotency key ${key} was answered with ${ids.size} different orders: ${[...ids].join(', ')}`,
      }));
  }

  /** Per kind of order: how many were sent, answered 201, answered 422, unanswered, and what their sagas ended as. */
  byKind(
    statusOf: (id: string) => string | undefined,
  ): Record<
    NemesisOrderKind,
    { sent: number; accepted: number; refused: number; unanswered: number; outcomes: Record<string, number> }
  > {
    const out = {} as Record<
      NemesisOrderKind,
      { sent: number; accepted: number; refused: number; unanswered: number; outcomes: Record<string, number> }
    >;
    for (const o of this.orders) {
      const k = (out[o.kind] ??= { sent: 0, accepted: 0, refused: 0, unanswered: 0, outcomes: {} });
      k.sent++;
      if (o.answer === undefined) k.unanswered++;
      else if (o.answer === 201) {
        k.accepted++;
        const s = (o.id && statusOf(o.id)) || 'UNKNOWN';
        k.outcomes[s] = (k.outcomes[s] ?? 0) + 1;
      } else k.refused++;
    }
    return out;
  }
}
