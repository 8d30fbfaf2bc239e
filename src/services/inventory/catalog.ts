import fs from 'node:fs';
import type { Env } from '../../platform/config/config.js';
import { readVariables } from '../../platform/config/config-schema.js';
import { INVENTORY_VARIABLES } from './config.js';
import { ConfigError } from '../../platform/errors.js';
import { DEFAULT_CATALOG, parseCatalog, type Catalog } from './domain.js';

/**
 * The catalog: the JSON file INVENTORY_CATALOG names (see ./config.ts), or the original's demo
 * stock. Only read at startup: its stock matters only on the first open of a database (see
 * seedOnce), its prices on every start (see applyCatalogPrices).
 */
export function loadCatalog(file: string | undefined): Catalog {
  if (file === undefined) return DEFAULT_CATALOG;
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(
      'INVENTORY_CATALOG',
      `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ConfigError('INVENTORY_CATALOG', `${file} is not valid JSON: ${(err as Error).message}`);
  }
  return parseCatalog(value, file);
}

/** loadCatalog of the file an environment names (INVENTORY_CATALOG), read as the service reads it. */
export function readCatalog(env: Env): Catalog {
  return loadCatalog(
    readVariables({ INVENTORY_CATALOG: INVENTORY_VARIABLES.INVENTORY_CATALOG }, env).INVENTORY_CATALOG,
  );
}
