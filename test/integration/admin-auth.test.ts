/**
 * Who may use the admin listener (issue 12 part 1; issue 23 after the security review of
 * 2026-12-06, N2, N4, N8, N9, N13): bearer tokens, the console's cookie session and its CSRF
 * token (given by the sign-in only, needed on every cookie request), requests from another
 * origin, a stolen cookie replayed over real HTTP, the cookie's attributes over TLS, the wrong-token
 * throttle, authentication before the body, `no-store` on every answer, and loopback-only mode
 * (forwarded requests refused; tokens required when ADMIN_ADDR is not loopback). Through
 * `inject()` on the admin app of the in-process harness, and one real listener.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { gatewayApp, type GatewayApp } from '../helpers/gateway-app.js';
import { adminState, parkedSaga, resolveBody, signIn as signInWith } from '../helpers/admin-attack.js';
import { findToken, parseAdminTokens, redactAdminTokens } from '../../src/gateway/admin/tokens.js';
import { FORWARDING_HEADERS } from '../../src/gateway/admin/auth.js';
import { clientKey } from '../../src/gateway/admin/throttle.js';
import { FaultBoard } from '../../src/faults/plan.js';
import { gatewayConfig } from '../../src/gateway/config.js';
import { ConfigError } from '../../src/platform/errors.js';
import { resolveVariables } from '../../src/platform/config/config-schema.js';
import { GATEWAY_VARIABLES } from '../../src/gateway/config.js';

const OPERATOR = 'op-token-0123456789abcdef';
const VIEWER = 'viewer-token-0123456789ab';
const TOKENS = `alice:operator:${OPERATOR}, bob:viewer:${VIEWER}`;
const RULE = { id: 'slow-pay', target: { step: 'charge_payment' }, kind: 'latency', latency_ms: 5, enabled: false };

const json = (r: LightMyRequestResponse) => r.json<Record<string, unknown>>();
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
/** What the console's own fetches carry (inject's Host is localhost:80). */
const SAME_ORIGIN = { 'sec-fetch-site': 'same-origin' };
const OWN_ORIGIN = 'http://localhost:80';
const act = (headers: Record<string, string> = {}, extra: Partial<InjectOptions> = {}): InjectOptions => ({
  method: 'POST',
  url: '/api/sagas/6d1c5f9e-0000-4000-8000-000000000000/actions',
  payload: { action: 'retry', action_id: 'a-1' },
  headers,
  ...extra,
});

function expectError(r: LightMyRequestResponse, status: number, code: string) {
  assert.equal(r.statusCode, status, r.body);
  assert.equal(json(r).error, code, r.body);
}

let g: GatewayApp;
let board: FaultBoard;
let clock = Date.now();
before(async () => {
  board = new FaultBoard();
  board.replace({ rules: [RULE] });
  g = await gatewayApp({ adminTokens: TOKENS, now: () => clock, faults: board });
});
after(() => g.close());

/** A session as the console holds it: the cookie (sent by the browser) and the token (sent by the page). */
async function signIn(token: string, headers: Record<string, string> = { origin: OWN_ORIGIN }) {
  const s = await signInWith(g.admin, token, headers);
  return { ...s, headers: { cookie: s.cookie }, page: { cookie: s.cookie, 'x-csrf-token': s.csrf, ...SAME_ORIGIN } };
}

