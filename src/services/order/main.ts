import { OrderServiceService } from '../../gen/order/v1/order.js';
import { runMain, serveParticipant } from '../shared/run.js';
import { orderConfig } from './config.js';
import { createOrderService } from './server.js';
import { openOrderDatabase, sqliteOrderStore } from './store.js';

/** Entry point of the order service process. Importing this file starts it; tests use server.ts. */
export async function main(env = process.env): Promise<void> {
  // The only read of the environment: a bad variable fails here, before anything is opened.
  const config = orderConfig(env);
  await serveParticipant(
    {
      service: 'order',
      openStore: async (storage, logger) => {
        if (storage.kind === 'sqlite')
          return sqliteOrderStore(openOrderDatabase(storage.file, storage.synchronous), { where: storage.file });
        const { openPostgresOrderStore } = await import('./postgres-store.js');
        return openPostgresOrderStore({ url: storage.url, poolSize: storage.poolSize, logger });
      },
      definition: OrderServiceService,
      build: ({ store, logger, fastPath }) => ({ implementation: createOrderService({ store, logger, fastPath }) }),
    },
    config,
  );
}

runMain('order', main);
