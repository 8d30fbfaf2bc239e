/**
 * The admin listener's brake on token guessing (security review N8): each client address may
 * give at most `max` wrong tokens (sign-in or bearer) in any `windowMs`; past that, every token
 * from it is refused with 429 too_many_sign_ins until the oldest failure leaves the window. A
 * right token is not counted, and neither is a request that presents no token.
 *
 * In memory, per gateway (like the sessions): N gateways allow N × max guesses a minute, and a
 * restart forgets. Behind a proxy every client shares the proxy's address, so one guesser slows
 * everyone's sign-in down (not bearer-free reads) — the price of not trusting X-Forwarded-For,
 * which any client can write.
 */
import { isIPv6 } from 'node:net';

export const SIGN_IN_FAILURES_MAX = 10;
export const SIGN_IN_WINDOW_MS = 60_000;
/** Addresses tracked at most; the least recently failing goes first (bounded memory under a spray). */
const MAX_CLIENTS = 10_000;

export interface FailureThrottle {
  /** Whole seconds until `client` may present a token again; 0: it may now. */
  blockedFor(client: string): number;
  /** `client` presented a wrong token. */
  failed(client: string): void;
}

export function failureThrottle(
  opts: { max?: number; windowMs?: number; now?: () => number; maxClients?: number } = {},
): FailureThrottle {
  const max = opts.max ?? SIGN_IN_FAILURES_MAX;
  const windowMs = opts.windowMs ?? SIGN_IN_WINDOW_MS;
  const now = opts.now ?? Date.now;
  const maxClients = opts.maxClients ?? MAX_CLIENTS;
  /** Per client: the times of its failures within the window, oldest first (at most `max`). */
  const failures = new Map<string, number[]>();

  const recent = (client: string, t: number): number[] => {
    const times = (failures.get(client) ?? []).filter((at) => at > t - windowMs);
    if (times.length === 0) failures.delete(client);
    return times;
  };

  return {
    blockedFor(client) {
      const t = now();
      const times = recent(client, t);
      if (times.length < max) return 0;
      return Math.max(1, Math.ceil(((times[0] as number) + windowMs - t) / 1000));
    },
    failed(client) {
      const t = now();
      const times = [...recent(client, t), t].slice(-max);
      // Re-inserted, so the Map's order is least recently failing first.
      failures.delete(client);
      failures.set(client, times);
      while (failures.size > maxClients) failures.delete(failures.keys().next().value as string);
    },
  };
}

/**
 * The key a client is counted under: its IPv4 address, or its IPv6 /64 — one host usually holds
 * a whole /64, and counting single IPv6 addresses would let it guess 2^64 times as fast.
 */
export function clientKey(address: string | undefined): string {
  if (!address) return 'unknown';
  const a = address.toLowerCase().startsWith('::ffff:') ? address.slice(7) : address;
  if (!isIPv6(a)) return a;
  const [head = '', tail] = a.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  // A dotted IPv4 tail (`64:ff9b::192.0.2.1`) stands for two groups.
  const width = (gs: string[]) => gs.reduce((n, g) => n + (g.includes('.') ? 2 : 1), 0);
  const groups =
    tail === undefined ? left : [...left, ...Array<string>(8 - width(left) - width(right)).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}