describe('ADMIN_TOKENS', () => {
  test('parsed into names, roles and digests; a bad entry is a ConfigError naming the variable without the token', () => {
    const tokens = parseAdminTokens(TOKENS);
    assert.deepEqual(
      tokens.map((t) => [t.name, t.role]),
      [
        ['alice', 'operator'],
        ['bob', 'viewer'],
      ],
    );
    assert.deepEqual(findToken(tokens, VIEWER), { name: 'bob', role: 'viewer' });
    assert.equal(findToken(tokens, `${VIEWER}x`), undefined);
    assert.equal(redactAdminTokens(TOKENS), 'alice:operator:***, bob:viewer:***'.replace(', ', ','));
    const secret = 'sup3r-secret-token-value';
    for (const bad of [
      `alice:admin:${secret}`,
      `alice:operator:short`,
      `alice:${secret}`,
      `alice:operator:${secret},alice:viewer:${secret}x`,
      `a b:viewer:${secret}`,
    ]) {
      assert.throws(
        () => gatewayConfig({ ADMIN_TOKENS: bad }),
        (err: unknown) =>
          err instanceof ConfigError &&
          err.message.includes('ADMIN_TOKENS') &&
          !err.message.includes(secret) &&
          !err.message.includes('short'),
        bad,
      );
    }
    const shown = resolveVariables(GATEWAY_VARIABLES, { ADMIN_TOKENS: TOKENS }).settings.find(
      (s) => s.variable === 'ADMIN_TOKENS',
    );
    assert.equal(shown?.secret, true);
    assert.ok(!shown?.value?.includes(OPERATOR) && !shown?.value?.includes(VIEWER), shown?.value);
  });

  test('an ADMIN_ADDR that is not loopback needs ADMIN_TOKENS: the gateway refuses to start without (review N4)', () => {
    for (const addr of [':8081', '0.0.0.0:8081', '[::]:8081', '192.0.2.2:8081', 'admin.example:8081']) {
      assert.throws(
        () => gatewayConfig({ ADMIN_ADDR: addr }),
        (err: unknown) =>
          err instanceof ConfigError &&
          err.details.variable === 'ADMIN_TOKENS' &&
          /not a loopback address/.test(err.message),
        addr,
      );
      assert.doesNotThrow(() => gatewayConfig({ ADMIN_ADDR: addr, ADMIN_TOKENS: TOKENS }), addr);
    }
    for (const addr of ['127.0.0.1:8081', '127.0.0.2:9', '[::1]:8081', 'localhost:8081', 'off', '']) {
      assert.doesNotThrow(() => gatewayConfig({ ADMIN_ADDR: addr }), addr);
    }
  });
});

