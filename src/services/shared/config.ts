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
import { duration, oneOf, type Values } from '../../platform/config/config-schema.js';
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

export interface ParticipantConfig extends ProcessSettings {
  service: ParticipantName;
  listen: HostPort;
  grpc: GrpcSecurity;
  dataDir: string;
  synchronous: SyncLevel;
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
): ParticipantConfig {
  return {
    service,
    listen,
    grpc: grpcSecurityFrom(v),
    dataDir: v.DATA_DIR,
    synchronous: v.SERVICE_DB_SYNC,
    redis: redisFrom(v),
    inboxFastPath: v.INBOX_FAST_PATH,
    inboxFastPathTtlMs: v.INBOX_FAST_PATH_TTL,
    metrics: v.METRICS_ADDR,
    faults: v.FAULTS_ENABLED,
    ...processFrom(v),
  };
}
