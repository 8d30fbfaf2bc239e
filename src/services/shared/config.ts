import path from 'node:path';
import {
  DATA_VARIABLES,
  FAULTS_SWITCH,
  grpcSecurityFrom,
  GRPC_SECURITY_VARIABLES,
  metricsVariables,
  processFrom,
  processVariables,
  redisFrom,
  REDIS_VARIABLES,
  syncVariable,
  type HostPort,
  type ProcessSettings,
  type RedisSettings,
  type SyncLevel,
} from '../../platform/config/config.js';
import {
  duration,
  integer,
  oneOf,
  redactPassword,
  text,
  type Values,
  type Variable,
} from '../../platform/config/config-schema.js';
import type { GrpcSecurity } from '../../platform/grpc/tls.js';

export type ParticipantName = 'order' | 'inventory' | 'payment';

/** Default Prometheus ports of the participants (`METRICS_ADDR` overrides). */
export const METRICS_PORTS = { order: 9464, inventory: 9465, payment: 9466 } as const;

/**
 * What every participant reads besides its own address (each service's config.ts puts its
 * address variable first and adds its own variables).
 */
export function participantVariables(service: ParticipantName) {
  return {
    ...DATA_VARIABLES,
    ...GRPC_SECURITY_VARIABLES,
    SERVICE_DB_SYNC: syncVariable(),
    // Connections of one replica to its PostgreSQL database (with <SERVICE>_DB_URL): as many writes at once.
    SERVICE_DB_POOL_SIZE: integer({ min: 1, max: 200, default: 10 }),
    ...REDIS_VARIABLES,
    // off: the inbox in the service's own database is the only check, in the write's transaction
    // (one process owns a SQLite file, so there is nothing for a lock to serialise); redis: a
    // SET NX lock and a cached answer in Redis in front of it, for replicas sharing one database.
    INBOX_FAST_PATH: oneOf(['off', 'redis'] as const, { default: 'off' }),
    // Participants are retried within minutes; their durable inbox answers anything older.
    INBOX_FAST_PATH_TTL: duration({ default: '10m' }),
    ...metricsVariables(`127.0.0.1:${METRICS_PORTS[service]}`),
    // 1: honour the gateway's `x-fault` directives (docs/faults-and-chaos.md); 0 or unset: ignore them.
    FAULTS_ENABLED: FAULTS_SWITCH,
    ...processVariables(service),
  };
}

/**
 * `ORDER_DB_URL`, `PAYMENT_DB_URL`, `INVENTORY_DB_URL`: a postgres:// URL puts the service's state
 * in that PostgreSQL database (replicas of the service may share it); unset, its SQLite file
 * under DATA_DIR. Each service's config.ts declares its own, after its address.
 */
export function databaseUrlVariable(service: ParticipantName): Variable<string | undefined> {
  return text({
    format: 'postgres-url',
    expected: `postgres://user[:password]@host[:port]/database (unset: SQLite, $DATA_DIR/${service}.db)`,
    redact: redactPassword,
  });
}

/** Where a participant keeps its state: its SQLite file (the default), or a PostgreSQL database. */
export type ParticipantStorage =
  { kind: 'sqlite'; file: string; synchronous: SyncLevel } | { kind: 'postgres'; url: string; poolSize: number };

export interface ParticipantConfig extends ProcessSettings {
  service: ParticipantName;
  listen: HostPort;
  grpc: GrpcSecurity;
  dataDir: string;
  synchronous: SyncLevel;
  storage: ParticipantStorage;
  redis: RedisSettings;
  /** INBOX_FAST_PATH: Redis in front of the inbox, or not. */
  inboxFastPath: 'off' | 'redis';
  inboxFastPathTtlMs: number;
  metrics: HostPort | 'off';
  /** FAULTS_ENABLED: honour `x-fault` metadata. */
  faults: boolean;
}

export function participantFrom(
  service: ParticipantName,
  listen: HostPort,
  v: Values<ReturnType<typeof participantVariables>>,
  /** The service's <SERVICE>_DB_URL. */
  databaseUrl: string | undefined,
): ParticipantConfig {
  return {
    service,
    listen,
    grpc: grpcSecurityFrom(v),
    dataDir: v.DATA_DIR,
    synchronous: v.SERVICE_DB_SYNC,
    storage:
      databaseUrl === undefined
        ? { kind: 'sqlite', file: path.join(v.DATA_DIR, `${service}.db`), synchronous: v.SERVICE_DB_SYNC }
        : { kind: 'postgres', url: databaseUrl, poolSize: v.SERVICE_DB_POOL_SIZE },
    redis: redisFrom(v),
    inboxFastPath: v.INBOX_FAST_PATH,
    inboxFastPathTtlMs: v.INBOX_FAST_PATH_TTL,
    metrics: v.METRICS_ADDR,
    faults: v.FAULTS_ENABLED,
    ...processFrom(v),
  };
}
