import { AsyncResource } from 'node:async_hooks';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { connectivityState, Metadata, status, type ServiceDefinition, type ServiceError } from '@grpc/grpc-js';
import { loadTlsMaterial, pinnedPeer, type GrpcSecurity, type TlsIdentity } from './tls.js';

/**
 * The gateway's gRPC client: unary calls over one HTTP/2 session per participant, written on
 * node:http2 directly. The wire is gRPC's (HTTP/2, length-prefixed protobuf messages, status in
 * the trailers), so the participants' grpc-js servers see an ordinary client.
 *
 * Why not grpc-js's client: a unary call there goes through a resolving call, a retrying call,
 * a load-balancing call, filters and a subchannel call, each with its objects and metadata
 * copies — 84-108 µs of CPU per call against 35-44 µs for the same call on node:http2 (a health
 * check, 20,000 calls, 32 in flight; bench/README.md "The gRPC client"). Five calls a saga, it was
 * the largest part of the gateway's CPU. What grpc-js's channel did that matters here is done
 * below: mutual TLS with the peer pinned by name, connecting on first use, a reconnect backoff
 * with calls failing fast (UNAVAILABLE) while the peer is down, keepalive pings, deadlines sent
 * as `grpc-timeout` and enforced here, and a status for every way a call can end. A participant
 * with several addresses (replicas) is a BalancedChannel over one UnaryChannel each (grpc-balancer.ts).
 */

export interface UnaryChannelOptions {
  /** First wait after a failed connection attempt, doubling up to `maxBackoffMs`; each wait jittered (half to all of it). */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** A ping this often on an idle session; one unanswered for `keepaliveTimeoutMs` closes it. */
  keepaliveMs?: number;
  keepaliveTimeoutMs?: number;
  /** Largest response message accepted (RESOURCE_EXHAUSTED above it). */
  maxReceiveBytes?: number;
  /** A connection attempt that has not completed after this long fails (and backs off). */
  connectTimeoutMs?: number;
}

/** Opens an HTTP/2 session to one `host:port` (see dialerAs). */
export type Connect = (authority: string) => http2.ClientHttp2Session;

/**
 * What a generated client's methods call through: one address (UnaryChannel) or several
 * (BalancedChannel, grpc-balancer.ts), the same to the caller.
 */
export interface UnaryTransport {
  call(path: string, request: Buffer, metadata: Metadata, deadline: number): Promise<Buffer>;
  /** READY while a call can go out at once (on some address); see UnaryChannel's. */
  getConnectivityState(): connectivityState;
  /** The one-address channels it is made of (itself, for a UnaryChannel): each can be probed alone. */
  members(): readonly UnaryChannel[];
  close(): void;
}

/**
 * Errors of calls that never left this process (no connection, a session that refused a new
 * stream, a stream the server refused unprocessed): another address may take the same call with
 * no risk of running it twice.
 */
const unsent = new WeakSet<object>();

/** Whether `err` failed a call before any of it reached the server (so it may go elsewhere as is). */
export function wasNotSent(err: unknown): boolean {
  return typeof err === 'object' && err !== null && unsent.has(err);
}

export function notSent(err: ServiceError): ServiceError {
  unsent.add(err);
  return err;
}

/** A backoff with "equal jitter": between half and all of `ms`, so that clients that lost a peer together do not call it back together. */
export function jittered(ms: number): number {
  return ms / 2 + Math.random() * (ms / 2);
}

/** host:port (an IPv6 host in brackets) as net.connect wants it. */
function hostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(address.slice(i + 1)) };
}

/**
 * How to open a session to `peer`: TLS with this process's certificate, the peer pinned by CN.
 * The socket is made here so that it has TCP_NODELAY, as grpc-js's have: a call's frames leave at
 * once instead of waiting for the previous segment's ACK (an HTTP/2 session's socket cannot be
 * touched once it is the session's).
 */
