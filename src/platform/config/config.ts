import path from 'node:path';
import {
  duration as durationVar,
  filePath,
  flag,
  hostPort,
  hostPortOf,
  hostPortOrOff,
  integer,
  keyValues,
  list,
  oneOf,
  readVariables,
  redactPassword,
  redactValues,
  text,
  type Env,
  type HostPort,
  type Values,
  type Variable,
} from './config-schema.js';
import { ConfigError } from '../errors.js';
import type { GrpcSecurity } from '../grpc/tls.js';

/**
 * The pieces of configuration more than one process reads, each defined once: addresses, the
 * data folder, the saga log, Redis, logging, telemetry, crash points. A process's schema is a
 * composition of these and its own variables (src/gateway/config.ts, src/services/<name>/config.ts).
 */

export { isPostgresUrl, redactPassword, type Env, type HostPort } from './config-schema.js';

// ---------------------------------------------------------------------------------------------
// Addresses: the same variables tell a service where to listen and the gateway where to dial.

export const DEFAULT_ADDRS = {
  HTTP_ADDR: ':8080',
  ORDER_SERVICE_ADDR: '127.0.0.1:9090',
  PAYMENT_SERVICE_ADDR: '127.0.0.1:9091',
  INVENTORY_SERVICE_ADDR: '127.0.0.1:9092',
} as const;

export type AddrVar = keyof typeof DEFAULT_ADDRS;

export const ADDRESS_VARIABLES = {
  HTTP_ADDR: hostPort({ default: DEFAULT_ADDRS.HTTP_ADDR }),
  ORDER_SERVICE_ADDR: hostPort({ default: DEFAULT_ADDRS.ORDER_SERVICE_ADDR }),
  INVENTORY_SERVICE_ADDR: hostPort({ default: DEFAULT_ADDRS.INVENTORY_SERVICE_ADDR }),
  PAYMENT_SERVICE_ADDR: hostPort({ default: DEFAULT_ADDRS.PAYMENT_SERVICE_ADDR }),
} as const satisfies Record<AddrVar, Variable<HostPort>>;

/** Parses `host:port`, `:port` (all interfaces) or `[::1]:port`. Port 0 asks the OS for a free port. */
export function parseAddr(name: string, value: string): HostPort {
  const where = hostPortOf(value);
  if (!where) throw new ConfigError([{ variable: name, expected: ADDRESS_VARIABLES.HTTP_ADDR.expected, got: value }]);
  return where;
}

export function formatAddr({ host, port }: HostPort): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** One address variable alone (the CLI plans ports with it); a process reads its whole schema instead. */
export function addr(env: Env, name: AddrVar): HostPort {
  return readVariables({ [name]: ADDRESS_VARIABLES[name] }, env)[name] as HostPort;
}

// ---------------------------------------------------------------------------------------------
// Data

export const DATA_VARIABLES = {
  DATA_DIR: filePath({ default: './data', expected: 'a folder path' }),
};

export function dataDir(env: Env): string {
  return readVariables(DATA_VARIABLES, env).DATA_DIR;
}

export type SyncLevel = 'normal' | 'full';

/** SQLite `synchronous`: `normal` survives a process crash, `full` also an OS crash. */
export function syncVariable(): Variable<SyncLevel> {
  return oneOf(['normal', 'full'] as const, { default: 'normal' });
}

/** A duration variable alone (`30s`, `15m`, `24h`, bare seconds) in ms; a ConfigError when bad. */
export function duration(env: Env, name: string, fallbackMs: number): number {
  return readVariables({ [name]: durationVar({ default: `${fallbackMs}ms` }) }, env)[name] as number;
}

// ---------------------------------------------------------------------------------------------
// The saga log (gateway; `sagas inspect` reads the same variables)

const PG_SYNCHRONOUS_COMMIT = ['on', 'off', 'local', 'remote_write', 'remote_apply'] as const;

/**
 * How long a gateway waits for the PostgreSQL saga log by default (SAGA_LOG_TIMEOUT_MS): for a
 * connection, and for a statement's answer. The log's statements are small: its commits under the
 * bench's load stay well under a second.
 */
