import { PaymentServiceService } from '../../gen/payment/v1/payment.js';
import { runMain, serveParticipant } from '../shared/run.js';
import { paymentConfig } from './config.js';
import { createPaymentService } from './server.js';
import { openPaymentDatabase } from './store.js';

/** Entry point of the payment service process. Importing this file starts it; tests use server.ts. */
export async function main(env = process.env): Promise<void> {
  // The only read of the environment: a bad variable fails here, before anything is opened.
  const config = paymentConfig(env);
  const { chargeLimitCents } = config;
  await serveParticipant(
    {
      service: 'payment',
      openDb: openPaymentDatabase,
      definition: PaymentServiceService,
      build: ({ db, logger, fastPath }) => ({
        implementation: createPaymentService({ db, logger, chargeLimitCents, fastPath }),
        logFields: { charge_limit_cents: chargeLimitCents },
      }),
    },
    config,
  );
}

runMain('payment', main);
