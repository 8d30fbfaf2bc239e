import { OrderServiceService } from '../../gen/order/v1/order.js';
import { runMain, serveParticipant } from '../shared/run.js';
import { createOrderService } from './server.js';
import { openOrderDatabase } from './store.js';

/** Entry point of the order service process. Importing this file starts it; tests use server.ts. */
export async function main(env = process.env): Promise<void> {
  await serveParticipant(
    {
      service: 'order',
      addrVar: 'ORDER_SERVICE_ADDR',
      openDb: openOrderDatabase,
      definition: OrderServiceService,
      build: ({ db, logger, fastPath }) => ({ implementation: createOrderService({ db, logger, fastPath }) }),
    },
    env,
  );
}

runMain('order', main);
