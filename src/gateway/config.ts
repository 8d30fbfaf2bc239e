import {
  ADDRESS_VARIABLES,
  DEFAULT_ADDRS,
  formatAddr,
  grpcSecurityFrom,
  GRPC_SECURITY_VARIABLES,
  FAULTS_SWITCH,
  processFrom,
  processVariables,
  redisFrom,
  REDIS_VARIABLES,
  sagaLogFrom,
  SAGA_LOG_VARIABLES,
  type Env,
  type HostPort,
  type ProcessSettings,
  type RedisSettings,
  type SagaLogSettings,
} from '../platform/config/config.js';
import {
  duration,
  filePath,
  hostPortList,
  hostPortOrOff,
  integer,
  oneOf,
  readVariables,
  text,
} from '../platform/config/config-schema.js';
import { ConfigError } from '../platform/errors.js';
import {
  ADMIN_TOKENS_EXPECTED,
  ADMIN_TOKENS_FORM,
  parseAdminTokens,
  redactAdminTokens,
  type AdminToken,
} from './admin/tokens.js';
import { isLoopbackHost } from './admin/loopback.js';
import { DEFAULT_POLICIES, type EnginePolicies } from '../saga/index.js';
import {
  DEFAULT_RETENTION_TEXT,
  RETENTION_EXPECTED,
  parseRetention,
  retentionFloorError,
  type RetentionPolicy,
} from '../saga/index.js';
import type { ParticipantName } from './participants.js';
import type { HttpLimits } from './http/deps.js';
import { PRICING_MODES, type Pricing } from './pricing.js';
import type { GrpcSecurity } from '../platform/grpc/tls.js';

/** The versions of the place-order saga this code has (src/gateway/place-order.ts PLACE_ORDER_VERSIONS). */
export const KNOWN_PLACE_ORDER_VERSIONS: readonly number[] = [1, 2];

/** RATE_LIMIT_PER_MINUTE's default: what one client address may send to the public API a minute. */
export const DEFAULT_RATE_LIMIT_PER_MINUTE = 600;

const d = DEFAULT_POLICIES;

/**
 * Where the gateway dials each participant: the variable a participant listens on, read here as a
 * list, `host:port,host:port`, one address per replica (one address is a list of one).
 */
const participantAddresses = (name: keyof typeof DEFAULT_ADDRS) => hostPortList({ default: DEFAULT_ADDRS[name] });

