/**
 * What `sagas list|show|retry|compensate|resolve` share: the admin API's address and token from
 * the environment, one request, and its refusals as the command prints them.
 */
import { ConfigError } from '../platform/errors.js';
import { EXIT, type CommandIo } from './command.js';
import { jsonClient, type JsonReply } from '../platform/json-client.js';
import type { operations } from './admin-api-types.js';

export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:8081';

/** The environment part of these commands' usage. */
export const ADMIN_ENV_USAGE = `Environment:
  SAGAS_ADMIN_URL            The gateway's admin listener (default ${DEFAULT_ADMIN_URL}; sagas start
                             prints it)
  SAGAS_ADMIN_TOKEN          A token of the gateway's ADMIN_TOKENS, sent as a bearer token (not
                             needed when the gateway has none and runs on this machine)
`;

export const ADMIN_EXIT_USAGE = `Exit codes:
  0  done
  1  refused or failed: the code and message are printed (saga_not_found, action_not_allowed,
     action_id_reused, note_required, unauthenticated, forbidden...), or the admin API is
     unreachable
  2  a wrong command line, or a wrong SAGAS_ADMIN_URL
`;

/** The admin API's operations, by operationId (src/cli/admin-api-types.ts, generated from its OpenAPI document). */
export type AdminOperation = keyof operations;

/** The JSON body of an operation's 200 answer (undefined for an answer without one). */
export type AdminOk<Op extends AdminOperation> = operations[Op]['responses'] extends {
  200: { content: { 'application/json': infer B } };
}
  ? B
  : undefined;

/** An operation's JSON request body. */
export type AdminRequestBody<Op extends AdminOperation> =
  NonNullable<operations[Op]['requestBody']> extends { content: { 'application/json': infer B } } ? B : never;

/** An operation's query parameters. */
export type AdminQuery<Op extends AdminOperation> = NonNullable<operations[Op]['parameters']['query']>;

/** Every error answer of the API: `{error, message}` (the error table). */
export type AdminErrorBody = operations['listSagas']['responses']['4XX']['content']['application/json'];

/**
 * One answer: a 2xx with the operation's body, or anything else, whose body is the API's error
 * (AdminErrorBody) when the admin API answered, but may be any text from something else (a proxy).
 */
export type AdminReply<T> = { ok: true; status: number; body: T } | { ok: false; status: number; body: unknown };

/** The calls the CLI makes, each typed by its operation in the admin API's OpenAPI document. */
export interface AdminClient {
  readonly url: string;
  /** `GET /api/sagas` (listSagas). */
  listSagas(query: AdminQuery<'listSagas'>): Promise<AdminReply<AdminOk<'listSagas'>>>;
  /** `GET /api/sagas/{id}` (getSaga). */
  getSaga(id: string, query?: AdminQuery<'getSaga'>): Promise<AdminReply<AdminOk<'getSaga'>>>;
  /** `POST /api/sagas/{id}/actions` (actOnSaga). */
  actOnSaga(id: string, body: AdminRequestBody<'actOnSaga'>): Promise<AdminReply<AdminOk<'actOnSaga'>>>;
  /** `GET /api/sagas/{id}/waiting` (getSagaWaiting): what a saga waits for and until when. */
  getSagaWaiting(id: string): Promise<AdminReply<AdminOk<'getSagaWaiting'>>>;
  /** `GET /api/sagas/{id}/preview` (previewAction): what an action would do, changing nothing. */
  previewAction(id: string, query: AdminQuery<'previewAction'>): Promise<AdminReply<AdminOk<'previewAction'>>>;
  /** `GET /api/reconcile` (reconcileBooks). */
  reconcileBooks(query: AdminQuery<'reconcileBooks'>): Promise<AdminReply<AdminOk<'reconcileBooks'>>>;
  /** `GET /api/versions` (listVersions). */
  listVersions(): Promise<AdminReply<AdminOk<'listVersions'>>>;
  /** `POST /api/migrations` (migrateSagas). */
  migrateSagas(body: AdminRequestBody<'migrateSagas'>): Promise<AdminReply<AdminOk<'migrateSagas'>>>;
  /** `POST /api/bulk/dry-run` (dryRunBulk). */
  dryRunBulk(body: AdminRequestBody<'dryRunBulk'>): Promise<AdminReply<AdminOk<'dryRunBulk'>>>;
  /** `POST /api/bulk` (startBulk): 201 with the job. */
  startBulk(body: AdminRequestBody<'startBulk'>): Promise<AdminReply<AdminOk<'getBulk'>['job']>>;
  /** `GET /api/bulk` (listBulk). */
  listBulk(query: AdminQuery<'listBulk'>): Promise<AdminReply<AdminOk<'listBulk'>>>;
  /** `GET /api/bulk/{id}` (getBulk). */
  getBulk(id: string, query?: AdminQuery<'getBulk'>): Promise<AdminReply<AdminOk<'getBulk'>>>;
  /** `POST /api/bulk/{id}/{command}` (commandBulk). */
  commandBulk(id: string, command: 'pause' | 'resume' | 'cancel'): Promise<AdminReply<AdminOk<'commandBulk'>>>;
}

/** `path`, with the query's parameters that are set, in their order. */
function withQuery(path: string, query: Readonly<Record<string, string | number | boolean | undefined>> = {}): string {
  const q = new URLSearchParams(Object.entries(query).flatMap(([k, v]) => (v === undefined ? [] : [[k, String(v)]])));
  return q.size > 0 ? `${path}?${q}` : path;
}