export function dialerAs(security: GrpcSecurity, identity: TlsIdentity): (peer: TlsIdentity) => Connect {
  if (security.kind === 'insecure') {
    return () => (address) =>
      http2.connect(`http://${address}`, {
        createConnection: () => net.connect({ ...hostPort(address), noDelay: true }),
      });
  }
  const m = loadTlsMaterial(security.dir, identity);
  return (peer) => (address) =>
    http2.connect(`https://${address}`, {
      createConnection: () =>
        tls
          .connect({
            ...hostPort(address),
            ca: m.ca,
            key: m.key,
            cert: m.cert,
            ALPNProtocols: ['h2'],
            // The peer's identity is the name asked for and checked, whatever host the address has.
            servername: peer,
            checkServerIdentity: pinnedPeer(peer),
          })
          .setNoDelay(true),
    });
}

/** A ServiceError as grpc-js makes them, so that callers see one shape whichever client failed. */
export function serviceError(code: status, details: string, metadata = new Metadata()): ServiceError {
  return Object.assign(new Error(`${code} ${status[code]}: ${details}`), { code, details, metadata });
}

/** gRPC's mapping of an HTTP status that is not 200 (gRPC over HTTP/2, "HTTP to gRPC status"). */
function statusOfHttp(httpStatus: number): status {
  switch (httpStatus) {
    case 400:
      return status.INTERNAL;
    case 401:
      return status.UNAUTHENTICATED;
    case 403:
      return status.PERMISSION_DENIED;
    case 404:
      return status.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return status.UNAVAILABLE;
    default:
      return status.UNKNOWN;
  }
}

/** What a stream reset by the peer means (as grpc-js reads it); none of these is definite. */
function statusOfReset(rstCode: number): { code: status; details: string } {
  const c = http2.constants;
  switch (rstCode) {
    case c.NGHTTP2_REFUSED_STREAM:
      return { code: status.UNAVAILABLE, details: 'stream refused by the server' };
    case c.NGHTTP2_CANCEL:
      return { code: status.CANCELLED, details: 'call cancelled by the server' };
    case c.NGHTTP2_ENHANCE_YOUR_CALM:
      return { code: status.RESOURCE_EXHAUSTED, details: 'bandwidth exhausted or memory limit exceeded' };
    default:
      return { code: status.UNAVAILABLE, details: `stream closed without a status (RST_STREAM code ${rstCode})` };
  }
}

const GRPC_HEADERS = { ':method': 'POST', 'content-type': 'application/grpc', te: 'trailers' } as const;

/** A stream's error listener that holds nothing: 'error' is followed by 'close', which settles. */
const ignore = () => undefined;

/**
 * Opens a stream in the async context this module was loaded in, not the caller's: node:http2
 * keeps the context a request was made in (an AsyncResource on the stream) for as long as the
 * stream lives, and the caller's holds its trace context and spans. Nothing below reads it.
 */
const requestDetached = AsyncResource.bind((session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders) =>
  session.request(headers),
);

/** One participant's connection: unary calls, connectivity, close. */
export class UnaryChannel implements UnaryTransport {
  private session: http2.ClientHttp2Session | undefined;
  private connecting: Promise<http2.ClientHttp2Session> | undefined;
  private state: connectivityState = connectivityState.IDLE;
  private retryAt = 0;
  private backoffMs: number;
  private lastError = '';
  private closed = false;
  /** Calls in flight per session: a session is referenced (keeps the process alive) only while it has some. */
  private readonly active = new WeakMap<http2.ClientHttp2Session, number>();
  private readonly opts: Required<UnaryChannelOptions>;
  /** Told every change of state (a BalancedChannel watches its members so). */
  onStateChange: ((state: connectivityState) => void) | undefined;

  constructor(
    readonly address: string,
    private readonly connect: Connect,
    opts: UnaryChannelOptions = {},
  ) {
    this.opts = {
      initialBackoffMs: 100,
      maxBackoffMs: 1_000,
      keepaliveMs: 30_000,
      keepaliveTimeoutMs: 5_000,
      maxReceiveBytes: 4 * 1024 * 1024,
      connectTimeoutMs: 20_000,
      ...opts,
    };
    this.backoffMs = this.opts.initialBackoffMs;
  }

