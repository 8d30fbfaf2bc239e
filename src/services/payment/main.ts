import { PaymentServiceService } from '../../gen/payment/v1/payment.js';
import { runMain, serveParticipant } from '../shared/run.js';
import { paymentConfig } from './config.js';
import { createPaymentService } from './server.js';
import { openPaymentDatabase, sqlitePaymentStore } from './store.js';

/** Entry point of the payment service process. Importing this file starts it; tests use server.ts. */
export async function main(env = process.env): Promise<void> {
  // The only read of the environment: a bad variable fails here, before anything is opened.
  const config = paymentConfig(env);
  const { chargeLimitCents } = config;
  await serveParticipant(
    {
      service: 'payment',
      openStore: async (storage, logger) => {
        if (storage.kind === 'sqlite')
          return sqlitePaymentStore(openPaymentDatabase(storage.file, storage.synchronous), {
            chargeLimitCents,
            where: storage.file,
          });
        const { openPostgresPaymentStore } = await import('./postgres-store.js');
        return openPostgresPaymentStore({ url: storage.url, poolSize: storage.poolSize, logger, chargeLimitCents });
      },
      definition: PaymentServiceService,
      build: ({ store, logger, fastPath }) => ({
        implementation: createPaymentService({ store, logger, fastPath }),
        logFields: { charge_limit_cents: chargeLimitCents },
      }),
    },
    config,
  );
}

runMain('payment', main);
