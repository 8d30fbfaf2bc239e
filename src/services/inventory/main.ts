import { InventoryServiceService } from '../../gen/inventory/v1/inventory.js';
import { runMain, serveParticipant } from '../shared/run.js';
import { readCatalog } from './catalog.js';
import { createInventoryService } from './server.js';
import { openInventoryDatabase } from './store.js';

/** Entry point of the inventory service process. Importing this file starts it; tests use server.ts. */
export async function main(env = process.env): Promise<void> {
  // Read before anything is opened, so a bad catalog fails fast and leaves nothing behind.
  const catalog = readCatalog(env);
  await serveParticipant(
    {
      service: 'inventory',
      addrVar: 'INVENTORY_SERVICE_ADDR',
      openDb: openInventoryDatabase,
      definition: InventoryServiceService,
      build: ({ db, logger, fastPath }) => ({ implementation: createInventoryService({ db, logger, catalog, fastPath }) }),
    },
    env,
  );
}

runMain('inventory', main);
