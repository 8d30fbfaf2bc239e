import {
  context,
  metrics,
  propagation,
  trace,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
} from '@opentelemetry/api';
import {
  Server,
  ServerCredentials,
  ChannelCredentials,
  credentials,
  Metadata,
  status,
  type ServiceError,
  type handleUnaryCall,
  type ServiceDefinition,
  type UntypedServiceImplementation,
  type CallOptions,
  type ClientUnaryCall,
  ServerInterceptingCall,
  type ServerInterceptor,
  type ServerInterceptingCallInterface,
} from '@grpc/grpc-js';
import { AppError } from '../errors.js';
import { formatAddr, type HostPort } from '../config/config.js';
import type { Logger } from '../telemetry/logger.js';
import { loadTlsMaterial, peerName, pinnedPeer, type GrpcSecurity, type TlsIdentity } from './tls.js';
import { refuseUndecodable } from './grpc-undecodable.js';
import { HealthService, HealthCheckResponse_ServingStatus, type HealthServer } from '../../gen/health/v1/health.js';

export const IDEMPOTENCY_KEY_MD = 'x-idempotency-key';
/** A fault directive a call carries (CallOpts.fault), for a participant that honours them (src/faults/participant.ts). */
export const FAULT_MD = 'x-fault';
export const REQUEST_ID_MD = 'x-request-id';

/** Channel options of a client of the participants: written once, so every client dials them alike. */
export const CLIENT_CHANNEL_OPTIONS = {
  'grpc.keepalive_time_ms': 30_000,
  'grpc.keepalive_timeout_ms': 5_000,
  // Reconnect quickly after a participant restarts: recovery waits on it.
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 1_000,
  // The saga engine retries with the same idempotency key; grpc-js's own retry layer only added
  // a buffering call object per call.
  'grpc.enable_retries': 0,
  // channelz (grpc-js's call counters and timestamps, on by default) is never queried here.
  'grpc.enable_channelz': 0,
} as const;

export interface CallContext {
  method: string;
  idempotencyKey: string | undefined;
  requestId: string | undefined;
  logger: Logger;
}

export type Handler<Req, Res> = (req: Req, call: CallContext) => Res | Promise<Res>;

/** gRPC status for each of our error codes; anything unlisted is INTERNAL. */
const STATUS_OF_CODE: Record<string, status> = {
  invalid_argument: status.INVALID_ARGUMENT,
  idempotency_key_required: status.INVALID_ARGUMENT,
  invalid_idempotency_key: status.INVALID_ARGUMENT,
  idempotency_key_reused: status.FAILED_PRECONDITION,
  not_found: status.NOT_FOUND,
  shutting_down: status.UNAVAILABLE,
  // A participant's database out of reach: retried under the same key (the inbox replays a commit that did happen).
  store_unavailable: status.UNAVAILABLE,
};

