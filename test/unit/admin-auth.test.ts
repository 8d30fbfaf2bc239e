/**
 * Who may use the admin listener (issue 12 part 1): bearer tokens, the console's cookie session
 * and its CSRF lock, roles, and loopback-only mode without ADMIN_TOKENS. Through `inject()` on
 * the admin app of the in-process harness.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { gatewayApp, type GatewayApp } from '../helpers/gateway-app.js';
import { findToken, parseAdminTokens, redactAdminTokens } from '../../src/gateway/admin/tokens.js';
import { gatewayConfig } from '../../src/gateway/config.js';
import { ConfigError } from '../../src/platform/errors.js';
import { resolveVariables } from '../../src/platform/config-schema.js';
import { GATEWAY_VARIABLES } from '../../src/gateway/config.js';

const OPERATOR = 'op-token-0123456789abcdef';
const VIEWER = 'viewer-token-0123456789ab';
const TOKENS = `alice:operator:${OPERATOR}, bob:viewer:${VIEWER}`;

const json = (r: LightMyRequestResponse) => r.json() as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
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
let clock = Date.now();
before(async () => {
  g = await gatewayApp({ adminTokens: TOKENS, now: () => clock });
});
after(() => g.close());

async function signIn(token: string, headers: Record<string, string> = {}) {
  const r = await g.admin.inject({ method: 'POST', url: '/api/session', payload: { token }, headers });
  assert.equal(r.statusCode, 200, r.body);
  const cookie = String(r.headers['set-cookie']);
  const id = /^sagas_session=([^;]+);/.exec(cookie)?.[1] as string;
  return { cookie, id, body: json(r), headers: { cookie: `sagas_session=${id}` } };
}

describe('ADMIN_TOKENS', () => {
  test('parsed into names, roles and digests; a bad entry is a ConfigError naming the variable without the token', () => {
    const tokens = parseAdminTokens(TOKENS);
    assert.deepEqual(tokens.map((t) => [t.name, t.role]), [['alice', 'operator'], ['bob', 'viewer']]);
    assert.deepEqual(findToken(tokens, VIEWER), { name: 'bob', role: 'viewer' });
    assert.equal(findToken(tokens, `${VIEWER}x`), undefined);
    assert.equal(redactAdminTokens(TOKENS), 'alice:operator:***, bob:viewer:***'.replace(', ', ','));
    const secret = 'sup3r-secret-token-value';
    for (const bad of [`alice:admin:${secret}`, `alice:operator:short`, `alice:${secret}`, `alice:operator:${secret},alice:viewer:${secret}x`, `a b:viewer:${secret}`]) {
      assert.throws(
        () => gatewayConfig({ ADMIN_TOKENS: bad }),
        (err: unknown) => err instanceof ConfigError && err.message.includes('ADMIN_TOKENS') && !err.message.includes(secret) && !err.message.includes('short'),
        bad,
      );
    }
    const shown = resolveVariables(GATEWAY_VARIABLES, { ADMIN_TOKENS: TOKENS }).settings.find((s) => s.variable === 'ADMIN_TOKENS');
    assert.equal(shown?.secret, true);
    assert.ok(!shown?.value?.includes(OPERATOR) && !shown?.value?.includes(VIEWER), shown?.value);
  });
});

describe('every auth failure', () => {
  test('no token: 401 unauthenticated, on every API route', async () => {
    for (const url of ['/api/sagas', '/api/sagas/x', '/api/parked', '/api/overview', '/api/stock', '/api/session']) {
      expectError(await g.admin.inject({ method: 'GET', url }), 401, 'unauthenticated');
    }
    expectError(await g.admin.inject(act()), 401, 'unauthenticated');
  });

  test('a wrong token, a malformed header, an unknown session: 401', async () => {
    expectError(await g.admin.inject({ method: 'GET', url: '/api/sagas', headers: bearer(`${OPERATOR}x`) }), 401, 'unauthenticated');
    expectError(await g.admin.inject({ method: 'GET', url: '/api/sagas', headers: { authorization: `Basic ${OPERATOR}` } }), 401, 'unauthenticated');
    expectError(await g.admin.inject({ method: 'GET', url: '/api/sagas', headers: { cookie: 'sagas_session=forged' } }), 401, 'unauthenticated');
    expectError(await g.admin.inject({ method: 'POST', url: '/api/session', payload: { token: 'not-a-token-at-all' } }), 401, 'unauthenticated');
    expectError(await g.admin.inject(act(bearer('nope'))), 401, 'unauthenticated');
  });

  test('a viewer reads but may not act: 403 forbidden', async () => {
    const list = await g.admin.inject({ method: 'GET', url: '/api/sagas', headers: bearer(VIEWER) });
    assert.equal(list.statusCode, 200, list.body);
    expectError(await g.admin.inject(act(bearer(VIEWER))), 403, 'forbidden');
    const s = await signIn(VIEWER);
    expectError(await g.admin.inject(act({ ...s.headers, 'x-csrf-token': s.body.csrf_token })), 403, 'forbidden');
  });

  test('a cookie POST without its CSRF token, with a wrong one, or from a foreign Origin: 403 csrf_rejected', async () => {
    const s = await signIn(OPERATOR);
    expectError(await g.admin.inject(act(s.headers)), 403, 'csrf_rejected');
    expectError(await g.admin.inject(act({ ...s.headers, 'x-csrf-token': 'guess' })), 403, 'csrf_rejected');
    expectError(await g.admin.inject(act({ ...s.headers, 'x-csrf-token': s.body.csrf_token, origin: 'http://evil.example' })), 403, 'csrf_rejected');
    expectError(await g.admin.inject({ method: 'DELETE', url: '/api/session', headers: s.headers }), 403, 'csrf_rejected');
    // A sign-in from another site is refused too (login CSRF).
    expectError(await g.admin.inject({ method: 'POST', url: '/api/session', payload: { token: OPERATOR }, headers: { origin: 'http://evil.example' } }), 403, 'csrf_rejected');
    // With both, from its own origin: through to the engine (no such saga).
    const ok = await g.admin.inject(act({ ...s.headers, 'x-csrf-token': s.body.csrf_token, origin: 'http://localhost:80' }));
    expectError(ok, 404, 'saga_not_found');
    // A GET needs no CSRF token.
    assert.equal((await g.admin.inject({ method: 'GET', url: '/api/sagas', headers: s.headers })).statusCode, 200);
  });

  test('a bearer request needs no CSRF token', async () => {
    expectError(await g.admin.inject(act(bearer(OPERATOR))), 404, 'saga_not_found');
  });
});

describe('the console session', () => {
  test('sign in sets an HttpOnly, SameSite=Strict cookie on / for 12 h; GET answers it; DELETE signs out', async () => {
    const s = await signIn(OPERATOR);
    assert.deepEqual(Object.keys(s.body).sort(), ['csrf_token', 'faults', 'name', 'role']);
    assert.equal(s.body.name, 'alice');
    assert.equal(s.body.role, 'operator');
    assert.ok(s.body.csrf_token.length >= 32);
    assert.ok(s.id.length >= 32);
    const attrs = s.cookie.split(';').map((a) => a.trim());
    for (const a of ['HttpOnly', 'SameSite=Strict', 'Path=/', 'Max-Age=43200']) assert.ok(attrs.includes(a), `${a} in ${s.cookie}`);
    assert.ok(!s.cookie.includes(OPERATOR));
    const me = await g.admin.inject({ method: 'GET', url: '/api/session', headers: s.headers });
    assert.deepEqual(json(me), s.body);
    const bye = await g.admin.inject({ method: 'DELETE', url: '/api/session', headers: { ...s.headers, 'x-csrf-token': s.body.csrf_token } });
    assert.equal(bye.statusCode, 204);
    assert.match(String(bye.headers['set-cookie']), /^sagas_session=; .*Max-Age=0/);
    expectError(await g.admin.inject({ method: 'GET', url: '/api/session', headers: s.headers }), 401, 'unauthenticated');
  });

  test('a bearer caller has no CSRF token to show', async () => {
    const me = await g.admin.inject({ method: 'GET', url: '/api/session', headers: bearer(VIEWER) });
    assert.deepEqual(json(me), { name: 'bob', role: 'viewer', csrf_token: null, faults: false });
  });

  test('a session ends after 12 h', async () => {
    const s = await signIn(VIEWER);
    clock += 12 * 3_600_000 + 1;
    try {
      expectError(await g.admin.inject({ method: 'GET', url: '/api/sagas', headers: s.headers }), 401, 'unauthenticated');
    } finally {
      clock = Date.now();
    }
  });

  test('the console files are served without a session (the sign-in page must load), with safe headers', async () => {
    const r = await g.admin.inject({ method: 'GET', url: '/' });
    assert.equal(r.statusCode, 200);
    assert.match(String(r.headers['content-type']), /^text\/html/);
    assert.equal(r.headers['cache-control'], 'no-cache');
    assert.match(String(r.headers['content-security-policy']), /frame-ancestors 'none'/);
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    expectError(await g.admin.inject({ method: 'GET', url: '/ui/..%2F..%2Fapp.ts' }), 404, 'not_found');
    expectError(await g.admin.inject({ method: 'GET', url: '/ui/nothing.js' }), 404, 'not_found');
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
      const me = await local.admin.inject({ method: 'GET', url: '/api/session', remoteAddress });
      assert.deepEqual(json(me), { name: 'local', role: 'operator', csrf_token: null, faults: false }, remoteAddress);
    }
    expectError(await local.admin.inject(act()), 404, 'saga_not_found');
  });

  test('any other client is refused, API and console alike: 403 forbidden', async () => {
    for (const url of ['/api/sagas', '/api/session', '/', '/ui/app.js', '/nothing']) {
      expectError(await local.admin.inject({ method: 'GET', url, remoteAddress: '192.168.1.20' }), 403, 'forbidden');
    }
    expectError(await local.admin.inject(act({}, { remoteAddress: '10.0.0.1' })), 403, 'forbidden');
  });

  test('a page from another site or another host name (DNS rebinding) may not act', async () => {
    expectError(await local.admin.inject(act({ origin: 'http://evil.example' })), 403, 'csrf_rejected');
    expectError(await local.admin.inject({ method: 'GET', url: '/api/sagas', headers: { host: 'evil.example:8081' } }), 403, 'forbidden');
  });
});

test('the public port serves no saga list, no detail and no admin API', async () => {
  for (const url of ['/sagas', '/sagas/x', '/api/sagas', '/api/session']) {
    expectError(await g.app.inject({ method: 'GET', url, headers: bearer(OPERATOR) }), 404, 'not_found');
  }
});