  /** READY with a live session, CONNECTING, TRANSIENT_FAILURE after a failed attempt, else IDLE. */
  getConnectivityState(): connectivityState {
    return this.state;
  }

  members(): readonly UnaryChannel[] {
    return [this];
  }

  /** Why the last connection attempt failed ('' if none has). */
  get lastFailure(): string {
    return this.lastError;
  }

  /** When the next connection attempt may start (Date.now() scale; in the past when it may now). */
  get nextAttemptAt(): number {
    return this.retryAt;
  }

  /** Connects now unless connected or waiting out a backoff; rejects (UNAVAILABLE) when it cannot. */
  connectNow(): Promise<void> {
    return this.open().then(() => undefined);
  }

  close(): void {
    this.closed = true;
    this.session?.close();
    this.session = undefined;
    this.setState(connectivityState.SHUTDOWN);
  }

  private setState(state: connectivityState): void {
    if (this.state === state) return;
    this.state = state;
    this.onStateChange?.(state);
  }

  /** The session calls can use now, if there is one. */
  private live(): http2.ClientHttp2Session | undefined {
    const s = this.session;
    return s && !s.closed && !s.destroyed ? s : undefined;
  }

  private open(): Promise<http2.ClientHttp2Session> {
    const live = this.live();
    if (live) return Promise.resolve(live);
    if (this.connecting) return this.connecting;
    if (this.closed) return Promise.reject(notSent(serviceError(status.UNAVAILABLE, 'channel closed')));
    // Fail fast between attempts, as a grpc-js channel in TRANSIENT_FAILURE does.
    if (Date.now() < this.retryAt)
      return Promise.reject(
        notSent(serviceError(status.UNAVAILABLE, `no connection to ${this.address}: ${this.lastError}`)),
      );
    this.setState(connectivityState.CONNECTING);
    const attempt = new Promise<http2.ClientHttp2Session>((resolve, reject) => {
      const s = this.connect(this.address);
      // An address that swallows the handshake (a peer that hangs, packets dropped) must not keep
      // the channel CONNECTING for the kernel's minutes.
      const timeout = setTimeout(
        () => failed(new Error(`connection not established within ${this.opts.connectTimeoutMs} ms`)),
        this.opts.connectTimeoutMs,
      );
      timeout.unref();
      const failed = (err: Error) => {
        clearTimeout(timeout);
        if (this.connecting !== attempt) return;
        this.connecting = undefined;
        this.lastError = err.message;
        this.retryAt = Date.now() + jittered(this.backoffMs);
        this.backoffMs = Math.min(this.backoffMs * 2, this.opts.maxBackoffMs);
        s.destroy();
        // The state last: a watcher told of the failure finds retryAt already set.
        if (!this.closed) this.setState(connectivityState.TRANSIENT_FAILURE);
        reject(notSent(serviceError(status.UNAVAILABLE, `no connection to ${this.address}: ${err.message}`)));
      };
      // `on`, not `once`: a second error of a failed attempt must find a listener too (failed()
      // ignores it), or it would be thrown.
      s.on('error', failed);
      s.once('close', () => failed(new Error('connection closed before it was established')));
      s.once('connect', () => {
        clearTimeout(timeout);
        s.off('error', failed);
        this.connecting = undefined;
        this.backoffMs = this.opts.initialBackoffMs;
        this.adopt(s);
        resolve(s);
      });
    });
    this.connecting = attempt;
    return attempt;
  }

  /** A connected session: it serves calls until it closes, errs or is told to go away. */
  private adopt(s: http2.ClientHttp2Session): void {
    this.session = s;
    this.setState(connectivityState.READY);
    const drop = () => {
      clearInterval(pinger);
      if (this.session !== s) return;
      this.session = undefined;
      if (!this.closed) this.setState(connectivityState.IDLE);
    };
    s.on('error', drop);
    s.on('goaway', drop);
    s.on('close', drop);
    // Referenced only while a call is in flight: an idle session never keeps the process alive.
    s.unref();
    const pinger = setInterval(() => {
      const timer = setTimeout(() => s.destroy(), this.opts.keepaliveTimeoutMs);
      timer.unref();
      const sent = s.ping((err) => {
        clearTimeout(timer);
        if (err) s.destroy();
      });
      if (!sent) clearTimeout(timer);
    }, this.opts.keepaliveMs);
    pinger.unref();
  }

