import { ADDRESS_VARIABLES, type Env } from '../../platform/config/config.js';
import { filePath, readVariables } from '../../platform/config/config-schema.js';
import { CATALOG_FORM } from './domain.js';
import {
  databaseUrlVariable,
  participantFrom,
  participantVariables,
  type ParticipantConfig,
} from '../shared/config.js';

/** Every variable the inventory service reads: `sagas config inventory` lists them in this order. */
export const INVENTORY_VARIABLES = {
  INVENTORY_SERVICE_ADDR: ADDRESS_VARIABLES.INVENTORY_SERVICE_ADDR,
  INVENTORY_DB_URL: databaseUrlVariable('inventory'),
  ...participantVariables('inventory'),
  // Unset: the original's demo stock. The file's content is checked when it is read, at start.
  INVENTORY_CATALOG: filePath({ expected: `a path to a JSON file ${CATALOG_FORM}` }),
};

export interface InventoryConfig extends ParticipantConfig {
  catalogFile: string | undefined;
}

/** The inventory service's settings, read once; a ConfigError names every bad variable. */
export function inventoryConfig(env: Env): InventoryConfig {
  const v = readVariables(INVENTORY_VARIABLES, env);
  return {
    ...participantFrom('inventory', v.INVENTORY_SERVICE_ADDR, v, v.INVENTORY_DB_URL),
    catalogFile: v.INVENTORY_CATALOG,
  };
}