export const SAGA_LOG_TIMEOUT_DEFAULT_MS = 10_000;

export const SAGA_LOG_VARIABLES = {
  ...DATA_VARIABLES,
  SAGA_LOG_URL: text({
    format: 'postgres-url',
    expected: 'postgres://user[:password]@host[:port]/database',
    redact: redactPassword,
  }),
  SAGA_LOG_DB_PATH: filePath({
    default: (v) => path.join(v.DATA_DIR as string, 'saga.db'),
    expected: 'a file path (default $DATA_DIR/saga.db)',
  }),
  SAGA_LOG_SYNC: syncVariable(),
  SAGA_LOG_POOL_SIZE: integer({ min: 1, max: 200, default: 10 }),
  SAGA_LOG_TIMEOUT_MS: integer({ min: 100, max: 600_000, default: SAGA_LOG_TIMEOUT_DEFAULT_MS }),
  SAGA_LOG_PG_SYNCHRONOUS_COMMIT: oneOf(PG_SYNCHRONOUS_COMMIT, { default: 'on' }),
};

export type SagaLogSettings =
  | { kind: 'sqlite'; file: string; synchronous: SyncLevel }
  | {
      kind: 'postgres';
      url: string;
      poolSize: number;
      synchronousCommit: (typeof PG_SYNCHRONOUS_COMMIT)[number];
      /** Unset: SAGA_LOG_TIMEOUT_DEFAULT_MS. */
      timeoutMs?: number;
    };

/** Where the saga log lives: SQLite under DATA_DIR by default, PostgreSQL when SAGA_LOG_URL says so. */
export function sagaLogFrom(v: Values<typeof SAGA_LOG_VARIABLES>): SagaLogSettings {
  if (v.SAGA_LOG_URL === undefined) return { kind: 'sqlite', file: v.SAGA_LOG_DB_PATH, synchronous: v.SAGA_LOG_SYNC };
  return {
    kind: 'postgres',
    url: v.SAGA_LOG_URL,
    poolSize: v.SAGA_LOG_POOL_SIZE,
    synchronousCommit: v.SAGA_LOG_PG_SYNCHRONOUS_COMMIT,
    timeoutMs: v.SAGA_LOG_TIMEOUT_MS,
  };
}

export function sagaLogSettings(env: Env): SagaLogSettings {
  return sagaLogFrom(readVariables(SAGA_LOG_VARIABLES, env));
}

// ---------------------------------------------------------------------------------------------
// Redis: the idempotency fast path all four processes share

export const REDIS_VARIABLES = {
  REDIS_URL: text({
    default: 'redis://127.0.0.1:6379',
    format: 'redis-url',
    expected: 'redis://[user:password@]host:port (or rediss://)',
    redact: redactPassword,
  }),
  REDIS_KEY_PREFIX: text({
    default: 'ecommerce-sagas',
    pattern: '^[A-Za-z0-9_.:-]{1,64}$',
    expected: '1-64 characters of [A-Za-z0-9_.:-]',
  }),
};

export interface RedisSettings {
  url: string;
  keyPrefix: string;
}

export function redisFrom(v: Values<typeof REDIS_VARIABLES>): RedisSettings {
  return { url: v.REDIS_URL, keyPrefix: v.REDIS_KEY_PREFIX };
}

// ---------------------------------------------------------------------------------------------
// Logging

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const LOGGING_VARIABLES = {
  LOG_LEVEL: oneOf(LOG_LEVELS, { default: 'info' }),
};

export interface LoggingSettings {
  level: LogLevel;
}

export function loggingFrom(v: Values<typeof LOGGING_VARIABLES>): LoggingSettings {
  return { level: v.LOG_LEVEL };
}

// ---------------------------------------------------------------------------------------------
// Telemetry (OpenTelemetry): the standard OTEL_* variables this project honours, read here and
// handed to the SDK explicitly, so what `sagas config` shows is what the process uses.