export function firstValue(md: Metadata, key: string): string | undefined {
  const v = md.get(key)[0];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

const tracer = trace.getTracer('ecommerce-sagas/grpc');

export const metadataGetter: TextMapGetter<Metadata> = {
  keys: (md) => Object.keys(md.getMap()),
  get: (md, key) => {
    const v = md.get(key)[0];
    return typeof v === 'string' ? v : undefined;
  },
};

/** `/order.v1.OrderService/CreateOrder` → its service and method, as OTel names them. */
export function splitPath(path: string): { name: string; service: string; method: string } {
  const name = path.replace(/^\//, '');
  const [service = '', method = ''] = name.split('/');
  return { name, service, method };
}

let rpcDuration: ReturnType<ReturnType<typeof metrics.getMeter>['createHistogram']> | undefined;
function serverDuration() {
  // Created lazily so that it binds to the meter provider registered at start-up.
  rpcDuration ??= metrics.getMeter('ecommerce-sagas/grpc').createHistogram('rpc.server.duration', {
    unit: 'ms',
    description: 'Duration of gRPC calls served',
    advice: { explicitBucketBoundaries: [0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500] },
  });
  return rpcDuration;
}

/**
 * Adapts an async handler to grpc-js: continues the caller's trace in a SERVER span, reads our
 * metadata, logs, records the call's duration, and maps typed errors to status codes.
 */
export function unary<Req, Res>(method: string, logger: Logger, fn: Handler<Req, Res>): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const started = performance.now();
    const { name, service, method: rpcMethod } = splitPath(call.getPath());
    const parent = propagation.extract(ROOT_CONTEXT, call.metadata, metadataGetter);
    const span = tracer.startSpan(
      name,
      { kind: SpanKind.SERVER, attributes: { 'rpc.system': 'grpc', 'rpc.service': service, 'rpc.method': rpcMethod } },
      parent,
    );
    const ctx: CallContext = {
      method,
      idempotencyKey: firstValue(call.metadata, IDEMPOTENCY_KEY_MD),
      requestId: firstValue(call.metadata, REQUEST_ID_MD),
      logger: logger.child({ rpc: method }),
    };
    const finish = (code: status) => {
      span.setAttribute('rpc.grpc.status_code', code);
      if (code !== status.OK) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
      serverDuration().record(performance.now() - started, {
        'rpc.system': 'grpc',
        'rpc.service': service,
        'rpc.method': rpcMethod,
        'rpc.grpc.status_code': code,
      });
    };
    if (ctx.idempotencyKey) span.setAttribute('idempotency.key', ctx.idempotencyKey);
    const fail = (err: unknown) => {
      const code = err instanceof AppError ? (STATUS_OF_CODE[err.code] ?? status.INTERNAL) : status.INTERNAL;
      const message = err instanceof Error ? err.message : String(err);
      if (code === status.INTERNAL) ctx.logger.error({ err, idempotency_key: ctx.idempotencyKey }, 'rpc failed');
      else
        ctx.logger.warn(
          { code: (err as AppError).code, idempotency_key: ctx.idempotencyKey, error: message },
          'rpc refused',
        );
      const md = new Metadata();
      if (err instanceof AppError) md.set('x-error-code', err.code);
      finish(code);
      callback({ code, details: message, metadata: md, name: 'Error', message });
    };
    // The handler's outcome is answered through callback (success or fail): nothing to await here.
    void context.with(trace.setSpan(parent, span), () =>
      Promise.resolve()
        .then(() => fn(call.request, ctx))
        .then((res) => {
          finish(status.OK);
          callback(null, res);
        }, fail),
    );
  };
}

export interface RunningServer {
  address: string;
  /** Stops accepting calls, lets in-flight ones finish (up to `graceMs`), then closes. */
  shutdown(graceMs?: number): Promise<void>;
}

export interface ServiceBinding {
  definition: ServiceDefinition;
  implementation: UntypedServiceImplementation;
}

/** What grpc-js knows of a call's transport (its AuthContext, which the package does not export by name). */
type AuthContext = ReturnType<ServerInterceptingCall['getAuthContext']>;

/** The one identity a participant serves: it calls them, they call no one. */
export const CALLER: TlsIdentity = 'gateway';

/** Server credentials made by `serverCredentials` under mutual TLS: `startGrpcServer` checks their callers' names. */
const checkedCredentials = new WeakSet<ServerCredentials>();

/**
 * What a server of `identity` presents and demands: its certificate, and a client certificate
 * issued by the deployment's CA (a caller without one fails the handshake, before any RPC).
 * The CA alone is not enough — any certificate it issued would do — so `startGrpcServer` also
 * serves only a caller whose certificate names the gateway (`onlyTheGateway`).
 */
export function serverCredentials(security: GrpcSecurity, identity: TlsIdentity): ServerCredentials {
  if (security.kind === 'insecure') return ServerCredentials.createInsecure();
  const m = loadTlsMaterial(security.dir, identity);
  const creds = ServerCredentials.createSsl(m.ca, [{ private_key: m.key, cert_chain: m.cert }], true);
  checkedCredentials.add(creds);
  return creds;
}

/**
 * The identity the caller of a call proved with its TLS certificate (CN), or undefined: plaintext,
 * or no certificate. grpc-js gives a peer certificate only once the handshake verified it against
 * the CA, so a name here is one the deployment's CA vouched for.
 */
