import { OrderServiceService } from '../../gen/order/v1/order.js';
import { runMain, serveParticipant } from '../shared/run.js';
import { orderConfig } from './config.js';
import { createOrderService } from './server.js';
import { openOrderDatabase } from './store.js';

/** Entry point of the order service process. Importing this file starts it; tests use server.ts. */
export async function main(env = process.env): Promise<void> {
  // The only read of the environment: a bad variable fails here, before anything is opened.
  const config = orderConfig(env);
  await serveParticipant(
    {
      service: 'order',
      openDb: openOrderDatabase,
      definition: OrderServiceService,
      build: ({ db, logger, fastPath }) => ({ implementation: createOrderService({ db, logger, fastPath }) }),
    },
    config,
  );
}

runMain('order', main);
