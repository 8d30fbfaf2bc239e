import path from 'node:path';
import { addr, dataDir, syncLevel } from '../../platform/config.js';
import { startGrpcServer } from '../../platform/grpc.js';
import { notifyReady, onShutdown } from '../../platform/lifecycle.js';
import { createLogger } from '../../platform/logger.js';
import { InventoryServiceService } from '../../gen/inventory/v1/inventory.js';
import { runMain } from '../shared/run.js';
import { readCatalog } from './catalog.js';
import { createInventoryService } from './server.js';
import { openInventoryDatabase } from './store.js';

/** Entry point of the inventory service process. Importing this file starts it; tests use server.ts. */
export async function main(env = process.env): Promise<void> {
  // All configuration is read before anything is opened, so a mistake fails fast and leaves nothing behind.
  const logger = createLogger('inventory', env);
  const listen = addr(env, 'INVENTORY_SERVICE_ADDR');
  const file = path.join(dataDir(env), 'inventory.db');
  const synchronous = syncLevel(env, 'SERVICE_DB_SYNC');
  const catalog = readCatalog(env);

  const db = openInventoryDatabase(file, synchronous);
  try {
    const server = await startGrpcServer(listen, [
      { definition: InventoryServiceService, implementation: createInventoryService({ db, logger, catalog }) },
    ]);
    logger.info({ address: server.address, db: file, synchronous }, 'listening');
    notifyReady({ service: 'inventory', address: server.address });
    onShutdown(logger, async () => {
      await server.shutdown();
      db.close();
    });
  } catch (err) {
    db.close();
    throw err;
  }
}

runMain('inventory', main);