describe('every auth failure', () => {
  test('no token: 401 unauthenticated, on every API route', async () => {
    for (const url of [
      '/api/sagas',
      '/api/sagas/x',
      '/api/parked',
      '/api/overview',
      '/api/stock',
      '/api/session',
      '/api/faults',
      '/api/reconcile',
      '/api/versions',
    ]) {
      expectError(await g.admin.inject({ method: 'GET', url }), 401, 'unauthenticated');
    }
    expectError(await g.admin.inject(act()), 401, 'unauthenticated');
  });

  test('a wrong token, a malformed header, an unknown session: 401', async () => {
    expectError(
      await g.admin.inject({ method: 'GET', url: '/api/sagas', headers: bearer(`${OPERATOR}x`) }),
      401,
      'unauthenticated',
    );
    expectError(
      await g.admin.inject({ method: 'GET', url: '/api/sagas', headers: { authorization: `Basic ${OPERATOR}` } }),
      401,
      'unauthenticated',
    );
    expectError(
      await g.admin.inject({
        method: 'GET',
        url: '/api/sagas',
        headers: { cookie: 'sagas_session=forged', 'x-csrf-token': 'forged' },
      }),
      401,
      'unauthenticated',
    );
    expectError(
      await g.admin.inject({ method: 'POST', url: '/api/session', payload: { token: 'not-a-token-at-all' } }),
      401,
      'unauthenticated',
    );
    expectError(await g.admin.inject(act(bearer('nope'))), 401, 'unauthenticated');
  });

  test('a viewer reads but may not act: 403 forbidden', async () => {
    const list = await g.admin.inject({ method: 'GET', url: '/api/sagas', headers: bearer(VIEWER) });
    assert.equal(list.statusCode, 200, list.body);
    expectError(await g.admin.inject(act(bearer(VIEWER))), 403, 'forbidden');
    const s = await signIn(VIEWER);
    expectError(await g.admin.inject(act(s.page)), 403, 'forbidden');
  });

  test('a cookie request, a read too, needs its CSRF token and must not come from another origin: 403 csrf_rejected', async () => {
    const s = await signIn(OPERATOR);
    // The cookie alone, even from the console's own origin: neither a read nor a change.
    for (const headers of [s.headers, { ...s.headers, ...SAME_ORIGIN }, { ...s.headers, origin: OWN_ORIGIN }]) {
      expectError(await g.admin.inject({ method: 'GET', url: '/api/session', headers }), 403, 'csrf_rejected');
      expectError(await g.admin.inject({ method: 'GET', url: '/api/sagas', headers }), 403, 'csrf_rejected');
      expectError(await g.admin.inject(act(headers)), 403, 'csrf_rejected');
    }
    expectError(await g.admin.inject(act({ ...s.headers, 'x-csrf-token': 'guess' })), 403, 'csrf_rejected');
    // With its token, from another origin (another port of the host is same-site, not same-origin).
    const foreigns: Array<Record<string, string>> = [
      { origin: 'http://evil.example' },
      { origin: 'http://localhost:8090' },
      { origin: 'null' },
      { 'sec-fetch-site': 'same-site' },
      { 'sec-fetch-site': 'cross-site' },
    ];
    for (const foreign of foreigns) {
      expectError(await g.admin.inject(act({ ...s.page, ...foreign })), 403, 'csrf_rejected');
      expectError(
        await g.admin.inject({ method: 'GET', url: '/api/sagas', headers: { ...s.page, ...foreign } }),
        403,
        'csrf_rejected',
      );
    }
    expectError(
      await g.admin.inject({ method: 'DELETE', url: '/api/session', headers: s.headers }),
      403,
      'csrf_rejected',
    );
    // A sign-in from another site is refused too (login CSRF).
    expectError(
      await g.admin.inject({
        method: 'POST',
        url: '/api/session',
        payload: { token: OPERATOR },
        headers: { origin: 'http://evil.example' },
      }),
      403,
      'csrf_rejected',
    );
    expectError(
      await g.admin.inject({
        method: 'POST',
        url: '/api/session',
        payload: { token: OPERATOR },
        headers: { 'sec-fetch-site': 'same-site' },
      }),
      403,
      'csrf_rejected',
    );
    // Cookie and token, from its own origin: through to the engine (no such saga), and reads answer.
    expectError(await g.admin.inject(act({ ...s.page, origin: OWN_ORIGIN })), 404, 'saga_not_found');
    assert.equal((await g.admin.inject({ method: 'GET', url: '/api/sagas', headers: s.page })).statusCode, 200);
    // A browser over plain HTTP to a name that is not loopback sends no Sec-Fetch-Site, and no
    // Origin on a same-origin GET: the token is what lets the console's reads through there.
    const { 'sec-fetch-site': _site, ...plainHttp } = s.page;
    assert.equal((await g.admin.inject({ method: 'GET', url: '/api/sagas', headers: plainHttp })).statusCode, 200);
  });

  test('a bearer request needs no CSRF token, Origin or Sec-Fetch-Site (curl, the CLI); from another origin it is refused', async () => {
    expectError(await g.admin.inject(act(bearer(OPERATOR))), 404, 'saga_not_found');
    expectError(
      await g.admin.inject(act({ ...bearer(OPERATOR), origin: 'http://evil.example' })),
      403,
      'csrf_rejected',
    );
  });

  test('authentication comes before the body: an unauthenticated bad body is 401, not 400 (review N9)', async () => {
    const bad = { customer_id: 'x' };
    const url = '/api/sagas/6d1c5f9e-0000-4000-8000-000000000000/actions';
    expectError(await g.admin.inject({ method: 'POST', url, payload: bad }), 401, 'unauthenticated');
    expectError(
      await g.admin.inject({ method: 'POST', url, payload: 'not json', headers: { 'content-type': 'text/plain' } }),
      401,
      'unauthenticated',
    );
    expectError(
      await g.admin.inject({ method: 'POST', url, payload: '{', headers: { 'content-type': 'application/json' } }),
      401,
      'unauthenticated',
    );
    expectError(
      await g.admin.inject({ method: 'PUT', url: '/api/faults', payload: { rules: 'x' } }),
      401,
      'unauthenticated',
    );
    expectError(
      await g.admin.inject({ method: 'POST', url: '/api/faults/slow-pay', payload: { enabled: 'no' } }),
      401,
      'unauthenticated',
    );
    expectError(await g.admin.inject({ method: 'GET', url: '/api/sagas?limit=abc' }), 401, 'unauthenticated');
    const s = await signIn(OPERATOR);
    expectError(await g.admin.inject({ method: 'POST', url, payload: bad, headers: s.headers }), 403, 'csrf_rejected');
    // Once authenticated, the body is checked as before.
    expectError(
      await g.admin.inject({ method: 'POST', url, payload: bad, headers: bearer(OPERATOR) }),
      400,
      'invalid_request',
    );
  });
});