/** Every variable the gateway reads: `sagas config gateway` lists them in this order. */
export const GATEWAY_VARIABLES = {
  ...ADDRESS_VARIABLES,
  ORDER_SERVICE_ADDR: participantAddresses('ORDER_SERVICE_ADDR'),
  INVENTORY_SERVICE_ADDR: participantAddresses('INVENTORY_SERVICE_ADDR'),
  PAYMENT_SERVICE_ADDR: participantAddresses('PAYMENT_SERVICE_ADDR'),
  // The operators' listener (saga list and actions, the console): loopback by default; `off` disables
  // it; an address that is not loopback needs ADMIN_TOKENS (gatewayConfig refuses to start without).
  ADMIN_ADDR: hostPortOrOff({ default: '127.0.0.1:8081', expected: 'host:port (or :port, [::1]:port) or off' }),
  // A secret: shown as name:role:*** by `sagas config`, never logged.
  ADMIN_TOKENS: { ...text({ expected: ADMIN_TOKENS_EXPECTED, redact: redactAdminTokens }), form: ADMIN_TOKENS_FORM },
  TRACE_URL_TEMPLATE: text({
    pattern: '^https?://.*\\{trace_id\\}',
    expected: 'an http(s):// URL with {trace_id} where the trace id goes (e.g. Grafana Explore on Tempo)',
  }),
  ...SAGA_LOG_VARIABLES,
  ...GRPC_SECURITY_VARIABLES,
  SAGA_LEASE_MS: integer({ min: 500, default: 15_000 }),
  // Claims are an indexed read: look often, so a dead gateway's sagas wait little past their lease.
  SAGA_RECOVERY_INTERVAL_MS: integer({
    min: 100,
    default: (v) => Math.max(250, Math.floor((v.SAGA_LEASE_MS as number) / 6)),
    expected: 'an integer >= 100 (default lease / 6, at least 250)',
  }),
  SAGA_STEP_MAX_ATTEMPTS: integer({ min: 1, default: d.action.maxAttempts }),
  SAGA_RETRY_INITIAL_BACKOFF_MS: integer({ min: 0, default: d.action.initialBackoffMs }),
  SAGA_RETRY_MAX_BACKOFF_MS: integer({ min: 0, default: d.action.maxBackoffMs }),
  SAGA_COMPENSATION_MAX_ATTEMPTS: integer({ min: 1, default: d.compensation.maxAttempts }),
  SAGA_COMPENSATION_INITIAL_BACKOFF_MS: integer({ min: 0, default: d.compensation.initialBackoffMs }),
  SAGA_COMPENSATION_MAX_BACKOFF_MS: integer({ min: 0, default: d.compensation.maxBackoffMs }),
  // Steps after the pivot cannot be compensated: a saga whose forward step is still uncertain after
  // this many attempts parks for an operator instead of retrying forever.
  SAGA_FORWARD_MAX_ATTEMPTS: integer({ min: 1, default: d.forward.maxAttempts }),
  SAGA_FORWARD_MAX_BACKOFF_MS: integer({ min: 0, default: d.forward.maxBackoffMs }),
  SAGA_STEP_TIMEOUT_MS: integer({ min: 10, default: d.stepTimeoutMs }),
  SAGA_DEADLINE_MS: integer({ min: 100, default: d.sagaDeadlineMs }),
  // A saga in flight without progress (a change of status, step or compensation) for longer is
  // stuck: flagged in the console, counted in saga_stuck, alerted on (SagaStuck).
  SAGA_STUCK_AFTER: duration({ default: '60s' }),
  PREFER_WAIT_MAX_SECONDS: integer({ min: 0, max: 3_600, default: 60 }),
  // Load is bounded, never queued without end (DESIGN.md §6b).
  PREFER_WAIT_MAX_WAITERS: integer({ min: 0, default: 1_000 }),
  SAGA_MAX_IN_FLIGHT: integer({ min: 0, default: 1_000 }),
  HTTP_MAX_CONNECTIONS: integer({ min: 1, default: 1_024 }),
  // A request must arrive whole within this long; a wait of PREFER_WAIT_MAX_SECONDS fits in it.
  HTTP_REQUEST_TIMEOUT_MS: integer({
    min: 100,
    default: (v) => ((v.PREFER_WAIT_MAX_SECONDS as number) + 30) * 1_000,
    expected: 'an integer >= 100 (default PREFER_WAIT_MAX_SECONDS + 30 s)',
  }),
  HTTP_KEEP_ALIVE_TIMEOUT_MS: integer({ min: 100, default: 5_000 }),
  // On by default: 600 a minute per client address is ten orders a second, far above what a
  // person's curls or a shop's one customer send, and bounds one address's flood.
  RATE_LIMIT_PER_MINUTE: integer({
    min: 0,
    default: DEFAULT_RATE_LIMIT_PER_MINUTE,
    expected: 'an integer >= 0 (requests per client address a minute; 0: off)',
  }),
  SHUTDOWN_GRACE_MS: integer({ min: 0, default: 5_000 }),
  // client: the original's behaviour, the line's price is taken as sent.
  PRICING: oneOf(PRICING_MODES, { default: 'client' }),
  ...REDIS_VARIABLES,
  IDEMPOTENCY_TTL: duration({ default: '24h' }),
  IDEMPOTENCY_LOCK_TTL: duration({ default: '10s' }),
  // Which versions of the place-order saga this gateway drives, and which new orders start on
  // (docs/versions.md): register a new version everywhere first, then start on it.
  PLACE_ORDER_VERSIONS: text({
    default: '1,2',
    pattern: '^[1-9][0-9]{0,5}(,[1-9][0-9]{0,5})*$',
    expected: 'versions separated by commas, e.g. 1,2',
  }),
  PLACE_ORDER_START_VERSION: integer({ min: 1, default: 1 }),
  // How long finished sagas are kept, per outcome (docs/retention.md); never under IDEMPOTENCY_TTL.
  SAGA_RETENTION: text({ default: DEFAULT_RETENTION_TEXT, expected: RETENTION_EXPECTED }),
  // The fault switchboard (docs/faults-and-chaos.md): off unless 1; its plan read at start from FAULTS_FILE.
  FAULTS_ENABLED: FAULTS_SWITCH,
  FAULTS_FILE: filePath({ expected: 'a YAML or JSON fault plan file (read at start with FAULTS_ENABLED=1)' }),
  ...processVariables('gateway'),
};

