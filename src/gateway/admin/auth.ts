/**
 * Who may use the admin listener, and how (issue 12, DESIGN §6b):
 *
 * - With ADMIN_TOKENS: every API call carries `Authorization: Bearer <token>`, or the session
 *   cookie the console got from `POST /api/session {token}`. Tokens are compared in constant time
 *   (tokens.ts) and never logged.
 * - Without: loopback clients only, each an operator named `local`; anything else is 403.
 * - A state-changing request (not GET/HEAD) signed in by cookie must carry the session's
 *   `X-CSRF-Token`; one with an `Origin` header must come from this listener's own origin. SameSite
 *   Strict already keeps the cookie off cross-site requests; these are the second lock.
 */
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { HttpError } from '../http/errors.js';
import { findToken, sameSecret, type AdminToken, type Principal } from './tokens.js';

export const SESSION_COOKIE = 'sagas_session';
export const SESSION_TTL_MS = 12 * 3_600_000;
/** Sessions kept at most; the oldest goes first (a flood of sign-ins costs bounded memory). */
const MAX_SESSIONS = 10_000;

export interface Session extends Principal {
  id: string;
  csrf: string;
  expiresAt: number;
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

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  return a === '::1' || /^127\./.test(a);
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

export interface AdminAuth {
  /** No ADMIN_TOKENS: loopback clients only. */
  readonly loopbackOnly: boolean;
  /** The onRequest check of every route, static files included: loopback-only mode refuses others. */
  gate(req: FastifyRequest): void;
  /** The caller of an API route, or 401; 403 csrf_rejected for a cross-site state change. */
  authenticate(req: FastifyRequest): Caller;
  /** `POST /api/session`: a session for a token, its cookie set on `reply`. */
  signIn(req: FastifyRequest, reply: FastifyReply, token: string): Session;
  signOut(caller: Caller, reply: FastifyReply): void;
}

export function adminAuth(tokens: readonly AdminToken[], opts: { now?: () => number; ttlMs?: number } = {}): AdminAuth {
  const now = opts.now ?? Date.now;
  const ttlMs = opts.ttlMs ?? SESSION_TTL_MS;
  const sessions = new Map<string, Session>();
  const loopbackOnly = tokens.length === 0;

  const checkOrigin = (req: FastifyRequest) => {
    const origin = req.headers.origin;
    if (origin === undefined) return;
    if (origin !== `http://${req.headers.host ?? ''}` && origin !== `https://${req.headers.host ?? ''}`) {
      throw new HttpError('csrf_rejected', `a request from ${origin} may not change anything here`);
    }
  };

  const sessionOf = (req: FastifyRequest): Session | undefined => {
    const id = cookieOf(req, SESSION_COOKIE);
    if (!id) return undefined;
    const s = sessions.get(id);
    if (!s) return undefined;
    if (s.expiresAt <= now()) {
      sessions.delete(id);
      return undefined;
    }
    return s;
  };

  const cookie = (value: string, maxAgeS: number) => `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeS}`;

  return {
    loopbackOnly,
    gate(req) {
      if (!loopbackOnly) return;
      if (!isLoopbackAddress(req.socket.remoteAddress)) {
        throw new HttpError('forbidden', 'no ADMIN_TOKENS are configured: the admin listener serves loopback clients only');
      }
      // A page whose DNS name was turned to 127.0.0.1 (DNS rebinding) names itself in Host.
      if (!isLocalHost(req.headers.host)) throw new HttpError('forbidden', 'no ADMIN_TOKENS are configured: the admin listener answers to localhost or an IP address only');
    },
    authenticate(req) {
      const changes = !SAFE_METHODS.has(req.method);
      if (loopbackOnly) {
        if (changes) checkOrigin(req);
        return { name: 'local', role: 'operator', via: 'loopback' };
      }
      const auth = req.headers.authorization;
      if (auth !== undefined) {
        const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
        const found = m ? findToken(tokens, m[1] as string) : undefined;
        if (!found) throw new HttpError('unauthenticated', 'the bearer token is not one of ADMIN_TOKENS');
        return { ...found, via: 'bearer' };
      }
      const session = sessionOf(req);
      if (!session) throw new HttpError('unauthenticated', 'sign in: send Authorization: Bearer <token>, or POST /api/session {token}');
      if (changes) {
        checkOrigin(req);
        const csrf = req.headers['x-csrf-token'];
        if (typeof csrf !== 'string' || !sameSecret(csrf, session.csrf)) throw new HttpError('csrf_rejected', 'a change signed in by cookie needs the session\'s X-CSRF-Token header');
      }
      return { name: session.name, role: session.role, via: 'session', session };
    },
    signIn(req, reply, token) {
      checkOrigin(req);
      const found = loopbackOnly ? undefined : findToken(tokens, token);
      if (!found) {
        throw new HttpError('unauthenticated', loopbackOnly ? 'no ADMIN_TOKENS are configured: loopback clients need no sign-in' : 'the token is not one of ADMIN_TOKENS');
      }
      const t = now();
      for (const [id, s] of sessions) if (s.expiresAt <= t) sessions.delete(id);
      while (sessions.size >= MAX_SESSIONS) sessions.delete(sessions.keys().next().value as string);
      const session: Session = { ...found, id: randomBytes(32).toString('base64url'), csrf: randomBytes(32).toString('base64url'), expiresAt: t + ttlMs };
      sessions.set(session.id, session);
      reply.header('set-cookie', cookie(session.id, Math.floor(ttlMs / 1000)));
      return session;
    },
    signOut(caller, reply) {
      if (caller.session) sessions.delete(caller.session.id);
      reply.header('set-cookie', cookie('', 0));
    },
  };
}
