import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { LightMyRequestResponse } from 'fastify';
import { gatewayApp, type GatewayApp } from '../helpers/gateway-app.js';
import { adminState, parkedSaga, signIn } from '../helpers/admin-attack.js';
import { FORWARDING_HEADERS } from '../../src/gateway/admin/auth.js';
import { FaultBoard } from '../../src/faults/plan.js';

/**
 * Hostile input, generated: whatever a client sends, the gateway answers a 4xx with `{error,
 * message}` (or a 201 for what is in fact a valid order), never a 5xx, never hangs, and stores
 * nothing for what it refused. The admin listener too (issue 23): every route, every role,
 * cookie and bearer, from its own origin or another, through a proxy in loopback-only mode —
 * nothing changes without an operator's credential presented the right way, no answer gives a
 * CSRF token or a session to whoever holds only the cookie, and no answer may be cached.
 */

let g: GatewayApp;
before(async () => {
  g = await gatewayApp();
});
after(() => g.close());

const anyJson = fc.jsonValue({ maxDepth: 3 });
const nearlyValidLine = fc.record(
  {
    product_id: fc.oneof(
      fc.constantFrom('prod_1', 'prod_2', 'prod_3', '', ' ', 'a b', 'é', 'x'.repeat(65)),
      fc.string(),
      anyJson,
    ),
    quantity: fc.oneof(fc.integer({ min: -5, max: 20_000 }), fc.double(), fc.string(), anyJson),
    price: fc.oneof(
      fc.double({ min: -10, max: 2_000_000 }),
      fc.constantFrom(0, 0.001, 1e-9, 10.000000001, 0.01, 19.99, 1e308, -0),
      fc.string(),
      anyJson,
    ),
  },
  { requiredKeys: [] },
);
const nearlyValidOrder = fc.record(
  {
    customer_id: fc.oneof(fc.constantFrom('cust_1', '', '   ', 'a b', 'c'.repeat(129)), fc.string(), anyJson),
    items: fc.oneof(fc.array(nearlyValidLine, { maxLength: 4 }), anyJson),
  },
  { requiredKeys: [] },
);

async function sagaCount(): Promise<number> {
  return (await g.log.list({ limit: 500 })).sagas.length;
}

test('POST /orders: any JSON, any nearly-valid order: a 4xx or a 201, never a 5xx, nothing stored when refused', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(nearlyValidOrder, anyJson),
      fc.option(fc.string({ maxLength: 300 }), { nil: undefined }),
      async (body, key) => {
        const before = await sagaCount();
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        // A header value Node itself refuses to send is not a request the gateway can see.
        if (key !== undefined && /^[\t\x20-\x7e]*$/.test(key)) headers['x-idempotency-key'] = key;
        const res = await g.app.inject({ method: 'POST', url: '/orders', payload: JSON.stringify(body), headers });
        assert.ok(res.statusCode < 500, `${res.statusCode} ${res.body} for ${JSON.stringify(body)}`);
        if (res.statusCode === 201) return;
        assert.ok(res.statusCode >= 400, String(res.statusCode));
        const answer = res.json<Record<string, unknown>>();
        assert.equal(typeof answer.error, 'string');
        assert.equal(typeof answer.message, 'string');
        assert.equal(await sagaCount(), before, 'a refused order stores nothing');
      },
    ),
    { numRuns: 300 },
  );
});

test('POST /orders: raw bytes and odd content types are 4xx', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.uint8Array({ maxLength: 200 }),
      fc.constantFrom(
        'application/json',
        'text/plain',
        'application/x-www-form-urlencoded',
        'application/json; charset=latin1',
      ),
      async (bytes, type) => {
        const res = await g.app.inject({
          method: 'POST',
          url: '/orders',
          payload: Buffer.from(bytes),
          headers: { 'content-type': type },
        });
        assert.ok(res.statusCode >= 400 && res.statusCode < 500, `${res.statusCode} ${res.body}`);
      },
    ),
    { numRuns: 150 },
  );
});