export interface FaultSettings {
  enabled: boolean;
  /** The plan loaded at start; none: an empty plan (rules come through the admin API). */
  file: string | undefined;
}

export interface AdminSettings {
  /** Where the admin listener listens; `off`: no admin listener. */
  listen: HostPort | 'off';
  /** Empty: loopback clients only, as an operator named `local`. */
  tokens: AdminToken[];
  /** `{trace_id}` in it is replaced by a saga's trace id (the console's link to the trace). */
  traceUrlTemplate: string | undefined;
}

export interface GatewayConfig extends ProcessSettings {
  /** PLACE_ORDER_VERSIONS (sorted, unique) and PLACE_ORDER_START_VERSION (one of them). */
  placeOrder: { versions: number[]; startVersion: number };
  http: HostPort;
  admin: AdminSettings;
  /** Each participant's addresses (`host:port`), one per replica. */
  participants: Record<ParticipantName, string[]>;
  grpc: GrpcSecurity;
  sagaLog: SagaLogSettings;
  leaseMs: number;
  recoveryIntervalMs: number;
  policies: EnginePolicies;
  maxWaitSeconds: number;
  limits: HttpLimits;
  shutdownGraceMs: number;
  pricing: Pricing;
  redis: RedisSettings;
  idempotencyTtlMs: number;
  idempotencyLockMs: number;
  /** Which finished sagas the gateway prunes from the log, and when (src/gateway/retention.ts). */
  retention: RetentionPolicy;
  faults: FaultSettings;
  /** SAGA_STUCK_AFTER (ms): how long a saga in flight may make no progress before it is stuck. */
  stuckAfterMs: number;
}

