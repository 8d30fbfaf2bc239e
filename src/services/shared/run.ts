import type { ServiceDefinition, UntypedServiceImplementation } from '@grpc/grpc-js';
import { ResilientKv, observeFallback } from '../../platform/storage/fast-kv.js';
import { initTelemetry, startMetricsServer } from '../../platform/telemetry/telemetry.js';
import { createIdempotencyGuard, observeUntrusted, type IdempotencyGuard } from '../../platform/storage/idempotency.js';
import { armCrashPoints } from '../../platform/process/crash.js';
import { ConfigError } from '../../platform/errors.js';
import { StoreOpenError, StoreUnavailableError } from '../../platform/storage/store-errors.js';
import { serverCredentials, startGrpcServer } from '../../platform/grpc/grpc.js';
import { prepareGrpcSecurity, TlsError } from '../../platform/grpc/tls.js';
import { notifyReady, onShutdown } from '../../platform/process/lifecycle.js';
import { createLogger, type Logger } from '../../platform/telemetry/logger.js';
import { METRICS_PORTS, type ParticipantConfig, type ParticipantStorage } from './config.js';
import type { StoreHandle } from './store-port.js';
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
    } else if (err instanceof StoreUnavailableError || err instanceof StoreOpenError) {
      // The message names the database by its URL without the password.
      process.stderr.write(`${service}: ${err.message}\n`);
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

export interface ParticipantSpec<S extends StoreHandle> {
  service: 'order' | 'inventory' | 'payment';
  /**
   * Opens the service's store where its configuration says: its SQLite file, or PostgreSQL (its
   * module, and `pg`, loaded only then).
   */
  openStore(storage: ParticipantStorage, logger: Logger): Promise<S>;
  definition: ServiceDefinition;
  /** Called with everything opened; returns the implementation and fields for the 'listening' line. */
  build(deps: { store: S; logger: Logger; fastPath: IdempotencyGuard<unknown> | undefined }): {
    implementation: UntypedServiceImplementation;
    logFields?: Record<string, unknown>;
  };
}

/**
 * The life of a participant process: its store (its SQLite file under DATA_DIR, or PostgreSQL at
 * <SERVICE>_DB_URL), its gRPC server, the ready message to a supervisor, /readyz with the
 * database's check, and a graceful stop (drain calls, then close the store) on SIGTERM. `config`
 * is the service's whole configuration, already read and valid (src/services/<name>/config.ts).
 */
export async function serveParticipant<S extends StoreHandle>(
  spec: ParticipantSpec<S>,
  config: ParticipantConfig,
): Promise<void> {
  const logger = createLogger(spec.service, config.logging);
  armCrashPoints(config.crash, logger);
  const telemetry = initTelemetry(logger, config.telemetry);
  const { listen, synchronous, redis } = config;
  const ttlMs = config.inboxFastPathTtlMs;
  const store = await spec.openStore(config.storage, logger);
  // Redis only when the inbox's fast path asks for it (INBOX_FAST_PATH=redis).
  const kv = config.inboxFastPath === 'redis' ? new ResilientKv({ url: redis.url, logger }) : undefined;
  try {
    if (kv) observeFallback(telemetry.meter, kv);
    const fastPath = kv
      ? createIdempotencyGuard<unknown>(kv, {
          namespace: `${redis.keyPrefix}:${spec.service}:${await store.databaseId()}:inbox:`,
          ttlMs,
          lockMs: 10_000,
          onUntrusted: observeUntrusted(telemetry.meter, logger),
        })
      : undefined;
    const { implementation, logFields } = spec.build({ store, logger, fastPath });
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
    // Ready while it serves and its database answers (a PostgreSQL server may be lost while it runs).
    const ready = async () => {
      const database = !stopping && (await store.check());
      return {
        ready: !stopping && database,
        checks: { database: database ? ('ok' as const) : ('unavailable' as const) },
      };
    };
    const metricsServer = await startMetricsServer(telemetry, config.metrics, ready);
    logger.info(
      {
        address: server.address,
        metrics: metricsServer?.address,
        db: store.where,
        store: store.kind,
        ...(store.kind === 'sqlite' ? { synchronous } : {}),
        ...logFields,
      },
      'listening',
    );
    // The stop handlers first: a supervisor may send SIGTERM the moment it reads `ready`.
    onShutdown(logger, async () => {
      stopping = true;
      await server.shutdown();
      await metricsServer?.close();
      await kv?.close();
      await store.close();
      await telemetry.shutdown();
    });
    notifyReady({
      service: spec.service,
      address: server.address,
      ...(metricsServer ? { metrics: metricsServer.address } : {}),
    });
  } catch (err) {
    await kv?.close();
    await store.close();
    throw err;
  }
}