test('GET routes: any id and any query string are answered without a 5xx', async () => {
  const segment = fc.string({ maxLength: 80 }).map((s) => encodeURIComponent(s));
  const query = fc.dictionary(
    fc.constantFrom('status', 'limit', 'cursor', 'after_seq', 'x'),
    fc.oneof(fc.string({ maxLength: 20 }), fc.integer().map(String)),
    { maxKeys: 4 },
  );
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom('/orders/', '/api/sagas/', '/orders/:id/saga', '/api/sagas', '/api/parked'),
      segment,
      query,
      fc.boolean(),
      async (route, id, q, repeat) => {
        const path =
          route === '/api/sagas' || route === '/api/parked'
            ? route
            : route.includes(':id')
              ? `/orders/${id || 'x'}/saga`
              : `${route}${id || 'x'}`;
        const params = new URLSearchParams(q);
        // The same parameter twice is a request too.
        if (repeat && params.has('limit')) params.append('limit', '2');
        // The saga routes are the admin listener's (loopback: this test is the operator `local`).
        const res = await (path.startsWith('/api/') ? g.admin : g.app).inject({
          method: 'GET',
          url: `${path}?${params}`,
        });
        assert.ok(res.statusCode < 500, `${res.statusCode} ${res.body} for ${path}?${params}`);
      },
    ),
    { numRuns: 300 },
  );
});

// ---------------------------------------------------------------------------------------------
// The admin listener

const OPERATOR = 'hostile-operator-0123456789';
const VIEWER = 'hostile-viewer-01234567890';
const SLOW_PAY = { id: 'slow-pay', target: { step: 'charge_payment' }, kind: 'latency', latency_ms: 1, enabled: false };

interface AdminRoute {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE';
  /** The path, given the saga the request aims at. */
  path: (saga: string) => string;
  /** Bodies to send, valid and not (none: a request without a body). */
  body?: fc.Arbitrary<unknown>;
  /** Whether the route changes sagas or the fault plan (what `adminState` sees). */
  changes?: true;
}

/** A route as a counterexample shows it: `POST /api/sagas/:id/actions`, not its arbitraries. */
function shown(route: AdminRoute): AdminRoute {
  return Object.assign(route, { [fc.toStringMethod]: () => `${route.method} ${route.path(':id')}` });
}

const anyBody = fc.jsonValue({ maxDepth: 2 });
let actionSeq = 0;
const ADMIN_ROUTES: readonly AdminRoute[] = (
  [
    { method: 'GET', path: () => '/api/session' },
    {
      method: 'POST',
      path: () => '/api/session',
      body: fc.oneof(fc.record({ token: fc.constantFrom(OPERATOR, VIEWER, 'not-a-token-of-this-gateway') }), anyBody),
    },
    { method: 'DELETE', path: () => '/api/session' },
    { method: 'GET', path: () => '/api/sagas' },
    { method: 'GET', path: () => '/api/sagas?status=PARKED&limit=5' },
    { method: 'GET', path: (id) => `/api/sagas/${id}` },
    { method: 'HEAD', path: (id) => `/api/sagas/${id}` },
    { method: 'GET', path: () => '/api/parked' },
    { method: 'GET', path: () => '/api/overview' },
    { method: 'GET', path: () => '/api/stock' },
    { method: 'GET', path: () => '/api/reconcile' },
    { method: 'GET', path: () => '/api/faults' },
    { method: 'GET', path: () => '/api/versions' },
    {
      method: 'POST',
      path: () => '/api/migrations',
      // This gateway registers place_order v1 only: every migration is refused (409 to v2, 400 to v1),
      // so it is not among the routes that change something.
      body: fc.oneof(
        fc
          .record({ to: fc.constantFrom(1, 2), dry_run: fc.boolean() })
          .map((b) => ({ definition: 'place_order', from: 1, ...b })),
        anyBody,
      ),
    },
    {
      method: 'POST',
      path: (id) => `/api/sagas/${id}/actions`,
      // resolve acts at once; retry and compensate set the engine going (that saga is then left out of the comparison).
      body: fc.oneof(
        fc
          .constantFrom('resolve', 'retry', 'compensate')
          .map((action) => ({ action, action_id: `hostile-${++actionSeq}`, note: 'hostile run' })),
        anyBody,
      ),
      changes: true,
    },
    {
      method: 'PUT',
      path: () => '/api/faults',
      body: fc.oneof(
        fc.boolean().map((enabled) => ({
          rules: [
            { ...SLOW_PAY, enabled },
            {
              id: `r-${++actionSeq}`,
              target: { step: 'create_order' },
              kind: 'latency',
              latency_ms: 1,
              enabled: false,
            },
          ],
        })),
        anyBody,
      ),
      changes: true,
    },
    {
      method: 'POST',
      path: () => '/api/faults/slow-pay',
      body: fc.oneof(
        fc.boolean().map((enabled) => ({ enabled })),
        anyBody,
      ),
      changes: true,
    },
    { method: 'GET', path: () => '/' },
    { method: 'GET', path: () => '/ui/app.js' },
  ] as AdminRoute[]
).map(shown);

