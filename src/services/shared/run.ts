import path from 'node:path';
import type { ServiceDefinition, UntypedServiceImplementation } from '@grpc/grpc-js';
import { ResilientKv, observeFallback } from '../../platform/storage/fast-kv.js';
import { initTelemetry, startMetricsServer } from '../../platform/telemetry/telemetry.js';
import { createIdempotencyGuard, observeUntrusted, type IdempotencyGuard } from '../../platform/storage/idempotency.js';
import type { SyncLevel } from '../../platform/config/config.js';
import { armCrashPoints } from '../../platform/process/crash.js';
import { databaseId, type Db } from '../../platform/storage/db.js';
import { ConfigError } from '../../platform/errors.js';
import { serverCredentials, startGrpcServer } from '../../platform/grpc/grpc.js';
import { prepareGrpcSecurity, TlsError } from '../../platform/grpc/tls.js';
import { notifyReady, onShutdown } from '../../platform/process/lifecycle.js';
import { createLogger, type Logger } from '../../platform/telemetry/logger.js';
import { METRICS_PORTS, type ParticipantConfig } from './config.js';
import { aroundWithFaults } from '../../faults/participant.js';

export { METRICS_PORTS };

/**
 * Runs a service's `main`, turning a startup failure into a clear message and exit code 1.
 * A configuration mistake is the operator's to fix, so it gets one plain line naming every bad
 * variable, not a stack trace; `main` reads its configuration before it opens anything.
 */
export function runMain(service: string, main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`${service}: invalid configuration: ${err.message}\n`);
    } else if (err instanceof TlsError) {
      process.stderr.write(`${service}: cannot start mutual TLS (${err.code}): ${err.message}\n`);
    } else {
      process.stderr.write(
        `${service}: failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
    }
    process.exit(1);
  });
}

export interface ParticipantSpec {
  service: 'order' | 'inventory' | 'payment';
  openDb(file: string, synchronous: SyncLevel): Db;
  definition: ServiceDefinition;
  /** Called with everything opened; returns the implementation and fields for the 'listening' line. */
  build(deps: { db: Db; logger: Logger; fastPath: IdempotencyGuard<unknown> | undefined }): {
    implementation: UntypedServiceImplementation;
    logFields?: Record<string, unknown>;
  };
}

/**
 * The life of a participant process: its database under DATA_DIR, its gRPC server, the ready
 * message to a supervisor, and a graceful stop (drain calls, then close the database) on SIGTERM.
 * `config` is the service's whole configuration, already read and valid (src/services/<name>/config.ts).
 */
export async function serveParticipant(spec: ParticipantSpec, config: ParticipantConfig): Promise<void> {
  const logger = createLogger(spec.service, config.logging);
  armCrashPoints(config.crash, logger);
  const telemetry = initTelemetry(logger, config.telemetry);
  const { listen, synchronous, redis } = config;
  const file = path.join(config.dataDir, `${spec.service}.db`);
  const ttlMs = config.inboxFastPathTtlMs;
  const db = spec.openDb(file, synchronous);
  // Redis only when the inbox's fast path asks for it (INBOX_FAST_PATH=redis).
  const kv = config.inboxFastPath === 'redis' ? new ResilientKv({ url: redis.url, logger }) : undefined;
  if (kv) observeFallback(telemetry.meter, kv);
  const fastPath = kv
    ? createIdempotencyGuard<unknown>(kv, {
        namespace: `${redis.keyPrefix}:${spec.service}:${databaseId(db)}:inbox:`,
        ttlMs,
        lockMs: 10_000,
        onUntrusted: observeUntrusted(telemetry.meter, logger),
      })
    : undefined;
  try {
    const { implementation, logFields } = spec.build({ db, logger, fastPath });
    // Its own identity only (TLS_DIR/<service>/), read and checked before it listens.
    await prepareGrpcSecurity(config.grpc, logger, spec.service);
    const faults = config.faults ? { service: spec.service, logger } : undefined;
    if (faults && config.grpc.kind === 'insecure') {
      // Without mutual TLS no caller can prove it is the gateway, so no directive is obeyed.
      logger.warn(
        { FAULTS_ENABLED: 1, GRPC_INSECURE: 1 },
        'fault switchboard on, but x-fault directives are ignored: with GRPC_INSECURE=1 no caller is authenticated as the gateway',
      );
    } else if (faults) {
      logger.warn(
        { FAULTS_ENABLED: 1 },
        "fault switchboard on: this service honours the gateway's x-fault directives (latency, error, uncertain, after_effect, crash)",
      );
    }
    const server = await startGrpcServer(
      listen,
      [{ definition: spec.definition, implementation }],
      serverCredentials(config.grpc, spec.service),
      { around: faults && aroundWithFaults(faults), logger },
    );
    let stopping = false;
    const metricsServer = await startMetricsServer(telemetry, config.metrics, () => !stopping);
    logger.info(
      { address: server.address, metrics: metricsServer?.address, db: file, synchronous, ...logFields },
      'listening',
    );
    // The stop handlers first: a supervisor may send SIGTERM the moment it reads `ready`.
    onShutdown(logger, async () => {
      stopping = true;
      await server.shutdown();
      await metricsServer?.close();
      await kv?.close();
      db.close();
      await telemetry.shutdown();
    });
    notifyReady({
      service: spec.service,
      address: server.address,
      ...(metricsServer ? { metrics: metricsServer.address } : {}),
    });
  } catch (err) {
    await kv?.close();
    db.close();
    throw err;
  }
}
