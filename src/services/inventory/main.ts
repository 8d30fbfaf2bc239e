import { InventoryServiceService } from '../../gen/inventory/v1/inventory.js';
import { runMain, serveParticipant } from '../shared/run.js';
import { loadCatalog } from './catalog.js';
import { inventoryConfig } from './config.js';
import { createInventoryService } from './server.js';
import { openInventoryDatabase, sqliteInventoryStore } from './store.js';

/** Entry point of the inventory service process. Importing this file starts it; tests use server.ts. */
export async function main(env = process.env): Promise<void> {
  // The only read of the environment: a bad variable fails here, before anything is opened.
  const config = inventoryConfig(env);
  // Read before anything is opened, so a bad catalog fails fast and leaves nothing behind.
  const catalog = loadCatalog(config.catalogFile);
  await serveParticipant(
    {
      service: 'inventory',
      // Opening the store seeds the catalog's stock on a database never seeded, and sets its prices.
      openStore: async (storage, logger) => {
        if (storage.kind === 'sqlite')
          return sqliteInventoryStore(openInventoryDatabase(storage.file, storage.synchronous), {
            catalog,
            where: storage.file,
          });
        const { openPostgresInventoryStore } = await import('./postgres-store.js');
        return openPostgresInventoryStore({ url: storage.url, poolSize: storage.poolSize, logger, catalog });
      },
      definition: InventoryServiceService,
      build: ({ store, logger, fastPath }) => ({
        implementation: createInventoryService({ store, logger, fastPath }),
      }),
    },
    config,
  );
}

runMain('inventory', main);