  /** One unary call: the serialized request in, the serialized response out, or a ServiceError. */
  async call(path: string, request: Buffer, metadata: Metadata, deadline: number): Promise<Buffer> {
    const left = deadline - Date.now();
    if (left <= 0) throw serviceError(status.DEADLINE_EXCEEDED, 'deadline exceeded before the call started');
    const session = this.live() ?? (await withDeadline(this.open(), deadline));
    return new Promise<Buffer>((resolve, reject) => {
      let stream: http2.ClientHttp2Stream;
      try {
        // grpc-timeout has at most 8 digits.
        stream = requestDetached(session, {
          ...GRPC_HEADERS,
          ':path': path,
          'grpc-timeout': `${Math.min(99_999_999, Math.max(1, deadline - Date.now()))}m`,
          ...metadata.toHttp2Headers(),
        });
      } catch (err) {
        // The session was closing under us: nothing was sent.
        reject(
          notSent(
            serviceError(status.UNAVAILABLE, `could not start a call on ${this.address}: ${(err as Error).message}`),
          ),
        );
        return;
      }
      let settled = false;
      const inFlight = this.active.get(session) ?? 0;
      this.active.set(session, inFlight + 1);
      if (inFlight === 0) session.ref();
      const settle = (err: ServiceError | undefined, body?: Buffer) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        const left = (this.active.get(session) ?? 1) - 1;
        this.active.set(session, left);
        if (left === 0 && !session.destroyed) session.unref();
        if (err) reject(err);
        else resolve(body as Buffer);
      };
      const timer = setTimeout(
        () => {
          settle(serviceError(status.DEADLINE_EXCEEDED, 'deadline exceeded'));
          stream.close(http2.constants.NGHTTP2_CANCEL);
        },
        Math.max(1, deadline - Date.now()),
      );

      let headers: http2.IncomingHttpHeaders | undefined;
      let trailers: http2.IncomingHttpHeaders | undefined;
      const chunks: Buffer[] = [];
      let received = 0;
      const onResponse = (h: http2.IncomingHttpHeaders) => (headers = h);
      const onTrailers = (t: http2.IncomingHttpHeaders) => (trailers = t);
      const onData = (d: Buffer) => {
        received += d.length;
        if (received > this.opts.maxReceiveBytes + 5) {
          settle(serviceError(status.RESOURCE_EXHAUSTED, `response larger than ${this.opts.maxReceiveBytes} bytes`));
          stream.close(http2.constants.NGHTTP2_CANCEL);
          return;
        }
        chunks.push(d);
      };
      stream.on('response', onResponse);
      stream.on('trailers', onTrailers);
      stream.on('data', onData);
      stream.on('error', ignore);
      const onClose = () => {
        // A closed stream outlives its call until the next full GC: V8's scavenges keep it (and
        // promote it), and with it this call's closures and what they hold, if it still lists them.
        stream.off('response', onResponse);
        stream.off('trailers', onTrailers);
        stream.off('data', onData);
        stream.off('close', onClose);
        if (settled) return;
        // A trailers-only answer carries its status in the headers.
        const end = trailers ?? (headers && headers['grpc-status'] !== undefined ? headers : undefined);
        const httpStatus = Number(headers?.[':status'] ?? 0);
        if (headers && httpStatus !== 200) {
          settle(serviceError(statusOfHttp(httpStatus), `HTTP status ${httpStatus} from ${this.address}`));
          return;
        }
        if (!end) {
          const rst = stream.rstCode ?? 0;
          const r =
            session.destroyed || session.closed
              ? { code: status.UNAVAILABLE, details: `connection to ${this.address} dropped` }
              : statusOfReset(rst);
          const err = serviceError(r.code, r.details);
          // REFUSED_STREAM: the server did no part of it (RFC 9113 §8.7), so it may go elsewhere.
          settle(!headers && rst === http2.constants.NGHTTP2_REFUSED_STREAM ? notSent(err) : err);
          return;
        }
        const sent = Number(end['grpc-status']);
        const md = Metadata.fromHttp2Headers(end);
        md.remove('grpc-status');
        md.remove('grpc-message');
        if (!Number.isInteger(sent) || sent < 0 || sent > 16) {
          settle(serviceError(status.UNKNOWN, `unparsable grpc-status ${String(end['grpc-status'])}`, md));
          return;
        }
        const code = sent as status;
        if (code !== status.OK) {
          const raw = end['grpc-message'];
          let details = typeof raw === 'string' ? raw : '';
          try {
            details = decodeURIComponent(details);
          } catch {
            // As sent.
          }
          settle(serviceError(code, details, md));
          return;
        }
        settle(...message(Buffer.concat(chunks, received)));
      };
      stream.on('close', onClose);
      stream.end(frame(request));
    });
  }
}

