/**
 * A second process on a shared saga log, for the conformance suite's cross-process test:
 *   node --import tsx test/helpers/saga-log-child.ts '<ChildSpec as JSON>'
 * It opens the log, prints {"ready":true}, waits for "go" on stdin, then (all at once) appends to
 * its sagas, starts sagas under shared idempotency keys and claims expired sagas, and prints a
 * ChildReport as the last line of its output.
 */
import readline from 'node:readline';
import { openSagaLog, type SagaLogConfig } from '../../src/saga/stores/open.js';
import type { SagaLog } from '../../src/saga/model.js';
import { appendRounds, claimAll, newSaga, STARTED, type StartOutcome } from './saga-log-work.js';

export interface ChildSpec {
  config: SagaLogConfig;
  owner: string;
  /** Sagas leased to `owner`: each gets `appends` appends, one after the other. */
  appendTo: string[];
  appends: number;
  /** Idempotency keys the parent starts sagas under too. */
  keys: string[];
  claimLimit: number;
}

export interface ChildReport {
  starts: StartOutcome[];
  claimed: string[];
  errors: string[];
}

const spec = JSON.parse(process.argv[2] ?? '{}') as ChildSpec;
const log: SagaLog = await openSagaLog(spec.config);
const lines = readline.createInterface({ input: process.stdin });
const go = new Promise<void>((resolve) => lines.on('line', (l) => l.trim() === 'go' && resolve()));
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
await go;
lines.close();

const errors: string[] = [];
const note = (err: unknown) => void errors.push(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
const [, starts, claimed] = await Promise.all([
  appendRounds(log, spec.owner, spec.appendTo, spec.appends).catch((err: unknown) => note(err)),
  Promise.all(
    spec.keys.map(async (key): Promise<StartOutcome> => {
      const res = await log.create(
        newSaga(`child-${key}`, { idempotencyKey: key, leaseOwner: spec.owner }),
        [STARTED],
        60_000,
      );
      return { key, id: res.created ? res.saga.id : res.existingId, created: res.created };
    }),
  ).catch((err: unknown) => (note(err), [] as StartOutcome[])),
  claimAll(log, spec.owner, spec.claimLimit).catch((err: unknown) => (note(err), [] as string[])),
]);
await log.close();
const report: ChildReport = { starts, claimed, errors };
process.stdout.write(`${JSON.stringify(report)}\n`);
