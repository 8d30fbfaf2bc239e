import type { SagaLog } from '../../src/saga/model.js';
import { PostgresSagaLog } from '../../src/saga/stores/postgres.js';
import { createTempDatabase } from '../helpers/postgres.js';
import { operatorScenarios } from '../unit/saga-operator-scenarios.js';

// The same scenarios on PostgreSQL (the machine's server; a database per test). Two engines get
// two log instances, each with its own pool and LISTEN connection: two gateways sharing the log.
operatorScenarios('PostgreSQL', {
  async fresh() {
    const db = await createTempDatabase('sagas_operator');
    const opened: SagaLog[] = [];
    const open = async () => {
      const log = await PostgresSagaLog.open({ url: db.url, poolSize: 4, synchronousCommit: 'on' });
      opened.push(log);
      return log;
    };
    const log = await open();
    return {
      log,
      another: open,
      close: async () => {
        await Promise.allSettled(opened.map((l) => l.close()));
        await db.drop();
      },
    };
  },
});