/** A route, and a body for it (valid or not; undefined for a route that takes none). */
// Routes that change something are drawn twice as often as the others, so that changes happen
// often enough (both ways) in a few hundred runs for the properties to say something.
const routeAndBody: fc.Arbitrary<[AdminRoute, unknown]> = fc
  .oneof(
    { arbitrary: fc.constantFrom(...ADMIN_ROUTES.filter((r) => r.changes)), weight: 2 },
    { arbitrary: fc.constantFrom(...ADMIN_ROUTES.filter((r) => !r.changes)), weight: 1 },
  )
  .chain((route) => (route.body ?? fc.constant(undefined)).map((body): [AdminRoute, unknown] => [route, body]));

const FOREIGN_ORIGINS = ['http://evil.example', 'http://localhost:8090', 'null'] as const;
/** Three times in four what the console itself would send; else what another origin's page would. */
const mostly = <T, U>(usual: fc.Arbitrary<T>, hostile: fc.Arbitrary<U>) =>
  fc.oneof({ arbitrary: usual, weight: 3 }, { arbitrary: hostile, weight: 1 });
const originHeader = mostly(fc.constantFrom(undefined, 'own' as const), fc.constantFrom(...FOREIGN_ORIGINS));
const siteHeader = mostly(
  fc.constantFrom(undefined, 'same-origin', 'none'),
  fc.constantFrom('same-site', 'cross-site'),
);

/** Whether a browser says this request comes from another origin than `own`. */
function isForeign(origin: string | undefined, site: string | undefined, own: string): boolean {
  const ownOrigins = [`http://${own}`, `https://${own}`];
  return (
    (origin !== undefined && !ownOrigins.includes(origin)) ||
    (site !== undefined && site !== 'same-origin' && site !== 'none')
  );
}

/** An answer's JSON body, or undefined (a page, a script, a HEAD answer). */
function jsonOf(res: LightMyRequestResponse): { error?: unknown; csrf_token?: unknown } | undefined {
  try {
    const body: unknown = JSON.parse(res.body);
    return typeof body === 'object' && body !== null ? body : undefined;
  } catch {
    return undefined;
  }
}

/** A sign-out's answer: the only other one with a Set-Cookie, and that empties the cookie. */
const clearsCookie = (route: AdminRoute, res: LightMyRequestResponse): boolean =>
  route.method === 'DELETE' &&
  res.statusCode === 204 &&
  /^(__Host-)?sagas_session=; .*Max-Age=0$/.test(String(res.headers['set-cookie']));

/** Whether an answer's body hands out a CSRF token (a string `csrf_token`). */
const handsOutCsrf = (res: LightMyRequestResponse): boolean => typeof jsonOf(res)?.csrf_token === 'string';

