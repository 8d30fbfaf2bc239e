import { createLogger } from '../platform/logger.js';
import { ConfigError } from '../platform/errors.js';
import { notifyReady, onShutdown } from '../platform/lifecycle.js';
import { SagaEngine } from '../saga/engine.js';
import { SqliteSagaStore } from '../saga/sqlite-store.js';
import { gatewayConfig } from './config.js';
import { buildGateway, type StoredResponse } from './http.js';
import { ResilientKv } from '../platform/fast-kv.js';
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
  const store = new SqliteSagaStore({ file: config.sagaDbFile, synchronous: config.sagaLogSync });
  const participants = connectParticipants(config.participants);
  const engine = new SagaEngine({ store, logger, leaseMs: config.leaseMs, policies: config.policies });
  engine.register(placeOrderSaga(participants));
  const kv = new ResilientKv({ url: config.redis.url, logger });
  const idempotency = createIdempotencyGuard<StoredResponse>(kv, {
    namespace: `${config.redis.keyPrefix}:gateway:idem:`,
    ttlMs: config.idempotencyTtlMs,
    lockMs: config.idempotencyLockMs,
  });
  const app = await buildGateway({
    engine,
    store,
    participants,
    logger,
    idempotency,
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
  }, config.shutdownGraceMs + 5_000);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
