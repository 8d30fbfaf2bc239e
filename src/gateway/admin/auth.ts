/**
 * Who may use the admin listener, and how (issue 12, DESIGN §6b; hardened after the security
 * review of 2026-12-06, N2, N4, N8):
 *
 * - With ADMIN_TOKENS: every API call carries `Authorization: Bearer <token>`, or the session
 *   cookie the console got from `POST /api/session {token}`. Tokens are compared in constant time
 *   (tokens.ts) and never logged. Wrong tokens are throttled per client address (throttle.ts).
 * - Without: loopback clients only, each an operator named `local`; anything else is 403, and so
 *   is a request that came through a proxy (it would make every client of the proxy `local`).
 *
 * The session cookie is not enough on its own. Browsers send a host's cookies to every port of
 * that host, so any other web server there receives it (N2). Whoever holds only the cookie must
 * not be able to read or change anything, so every request signed in by cookie, reads included,
 * must also carry the session's `X-CSRF-Token`. That token is given out once, in the answer to
 * the sign-in, and the console keeps it in its origin's storage, which another port cannot read.
 * Every API request is also refused when the browser says it comes from another origin
 * (`Sec-Fetch-Site` other than same-origin, or a foreign `Origin`). Bearer clients (curl, the
 * CLI) send neither header and are not affected.
 */
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { HttpError } from '../http/errors.js';
import { isLoopbackAddress } from './loopback.js';
import { clientKey, failureThrottle, type FailureThrottle } from './throttle.js';
import { findToken, sameSecret, type AdminToken, type Principal } from './tokens.js';

export { isLoopbackAddress } from './loopback.js';

/** The cookie over plain HTTP. */
export const SESSION_COOKIE = 'sagas_session';
/**
 * The cookie when the console is served over TLS: `__Host-` makes the browser refuse it unless it
 * is `Secure`, host-only and `Path=/`, so no other origin (another port over plain HTTP, a
 * sub-domain) can set or replace it.
 */
export const SECURE_SESSION_COOKIE = `__Host-${SESSION_COOKIE}`;
export const SESSION_TTL_MS = 12 * 3_600_000;
/** Sessions kept at most; the oldest goes first (a flood of sign-ins costs bounded memory). */
const MAX_SESSIONS = 10_000;

/**
 * Request headers a proxy adds. In loopback-only mode a request carrying one is refused: it came
 * from somewhere else, through a proxy that made it look local. (nginx adds none by default, so
 * this catches the common cases, not all: docs/http-api.md says a proxy needs ADMIN_TOKENS.)
 */
export const FORWARDING_HEADERS = [
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-real-ip',
  'via',
] as const;

export interface Session extends Principal {
  id: string;
  csrf: string;
  expiresAt: number;
  /** The cookie it was given in (SESSION_COOKIE or SECURE_SESSION_COOKIE): what sign-out clears. */
  cookie: string;
}

export interface Caller extends Principal {
  /** How the caller proved who it is. */
  via: 'bearer' | 'session' | 'loopback';
  session?: Session;
}

declare module 'fastify' {
  interface FastifyRequest {
    caller?: Caller;
  }
}

/** A Host header naming this machine's loopback (or an IP literal): not a name an attacker's DNS could point here. */
function isLocalHost(host: string | undefined): boolean {
  if (!host) return false;
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '');
  return name === 'localhost' || isIP(name) !== 0;
}

function cookieOf(req: FastifyRequest, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const at = part.indexOf('=');
    if (at > 0 && part.slice(0, at).trim() === name) return part.slice(at + 1).trim();
  }
  return undefined;
}

