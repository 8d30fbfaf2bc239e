import path from 'node:path';
import { addr, dataDir, int, syncLevel } from '../../platform/config.js';
import { startGrpcServer } from '../../platform/grpc.js';
import { notifyReady, onShutdown } from '../../platform/lifecycle.js';
import { createLogger } from '../../platform/logger.js';
import { PaymentServiceService } from '../../gen/payment/v1/payment.js';
import { runMain } from '../shared/run.js';
import { DEFAULT_CHARGE_LIMIT_CENTS, MAX_AMOUNT_CENTS } from './domain.js';
import { createPaymentService } from './server.js';
import { openPaymentDatabase } from './store.js';

/** Entry point of the payment service process. Importing this file starts it; tests use server.ts. */
export async function main(env = process.env): Promise<void> {
  // All configuration is read before anything is opened, so a mistake fails fast and leaves nothing behind.
  const logger = createLogger('payment', env);
  const listen = addr(env, 'PAYMENT_SERVICE_ADDR');
  const file = path.join(dataDir(env), 'payment.db');
  const synchronous = syncLevel(env, 'SERVICE_DB_SYNC');
  const chargeLimitCents = int(env, 'PAYMENT_CHARGE_LIMIT_CENTS', DEFAULT_CHARGE_LIMIT_CENTS, 0, MAX_AMOUNT_CENTS);

  const db = openPaymentDatabase(file, synchronous);
  try {
    const server = await startGrpcServer(listen, [
      { definition: PaymentServiceService, implementation: createPaymentService({ db, logger, chargeLimitCents }) },
    ]);
    logger.info({ address: server.address, db: file, synchronous, charge_limit_cents: chargeLimitCents }, 'listening');
    notifyReady({ service: 'payment', address: server.address });
    onShutdown(logger, async () => {
      await server.shutdown();
      db.close();
    });
  } catch (err) {
    db.close();
    throw err;
  }
}

runMain('payment', main);