/** The client for `env`; a ConfigError (exit 2) for a SAGAS_ADMIN_URL that is not an http(s) URL. */
export function adminClient(env: NodeJS.ProcessEnv): AdminClient {
  const raw = (env.SAGAS_ADMIN_URL ?? '').trim() || DEFAULT_ADMIN_URL;
  let base: URL;
  try {
    base = new URL(raw);
  } catch {
    throw new ConfigError([
      {
        variable: 'SAGAS_ADMIN_URL',
        expected: 'an http(s):// URL of the admin listener, e.g. http://127.0.0.1:8081',
        got: raw,
      },
    ]);
  }
  if (!/^https?:$/.test(base.protocol) || base.username || base.password) {
    throw new ConfigError([
      {
        variable: 'SAGAS_ADMIN_URL',
        expected: 'an http(s):// URL of the admin listener (no user or password in it), e.g. http://127.0.0.1:8081',
        got: `${base.protocol}//${base.host}`,
      },
    ]);
  }
  const token = env.SAGAS_ADMIN_TOKEN?.trim();
  const url = base.toString().replace(/\/+$/, '');
  const call = jsonClient(url, token);
  /** The answer, its body taken as the operation's when 2xx (the API's contract; not checked again here). */
  const send = async <T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<AdminReply<T>> => {
    const reply: JsonReply = await call(method, path, body);
    const parsed: unknown = reply.body;
    return reply.status >= 200 && reply.status < 300
      ? { ok: true, status: reply.status, body: parsed as T }
      : { ok: false, status: reply.status, body: parsed };
  };
  const saga = (id: string) => `/api/sagas/${encodeURIComponent(id)}`;
  return {
    url,
    listSagas: (query) => send('GET', withQuery('/api/sagas', query)),
    getSaga: (id, query) => send('GET', withQuery(saga(id), query)),
    actOnSaga: (id, body) => send('POST', `${saga(id)}/actions`, body),
    getSagaWaiting: (id) => send('GET', `${saga(id)}/waiting`),
    previewAction: (id, query) => send('GET', withQuery(`${saga(id)}/preview`, query)),
    reconcileBooks: (query) => send('GET', withQuery('/api/reconcile', query)),
    listVersions: () => send('GET', '/api/versions'),
    migrateSagas: (body) => send('POST', '/api/migrations', body),
    dryRunBulk: (body) => send('POST', '/api/bulk/dry-run', body),
    startBulk: (body) => send('POST', '/api/bulk', body),
    listBulk: (query) => send('GET', withQuery('/api/bulk', query)),
    getBulk: (id, query) => send('GET', withQuery(`/api/bulk/${encodeURIComponent(id)}`, query)),
    commandBulk: (id, command) => send('POST', `/api/bulk/${encodeURIComponent(id)}/${command}`),
  };
}

/**
 * Runs `call`; an answer that is not 2xx is printed as `sagas <cmd>: <code> (<status>): <message>`
 * on stderr (or the body on stdout with --json) and is exit 1, as is an unreachable API.
 */
export async function withAdmin<T>(
  command: string,
  io: CommandIo,
  json: boolean,
  call: (client: AdminClient) => Promise<AdminReply<T>>,
  onOk: (body: T) => void,
  /** The exit code of an answer the API gave (default 0): `reconcile` exits 1 when the books disagree. */
  exitOf: (body: T) => number = () => EXIT.ok,
): Promise<number> {
  const client = adminClient(io.env);
  let reply: AdminReply<T>;
  try {
    reply = await call(client);
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    io.stderr.write(
      `sagas ${command}: cannot reach the admin API at ${client.url}: ${cause?.code ?? cause?.message ?? (err as Error).message}\n`,
    );
    return EXIT.failure;
  }
  if (reply.ok) {
    if (json) io.stdout.write(`${JSON.stringify(reply.body, null, 2)}\n`);
    else onOk(reply.body);
    return exitOf(reply.body);
  }
  const err: Partial<Record<keyof AdminErrorBody, unknown>> | undefined =
    typeof reply.body === 'object' && reply.body !== null ? reply.body : undefined;
  const code = err && 'error' in err ? String(err.error) : `http_${reply.status}`;
  const message = err && 'message' in err ? String(err.message) : String(reply.body).slice(0, 200);
  if (json) io.stdout.write(`${JSON.stringify({ status: reply.status, error: code, message }, null, 2)}\n`);
  io.stderr.write(`sagas ${command}: ${code} (${reply.status}): ${message}\n`);
  if (code === 'unauthenticated' && !io.env.SAGAS_ADMIN_TOKEN)
    io.stderr.write(`sagas ${command}: set SAGAS_ADMIN_TOKEN to a token of the gateway's ADMIN_TOKENS\n`);
  return EXIT.failure;
}

/** One saga summary as a line: id, status, step, attempt, created, failure. */
export function summaryLine(s: {
  id: string;
  status: string;
  step_index: number;
  attempt: number;
  created_at: string;
  failure: { code: string; step: string } | null;
}): string {
  const failure = s.failure ? `  ${s.failure.code} at ${s.failure.step}` : '';
  return `${s.id}  ${s.status.padEnd(12)} step ${s.step_index}  attempt ${s.attempt}  ${s.created_at}${failure}`;
}
