import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { SqliteSagaLog } from '../../src/saga/stores/sqlite.js';
import { sagaLogConformance } from '../helpers/saga-log-conformance.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sagas-log-sqlite-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

let n = 0;
sagaLogConformance('SQLite', {
  sharedNotifications: false,
  async fresh() {
    const dir = path.join(root, String(++n));
    const file = path.join(dir, 'saga.db');
    return {
      config: { kind: 'sqlite', file, synchronous: 'normal' },
      open: async () => new SqliteSagaLog({ file }),
      destroy: async () => fs.rmSync(dir, { recursive: true, force: true }),
    };
  },
});