describe('a stolen session cookie (review N2)', () => {
  let base: URL;
  before(async () => {
    base = new URL(await g.admin.listen({ host: '127.0.0.1', port: 0 }));
  });

  /** A request over real HTTP, with exactly these headers (as a server that captured the cookie would send it). */
  function send(
    method: string,
    path: string,
    headers: Record<string, string>,
    body?: unknown,
  ): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
    return new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = http.request(
        new URL(path, base),
        { method, headers: { ...headers, ...(payload ? { 'content-type': 'application/json' } : {}) } },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  test('replayed from another port, it can neither read the CSRF token nor act; the page that holds the token can', async () => {
    const parked = await parkedSaga(g);
    const own = `http://${base.host}`;
    // The operator signs in from the console (a browser at `own`).
    const signedIn = await send(
      'POST',
      '/api/session',
      { origin: own, 'sec-fetch-site': 'same-origin' },
      { token: OPERATOR },
    );
    assert.equal(signedIn.status, 200, signedIn.text);
    const csrf = (JSON.parse(signedIn.text) as { csrf_token: string }).csrf_token;
    const stolen = /^(sagas_session=[^;]+);/.exec(String(signedIn.headers['set-cookie']))?.[1] as string;
    assert.ok(stolen && csrf);
    const before = await adminState(g, board);

    // What a server on another port of this host receives: the cookie, and nothing else.
    const evil = http.createServer();
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
    const evilOrigin = `http://127.0.0.1:${(evil.address() as AddressInfo).port}`;
    try {
      const replays: Array<Record<string, string>> = [
        { cookie: stolen },
        // As a page of that server would send it from the victim's browser.
        { cookie: stolen, origin: evilOrigin, 'sec-fetch-site': 'same-site' },
        // Forging the console's own headers from curl.
        { cookie: stolen, origin: own, 'sec-fetch-site': 'same-origin' },
        {
          cookie: stolen,
          origin: own,
          'sec-fetch-site': 'same-origin',
          'x-csrf-token': 'guessed-0123456789abcdef0123456789abcdef',
        },
      ];
      for (const headers of replays) {
        const who = await send('GET', '/api/session', headers);
        assert.equal(who.status, 403, who.text);
        assert.equal((JSON.parse(who.text) as { error: string }).error, 'csrf_rejected');
        assert.ok(!who.text.includes(csrf) && !who.text.includes('csrf_token'), who.text);
        assert.equal((await send('GET', '/api/sagas', headers)).status, 403, 'no read either');
        const resolve = await send('POST', `/api/sagas/${parked}/actions`, headers, resolveBody('stolen-1'));
        assert.equal(resolve.status, 403, resolve.text);
        assert.equal((await send('PUT', '/api/faults', headers, { rules: [] })).status, 403);
        assert.equal((await send('POST', '/api/faults/slow-pay', headers, { enabled: true })).status, 403);
        assert.equal((await send('DELETE', '/api/session', headers)).status, 403, 'nor sign the operator out');
      }
    } finally {
      evil.close();
    }
    // Nothing changed: the saga is still PARKED, the plan is as it was, the session still works.
    assert.equal(await adminState(g, board), before);
    assert.equal((await g.log.get(parked))?.status, 'PARKED');
    // The console, holding the token from the sign-in's answer, acts: the lock is the token.
    const page = { cookie: stolen, 'x-csrf-token': csrf, origin: own, 'sec-fetch-site': 'same-origin' };
    const who = await send('GET', '/api/session', page);
    assert.equal(who.status, 200, who.text);
    assert.deepEqual(JSON.parse(who.text), {
      name: 'alice',
      role: 'operator',
      via: 'session',
      csrf_token: null,
      faults: true,
    });
    const resolved = await send('POST', `/api/sagas/${parked}/actions`, page, resolveBody('page-1'));
    assert.equal(resolved.status, 200, resolved.text);
    assert.equal((await g.log.get(parked))?.status, 'RESOLVED');
  });
});

describe('the console session', () => {
  test('sign-in answers the CSRF token once and sets an HttpOnly, SameSite=Strict cookie on / for 12 h; GET never answers the token; DELETE signs out', async () => {
    const s = await signIn(OPERATOR);
    assert.deepEqual(Object.keys(s.body).sort(), ['csrf_token', 'faults', 'name', 'role', 'via']);
    assert.equal(s.body.name, 'alice');
    assert.equal(s.body.role, 'operator');
    assert.equal(s.body.via, 'session');
    assert.ok(s.csrf.length >= 32);
    assert.ok(s.id.length >= 32);
    const attrs = s.setCookie.split(';').map((a) => a.trim());
    assert.equal(attrs[0], `sagas_session=${s.id}`);
    for (const a of ['HttpOnly', 'SameSite=Strict', 'Path=/', 'Max-Age=43200'])
      assert.ok(attrs.includes(a), `${a} in ${s.setCookie}`);
    // Plain HTTP: a Secure cookie would not be kept by the browser.
    assert.ok(!attrs.includes('Secure') && !attrs.some((a) => a.startsWith('Domain')), s.setCookie);
    assert.ok(!s.setCookie.includes(OPERATOR));
    const me = await g.admin.inject({ method: 'GET', url: '/api/session', headers: s.page });
    assert.equal(me.statusCode, 200, me.body);
    assert.deepEqual(json(me), { ...s.body, csrf_token: null });
    const bye = await g.admin.inject({
      method: 'DELETE',
      url: '/api/session',
      headers: { ...s.page, origin: OWN_ORIGIN },
    });
    assert.equal(bye.statusCode, 204);
    assert.match(String(bye.headers['set-cookie']), /^sagas_session=; .*Max-Age=0/);
    expectError(await g.admin.inject({ method: 'GET', url: '/api/session', headers: s.page }), 401, 'unauthenticated');
  });

  test('over TLS the cookie is __Host-sagas_session, Secure, host-only; it works, and sign-out clears it', async () => {
    const overTls: Array<Record<string, string>> = [
      { origin: 'https://localhost:80' },
      { 'x-forwarded-proto': 'https' },
    ];
    for (const headers of overTls) {
      const s = await signIn(OPERATOR, headers);
      const attrs = s.setCookie.split(';').map((a) => a.trim());
      assert.equal(attrs[0], `__Host-sagas_session=${s.id}`, s.setCookie);
      for (const a of ['Secure', 'HttpOnly', 'SameSite=Strict', 'Path=/'])
        assert.ok(attrs.includes(a), `${a} in ${s.setCookie}`);
      assert.ok(!attrs.some((a) => a.startsWith('Domain')), s.setCookie);
      const me = await g.admin.inject({ method: 'GET', url: '/api/session', headers: s.page });
      assert.equal(json(me).name, 'alice', me.body);
      // The plain name does not stand in for it.
      expectError(
        await g.admin.inject({
          method: 'GET',
          url: '/api/session',
          headers: { ...s.page, cookie: `sagas_session=${s.id}x` },
        }),
        401,
        'unauthenticated',
      );
      const bye = await g.admin.inject({ method: 'DELETE', url: '/api/session', headers: s.page });
      assert.equal(bye.statusCode, 204);
      assert.match(
        String(bye.headers['set-cookie']),
        /^__Host-sagas_session=; Path=\/; HttpOnly; SameSite=Strict; Secure; Max-Age=0$/,
      );
    }
  });

  test('a bearer caller has no CSRF token to show', async () => {
    const me = await g.admin.inject({ method: 'GET', url: '/api/session', headers: bearer(VIEWER) });
    assert.deepEqual(json(me), { name: 'bob', role: 'viewer', via: 'bearer', csrf_token: null, faults: true });
  });

  test('a session ends after 12 h', async () => {
    const s = await signIn(VIEWER);
    clock += 12 * 3_600_000 + 1;
    try {
      expectError(await g.admin.inject({ method: 'GET', url: '/api/sagas', headers: s.page }), 401, 'unauthenticated');
    } finally {
      clock = Date.now();
    }
  });

  test('the console files are served without a session (the sign-in page must load), with safe headers', async () => {
    const r = await g.admin.inject({ method: 'GET', url: '/' });
    assert.equal(r.statusCode, 200);
    assert.match(String(r.headers['content-type']), /^text\/html/);
    assert.equal(r.headers['cache-control'], 'no-store');
    assert.match(String(r.headers['content-security-policy']), /frame-ancestors 'none'/);
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    expectError(await g.admin.inject({ method: 'GET', url: '/ui/..%2F..%2Fapp.ts' }), 404, 'not_found');
    expectError(await g.admin.inject({ method: 'GET', url: '/ui/nothing.js' }), 404, 'not_found');
  });
});

describe('wrong tokens are throttled per client address (review N8)', () => {
  const signInFrom = (remoteAddress: string, token: string) =>
    g.admin.inject({ method: 'POST', url: '/api/session', payload: { token }, remoteAddress });
  const readFrom = (remoteAddress: string, token: string) =>
    g.admin.inject({ method: 'GET', url: '/api/overview', headers: bearer(token), remoteAddress });

  test('10 wrong tokens a minute; then every token from that address is 429 with Retry-After, until the window passes', async () => {
    const t0 = clock;
    try {
      for (let i = 0; i < 10; i++)
        expectError(await signInFrom('10.1.0.1', `wrong-token-${i}-0123456789`), 401, 'unauthenticated');
      // Even the right token: were it let through, a guesser would learn which guess was right.
      const refused = await signInFrom('10.1.0.1', OPERATOR);
      expectError(refused, 429, 'too_many_sign_ins');
      assert.equal(refused.headers['retry-after'], '60');
      assert.ok(!('set-cookie' in refused.headers));
      expectError(await readFrom('10.1.0.1', OPERATOR), 429, 'too_many_sign_ins');
      // Another address is not slowed down.
      assert.equal((await signInFrom('10.1.0.2', OPERATOR)).statusCode, 200);
      clock = t0 + 30_000;
      const later = await signInFrom('10.1.0.1', OPERATOR);
      expectError(later, 429, 'too_many_sign_ins');
      assert.equal(later.headers['retry-after'], '30');
      clock = t0 + 60_001;
      assert.equal((await signInFrom('10.1.0.1', OPERATOR)).statusCode, 200);
      assert.equal((await readFrom('10.1.0.1', OPERATOR)).statusCode, 200);
    } finally {
      clock = Date.now();
    }
  });

  test('right tokens and requests without a token are not counted; wrong bearer tokens are', async () => {
    for (let i = 0; i < 20; i++) assert.equal((await signInFrom('10.1.0.3', VIEWER)).statusCode, 200);
    for (let i = 0; i < 20; i++)
      expectError(
        await g.admin.inject({ method: 'GET', url: '/api/sagas', remoteAddress: '10.1.0.3' }),
        401,
        'unauthenticated',
      );
    for (let i = 0; i < 9; i++)
      expectError(await signInFrom('10.1.0.3', `wrong-token-${i}-0123456789`), 401, 'unauthenticated');
    assert.equal((await signInFrom('10.1.0.3', VIEWER)).statusCode, 200, 'nine wrong ones: still allowed');
    // Bearer guesses count the same as sign-in guesses.
    for (let i = 0; i < 10; i++)
      expectError(await readFrom('10.1.0.4', `wrong-token-${i}-0123456789`), 401, 'unauthenticated');
    expectError(await signInFrom('10.1.0.4', OPERATOR), 429, 'too_many_sign_ins');
  });

  test('an IPv6 client is counted by its /64', async () => {
    for (let i = 1; i <= 10; i++)
      expectError(
        await signInFrom(`2001:db8::${i.toString(16)}`, `wrong-token-${i}-0123456789`),
        401,
        'unauthenticated',
      );
    expectError(await signInFrom('2001:db8:0:0:ffff::1', OPERATOR), 429, 'too_many_sign_ins');
    assert.equal((await signInFrom('2001:db8:0:1::1', OPERATOR)).statusCode, 200);
    assert.equal(clientKey('2001:0db8:0000:0000:1:2:3:4'), '2001:db8:0:0::/64');
    assert.equal(clientKey('::ffff:10.0.0.1'), '10.0.0.1');
    assert.equal(clientKey('64:ff9b::192.0.2.1'), '64:ff9b:0:0::/64');
  });
});

describe('no admin answer may be cached (review N13)', () => {
  test('Cache-Control: no-store on API answers, errors, 404s, sign-in and sign-out, and the console files', async () => {
    const s = await signIn(OPERATOR);
    const answers = [
      await g.admin.inject({ method: 'GET', url: '/api/sagas', headers: bearer(VIEWER) }),
      await g.admin.inject({ method: 'GET', url: '/api/sagas?limit=abc', headers: bearer(VIEWER) }),
      await g.admin.inject({ method: 'GET', url: '/api/sagas' }),
      await g.admin.inject({ method: 'GET', url: '/api/session', headers: s.headers }),
      await g.admin.inject({ method: 'GET', url: '/api/session', headers: s.page }),
      await g.admin.inject({ method: 'POST', url: '/api/session', payload: { token: OPERATOR } }),
      await g.admin.inject({ method: 'DELETE', url: '/api/session', headers: s.page }),
      await g.admin.inject({ method: 'GET', url: '/api/nothing' }),
      await g.admin.inject({ method: 'GET', url: '/nothing' }),
      await g.admin.inject({ method: 'GET', url: '/' }),
      await g.admin.inject({ method: 'GET', url: '/ui/app.js' }),
      await g.admin.inject({ method: 'HEAD', url: '/api/overview', headers: bearer(VIEWER) }),
    ];
    for (const r of answers)
      assert.equal(r.headers['cache-control'], 'no-store', `${r.statusCode} ${r.body.slice(0, 80)}`);
  });
});

describe('without ADMIN_TOKENS: loopback only', () => {
  let local: GatewayApp;
  before(async () => {
    local = await gatewayApp();
  });
  after(() => local.close());

  test('a loopback client is the operator "local", with no sign-in', async () => {
    for (const remoteAddress of ['127.0.0.1', '::1', '::ffff:127.0.0.1']) {
      const me = await local.admin.inject({ method: 'GET', url: '/api/session', remoteAddress, headers: SAME_ORIGIN });
      assert.deepEqual(
        json(me),
        { name: 'local', role: 'operator', via: 'loopback', csrf_token: null, faults: false },
        remoteAddress,
      );
      assert.equal(me.headers['cache-control'], 'no-store');
    }
    expectError(await local.admin.inject(act()), 404, 'saga_not_found');
  });

  test('any other client is refused, API and console alike: 403 forbidden', async () => {
    for (const url of ['/api/sagas', '/api/session', '/', '/ui/app.js', '/nothing']) {
      expectError(await local.admin.inject({ method: 'GET', url, remoteAddress: '192.168.1.20' }), 403, 'forbidden');
    }
    expectError(await local.admin.inject(act({}, { remoteAddress: '10.0.0.1' })), 403, 'forbidden');
  });

  test('a request that came through a proxy is refused, and changes nothing (review N4)', async () => {
    const parked = await parkedSaga(local);
    for (const header of FORWARDING_HEADERS) {
      const headers = {
        [header]: header === 'forwarded' ? 'for=203.0.113.9' : header === 'via' ? '1.1 proxy' : '203.0.113.9',
      };
      for (const url of ['/api/session', '/api/sagas', '/', '/ui/app.js']) {
        expectError(await local.admin.inject({ method: 'GET', url, headers }), 403, 'forwarded_refused');
      }
      expectError(
        await local.admin.inject({
          method: 'POST',
          url: `/api/sagas/${parked}/actions`,
          payload: resolveBody(`via-${header}`),
          headers,
        }),
        403,
        'forwarded_refused',
      );
    }
    // The review's reproduction: an nginx-like proxy on the same host rewriting Host.
    const proxied = await local.admin.inject({
      method: 'GET',
      url: '/api/session',
      headers: { 'x-forwarded-for': '203.0.113.9', host: 'console.example.com' },
    });
    expectError(proxied, 403, 'forwarded_refused');
    assert.ok(!proxied.body.includes('local'));
    assert.equal((await local.log.get(parked))?.status, 'PARKED');
    // The same request straight from loopback acts: the forwarding header is what was refused.
    const direct = await local.admin.inject({
      method: 'POST',
      url: `/api/sagas/${parked}/actions`,
      payload: resolveBody('direct-1'),
    });
    assert.equal(direct.statusCode, 200, direct.body);
    assert.equal((await local.log.get(parked))?.status, 'RESOLVED');
  });

  test('a page from another site or another host name (DNS rebinding) may not act or read', async () => {
    expectError(await local.admin.inject(act({ origin: 'http://evil.example' })), 403, 'csrf_rejected');
    expectError(
      await local.admin.inject(act({ origin: 'http://127.0.0.1:8090', 'sec-fetch-site': 'same-site' })),
      403,
      'csrf_rejected',
    );
    expectError(
      await local.admin.inject({ method: 'GET', url: '/api/sagas', headers: { 'sec-fetch-site': 'cross-site' } }),
      403,
      'csrf_rejected',
    );
    expectError(
      await local.admin.inject({ method: 'GET', url: '/api/sagas', headers: { host: 'evil.example:8081' } }),
      403,
      'forbidden',
    );
  });
});

test('the public port serves no saga list, no detail and no admin API', async () => {
  for (const url of ['/sagas', '/sagas/x', '/api/sagas', '/api/session']) {
    expectError(await g.app.inject({ method: 'GET', url, headers: bearer(OPERATOR) }), 404, 'not_found');
  }
});
