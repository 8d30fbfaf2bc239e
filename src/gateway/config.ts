import { addr, duration, formatAddr, int, redisSettings, sagaLogSettings, type Env, type HostPort, type SagaLogSettings } from '../platform/config.js';
import { DEFAULT_POLICIES, type EnginePolicies } from '../saga/definition.js';
import type { ParticipantName } from './participants.js';

export interface GatewayConfig {
  http: HostPort;
  participants: Record<ParticipantName, string>;
  sagaLog: SagaLogSettings;
  leaseMs: number;
  recoveryIntervalMs: number;
  policies: EnginePolicies;
  maxWaitSeconds: number;
  shutdownGraceMs: number;
  redis: { url: string; keyPrefix: string };
  idempotencyTtlMs: number;
  idempotencyLockMs: number;
}

/** Every setting of the gateway, read once from the environment; a bad value is a ConfigError. */
export function gatewayConfig(env: Env): GatewayConfig {
  const d = DEFAULT_POLICIES;
  const leaseMs = int(env, 'SAGA_LEASE_MS', 15_000, 500);
  return {
    http: addr(env, 'HTTP_ADDR'),
    participants: {
      order: formatAddr(addr(env, 'ORDER_SERVICE_ADDR')),
      inventory: formatAddr(addr(env, 'INVENTORY_SERVICE_ADDR')),
      payment: formatAddr(addr(env, 'PAYMENT_SERVICE_ADDR')),
    },
    sagaLog: sagaLogSettings(env),
    leaseMs,
    // Claims are an indexed read: look often, so a dead gateway's sagas wait little past their lease.
    recoveryIntervalMs: int(env, 'SAGA_RECOVERY_INTERVAL_MS', Math.max(250, Math.floor(leaseMs / 6)), 100),
    policies: {
      action: {
        ...d.action,
        maxAttempts: int(env, 'SAGA_STEP_MAX_ATTEMPTS', d.action.maxAttempts, 1),
        initialBackoffMs: int(env, 'SAGA_RETRY_INITIAL_BACKOFF_MS', d.action.initialBackoffMs, 0),
        maxBackoffMs: int(env, 'SAGA_RETRY_MAX_BACKOFF_MS', d.action.maxBackoffMs, 0),
      },
      compensation: {
        ...d.compensation,
        maxAttempts: int(env, 'SAGA_COMPENSATION_MAX_ATTEMPTS', d.compensation.maxAttempts, 1),
        initialBackoffMs: int(env, 'SAGA_COMPENSATION_INITIAL_BACKOFF_MS', d.compensation.initialBackoffMs, 0),
        maxBackoffMs: int(env, 'SAGA_COMPENSATION_MAX_BACKOFF_MS', d.compensation.maxBackoffMs, 0),
      },
      forward: { ...d.forward, maxBackoffMs: int(env, 'SAGA_FORWARD_MAX_BACKOFF_MS', d.forward.maxBackoffMs, 0) },
      stepTimeoutMs: int(env, 'SAGA_STEP_TIMEOUT_MS', d.stepTimeoutMs, 10),
      sagaDeadlineMs: int(env, 'SAGA_DEADLINE_MS', d.sagaDeadlineMs, 100),
    },
    maxWaitSeconds: int(env, 'PREFER_WAIT_MAX_SECONDS', 60, 0, 3_600),
    shutdownGraceMs: int(env, 'SHUTDOWN_GRACE_MS', 5_000, 0),
    redis: redisSettings(env),
    idempotencyTtlMs: duration(env, 'IDEMPOTENCY_TTL', 24 * 3_600_000),
    idempotencyLockMs: duration(env, 'IDEMPOTENCY_LOCK_TTL', 10_000),
  };
}
