/**
 * The admin surface's credentials: ADMIN_TOKENS, `name:role:token` entries separated by commas.
 * A token is kept only as its SHA-256 digest and compared in constant time; it never reaches a
 * log line or a message (a bad entry is shown as `name:role:***`).
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export const ADMIN_ROLES = ['viewer', 'operator'] as const;
export type AdminRole = (typeof ADMIN_ROLES)[number];

export const TOKEN_MIN_LENGTH = 16;

export interface AdminToken {
  name: string;
  role: AdminRole;
  /** SHA-256 of the token: what is kept in memory and compared. */
  digest: Buffer;
}

/** Who is asking: a token's name and role (`local`, operator, for loopback with no ADMIN_TOKENS). */
export interface Principal {
  name: string;
  role: AdminRole;
}

const NAME = '[A-Za-z0-9_.@-]{1,64}';
const ENTRY = `${NAME}:(?:viewer|operator):[^,\\s]{${TOKEN_MIN_LENGTH},}`;
/** The form of ADMIN_TOKENS as a whole (names' uniqueness is checked by parseAdminTokens). */
export const ADMIN_TOKENS_FORM = new RegExp(`^${ENTRY}(?:\\s*,\\s*${ENTRY})*$`);

export const ADMIN_TOKENS_EXPECTED = `name:role:token entries separated by commas (name: 1-64 of [A-Za-z0-9_.@-], unique; role: viewer or operator; token: at least ${TOKEN_MIN_LENGTH} characters, no comma or space)`;

/** ADMIN_TOKENS without its tokens: `alice:operator:***,bob:viewer:***`; an entry without two colons is `***` whole. */
export function redactAdminTokens(value: string): string {
  return value
    .split(',')
    .map((entry) => {
      const parts = entry.trim().split(':');
      if (parts.length < 3) return entry.trim() === '' ? entry : '***';
      return `${parts[0]}:${parts[1]}:***`;
    })
    .join(',');
}

export const digestOf = (token: string): Buffer => createHash('sha256').update(token, 'utf8').digest();

/**
 * The entries of a value of ADMIN_TOKENS_FORM; throws an Error naming the first duplicated name
 * (never a token) when two entries share a name.
 */
export function parseAdminTokens(value: string | undefined): AdminToken[] {
  if (value === undefined || value.trim() === '') return [];
  const tokens: AdminToken[] = [];
  for (const entry of value.split(',')) {
    const e = entry.trim();
    const first = e.indexOf(':');
    const second = e.indexOf(':', first + 1);
    const name = e.slice(0, first);
    const role = e.slice(first + 1, second) as AdminRole;
    const token = e.slice(second + 1);
    if (first <= 0 || second < 0 || !ADMIN_ROLES.includes(role) || token.length < TOKEN_MIN_LENGTH)
      throw new Error(`an entry is not name:role:token (${redactAdminTokens(e)})`);
    if (tokens.some((t) => t.name === name)) throw new Error(`the name "${name}" is given twice`);
    tokens.push({ name, role, digest: digestOf(token) });
  }
  return tokens;
}

/**
 * The token's holder, or undefined. Every configured token is compared (no early return), each
 * over SHA-256 digests of equal length with timingSafeEqual: the time taken says nothing of how
 * much of a token matched, nor which one.
 */
export function findToken(tokens: readonly AdminToken[], given: string): Principal | undefined {
  const digest = digestOf(given);
  let found: AdminToken | undefined;
  for (const t of tokens) if (timingSafeEqual(t.digest, digest) && !found) found = t;
  return found ? { name: found.name, role: found.role } : undefined;
}

/** Two secrets (CSRF tokens, session ids) compared in constant time. */
export function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(digestOf(a), digestOf(b));
}