export const OTLP_PROTOCOLS = ['http/protobuf', 'http/json'] as const;
export type OtlpProtocol = (typeof OTLP_PROTOCOLS)[number];

// An endpoint may carry user info (http://user:password@collector:4318): a secret, redacted when shown.
const endpoint = (expected: string) => text({ format: 'http-url', expected, redact: redactPassword });

export function telemetryVariables(service: string) {
  return {
    OTEL_SERVICE_NAME: text({
      // OTEL_RESOURCE_ATTRIBUTES may name the service too; OTEL_SERVICE_NAME wins, as in the SDK.
      default: (v) => (v.OTEL_RESOURCE_ATTRIBUTES as Record<string, string>)['service.name'] ?? service,
      expected: 'a service name',
    }),
    OTEL_RESOURCE_ATTRIBUTES: keyValues({ expected: 'key=value pairs separated by commas (values percent-encoded)' }),
    OTEL_SDK_DISABLED: flag({ default: false }),
    OTEL_EXPORTER_OTLP_ENDPOINT: endpoint('an http(s):// URL of an OTLP/HTTP collector, e.g. http://localhost:4318'),
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: endpoint('an http(s):// URL (used as is) for traces'),
    OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: endpoint('an http(s):// URL (used as is) for metrics'),
    OTEL_EXPORTER_OTLP_PROTOCOL: oneOf(OTLP_PROTOCOLS, { default: 'http/protobuf' }),
    // Each signal's protocol defaults to the general one.
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: oneOf(OTLP_PROTOCOLS, {
      default: (v) => v.OTEL_EXPORTER_OTLP_PROTOCOL as OtlpProtocol,
    }),
    OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: oneOf(OTLP_PROTOCOLS, {
      default: (v) => v.OTEL_EXPORTER_OTLP_PROTOCOL as OtlpProtocol,
    }),
    OTEL_EXPORTER_OTLP_HEADERS: keyValues({ expected: 'key=value pairs separated by commas', redact: redactValues }),
    OTEL_METRIC_EXPORT_INTERVAL: integer({ min: 100, default: 60_000, expected: 'an integer >= 100 (milliseconds)' }),
    OTEL_BSP_SCHEDULE_DELAY: integer({ min: 0, default: 5_000, expected: 'an integer >= 0 (milliseconds)' }),
  };
}

export interface OtlpTarget {
  url: string;
  protocol: OtlpProtocol;
}

export interface TelemetrySettings {
  serviceName: string;
  resourceAttributes: Record<string, string>;
  /** Absent: spans stay in process (their ids still reach logs and the saga log). */
  traces?: OtlpTarget & { scheduleDelayMs: number };
  /** Absent: metrics are only scraped (Prometheus). */
  metrics?: OtlpTarget & { intervalMs: number };
  headers: Record<string, string>;
}

/** The general endpoint takes the signal's path; a signal's own endpoint is used as written (as in the OTel spec). */
function signalUrl(
  general: string | undefined,
  own: string | undefined,
  signal: 'traces' | 'metrics',
): string | undefined {
  if (own !== undefined) return own;
  return general === undefined ? undefined : `${general.replace(/\/+$/, '')}/v1/${signal}`;
}

export function telemetryFrom(v: Values<ReturnType<typeof telemetryVariables>>): TelemetrySettings {
  const on = !v.OTEL_SDK_DISABLED;
  const traces = on
    ? signalUrl(v.OTEL_EXPORTER_OTLP_ENDPOINT, v.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, 'traces')
    : undefined;
  const metrics = on
    ? signalUrl(v.OTEL_EXPORTER_OTLP_ENDPOINT, v.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT, 'metrics')
    : undefined;
  return {
    serviceName: v.OTEL_SERVICE_NAME,
    resourceAttributes: v.OTEL_RESOURCE_ATTRIBUTES,
    ...(traces
      ? {
          traces: {
            url: traces,
            protocol: v.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
            scheduleDelayMs: v.OTEL_BSP_SCHEDULE_DELAY,
          },
        }
      : {}),
    ...(metrics
      ? {
          metrics: {
            url: metrics,
            protocol: v.OTEL_EXPORTER_OTLP_METRICS_PROTOCOL,
            intervalMs: v.OTEL_METRIC_EXPORT_INTERVAL,
          },
        }
      : {}),
    headers: v.OTEL_EXPORTER_OTLP_HEADERS,
  };
}

