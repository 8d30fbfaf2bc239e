import { int } from '../../platform/config.js';
import { PaymentServiceService } from '../../gen/payment/v1/payment.js';
import { runMain, serveParticipant } from '../shared/run.js';
import { DEFAULT_CHARGE_LIMIT_CENTS, MAX_AMOUNT_CENTS } from './domain.js';
import { createPaymentService } from './server.js';
import { openPaymentDatabase } from './store.js';

/** Entry point of the payment service process. Importing this file starts it; tests use server.ts. */
export async function main(env = process.env): Promise<void> {
  // Read before anything is opened, so a bad limit fails fast and leaves nothing behind.
  const chargeLimitCents = int(env, 'PAYMENT_CHARGE_LIMIT_CENTS', DEFAULT_CHARGE_LIMIT_CENTS, 0, MAX_AMOUNT_CENTS);
  await serveParticipant(
    {
      service: 'payment',
      addrVar: 'PAYMENT_SERVICE_ADDR',
      openDb: openPaymentDatabase,
      definition: PaymentServiceService,
      build: ({ db, logger, fastPath }) => ({
        implementation: createPaymentService({ db, logger, chargeLimitCents, fastPath }),
        logFields: { charge_limit_cents: chargeLimitCents },
      }),
    },
    env,
  );
}

runMain('payment', main);