/** `p`, or DEADLINE_EXCEEDED at `deadline` if it has not settled by then (it goes on for others). */
export function withDeadline<T>(p: Promise<T>, deadline: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(serviceError(status.DEADLINE_EXCEEDED, 'deadline exceeded while connecting')),
      Math.max(1, deadline - Date.now()),
    );
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

/** The 5-byte gRPC message prefix (not compressed, length) and the message. */
function frame(message: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  message.copy(out, 5);
  return out;
}

/** The one message of a unary response, or why there is not exactly one. */
function message(body: Buffer): [ServiceError | undefined, Buffer?] {
  if (body.length < 5) return [serviceError(status.UNIMPLEMENTED, 'no response message for a unary call')];
  if (body[0] !== 0) return [serviceError(status.INTERNAL, 'compressed response without a negotiated encoding')];
  const length = body.readUInt32BE(1);
  if (body.length !== 5 + length)
    return [
      serviceError(
        status.INTERNAL,
        body.length < 5 + length ? 'truncated response message' : 'more than one response message for a unary call',
      ),
    ];
  return [undefined, body.subarray(5)];
}

/** A generated client's unary method, as callRpc and callUnary call it. */
type UnaryFn = ((
  req: unknown,
  md: Metadata,
  opts: { deadline: number },
  cb: (err: ServiceError | null, res?: unknown) => void,
) => void) & { path: string };

/**
 * An object with the unary methods of `definition`, shaped like the ts-proto client's (same
 * names, `(request, metadata, { deadline }, callback)`, `path`), over `channel`.
 */
export function unaryClient<C>(
  definition: ServiceDefinition,
  channel: UnaryChannel,
): C & { close(): void; channel: UnaryChannel };
export function unaryClient<C>(
  definition: ServiceDefinition,
  channel: UnaryTransport,
): C & { close(): void; channel: UnaryTransport };
export function unaryClient<C>(
  definition: ServiceDefinition,
  channel: UnaryTransport,
): C & { close(): void; channel: UnaryTransport } {
  const client: Record<string, unknown> = { close: () => channel.close(), channel };
  for (const [name, m] of Object.entries(definition)) {
    if (m.requestStream || m.responseStream) continue;
    const fn = ((req, md, opts, cb) => {
      let body: Buffer;
      try {
        body = m.requestSerialize(req);
      } catch (err) {
        cb(serviceError(status.INTERNAL, `request could not be serialized: ${(err as Error).message}`));
        return;
      }
      channel.call(m.path, body, md, opts.deadline).then(
        (res) => {
          let decoded: unknown;
          try {
            decoded = m.responseDeserialize(res);
          } catch (err) {
            cb(serviceError(status.INTERNAL, `response could not be decoded: ${(err as Error).message}`));
            return;
          }
          cb(null, decoded);
        },
        (err: ServiceError) => cb(err),
      );
    }) as UnaryFn;
    fn.path = m.path;
    client[name] = fn;
  }
  // The methods are built from the definition the generated client type describes.
  return client as C & { close(): void; channel: UnaryTransport };
}
