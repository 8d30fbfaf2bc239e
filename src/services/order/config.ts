import { ADDRESS_VARIABLES, type Env } from '../../platform/config/config.js';
import { readVariables } from '../../platform/config/config-schema.js';
import {
  databaseUrlVariable,
  participantFrom,
  participantVariables,
  type ParticipantConfig,
} from '../shared/config.js';

/** Every variable the order service reads: `sagas config order` lists them in this order. */
export const ORDER_VARIABLES = {
  ORDER_SERVICE_ADDR: ADDRESS_VARIABLES.ORDER_SERVICE_ADDR,
  ORDER_DB_URL: databaseUrlVariable('order'),
  ...participantVariables('order'),
};

export type OrderConfig = ParticipantConfig;

/** The order service's settings, read once; a ConfigError names every bad variable. */
export function orderConfig(env: Env): OrderConfig {
  const v = readVariables(ORDER_VARIABLES, env);
  return participantFrom('order', v.ORDER_SERVICE_ADDR, v, v.ORDER_DB_URL);
}
