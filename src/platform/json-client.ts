import net from 'node:net';

/** An answer of one of our HTTP APIs: its status and its body, parsed when it is JSON. */
export interface JsonReply {
  status: number;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- an API's JSON, read field by field by the caller
}

export type JsonCall = (
  method: string,
  path: string,
  body?: unknown,
  headers?: Record<string, string>,
) => Promise<JsonReply>;

/**
 * Calls of the API at `base` (the CLI's admin commands, `sagas chaos`): JSON in and out, a bearer
 * token when given, and a 30 s bound on every call so a hung server cannot hang the tool.
 */
export function jsonClient(base: string, token?: string): JsonCall {
  return async (method, path, body, headers = {}) => {
    const h: Record<string, string> = { accept: 'application/json', ...headers };
    if (token) h.authorization = `Bearer ${token}`;
    if (body !== undefined) h['content-type'] = 'application/json';
    const res = await fetch(base + path, {
      method,
      headers: h,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* not JSON: kept as text */
    }
    return { status: res.status, body: parsed };
  };
}

/** A free TCP port on loopback, for a server that cannot listen on port 0 and report it (Redis, PostgreSQL), or a port where nothing listens. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}