/** A header's one value (Node joins repeated ones with `, `; an array only for set-cookie). */
function headerOf(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/**
 * Whether the sign-in reached us over TLS: a TLS socket, a browser page loaded over https (its
 * `Origin`), or a TLS proxy saying so. A client lying here only gets itself a cookie its browser
 * will not keep (a `Secure` cookie over plain HTTP) or one without `Secure`.
 */
function overTls(req: FastifyRequest): boolean {
  if ((req.socket as { encrypted?: boolean }).encrypted === true) return true;
  if (headerOf(req, 'origin')?.startsWith('https://')) return true;
  return headerOf(req, 'x-forwarded-proto')?.split(',')[0]?.trim().toLowerCase() === 'https';
}

export interface AdminAuth {
  /** No ADMIN_TOKENS: loopback clients only. */
  readonly loopbackOnly: boolean;
  /** The onRequest check of every route, static files included: loopback-only mode refuses others. */
  gate(req: FastifyRequest): void;
  /**
   * The caller of an API route (run in onRequest, before the body is read or validated): 401 with
   * no credential or an unknown one; 403 csrf_rejected for a request from another origin or a
   * cookie without its X-CSRF-Token; 429 too_many_sign_ins (its Retry-After set on `reply`) for a
   * token from a client that guessed too often.
   */
  authenticate(req: FastifyRequest, reply: FastifyReply): Caller;
  /**
   * The sign-in's checks that need no body, run in onRequest like `authenticate`: 403 from another
   * origin, 429 from an address that guessed too often (signIn checks both again).
   */
  screenSignIn(req: FastifyRequest, reply: FastifyReply): void;
  /** `POST /api/session`: a session for a token, its cookie set on `reply`. */
  signIn(req: FastifyRequest, reply: FastifyReply, token: string): Session;
  signOut(caller: Caller, reply: FastifyReply): void;
}

export interface AdminAuthOptions {
  now?: () => number;
  ttlMs?: number;
  /** The wrong-token brake (default: 10 a minute per client address, on `now`'s clock). */
  throttle?: FailureThrottle;
}

export function adminAuth(tokens: readonly AdminToken[], opts: AdminAuthOptions = {}): AdminAuth {
  const now = opts.now ?? Date.now;
  const ttlMs = opts.ttlMs ?? SESSION_TTL_MS;
  const throttle = opts.throttle ?? failureThrottle({ now });
  const sessions = new Map<string, Session>();
  const loopbackOnly = tokens.length === 0;

  /**
   * A request a browser sent for a page of another origin (another port of this host included:
   * `same-site`) is refused, whatever it carries. `Sec-Fetch-Site: none` is a user's own
   * navigation (the address bar), not a page's doing. Clients that are not browsers send neither
   * header.
   */
  const refuseForeign = (req: FastifyRequest) => {
    const site = headerOf(req, 'sec-fetch-site');
    if (site !== undefined && site !== 'same-origin' && site !== 'none') {
      throw new HttpError(
        'csrf_rejected',
        `a request from another site or origin (Sec-Fetch-Site: ${site}) may not use this listener`,
      );
    }
    const origin = headerOf(req, 'origin');
    if (origin === undefined) return;
    const host = headerOf(req, 'host') ?? '';
    if (origin !== `http://${host}` && origin !== `https://${host}`) {
      throw new HttpError('csrf_rejected', `a request from ${origin} may not use this listener`);
    }
  };

  /** 429 with Retry-After while this client is past its wrong tokens; checked and counted in one turn of the event loop. */
  const refuseThrottled = (reply: FastifyReply, client: string) => {
    const waitS = throttle.blockedFor(client);
    if (waitS === 0) return;
    reply.header('retry-after', String(waitS));
    throw new HttpError('too_many_sign_ins', `too many wrong tokens from this address: retry in ${waitS} s`);
  };

  const sessionOf = (req: FastifyRequest): Session | undefined => {
    // The __Host- cookie first: where it exists, it is the one this listener set over TLS.
    const id = cookieOf(req, SECURE_SESSION_COOKIE) ?? cookieOf(req, SESSION_COOKIE);
    if (!id) return undefined;
    const s = sessions.get(id);
    if (!s) return undefined;
    if (s.expiresAt <= now()) {
      sessions.delete(id);
      return undefined;
    }
    return s;
  };

  const cookie = (name: string, value: string, maxAgeS: number) =>
    `${name}=${value}; Path=/; HttpOnly; SameSite=Strict${name === SECURE_SESSION_COOKIE ? '; Secure' : ''}; Max-Age=${maxAgeS}`;

  return {
    loopbackOnly,
    gate(req) {
      if (!loopbackOnly) return;
      if (!isLoopbackAddress(req.socket.remoteAddress)) {
        throw new HttpError(
          'forbidden',
          'no ADMIN_TOKENS are configured: the admin listener serves loopback clients only',
        );
      }
      const forwarded = FORWARDING_HEADERS.find((h) => req.headers[h] !== undefined);
      if (forwarded) {
        throw new HttpError(
          'forwarded_refused',
          `no ADMIN_TOKENS are configured and this request came through a proxy (${forwarded}): a proxy needs ADMIN_TOKENS`,
        );
      }
      // A page whose DNS name was turned to 127.0.0.1 (DNS rebinding) names itself in Host.
      if (!isLocalHost(req.headers.host))
        throw new HttpError(
          'forbidden',
          'no ADMIN_TOKENS are configured: the admin listener answers to localhost or an IP address only',
        );
    },
    authenticate(req, reply) {
      refuseForeign(req);
      if (loopbackOnly) return { name: 'local', role: 'operator', via: 'loopback' };
      const auth = headerOf(req, 'authorization');
      if (auth !== undefined) {
        const client = clientKey(req.socket.remoteAddress);
        refuseThrottled(reply, client);
        const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
        const found = m ? findToken(tokens, m[1] as string) : undefined;
        if (!found) {
          throttle.failed(client);
          throw new HttpError('unauthenticated', 'the bearer token is not one of ADMIN_TOKENS');
        }
        return { ...found, via: 'bearer' };
      }
      const session = sessionOf(req);
      if (!session)
        throw new HttpError(
          'unauthenticated',
          'sign in: send Authorization: Bearer <token>, or POST /api/session {token}',
        );
      const csrf = headerOf(req, 'x-csrf-token');
      if (csrf === undefined || !sameSecret(csrf, session.csrf)) {
        throw new HttpError(
          'csrf_rejected',
          'a request signed in by cookie needs the X-CSRF-Token that the sign-in answered',
        );
      }
      return { name: session.name, role: session.role, via: 'session', session };
    },
    screenSignIn(req, reply) {
      refuseForeign(req);
      if (!loopbackOnly) refuseThrottled(reply, clientKey(req.socket.remoteAddress));
    },
    signIn(req, reply, token) {
      refuseForeign(req);
      if (loopbackOnly)
        throw new HttpError('unauthenticated', 'no ADMIN_TOKENS are configured: loopback clients need no sign-in');
      const client = clientKey(req.socket.remoteAddress);
      refuseThrottled(reply, client);
      const found = findToken(tokens, token);
      if (!found) {
        throttle.failed(client);
        throw new HttpError('unauthenticated', 'the token is not one of ADMIN_TOKENS');
      }
      const t = now();
      for (const [id, s] of sessions) if (s.expiresAt <= t) sessions.delete(id);
      while (sessions.size >= MAX_SESSIONS) sessions.delete(sessions.keys().next().value as string);
      const name = overTls(req) ? SECURE_SESSION_COOKIE : SESSION_COOKIE;
      const session: Session = {
        ...found,
        id: randomBytes(32).toString('base64url'),
        csrf: randomBytes(32).toString('base64url'),
        expiresAt: t + ttlMs,
        cookie: name,
      };
      sessions.set(session.id, session);
      reply.header('set-cookie', cookie(name, session.id, Math.floor(ttlMs / 1000)));
      return session;
    },
    signOut(caller, reply) {
      if (caller.session) sessions.delete(caller.session.id);
      reply.header('set-cookie', cookie(caller.session?.cookie ?? SESSION_COOKIE, '', 0));
    },
  };
}
