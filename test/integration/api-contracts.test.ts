/**
 * The API contracts (issue 24, item 8): the public /openapi.json and the admin listener's
 * /api/openapi.json pass `redocly lint` (its recommended rules) with no error and no warning,
 * every operation has a stable operationId, a typed client generated from each document
 * (openapi-typescript, used through openapi-fetch) compiles a call of every operation, and the
 * CLI's admin types (src/cli/admin-api-types.ts) are what the served document generates.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Validator } from '@seriousme/openapi-schema-validator';
import { gatewayApp, type GatewayApp } from '../helpers/gateway-app.js';
import { ADMIN_API_TYPES, adminOpenApiDocument, apiTypes } from '../../scripts/generate-api-types.js';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const TOKEN = 'api-contracts-operator-0123456789';

/** The operations and their ids: a client's function names, so renaming one is a breaking change. */
const PUBLIC_OPERATIONS = {
  placeOrder: 'POST /orders',
  getOrder: 'GET /orders/{id}',
  getOrderSaga: 'GET /orders/{id}/saga',
  listProducts: 'GET /products',
  health: 'GET /healthz',
  ready: 'GET /readyz',
  metrics: 'GET /metrics',
};
const ADMIN_OPERATIONS = {
  signIn: 'POST /api/session',
  getSession: 'GET /api/session',
  signOut: 'DELETE /api/session',
  getConsoleFacts: 'GET /api/console',
  listSagas: 'GET /api/sagas',
  getSaga: 'GET /api/sagas/{id}',
  actOnSaga: 'POST /api/sagas/{id}/actions',
  previewAction: 'GET /api/sagas/{id}/preview',
  getSagaWaiting: 'GET /api/sagas/{id}/waiting',
  listParked: 'GET /api/parked',
  getOverview: 'GET /api/overview',
  getStock: 'GET /api/stock',
  reconcileBooks: 'GET /api/reconcile',
  listVersions: 'GET /api/versions',
  migrateSagas: 'POST /api/migrations',
  dryRunBulk: 'POST /api/bulk/dry-run',
  startBulk: 'POST /api/bulk',
  listBulk: 'GET /api/bulk',
  getBulk: 'GET /api/bulk/{id}',
  commandBulk: 'POST /api/bulk/{id}/{command}',
  getFaultPlan: 'GET /api/faults',
  replaceFaultPlan: 'PUT /api/faults',
  switchFaultRule: 'POST /api/faults/{id}',
};

interface Doc {
  security?: unknown;
  components?: { securitySchemes?: Record<string, unknown> };
  paths: Record<string, Record<string, { operationId?: string }>>;
}

let g: GatewayApp;
let dir: string;
let publicDoc: Doc;
let adminDoc: Doc;

