import fs from 'node:fs';
import { str, type Env } from '../../platform/config.js';
import { ConfigError } from '../../platform/errors.js';
import { DEFAULT_CATALOG, parseCatalog, type Catalog } from './domain.js';

/**
 * The initial stock: the JSON file named by INVENTORY_CATALOG, or the original's demo stock.
 * Only read at startup; it matters only on the first open of a database (see seedOnce).
 */
export function readCatalog(env: Env): Catalog {
  const file = str(env, 'INVENTORY_CATALOG', '');
  if (file === '') return DEFAULT_CATALOG;
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError('INVENTORY_CATALOG', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ConfigError('INVENTORY_CATALOG', `${file} is not valid JSON: ${(err as Error).message}`);
  }
  return parseCatalog(value, file);
}
