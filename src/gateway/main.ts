import { createLogger } from '../platform/logger.js';
import { ConfigError } from '../platform/errors.js';
import { notifyReady, onShutdown } from '../platform/lifecycle.js';
import { SagaEngine } from '../saga/engine.js';
import { SqliteSagaStore } from '../saga/sqlite-store.js';
import { gatewayConfig } from './config.js';
import { buildGateway, type StoredResponse } from './http.js';
import { ResilientKv, observeFallback } from '../platform/fast-kv.js';
import { initTelemetry } from '../platform/telemetry.js';
import { databaseId } from '../platform/db.js';
import { sagaMetrics } from '../saga/metrics.js';
import { createIdempotencyGuard } from '../platform/idempotency.js';
import { connectParticipants } from './participants.js';
import { placeOrderSaga } from './place-order.js';

export async function main(): Promise<void> {
  const logger = createLogger('gateway');
  let config;
  try {
    config = gatewayConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      logger.fatal({ variable: err.details?.variable }, err.message);
      process.exit(1);
    }
    throw err;
  }
  const telemetry = initTelemetry('gateway', logger);
  const store = new SqliteSagaStore({ file: config.sagaDbFile, synchronous: config.sagaLogSync });
  const participants = connectParticipants(config.participants);
  const engine = new SagaEngine({
    store,
    logger,
    leaseMs: config.leaseMs,
    policies: config.policies,
    observer: sagaMetrics(telemetry.meter, store),
  });
  engine.register(placeOrderSaga(participants));
  const kv = new ResilientKv({ url: config.redis.url, logger });
  observeFallback(telemetry.meter, kv);
  const replays = telemetry.meter.createCounter('idempotency_replays', { description: 'Requests answered from an earlier one with the same idempotency key' });
  const idempotency = createIdempotencyGuard<StoredResponse>(kv, {
    namespace: `${config.redis.keyPrefix}:gateway:${databaseId(store.db)}:idem:`,
    ttlMs: config.idempotencyTtlMs,
    lockMs: config.idempotencyLockMs,
  });
  const app = await buildGateway({
    engine,
    store,
    participants,
    logger,
    idempotency,
    meter: telemetry.meter,
    serveMetrics: telemetry.serveMetrics,
    onReplay: () => replays.add(1, { endpoint: 'POST /orders' }),
    fastPathMode: () => kv.mode(),
    maxWaitSeconds: config.maxWaitSeconds,
  });
  const url = await app.listen({ host: config.http.host, port: config.http.port });
  engine.startBackground(config.recoveryIntervalMs);
  logger.info({ url, saga_db: config.sagaDbFile, participants: config.participants }, 'gateway listening');
  notifyReady({ service: 'gateway', address: url.replace('0.0.0.0', '127.0.0.1') });

  onShutdown(logger, async () => {
    await app.close(); // stops accepting; in-flight requests finish
    await engine.shutdown(config.shutdownGraceMs);
    participants.close();
    await kv.close();
    store.close();
    await telemetry.shutdown();
  }, config.shutdownGraceMs + 5_000);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
