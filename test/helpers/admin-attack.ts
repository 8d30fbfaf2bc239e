import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { FaultBoard } from '../../src/faults/plan.js';
import type { GatewayApp } from './gateway-app.js';
import { STARTED, newSaga } from './saga-log-work.js';

/**
 * What the admin listener's attack tests share (admin-auth, hostile-http, the console's browser
 * test): a PARKED saga to act on, a sign-in that keeps the cookie and the CSRF token apart (as
 * another port of the host receives the one and never the other), and a picture of everything an
 * admin request could change.
 */

/**
 * A saga left PARKED (as another gateway would leave it in the shared log), parked a minute ago:
 * `resolve` acts on it at once, with no participant call. By default parked in compensation at
 * reserve_stock; `at: 'commit_stock'` parks it after the pivot.
 */
export async function parkedSaga(
  g: GatewayApp,
  customer = 'cust_parked',
  opts: { at?: 'reserve_stock' | 'commit_stock' } = {},
): Promise<string> {
  const afterPivot = opts.at === 'commit_stock';
  const id = randomUUID();
  const at = Date.now() - 60_000;
  const res = await g.log.create(
    newSaga(id, {
      definition: 'place_order',
      version: 1,
      status: 'PARKED',
      stepIndex: 4,
      leaseOwner: null,
      input: { order_id: id, customer_id: customer },
      subject: customer,
      currentStep: afterPivot ? 'commit_stock' : 'reserve_stock',
      compIndex: afterPivot ? -1 : 1,
      failure: { step: 'charge_payment', code: 'payment_declined', message: 'declined' },
      createdAt: at,
      updatedAt: at,
    }),
    [STARTED],
    0,
  );
  assert.ok(res.created);
  return id;
}

export interface SignedIn {
  /** The cookie header a browser would send back (`sagas_session=…`): what a server on another port receives. */
  cookie: string;
  /** The session id alone. */
  id: string;
  /** The sign-in answer's token: only the page holds it. */
  csrf: string;
  /** The Set-Cookie header as sent. */
  setCookie: string;
  body: Record<string, unknown>;
}

type Injectable = Pick<FastifyInstance, 'inject'>;

/** `POST /api/session {token}` as the console sends it (its own Origin), from `remoteAddress`. */
export async function signIn(
  admin: Injectable,
  token: string,
  headers: Record<string, string> = {},
  remoteAddress = '127.0.0.1',
): Promise<SignedIn> {
  const r = await admin.inject({ method: 'POST', url: '/api/session', payload: { token }, headers, remoteAddress });
  assert.equal(r.statusCode, 200, r.body);
  const setCookie = String(r.headers['set-cookie']);
  const m = /^((?:__Host-)?sagas_session)=([^;]+);/.exec(setCookie);
  assert.ok(m, setCookie);
  const body = r.json<Record<string, unknown>>();
  assert.equal(typeof body.csrf_token, 'string');
  return { cookie: `${m[1]}=${m[2]}`, id: m[2] as string, csrf: body.csrf_token as string, setCookie, body };
}

/**
 * Everything an admin request could change, as comparable text: each saga's status and last
 * update (leaving out `settled`: sagas an operator legitimately acted on earlier, which the engine
 * may still be moving), and the fault plan's rules (not their fired counts, which sagas move).
 */
export async function adminState(
  g: GatewayApp,
  board?: FaultBoard,
  settled: ReadonlySet<string> = new Set(),
): Promise<string> {
  const sagas = (await g.log.list({ limit: 500 })).sagas
    .filter((s) => !settled.has(s.id))
    .map((s) => `${s.id}:${s.status}:${s.updatedAt}`);
  const rules = (board?.list() ?? []).map((r) => `${r.id}:${r.enabled}:${r.kind}`);
  return JSON.stringify({ sagas, rules });
}

/** An action an operator may take on a PARKED saga at once (resolve: no participant is called). */
export const resolveBody = (actionId: string) => ({ action: 'resolve', action_id: actionId, note: 'repaired by hand' });