/** Where a process without an HTTP API of its own serves GET /metrics (`off` disables it). */
export function metricsVariables(fallback: string) {
  return { METRICS_ADDR: hostPortOrOff({ default: fallback }) };
}

// ---------------------------------------------------------------------------------------------
// Crash points (test-only; off unless set, and ignored unless the test hooks are switched on)

/** A switch written `1` (on) or `0`; unset is off. */
function switch01(expected: string): Variable<boolean> {
  return { ...oneOf(['0', '1'], { default: '0', expected }), convert: (raw) => raw === '1' };
}

/** `1` switches the test hooks on; `0` or unset leaves them off (a deployment never sets it). */
const TEST_HOOKS_SWITCH = switch01('1 to honour CRASH_AT (test-only), 0 or unset otherwise');

export const CRASH_VARIABLES = {
  CRASH_AT: list({ expected: 'crash point names separated by commas (test-only; needs SAGAS_TEST_HOOKS=1)' }),
  CRASH_AFTER: integer({ min: 0, default: 0, expected: 'an integer >= 0 (times a point passes first)' }),
  SAGAS_TEST_HOOKS: TEST_HOOKS_SWITCH,
};

export interface CrashSettings {
  points: string[];
  after: number;
  /** SAGAS_TEST_HOOKS=1: without it `points` are ignored (with a warning at start). */
  hooks: boolean;
}

export function crashFrom(v: Values<typeof CRASH_VARIABLES>): CrashSettings {
  return { points: v.CRASH_AT, after: v.CRASH_AFTER, hooks: v.SAGAS_TEST_HOOKS };
}

// ---------------------------------------------------------------------------------------------
// The fault switchboard (rehearsing failures; off unless switched on)

/** `1` switches the fault switchboard on in this process (a warning at start says so); `0` or unset: nothing installed. */
export const FAULTS_SWITCH = switch01(
  '1 to switch the fault switchboard on (rehearsing failures), 0 or unset otherwise',
);

// ---------------------------------------------------------------------------------------------
// gRPC security: mutual TLS between the gateway and the participants, plaintext only when asked

/** Read with DATA_VARIABLES (the default folder is under DATA_DIR). */
export const GRPC_SECURITY_VARIABLES = {
  TLS_DIR: filePath({
    default: (v) => path.join(v.DATA_DIR as string, 'tls'),
    expected: 'a folder path (default $DATA_DIR/tls; made on first start)',
  }),
  GRPC_INSECURE: switch01(
    '1 for plaintext gRPC between the services (not for a deployment), 0 or unset for mutual TLS',
  ),
};

export function grpcSecurityFrom(v: Values<typeof GRPC_SECURITY_VARIABLES>): GrpcSecurity {
  return v.GRPC_INSECURE ? { kind: 'insecure' } : { kind: 'mtls', dir: v.TLS_DIR };
}

/** The gRPC security alone (a tool dialling a system's participants); a process reads its whole schema instead. */
export function grpcSecurity(env: Env): GrpcSecurity {
  return grpcSecurityFrom(readVariables({ ...DATA_VARIABLES, ...GRPC_SECURITY_VARIABLES }, env));
}

// ---------------------------------------------------------------------------------------------
// What every process has: logging, telemetry and crash points

export function processVariables(service: string) {
  return { ...LOGGING_VARIABLES, ...telemetryVariables(service), ...CRASH_VARIABLES };
}

export interface ProcessSettings {
  logging: LoggingSettings;
  telemetry: TelemetrySettings;
  crash: CrashSettings;
}

export function processFrom(v: Values<ReturnType<typeof processVariables>>): ProcessSettings {
  return { logging: loggingFrom(v), telemetry: telemetryFrom(v), crash: crashFrom(v) };
}
