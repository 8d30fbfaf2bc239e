import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Validator } from '@seriousme/openapi-schema-validator';
import { HTTP_ERRORS } from '../../src/gateway/http/errors.js';
import { gatewayApp, type GatewayApp } from '../helpers/gateway-app.js';

/** /openapi.json is a valid OpenAPI 3.1 document of every route, and /docs works offline. */

let g: GatewayApp;
before(async () => {
  g = await gatewayApp();
});
after(() => g.close());

interface OpenApiDoc {
  openapi: string;
  info: { description: string };
  paths: Record<string, Record<string, { responses: Record<string, unknown>; requestBody?: unknown }>>;
}

async function openapi(): Promise<OpenApiDoc> {
  const res = await g.app.inject({ method: 'GET', url: '/openapi.json' });
  assert.equal(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  return res.json<OpenApiDoc>();
}

test('the document passes a real OpenAPI 3.1 validator', async () => {
  const doc = await openapi();
  const validator = new Validator();
  const result = await validator.validate(doc as unknown as Parameters<Validator['validate']>[0]);
  assert.deepEqual(result.errors ?? [], []);
  assert.equal(result.valid, true);
  assert.equal(validator.version, '3.1');
});

test('every route the gateway serves is in the document, and nothing else is', async () => {
  const doc = await openapi();
  const documented = Object.entries(doc.paths)
    .flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`))
    .sort();
  const served = g.app.apiRoutes
    .filter((r) => r.documented)
    .map((r) => `${r.method} ${r.url.replace(/:(\w+)/g, '{$1}')}`)
    .sort();
  assert.deepEqual(documented, served);
  for (const must of [
    'POST /orders',
    'GET /orders/{id}',
    'GET /orders/{id}/saga',
    'GET /products',
    'GET /healthz',
    'GET /readyz',
    'GET /metrics',
  ]) {
    assert.ok(documented.includes(must), must);
  }
  // Listing sagas is the admin listener's (DESIGN §6b).
  for (const gone of ['GET /sagas', 'GET /sagas/{id}']) assert.ok(!documented.includes(gone), gone);
});

test('the document states the body, the answers and the error table', async () => {
  const doc = await openapi();
  const postOrders = doc.paths['/orders']?.post;
  assert.ok(postOrders?.requestBody, 'POST /orders has its body schema');
  assert.ok(
    postOrders.responses['201'] && postOrders.responses['4XX'] && postOrders.responses['5XX'],
    Object.keys(postOrders.responses).join(),
  );
  for (const code of Object.keys(HTTP_ERRORS)) assert.ok(doc.info.description.includes(`\`${code}\``), code);
});

test('/docs serves Swagger UI with every asset from the gateway itself (no CDN)', async () => {
  let res = await g.app.inject({ method: 'GET', url: '/docs' });
  if (res.statusCode >= 300 && res.statusCode < 400)
    res = await g.app.inject({ method: 'GET', url: new URL(String(res.headers.location), 'http://x/docs/').pathname });
  assert.equal(res.statusCode, 200);
  const html = res.body;
  const refs = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] as string);
  assert.ok(refs.length >= 3, `assets referenced: ${refs.join(', ')}`);
  for (const ref of refs) {
    assert.ok(!/^(https?:)?\/\//.test(ref), `${ref} is fetched from elsewhere`);
    const asset = await g.app.inject({ method: 'GET', url: new URL(ref, 'http://x/docs/').pathname });
    assert.equal(asset.statusCode, 200, ref);
  }
  const init = await g.app.inject({ method: 'GET', url: '/docs/static/swagger-initializer.js' });
  assert.equal(init.statusCode, 200);
});
