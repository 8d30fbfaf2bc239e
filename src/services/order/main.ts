import path from 'node:path';
import { addr, dataDir, syncLevel } from '../../platform/config.js';
import { startGrpcServer } from '../../platform/grpc.js';
import { notifyReady, onShutdown } from '../../platform/lifecycle.js';
import { createLogger } from '../../platform/logger.js';
import { OrderServiceService } from '../../gen/order/v1/order.js';
import { runMain } from '../shared/run.js';
import { createOrderService } from './server.js';
import { openOrderDatabase } from './store.js';

/** Entry point of the order service process. Importing this file starts it; tests use server.ts. */
export async function main(env = process.env): Promise<void> {
  // All configuration is read before anything is opened, so a mistake fails fast and leaves nothing behind.
  const logger = createLogger('order', env);
  const listen = addr(env, 'ORDER_SERVICE_ADDR');
  const file = path.join(dataDir(env), 'order.db');
  const synchronous = syncLevel(env, 'SERVICE_DB_SYNC');

  const db = openOrderDatabase(file, synchronous);
  try {
    const server = await startGrpcServer(listen, [
      { definition: OrderServiceService, implementation: createOrderService({ db, logger }) },
    ]);
    logger.info({ address: server.address, db: file, synchronous }, 'listening');
    notifyReady({ service: 'order', address: server.address });
    onShutdown(logger, async () => {
      await server.shutdown();
      db.close();
    });
  } catch (err) {
    db.close();
    throw err;
  }
}

runMain('order', main);
