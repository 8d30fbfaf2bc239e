import { ADDRESS_VARIABLES, type Env } from '../../platform/config/config.js';
import { integer, readVariables } from '../../platform/config/config-schema.js';
import {
  databaseUrlVariable,
  participantFrom,
  participantVariables,
  type ParticipantConfig,
} from '../shared/config.js';
import { DEFAULT_CHARGE_LIMIT_CENTS, MAX_AMOUNT_CENTS } from './domain.js';

/** Every variable the payment service reads: `sagas config payment` lists them in this order. */
export const PAYMENT_VARIABLES = {
  PAYMENT_SERVICE_ADDR: ADDRESS_VARIABLES.PAYMENT_SERVICE_ADDR,
  PAYMENT_DB_URL: databaseUrlVariable('payment'),
  ...participantVariables('payment'),
  PAYMENT_CHARGE_LIMIT_CENTS: integer({
    min: 0,
    max: MAX_AMOUNT_CENTS,
    default: DEFAULT_CHARGE_LIMIT_CENTS,
    expected: `an integer from 0 to ${MAX_AMOUNT_CENTS} (cents)`,
  }),
};

export interface PaymentConfig extends ParticipantConfig {
  chargeLimitCents: number;
}

/** The payment service's settings, read once; a ConfigError names every bad variable. */
export function paymentConfig(env: Env): PaymentConfig {
  const v = readVariables(PAYMENT_VARIABLES, env);
  return {
    ...participantFrom('payment', v.PAYMENT_SERVICE_ADDR, v, v.PAYMENT_DB_URL),
    chargeLimitCents: v.PAYMENT_CHARGE_LIMIT_CENTS,
  };
}