before(async () => {
  g = await gatewayApp({ adminTokens: `ops:operator:${TOKEN}` });
  // Inside the project, so that the generated client finds openapi-fetch and typescript.
  fs.mkdirSync(path.join(root, 'node_modules/.cache'), { recursive: true });
  dir = fs.mkdtempSync(path.join(root, 'node_modules/.cache/api-contracts-'));
  const pub = await g.app.inject({ method: 'GET', url: '/openapi.json' });
  assert.equal(pub.statusCode, 200);
  publicDoc = pub.json();
  const adm = await g.admin.inject({
    method: 'GET',
    url: '/api/openapi.json',
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  assert.equal(adm.statusCode, 200, adm.body);
  assert.match(String(adm.headers['content-type']), /^application\/json/);
  adminDoc = adm.json();
});
after(async () => {
  await g.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function operations(doc: Doc): Record<string, string> {
  return Object.fromEntries(
    Object.entries(doc.paths).flatMap(([p, ops]) =>
      Object.entries(ops).map(([m, op]) => [op.operationId ?? `(none) ${m} ${p}`, `${m.toUpperCase()} ${p}`]),
    ),
  );
}

test('the admin listener serves its OpenAPI document at /api/openapi.json, behind the same auth as the rest of /api', async () => {
  const none = await g.admin.inject({ method: 'GET', url: '/api/openapi.json' });
  assert.equal(none.statusCode, 401);
  assert.equal(none.json().error, 'unauthenticated');
  const validator = new Validator();
  const result = await validator.validate(adminDoc as unknown as Parameters<Validator['validate']>[0]);
  assert.deepEqual(result.errors ?? [], []);
  assert.equal(validator.version, '3.1');
  // The credentials auth.ts takes; the sign-in alone needs none.
  assert.deepEqual(Object.keys(adminDoc.components?.securitySchemes ?? {}).sort(), [
    'bearer',
    'csrf',
    'secureSession',
    'session',
  ]);
  assert.deepEqual(adminDoc.components?.securitySchemes?.session, {
    type: 'apiKey',
    in: 'cookie',
    name: 'sagas_session',
    description: 'the session `POST /api/session` opened over plain HTTP; never enough alone: X-CSRF-Token too',
  });
  assert.deepEqual(adminDoc.security, [{ bearer: [] }, { session: [], csrf: [] }, { secureSession: [], csrf: [] }]);
  assert.deepEqual((adminDoc.paths['/api/session']?.post as { security?: unknown }).security, []);
  // With no ADMIN_TOKENS, a loopback client calls with no credential, and the document says so.
  const loopback = (await adminOpenApiDocument({ loopbackOnly: true })) as Doc;
  assert.deepEqual(loopback.security, [{}]);
  assert.equal(loopback.components?.securitySchemes, undefined);
  assert.deepEqual(operations(loopback), operations(adminDoc));
});

test('every operation of both documents has its stable operationId', () => {
  assert.deepEqual(operations(publicDoc), PUBLIC_OPERATIONS);
  assert.deepEqual(operations(adminDoc), ADMIN_OPERATIONS);
});

test('both documents pass `redocly lint` (recommended rules) with 0 errors and 0 warnings', async () => {
  fs.writeFileSync(path.join(dir, 'redocly.yaml'), 'extends:\n  - recommended\n');
  const docs = {
    'public.json': publicDoc,
    'admin.json': adminDoc,
    'admin-loopback.json': await adminOpenApiDocument({ loopbackOnly: true }),
  };
  for (const [name, doc] of Object.entries(docs)) {
    fs.writeFileSync(path.join(dir, name), JSON.stringify(doc, null, 2));
    // No network: no telemetry, no update check (it would try both otherwise, and wait for DNS).
    const env = { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' };
    const args = [
      path.join(root, 'node_modules/@redocly/cli/bin/cli.js'),
      'lint',
      '--format=json',
      '--config',
      path.join(dir, 'redocly.yaml'),
      path.join(dir, name),
    ];
    const out = await run(process.execPath, args, { cwd: dir, env }).catch(
      (err: { stdout?: string; stderr?: string }) => ({ stdout: err.stdout ?? '', stderr: err.stderr ?? '' }),
    );
    const report = JSON.parse(out.stdout) as {
      totals: { errors: number; warnings: number };
      problems: Array<{ ruleId: string; message: string; location: Array<{ pointer: string }> }>;
    };
    const problems = report.problems.map((p) => `${p.ruleId} at ${p.location[0]?.pointer}: ${p.message}`);
    assert.deepEqual(problems, [], `${name}: ${out.stderr}`);
    assert.deepEqual(report.totals, { errors: 0, warnings: 0, ignored: 0 }, name);
  }
});

test("the CLI's admin types (src/cli/admin-api-types.ts) are what the served document generates (`npm run generate:api-types`)", async () => {
  const fresh = await apiTypes(adminDoc);
  assert.equal(
    fs.readFileSync(ADMIN_API_TYPES, 'utf8'),
    fresh,
    'src/cli/admin-api-types.ts is stale: run `npm run generate:api-types`',
  );
  // The script builds the document without a listener: the same document as served.
  assert.deepEqual(await adminOpenApiDocument(), adminDoc);
});

/**
 * One call of every operation, through openapi-fetch typed by each generated document. The
 * records are keyed by operationId, so a missing or extra operation fails to compile, as does a
 * renamed path, parameter, body field or answer field.
 */
const CALLS = `import createClient from 'openapi-fetch';
import type { operations as PublicOperations, paths as PublicPaths } from './public-api.js';
import type { operations as AdminOperations, paths as AdminPaths } from './admin-api.js';

const pub = createClient<PublicPaths>({ baseUrl: 'http://127.0.0.1:8080' });
const admin = createClient<AdminPaths>({ baseUrl: 'http://127.0.0.1:8081', headers: { authorization: 'Bearer t' } });
const id = '0190f0e4-0000-7000-8000-000000000000';

export const publicCalls: { [Op in keyof PublicOperations]: () => Promise<string | number | boolean | undefined> } = {
  placeOrder: async () => {
    const { data, error } = await pub.POST('/orders', {
      params: { header: { 'x-idempotency-key': 'k-1', prefer: 'wait=5' } },
      body: { customer_id: 'c-1', items: [{ product_id: 'p-1', quantity: 2, price: 25 }] },
    });
    if (error) return error.error;
    const status: 'PENDING' | 'CONFIRMED' | 'CANCELLED' = data.status;
    return data.id + status + data.total + data.items[0]?.price + data.saga_status;
  },
  getOrder: async () => {
    const { data, error } = await pub.GET('/orders/{id}', { params: { path: { id } } });
    return error ? error.message : data.payment.status + data.payment.amount + data.customer_id;
  },
  getOrderSaga: async () => {
    const { data } = await pub.GET('/orders/{id}/saga', { params: { path: { id }, query: { after_seq: 0, limit: 50 } } });
    return data?.events.map((e) => e.seq + e.type + e.code).join() + String(data?.next_after_seq);
  },
  listProducts: async () => {
    const { data } = await pub.GET('/products');
    return data?.products.map((p) => p.product_id + p.available + p.reserved + p.sold).join();
  },
  health: async () => (await pub.GET('/healthz')).data?.status,
  ready: async () => {
    const { data, error } = await pub.GET('/readyz');
    // 503 answers the readiness too; 429 the error body.
    if (error) return 'checks' in error ? error.status + Object.keys(error.checks).join() : error.error;
    return data.status + data.in_flight;
  },
  metrics: async () => (await pub.GET('/metrics', { parseAs: 'text' })).data,
};

export const adminCalls: { [Op in keyof AdminOperations]: () => Promise<string | number | boolean | undefined> } = {
  signIn: async () => {
    const { data } = await admin.POST('/api/session', { body: { token: 't' } });
    return data?.csrf_token ?? undefined;
  },
  getSession: async () => {
    const { data } = await admin.GET('/api/session');
    return data ? data.name + data.role + data.via + data.faults : undefined;
  },
  signOut: async () => (await admin.DELETE('/api/session')).response.status,
  getConsoleFacts: async () => {
    const { data } = await admin.GET('/api/console');
    return data ? data.statuses.join() + data.terminal_statuses.join() + data.actions.join() + data.note_max_length : undefined;
  },
  listSagas: async () => {
    const { data } = await admin.GET('/api/sagas', { params: { query: { status: 'PARKED', customer: 'c-1', limit: 20 } } });
    return data ? data.sagas.map((s) => s.id + s.status + s.current_step + s.customer_id + s.allowed_actions.join()).join() + data.counts.PARKED + data.next_cursor + data.steps.join() : undefined;
  },
  getSaga: async () => {
    const { data } = await admin.GET('/api/sagas/{id}', { params: { path: { id }, query: { after_seq: 0 } } });
    return data ? data.definition + data.trace_url + data.events.map((e) => String(e.attempt) + String(e.idempotency_key) + e.injected + e.fault_rule).join() + data.allowed_actions.join() + data.next_after_seq : undefined;
  },
  actOnSaga: async () => {
    const { data, error } = await admin.POST('/api/sagas/{id}/actions', { params: { path: { id } }, body: { action: 'resolve', action_id: 'a-1', note: 'fixed by hand' } });
    return error ? error.error : data.replayed + data.saga.status;
  },
  previewAction: async () => {
    const { data } = await admin.GET('/api/sagas/{id}/preview', { params: { path: { id }, query: { action: 'compensate' } } });
    return data ? data.allowed + data.summary + data.effects.map((e) => e.certainty + e.step + e.phase + (e.condition ?? '') + e.effect.words + (e.effect.money?.cents ?? 0)).join() + data.totals.refund_cents + String(data.refusal?.code) + String(data.half_done?.length) : undefined;
  },
  getSagaWaiting: async () => {
    const { data } = await admin.GET('/api/sagas/{id}/waiting', { params: { path: { id } } });
    return data ? data.status + (data.waiting ? data.waiting.sentence + data.waiting.stuck + String(data.waiting.next_attempt_at) + String(data.waiting.last_error?.kind) : 'none') : undefined;
  },
  listParked: async () => (await admin.GET('/api/parked', { params: { query: { limit: 10 } } })).data?.sagas.map((s) => s.reason + s.age_seconds).join(),
  getOverview: async () => {
    const { data } = await admin.GET('/api/overview');
    return data ? data.in_flight + data.parked + data.sagas_per_second + (data.p99_ms ?? 0) : undefined;
  },
  getStock: async () => (await admin.GET('/api/stock')).data?.products.length,
  reconcileBooks: async () => {
    const { data } = await admin.GET('/api/reconcile', { params: { query: { settled: 'true', page_size: 100 } } });
    return data ? data.ok + data.disagreements.map((d) => d.kind + d.message).join() + data.checked.sagas + data.not_judged.in_flight : undefined;
  },
  getFaultPlan: async () => (await admin.GET('/api/faults')).data?.rules.map((r) => r.id + r.kind + r.fired + r.enabled).join(),
  listVersions: async () => (await admin.GET('/api/versions')).data?.versions.map((v) => v.definition + v.version + v.state + v.starts_here + v.in_flight).join(),
  migrateSagas: async () => {
    const { data, error } = await admin.POST('/api/migrations', { body: { definition: 'place_order', from: 1, to: 2, map: 'a=b', dry_run: true } });
    return error ? error.error : data.moved + data.stayed + data.items.map((i) => i.saga_id + i.outcome + String(i.code) + i.added.join()).join();
  },
  dryRunBulk: async () => {
    const { data, error } = await admin.POST('/api/bulk/dry-run', { body: { action: 'retry', filter: { status: 'PARKED', failure_code: 'x' }, cap: 10 } });
    return error ? error.error : data.count + data.allowed + String(data.truncated) + data.refused.map((r) => r.code + r.count).join() + data.totals.refund_cents + data.totals.stock.map((m) => m.item + m.direction + m.quantity).join();
  },
  startBulk: async () => {
    const { data, error } = await admin.POST('/api/bulk', { body: { action: 'retry', filter: { customer: 'c-1' }, cap: 10, rate: 5 } });
    return error ? error.error : undefined;
  },
  listBulk: async () => (await admin.GET('/api/bulk', { params: { query: { limit: 10 } } })).data?.jobs.map((j) => j.id + j.state + j.counts.applied + j.total).join(),
  getBulk: async () => {
    const { data } = await admin.GET('/api/bulk/{id}', { params: { path: { id: 'bulk_x' }, query: { after: -1, limit: 10 } } });
    return data ? data.job.state + data.items.map((i) => i.saga_id + i.result + String(i.code)).join() + String(data.next_after) : undefined;
  },
  commandBulk: async () => (await admin.POST('/api/bulk/{id}/{command}', { params: { path: { id: 'bulk_x', command: 'pause' } } })).data?.state,
  replaceFaultPlan: async () => (await admin.PUT('/api/faults', { body: { rules: [] } })).data?.enabled,
  switchFaultRule: async () => (await admin.POST('/api/faults/{id}', { params: { path: { id: 'slow-pay' } }, body: { enabled: true } })).data?.rule.enabled,
};
`;

test('a client generated from each document (openapi-typescript + openapi-fetch) compiles a call of every operation', async () => {
  fs.writeFileSync(path.join(dir, 'public-api.ts'), await apiTypes(publicDoc));
  fs.writeFileSync(path.join(dir, 'admin-api.ts'), await apiTypes(adminDoc));
  fs.writeFileSync(path.join(dir, 'calls.ts'), CALLS);
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
  const tsconfig = {
    compilerOptions: {
      target: 'ES2022',
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      strict: true,
      noUncheckedIndexedAccess: true,
      exactOptionalPropertyTypes: true,
      noEmit: true,
      skipLibCheck: true,
      types: [],
      lib: ['ES2022', 'DOM'],
    },
    files: ['calls.ts'],
  };
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2));
  const tsc = path.join(root, 'node_modules/typescript/bin/tsc');
  const out = await run(process.execPath, [tsc, '-p', path.join(dir, 'tsconfig.json')], { cwd: dir }).catch(
    (err: Error & { stdout?: string }) => ({ stdout: err.stdout || err.message }),
  );
  assert.equal(out.stdout.trim(), '', 'the calls do not compile against the generated types');
});
