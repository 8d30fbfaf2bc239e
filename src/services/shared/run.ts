import path from 'node:path';
import type { ServiceDefinition, UntypedServiceImplementation } from '@grpc/grpc-js';
import { ResilientKv } from '../../platform/fast-kv.js';
import { createIdempotencyGuard, type IdempotencyGuard } from '../../platform/idempotency.js';
import { addr, dataDir, duration, redisSettings, syncLevel, type AddrVar, type Env, type SyncLevel } from '../../platform/config.js';
import type { Db } from '../../platform/db.js';
import { ConfigError } from '../../platform/errors.js';
import { startGrpcServer } from '../../platform/grpc.js';
import { notifyReady, onShutdown } from '../../platform/lifecycle.js';
import { createLogger, type Logger } from '../../platform/logger.js';

/**
 * Runs a service's `main`, turning a startup failure into a clear message and exit code 1.
 * A configuration mistake is the operator's to fix, so it gets one plain line, not a stack trace.
 */
export function runMain(service: string, main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`${service}: invalid configuration: ${err.message}\n`);
    } else {
      process.stderr.write(`${service}: failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    }
    process.exit(1);
  });
}

export interface ParticipantSpec {
  service: 'order' | 'inventory' | 'payment';
  addrVar: AddrVar;
  openDb(file: string, synchronous: SyncLevel): Db;
  definition: ServiceDefinition;
  /** Called with everything opened; returns the implementation and fields for the 'listening' line. */
  build(deps: { db: Db; logger: Logger; fastPath: IdempotencyGuard<unknown> }): { implementation: UntypedServiceImplementation; logFields?: Record<string, unknown> };
}

/**
 * The life of a participant process: its database under DATA_DIR, its gRPC server, the ready
 * message to a supervisor, and a graceful stop (drain calls, then close the database) on SIGTERM.
 * Configuration the spec reads in `build` is read before the server listens.
 */
export async function serveParticipant(spec: ParticipantSpec, env: Env): Promise<void> {
  const logger = createLogger(spec.service, env);
  const listen = addr(env, spec.addrVar);
  const file = path.join(dataDir(env), `${spec.service}.db`);
  const synchronous = syncLevel(env, 'SERVICE_DB_SYNC');
  const redis = redisSettings(env);
  const ttlMs = duration(env, 'IDEMPOTENCY_TTL', 24 * 3_600_000);
  const db = spec.openDb(file, synchronous);
  const kv = new ResilientKv({ url: redis.url, logger });
  const fastPath = createIdempotencyGuard<unknown>(kv, { namespace: `${redis.keyPrefix}:${spec.service}:inbox:`, ttlMs, lockMs: 10_000 });
  try {
    const { implementation, logFields } = spec.build({ db, logger, fastPath });
    const server = await startGrpcServer(listen, [{ definition: spec.definition, implementation }]);
    logger.info({ address: server.address, db: file, synchronous, ...logFields }, 'listening');
    notifyReady({ service: spec.service, address: server.address });
    onShutdown(logger, async () => {
      await server.shutdown();
      await kv.close();
      db.close();
    });
  } catch (err) {
    await kv.close();
    db.close();
    throw err;
  }
}
