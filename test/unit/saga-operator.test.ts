import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { SqliteSagaLog } from '../../src/saga/stores/sqlite.js';
import { operatorScenarios } from './saga-operator-scenarios.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'saga-operator-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

// Two engines on one SQLite log share its instance (one writing process per SQLite log).
operatorScenarios('SQLite', {
  async fresh() {
    const dir = fs.mkdtempSync(path.join(root, 'store-'));
    const log = new SqliteSagaLog({ file: path.join(dir, 'saga.db') });
    return { log, another: async () => log, close: () => log.close() };
  },
});
