/**
 * The system phase of the bench: one order = one `POST /orders` with `Prefer: wait=30`, over
 * a keep-alive `http.Agent` (Node's fetch goes through undici and costs more CPU per request in
 * the load generator, which shares the machine with the system under test).
 */
import http from 'node:http';
import { EXPECTED, httpBody, makeOrder, pickKind, type Mix, type ProductPool, type Random } from './orders.js';
import type { Attempt, Job } from './load.js';

export interface HttpReply {
  status: number;
  body: string;
}

export interface HttpClient {
  request(method: string, path: string, body?: string, headers?: Record<string, string>): Promise<HttpReply>;
  /** Closes idle sockets and aborts requests in flight. */
  destroy(): void;
}

export function httpClient(baseUrl: string, maxSockets: number, timeoutMs = 35_000): HttpClient {
  const url = new URL(baseUrl);
  if (url.protocol !== 'http:') throw new Error(`--url must be an http:// URL, got ${baseUrl}`);
  const agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets, scheduling: 'lifo' });
  const prefix = url.pathname.replace(/\/+$/, '');
  return {
    request(method, path, body, headers = {}) {
      return new Promise<HttpReply>((resolve, reject) => {
        const h: Record<string, string | number> = { ...headers };
        if (body !== undefined) {
          h['content-type'] = 'application/json';
          h['content-length'] = Buffer.byteLength(body);
        }
        const req = http.request(
          {
            agent,
            host: url.hostname,
            port: url.port || 80,
            method,
            path: prefix + path,
            headers: h,
            timeout: timeoutMs,
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
            res.on('error', reject);
          },
        );
        req.on('timeout', () => req.destroy(Object.assign(new Error('request timed out'), { code: 'TIMEOUT' })));
        req.on('error', reject);
        req.end(body);
      });
    },
    destroy() {
      agent.destroy();
    },
  };
}

/** Several gateways as one client: each request goes to the next one in turn. */
export interface RoundRobinClient extends HttpClient {
  /** Requests sent to each client so far, in the order given. */
  readonly sent: readonly number[];
}

export function roundRobin(clients: readonly HttpClient[]): RoundRobinClient {
  if (clients.length === 0) throw new RangeError('roundRobin: no client');
  const sent = clients.map(() => 0);
  let next = 0;
  return {
    sent,
    request(method, path, body, headers) {
      const i = next;
      next = (next + 1) % clients.length;
      sent[i] = (sent[i] as number) + 1;
      return (clients[i] as HttpClient).request(method, path, body, headers);
    },
    destroy() {
      for (const c of clients) c.destroy();
    },
  };
}

function errorCodeOf(body: string): string | undefined {
  try {
    const v = JSON.parse(body) as { error?: unknown };
    return typeof v.error === 'string' ? v.error : undefined;
  } catch {
    return undefined;
  }
}

export interface HttpJobOptions {
  client: HttpClient;
  pool: ProductPool;
  mix: Mix;
  random: Random;
  /** Makes the idempotency keys unique across runs against the same system. */
  runId: string;
  waitSeconds?: number;
}

/** One order: POST /orders, wait for the terminal state, classify the answer. */
export function httpJob(o: HttpJobOptions): Job {
  const prefer = `wait=${o.waitSeconds ?? 30}`;
  return async (seq): Promise<Attempt> => {
    const kind = pickKind(o.mix, o.random);
    const order = makeOrder(kind, o.pool, seq, o.random);
    let reply: HttpReply;
    try {
      reply = await o.client.request('POST', '/orders', httpBody(order), {
        prefer,
        'x-idempotency-key': `bench-${o.runId}-${seq}`,
      });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return { ok: false, kind: `network:${code ?? (err instanceof Error ? err.message : String(err))}` };
    }
    if (reply.status !== 201)
      return { ok: false, kind: `http_${reply.status}${errorCodeOf(reply.body) ? `:${errorCodeOf(reply.body)}` : ''}` };
    let view: { status?: unknown; reason?: unknown };
    try {
      view = JSON.parse(reply.body) as typeof view;
    } catch {
      return { ok: false, kind: 'bad_json' };
    }
    const status = typeof view.status === 'string' ? view.status : 'missing';
    if (status !== 'CONFIRMED' && status !== 'CANCELLED') return { ok: false, kind: `not_terminal:${status}` };
    const reason = typeof view.reason === 'string' ? view.reason : undefined;
    const expected = EXPECTED[kind];
    const asExpected = expected.status === status && (expected.reason === undefined || expected.reason === reason);
    return {
      ok: true,
      status,
      label: `${kind} → ${status}${reason ? ` ${reason}` : ''}${asExpected ? '' : ' (unexpected)'}`,
    };
  };
}