export function callerIdentity(auth: AuthContext): string | undefined {
  return auth.transportSecurityType === 'ssl' ? peerName(auth.sslPeerCertificate) : undefined;
}

/**
 * A warning said at most once per `intervalMs`, with the count of those not said in between: a
 * caller that repeats a refused call every millisecond must not fill the disk with log lines.
 */
export function throttledWarning(
  logger: Logger,
  msg: string,
  intervalMs = 60_000,
): (fields: Record<string, unknown>) => void {
  let lastAt = -Infinity;
  let unsaid = 0;
  return (fields) => {
    const now = performance.now();
    if (now - lastAt < intervalMs) {
      unsaid++;
      return;
    }
    logger.warn({ ...fields, ...(unsaid > 0 ? { not_logged_since_last: unsaid } : {}) }, msg);
    lastAt = now;
    unsaid = 0;
  };
}

/**
 * A server interceptor that serves only a caller whose certificate names the gateway, refusing
 * every other with PERMISSION_DENIED when its call's metadata arrives — before the request is
 * read and before any handler (health included) runs. The handshake has already refused callers
 * without a certificate of the deployment's CA, or with a participant's (serverAuth only); this
 * refuses the rest: a certificate the CA issued to anyone else.
 */
/** Each connection's caller, once read (see callerOf). */
const callerBySession = new WeakMap<object, string | undefined>();

/**
 * The identity of a call's caller, read once per connection: parsing the peer certificate
 * (getAuthContext) costs ~22 µs, on every call of every saga step. A connection's TLS peer never
 * changes (HTTP/2 forbids renegotiation), so it is kept per HTTP/2 session. grpc-js gives no
 * public handle on the session; its base call keeps the stream — without it (another grpc-js),
 * the certificate is read on every call, correct and slower (test/integration/mtls.test.ts
 * counts the reads).
 */
function callerOf(call: ServerInterceptingCallInterface): string | undefined {
  const session = (call as unknown as { stream?: { session?: object } }).stream?.session;
  if (session === undefined) return callerIdentity(call.getAuthContext());
  if (callerBySession.has(session)) return callerBySession.get(session);
  const who = callerIdentity(call.getAuthContext());
  callerBySession.set(session, who);
  return who;
}

function onlyTheGateway(logger: Logger | undefined): ServerInterceptor {
  const warn = logger ? throttledWarning(logger, 'a caller that is not the gateway was refused') : undefined;
  return (method, call) =>
    new ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, forward) => {
            const who = callerOf(call);
            if (who === CALLER) {
              forward(metadata);
              return;
            }
            warn?.({ rpc: method.path, caller: who ?? null, peer: call.getPeer() });
            const details = `only the ${CALLER} may call this service; the caller's certificate names ${who === undefined ? 'no single identity' : `CN=${who}`}`;
            const md = new Metadata();
            md.set('x-error-code', 'caller_not_allowed');
            call.sendStatus({ code: status.PERMISSION_DENIED, details, metadata: md });
          },
        }),
    });
}

/**
 * What a client of `identity` presents when it dials a server, and what it accepts: a certificate
 * from the deployment's CA naming the `peer` it meant to reach (CN), whatever host name the address
 * has — so a server with another process's certificate, or another CA's, is refused. The material
 * is read and checked once, for every peer the returned function is asked for.
 */
export function credentialsAs(
  security: GrpcSecurity,
  identity: TlsIdentity,
): (peer: TlsIdentity) => ChannelCredentials {
  if (security.kind === 'insecure') return () => credentials.createInsecure();
  const m = loadTlsMaterial(security.dir, identity);
  return (peer) =>
    credentials.createSsl(m.ca, m.key, m.cert, {
      checkServerIdentity: pinnedPeer(peer),
    });
}

/** `credentialsAs` for one peer. */
export function channelCredentials(
  security: GrpcSecurity,
  identity: TlsIdentity,
  peer: TlsIdentity,
): ChannelCredentials {
  return credentialsAs(security, identity)(peer);
}