describe('the admin API, attacked', () => {
  let a: GatewayApp;
  let board: FaultBoard;
  const parked: string[] = [];
  /** Sagas an operator rightly acted on: the engine may still move them, so they leave the comparison. */
  const settled = new Set<string>();
  /** Every session id and CSRF token given out: no answer but a sign-in's may carry one. */
  const secrets = new Set<string>();
  let runs = 0;
  let rightWayChanges = 0;

  before(async () => {
    board = new FaultBoard();
    board.replace({ rules: [SLOW_PAY] });
    a = await gatewayApp({ adminTokens: `olga:operator:${OPERATOR},vic:viewer:${VIEWER}`, faults: board });
    for (let i = 0; i < 8; i++) parked.push(await parkedSaga(a, `cust_hostile_${i}`));
  });
  after(() => a.close());

  /** A request to the listener with ADMIN_TOKENS: a route and body, and every way of presenting (or not) a credential. */
  const tokenRequest = (routes: fc.Arbitrary<[AdminRoute, unknown]>) =>
    fc.record({
      route: routes,
      saga: fc.oneof(fc.constantFrom(...parked), fc.constant('6d1c5f9e-0000-4000-8000-000000000000')),
      bearer: mostly(fc.constantFrom('none', 'operator'), fc.constantFrom('viewer', 'wrong')),
      cookie: mostly(fc.constantFrom('none', 'operator'), fc.constantFrom('viewer', 'forged')),
      csrf: mostly(fc.constantFrom('none', 'own'), fc.constantFrom('the other session’s', 'guessed')),
      origin: originHeader,
      site: siteHeader,
      // One shared address, to meet the wrong-token throttle; else a fresh one per run.
      shared: mostly(fc.constant(false), fc.constant(true)),
    });

  type TokenRequest = ReturnType<typeof tokenRequest> extends fc.Arbitrary<infer T> ? T : never;

  /** Sends one; checks every property of its answer and of what it changed. */
  const attack = async ({ route: [route, body], ...r }: TokenRequest) => {
    runs += 1;
    // Fresh sessions each run (a DELETE may end one), as the console would hold them.
    const op = await signIn(a.admin, OPERATOR, {}, '127.0.0.9');
    const vw = await signIn(a.admin, VIEWER, {}, '127.0.0.9');
    for (const s of [op, vw]) secrets.add(s.id).add(s.csrf);
    const session = r.cookie === 'operator' ? op : r.cookie === 'viewer' ? vw : undefined;
    const headers: Record<string, string> = {};
    if (r.bearer !== 'none')
      headers.authorization = `Bearer ${r.bearer === 'operator' ? OPERATOR : r.bearer === 'viewer' ? VIEWER : 'wrong-token-0123456789'}`;
    if (session) headers.cookie = session.cookie;
    if (r.cookie === 'forged') headers.cookie = 'sagas_session=forged-session-id';
    if (r.csrf === 'own' && session) headers['x-csrf-token'] = session.csrf;
    if (r.csrf === 'the other session’s') headers['x-csrf-token'] = session === op ? vw.csrf : op.csrf;
    if (r.csrf === 'guessed') headers['x-csrf-token'] = 'guessed-0123456789abcdef0123456789abcdef';
    const origin = r.origin === 'own' ? 'http://localhost:80' : r.origin;
    if (origin !== undefined) headers.origin = origin;
    if (r.site !== undefined) headers['sec-fetch-site'] = r.site;

    const url = route.path(r.saga);
    const isApi = url.startsWith('/api/');
    const foreign = isForeign(origin, r.site, 'localhost:80');
    const operator = r.bearer !== 'none' ? r.bearer === 'operator' : r.cookie === 'operator' && r.csrf === 'own';
    const rightWay = operator && !foreign;
    const remoteAddress = r.shared ? '10.66.0.1' : `10.77.${Math.floor(runs / 250)}.${runs % 250}`;

    const before = await adminState(a, board, settled);
    const res = await a.admin.inject({
      method: route.method,
      url,
      headers,
      remoteAddress,
      ...(body === undefined
        ? {}
        : { payload: JSON.stringify(body), headers: { ...headers, 'content-type': 'application/json' } }),
    });
    const after = await adminState(a, board, settled);
    const what = `${route.method} ${url} ${JSON.stringify(headers)} ${JSON.stringify(body)} → ${res.statusCode} ${res.body.slice(0, 200)}`;

    assert.ok(res.statusCode < 500, what);
    assert.equal(res.headers['cache-control'], 'no-store', what);
    // Nothing changes without an operator's credential presented the right way.
    if (after !== before) {
      assert.ok(route.changes && rightWay, `changed by ${what}`);
      rightWayChanges += 1;
    }
    // ...and presented the right way, it is let through (refusals come from the route itself).
    if (route.changes && rightWay && !(r.shared && res.statusCode === 429))
      assert.ok(res.statusCode !== 401 && res.statusCode !== 403, what);
    if (rightWay && route.changes && url.endsWith('/actions')) settled.add(r.saga);
    // No CSRF token and no session to anyone but the token's holder signing in.
    const signedIn = route.method === 'POST' && url === '/api/session' && res.statusCode === 200;
    if (signedIn) {
      const token = res.json<{ csrf_token: string }>().csrf_token;
      secrets.add(token).add(/sagas_session=([^;]+)/.exec(String(res.headers['set-cookie']))?.[1] ?? '');
    } else {
      assert.ok(!handsOutCsrf(res), what);
      for (const secret of secrets) assert.ok(!res.body.includes(secret), `a secret in ${what}`);
      assert.ok(res.headers['set-cookie'] === undefined || clearsCookie(route, res), what);
    }
    if (isApi && !signedIn) {
      // Whoever holds only the cookie gets nothing from the API (the sign-in takes no cookie: it wants a token).
      const signInRoute = route.method === 'POST' && url === '/api/session';
      if (!signInRoute && r.bearer === 'none' && r.csrf === 'none' && r.cookie !== 'none')
        assert.ok(res.statusCode === 401 || res.statusCode === 403, what);
      // A request from another origin gets nothing from the API either.
      if (foreign) assert.ok(res.statusCode >= 400 && res.statusCode < 500, what);
    }
  };

  test('with ADMIN_TOKENS: every route, role, credential and origin', async (t) => {
    await fc.assert(fc.asyncProperty(tokenRequest(routeAndBody), attack), { numRuns: 400 });
    // The properties were not vacuous: right-way changes did happen.
    assert.ok(rightWayChanges > 0, `${rightWayChanges} changes in ${runs} runs`);
    t.diagnostic(
      `${rightWayChanges} changes, each by an operator presenting a credential the right way, in ${runs} runs`,
    );
  });

  test('GET /api/session, whatever it carries (its own cookie and token included), never answers a CSRF token', async () => {
    const session = ADMIN_ROUTES.find((r) => r.method === 'GET' && r.path('') === '/api/session') as AdminRoute;
    await fc.assert(fc.asyncProperty(tokenRequest(fc.constant([session, undefined])), attack), { numRuns: 150 });
  });

  test('in loopback-only mode: every route, from loopback or not, through a proxy or not, from its own origin or another', async (t) => {
    const loopBoard = new FaultBoard();
    loopBoard.replace({ rules: [SLOW_PAY] });
    const loop = await gatewayApp({ faults: loopBoard });
    try {
      const targets: string[] = [];
      for (let i = 0; i < 6; i++) targets.push(await parkedSaga(loop));
      const acted = new Set<string>();
      let changes = 0;
      const request = fc.record({
        route: routeAndBody,
        saga: fc.constantFrom(...targets),
        remoteAddress: mostly(
          fc.constantFrom('127.0.0.1', '::1', '::ffff:127.0.0.1', '127.0.0.2'),
          fc.constantFrom('10.0.0.1', '192.168.1.20', '::ffff:192.0.2.7'),
        ),
        forwarded: mostly(fc.constant([]), fc.subarray([...FORWARDING_HEADERS], { minLength: 1, maxLength: 2 })),
        host: mostly(
          fc.constantFrom('localhost:8081', '127.0.0.1:8081', '[::1]:8081'),
          fc.constantFrom('console.example.com', 'evil.example:8081'),
        ),
        origin: originHeader,
        site: siteHeader,
      });
      await fc.assert(
        fc.asyncProperty(request, async ({ route: [route, body], ...r }) => {
          const headers: Record<string, string> = { host: r.host };
          for (const h of r.forwarded)
            headers[h] = h === 'forwarded' ? 'for=203.0.113.9' : h === 'via' ? '1.1 proxy' : '203.0.113.9';
          const origin = r.origin === 'own' ? `http://${r.host}` : r.origin;
          if (origin !== undefined) headers.origin = origin;
          if (r.site !== undefined) headers['sec-fetch-site'] = r.site;
          if (body !== undefined) headers['content-type'] = 'application/json';
          const url = route.path(r.saga);
          const loopback = /^(127\.|::1$|::ffff:127\.)/.test(r.remoteAddress);
          const localHost = !/example/.test(r.host);
          const rightWay = loopback && r.forwarded.length === 0 && localHost && !isForeign(origin, r.site, r.host);

          const before = await adminState(loop, loopBoard, acted);
          const res = await loop.admin.inject({
            method: route.method,
            url,
            headers,
            remoteAddress: r.remoteAddress,
            ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
          });
          const after = await adminState(loop, loopBoard, acted);
          const what = `${r.remoteAddress} ${route.method} ${url} ${JSON.stringify(headers)} ${JSON.stringify(body)} → ${res.statusCode} ${res.body.slice(0, 200)}`;

          assert.ok(res.statusCode < 500, what);
          assert.equal(res.headers['cache-control'], 'no-store', what);
          if (after !== before) {
            assert.ok(route.changes && rightWay, `changed by ${what}`);
            changes += 1;
          }
          if (rightWay && url.endsWith('/actions')) acted.add(r.saga);
          assert.ok(!handsOutCsrf(res), what);
          assert.ok(res.headers['set-cookie'] === undefined || clearsCookie(route, res), what);
          // Whatever the route, static files included: not from loopback, or through a proxy, is refused.
          // (A HEAD answer has the status and no body.)
          const error = jsonOf(res)?.error;
          if (!loopback) assert.ok(res.statusCode === 403 && (error ?? 'forbidden') === 'forbidden', what);
          else if (r.forwarded.length > 0)
            assert.ok(res.statusCode === 403 && (error ?? 'forwarded_refused') === 'forwarded_refused', what);
          else if (url.startsWith('/api/') && !rightWay) assert.ok(res.statusCode === 403, what);
        }),
        { numRuns: 300 },
      );
      assert.ok(changes > 0, 'no right-way change happened: the property says nothing');
      t.diagnostic(`${changes} changes, each by a direct loopback client of its own origin`);
    } finally {
      await loop.close();
    }
  });
});