/** Every setting of the gateway, read once from the environment; a ConfigError names every bad variable. */
export function gatewayConfig(env: Env): GatewayConfig {
  const v = readVariables(GATEWAY_VARIABLES, env);
  let tokens: AdminToken[];
  try {
    tokens = parseAdminTokens(v.ADMIN_TOKENS);
  } catch (err) {
    // The message names an entry by name and role only (parseAdminTokens never prints a token).
    throw new ConfigError([
      { variable: 'ADMIN_TOKENS', expected: `${ADMIN_TOKENS_EXPECTED}: ${(err as Error).message}` },
    ]);
  }
  // Without tokens every loopback connection is an operator. That is only safe on a loopback
  // listener nobody put a proxy in front of; one open to other machines is that proxy's door
  // (review N4), so it must have tokens.
  if (tokens.length === 0 && v.ADMIN_ADDR !== 'off' && !isLoopbackHost(v.ADMIN_ADDR.host)) {
    throw new ConfigError([
      {
        variable: 'ADMIN_TOKENS',
        expected:
          `${ADMIN_TOKENS_EXPECTED}, because ADMIN_ADDR ${formatAddr(v.ADMIN_ADDR)} is not a loopback address ` +
          "(without ADMIN_TOKENS the admin listener takes every loopback connection, a proxy's included, for an operator); " +
          'or set ADMIN_ADDR to a loopback address (127.0.0.1:8081) or off',
      },
    ]);
  }
  const retention = parseRetention(v.SAGA_RETENTION);
  if (!retention.ok)
    throw new ConfigError([
      { variable: 'SAGA_RETENTION', expected: `${RETENTION_EXPECTED}: ${retention.error}`, got: v.SAGA_RETENTION },
    ]);
  // A pruned saga frees its idempotency key: never while a client may still retry with it.
  const tooShort = retentionFloorError(retention.policy, v.IDEMPOTENCY_TTL);
  if (tooShort)
    throw new ConfigError([
      { variable: 'SAGA_RETENTION', expected: `no outcome kept ${tooShort}`, got: v.SAGA_RETENTION },
    ]);
  const versions = [...new Set(v.PLACE_ORDER_VERSIONS.split(',').map(Number))].sort((a, b) => a - b);
  const unknown = versions.filter((x) => !KNOWN_PLACE_ORDER_VERSIONS.includes(x));
  if (unknown.length > 0)
    throw new ConfigError([
      {
        variable: 'PLACE_ORDER_VERSIONS',
        expected: `versions this gateway has (${KNOWN_PLACE_ORDER_VERSIONS.join(', ')})`,
        got: v.PLACE_ORDER_VERSIONS,
      },
    ]);
  if (!versions.includes(v.PLACE_ORDER_START_VERSION))
    throw new ConfigError([
      {
        variable: 'PLACE_ORDER_START_VERSION',
        expected: `one of PLACE_ORDER_VERSIONS (${versions.join(', ')})`,
        got: String(v.PLACE_ORDER_START_VERSION),
      },
    ]);
  return {
    placeOrder: { versions, startVersion: v.PLACE_ORDER_START_VERSION },
    http: v.HTTP_ADDR,
    admin: { listen: v.ADMIN_ADDR, tokens, traceUrlTemplate: v.TRACE_URL_TEMPLATE },
    participants: {
      order: v.ORDER_SERVICE_ADDR.map(formatAddr),
      inventory: v.INVENTORY_SERVICE_ADDR.map(formatAddr),
      payment: v.PAYMENT_SERVICE_ADDR.map(formatAddr),
    },
    grpc: grpcSecurityFrom(v),
    sagaLog: sagaLogFrom(v),
    leaseMs: v.SAGA_LEASE_MS,
    recoveryIntervalMs: v.SAGA_RECOVERY_INTERVAL_MS,
    policies: {
      action: {
        ...d.action,
        maxAttempts: v.SAGA_STEP_MAX_ATTEMPTS,
        initialBackoffMs: v.SAGA_RETRY_INITIAL_BACKOFF_MS,
        maxBackoffMs: v.SAGA_RETRY_MAX_BACKOFF_MS,
      },
      compensation: {
        ...d.compensation,
        maxAttempts: v.SAGA_COMPENSATION_MAX_ATTEMPTS,
        initialBackoffMs: v.SAGA_COMPENSATION_INITIAL_BACKOFF_MS,
        maxBackoffMs: v.SAGA_COMPENSATION_MAX_BACKOFF_MS,
      },
      forward: { ...d.forward, maxAttempts: v.SAGA_FORWARD_MAX_ATTEMPTS, maxBackoffMs: v.SAGA_FORWARD_MAX_BACKOFF_MS },
      stepTimeoutMs: v.SAGA_STEP_TIMEOUT_MS,
      sagaDeadlineMs: v.SAGA_DEADLINE_MS,
    },
    maxWaitSeconds: v.PREFER_WAIT_MAX_SECONDS,
    limits: {
      maxWaiters: v.PREFER_WAIT_MAX_WAITERS,
      maxInFlight: v.SAGA_MAX_IN_FLIGHT,
      maxConnections: v.HTTP_MAX_CONNECTIONS,
      requestTimeoutMs: v.HTTP_REQUEST_TIMEOUT_MS,
      keepAliveTimeoutMs: v.HTTP_KEEP_ALIVE_TIMEOUT_MS,
      ratePerMinute: v.RATE_LIMIT_PER_MINUTE,
    },
    shutdownGraceMs: v.SHUTDOWN_GRACE_MS,
    pricing: v.PRICING,
    redis: redisFrom(v),
    idempotencyTtlMs: v.IDEMPOTENCY_TTL,
    idempotencyLockMs: v.IDEMPOTENCY_LOCK_TTL,
    retention: retention.policy,
    faults: { enabled: v.FAULTS_ENABLED, file: v.FAULTS_FILE },
    stuckAfterMs: v.SAGA_STUCK_AFTER,
    ...processFrom(v),
  };
}