/**
 * Channel options of a client dialling `peer`: under TLS the name it asks for (SNI) and checks is
 * the peer's identity, not the address's host (an IP address is no TLS server name).
 */
export function channelOptions(security: GrpcSecurity, peer: TlsIdentity) {
  return security.kind === 'mtls'
    ? { ...CLIENT_CHANNEL_OPTIONS, 'grpc.ssl_target_name_override': peer }
    : { ...CLIENT_CHANNEL_OPTIONS };
}

export interface GrpcServerOptions {
  /**
   * Wraps each service's binding before it is served: how a feature such as the fault
   * switchboard (src/faults/participant.ts) puts itself around every method without this module
   * knowing it.
   */
  around?: (binding: ServiceBinding) => ServiceBinding;
  /** Where refused callers are logged (a warning, at most once a minute). */
  logger?: Logger;
}

/**
 * Starts a gRPC server with the given services plus grpc.health.v1. Port 0 picks a free port.
 * Under mutual TLS (`creds` from `serverCredentials`) it serves the gateway alone (`onlyTheGateway`).
 */
export async function startGrpcServer(
  addr: HostPort,
  services: ServiceBinding[],
  creds: ServerCredentials,
  opts: GrpcServerOptions = {},
): Promise<RunningServer> {
  const checked = checkedCredentials.has(creds);
  // Fail closed: TLS credentials made elsewhere would serve any certificate of the CA.
  if (creds._isSecure() && !checked)
    throw new TypeError(
      'startGrpcServer: TLS credentials must come from serverCredentials(), which checks the caller is the gateway',
    );
  const server = new Server({
    'grpc.max_receive_message_length': 4 * 1024 * 1024,
    'grpc.enable_channelz': 0,
    interceptors: checked ? [onlyTheGateway(opts.logger)] : [],
  });
  const bindings = opts.around ? services.map(opts.around) : services;
  // Bytes that do not decode are the caller's mistake: a definite refusal, not grpc-js's INTERNAL.
  for (const s of bindings.map(refuseUndecodable)) server.addService(s.definition, s.implementation);
  let serving = true;
  const health: HealthServer = {
    check: (_call, cb) =>
      cb(null, {
        status: serving ? HealthCheckResponse_ServingStatus.SERVING : HealthCheckResponse_ServingStatus.NOT_SERVING,
      }),
  };
  server.addService(HealthService, health);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(formatAddr(addr), creds, (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    address: formatAddr({ host: addr.host === '0.0.0.0' ? '127.0.0.1' : addr.host, port }),
    shutdown: (graceMs = 5_000) =>
      new Promise<void>((resolve) => {
        serving = false;
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}

export interface CallOpts {
  idempotencyKey?: string;
  requestId?: string;
  /** Per-attempt deadline. */
  timeoutMs: number;
  /** A fault directive for the participant (`x-fault` metadata), set by the gateway's fault switchboard only. */
  fault?: string;
}

type UnaryMethod<Req, Res> = (
  req: Req,
  md: Metadata,
  opts: Partial<CallOptions>,
  cb: (err: ServiceError | null, res: Res) => void,
) => ClientUnaryCall;

function callMetadata(opts: CallOpts): Metadata {
  const md = new Metadata();
  if (opts.idempotencyKey) md.set(IDEMPOTENCY_KEY_MD, opts.idempotencyKey);
  if (opts.requestId) md.set(REQUEST_ID_MD, opts.requestId);
  if (opts.fault) md.set(FAULT_MD, opts.fault);
  return md;
}

/**
 * Status codes that cannot succeed on retry: the server refused this request as it is (malformed,
 * not allowed, contradicting what it holds, not implemented). Every other code — UNAVAILABLE,
 * DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, INTERNAL, UNKNOWN, CANCELLED — leaves the
 * outcome unknown, and a retry under the same idempotency key is safe.
 */
const DEFINITE_STATUSES: ReadonlySet<status> = new Set([
  status.INVALID_ARGUMENT,
  status.FAILED_PRECONDITION,
  status.PERMISSION_DENIED,
  status.UNAUTHENTICATED,
  status.NOT_FOUND,
  status.ALREADY_EXISTS,
  status.OUT_OF_RANGE,
  status.UNIMPLEMENTED,
]);

export function isDefiniteGrpcError(err: unknown): err is ServiceError {
  return isServiceError(err) && DEFINITE_STATUSES.has(err.code);
}

/** `grpc_invalid_argument`: the stable code a definite status is recorded under (in a saga's failure). */
export function grpcFailureCode(code: status): string {
  const name = (status as unknown as Record<number, string | undefined>)[code] ?? `status_${code}`;
  return `grpc_${name.toLowerCase()}`;
}

/**
 * Marks a definite failure as the saga engine's DefiniteError (`definite`, `failureCode`), in
 * place: it stays the same ServiceError (code, details, metadata) for every other caller. Any
 * other failure gets its status's `failureCode` only (`grpc_unavailable`): the engine records it,
 * so that a saga's timeline says "unreachable" or "timed out" without parsing the message.
 */
function classified(err: ServiceError): ServiceError {
  // An injected fault's refusal is recorded as such (fault_injected), not as its status.
  if (DEFINITE_STATUSES.has(err.code))
    Object.assign(err, {
      definite: true,
      failureCode: errorCodeOf(err) === 'fault_injected' ? 'fault_injected' : grpcFailureCode(err.code),
    });
  else Object.assign(err, { failureCode: grpcFailureCode(err.code) });
  return err;
}

/** Promise form of a generated client method, untraced; bind it to its client first. */
export function callUnary<Req, Res>(method: UnaryMethod<Req, Res>, req: Req, opts: CallOpts): Promise<Res> {
  const md = callMetadata(opts);
  return new Promise((resolve, reject) => {
    method(req, md, { deadline: Date.now() + opts.timeoutMs }, (err, res) =>
      err ? reject(classified(err)) : resolve(res),
    );
  });
}

type RequestOf<F> = F extends UnaryMethod<infer Req, infer _Res> ? Req : never;
type ResponseOf<F> = F extends UnaryMethod<infer _Req, infer Res> ? Res : never;

/**
 * A traced call of `client[method]`: a CLIENT span named after the RPC
 * (`order.v1.OrderService/CreateOrder`), its context sent as `traceparent` metadata. Any client
 * shaped like the generated ones serves: grpc-js's, or the gateway's own (grpc-client.ts).
 */
export function callRpc<C, K extends keyof C & string>(
  client: C,
  method: K,
  req: RequestOf<C[K]>,
  opts: CallOpts,
): Promise<ResponseOf<C[K]>> {
  const fn = client[method] as unknown as UnaryMethod<RequestOf<C[K]>, ResponseOf<C[K]>> & { path?: string };
  const { name, service, method: rpcMethod } = splitPath(fn.path ?? method);
  const span = tracer.startSpan(name, {
    kind: SpanKind.CLIENT,
    attributes: { 'rpc.system': 'grpc', 'rpc.service': service, 'rpc.method': rpcMethod },
  });
  const md = callMetadata(opts);
  propagation.inject(trace.setSpan(context.active(), span), md, {
    set: (carrier, key, value) => carrier.set(key, value),
  });
  return new Promise((resolve, reject) => {
    fn.call(client, req, md, { deadline: Date.now() + opts.timeoutMs }, (err, res) => {
      span.setAttribute('rpc.grpc.status_code', err ? err.code : status.OK);
      if (err) span.setStatus({ code: SpanStatusCode.ERROR, message: err.details });
      span.end();
      if (err) reject(classified(err));
      else resolve(res);
    });
  });
}

export function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === 'number';
}

/** Whether the participant could not be reached at all (the HTTP layer answers 503). */
export function isUnavailable(err: unknown): boolean {
  return isServiceError(err) && (err.code === status.UNAVAILABLE || err.code === status.DEADLINE_EXCEEDED);
}

export function errorCodeOf(err: unknown): string | undefined {
  if (!isServiceError(err)) return undefined;
  const v = err.metadata?.get('x-error-code')[0];
  return typeof v === 'string' ? v : undefined;
}
