/**
 * `sagas inspect`: what an operator looks at when a saga is parked or stuck, read from the saga
 * log itself (read-only), so it works with the gateways down.
 */
import { sagaLogSettings } from '../../platform/config/config.js';
import { describeSagaLog, openSagaLog } from '../../saga/stores/open.js';
import { SAGA_STATUSES as STATUSES, type SagaLog, type SagaRecord, type SagaStatus } from '../../saga/index.js';
import { EXIT, UsageError, parseCommandArgs, type Command } from '../command.js';

export const INSPECT_USAGE = `Usage: sagas inspect [<saga_id>] [--status S] [--limit N] [--json]

Reads the saga log directly, read-only, whichever store the gateway uses: PostgreSQL when
SAGA_LOG_URL is set, else the SQLite file (SAGA_LOG_DB_PATH, or DATA_DIR/saga.db). The gateways
may be running or not.
  sagas inspect                    the newest sagas (20), newest first
  sagas inspect --status PARKED    only sagas in that status (${STATUSES.join(', ')})
  sagas inspect --limit N          at most N sagas (1-10000, default 20)
  sagas inspect <saga_id>          one saga: its state and every event of its timeline
  --json                           machine-readable output
  -h, --help                       show this text

Exit codes:
  0  shown
  1  the saga log could not be opened, or has no such saga
  2  a wrong command line, or a wrong SAGA_LOG_URL / SAGA_LOG_* variable
`;

const iso = (ms: number) => new Date(ms).toISOString();

function summaryLine(s: SagaRecord): string {
  const failure = s.failure ? `  ${s.failure.code} at ${s.failure.step}` : '';
  return `${s.id}  ${s.status.padEnd(12)} step ${s.stepIndex}  ${iso(s.createdAt)}${failure}`;
}

export const inspectCommand: Command = {
  name: 'inspect',
  summary: "Show the newest sagas, or one saga's timeline, read from the saga log",
  usage: INSPECT_USAGE,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(
      argv,
      {
        allowPositionals: true,
        options: { status: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } },
      },
      { status: `a status (${STATUSES.join(', ')})`, limit: 'a number of sagas, from 1 to 10000' },
    );
    if (positionals.length > 1)
      throw new UsageError(`one saga id at a time, got ${positionals.map((a) => `"${a}"`).join(', ')}`);
    const status = values.status?.toUpperCase();
    if (status !== undefined && !STATUSES.includes(status as SagaStatus))
      throw new UsageError(`--status must be one of ${STATUSES.join(', ')}, got "${values.status}"`);
    const limit = values.limit === undefined ? 20 : Number(values.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000)
      throw new UsageError(`--limit must be a whole number from 1 to 10000, got "${values.limit}"`);
    // A wrong SAGA_LOG_URL is a ConfigError: the router's exit 2.
    const settings = sagaLogSettings(io.env);
    const file = describeSagaLog(settings);
    let store: SagaLog;
    try {
      store = await openSagaLog(settings, { readonly: true });
    } catch (err) {
      io.stderr.write(`sagas inspect: cannot open the saga log ${file}: ${(err as Error).message}\n`);
      return EXIT.failure;
    }
    try {
      const id = positionals[0];
      if (id !== undefined) {
        const saga = await store.get(id);
        if (!saga) {
          io.stderr.write(`sagas inspect: no saga ${id} in ${file}\n`);
          return EXIT.failure;
        }
        const events = await store.events(id);
        if (values.json) {
          io.stdout.write(`${JSON.stringify({ saga, events }, null, 2)}\n`);
          return EXIT.ok;
        }
        io.stdout.write(`${summaryLine(saga)}\n`);
        if (saga.failure) io.stdout.write(`  failure: ${saga.failure.message}\n`);
        for (const e of events) {
          const step = e.step ? ` ${e.step}` : '';
          const attempt = e.attempt ? ` #${e.attempt}` : '';
          const error = e.error ? `  ${e.error}${e.retryable ? ' (retrying)' : ''}` : '';
          io.stdout.write(
            `  ${String(e.seq).padStart(3)} ${iso(e.at)} ${e.type}${step}${attempt}${error}${e.traceId ? `  trace ${e.traceId}` : ''}\n`,
          );
        }
        return EXIT.ok;
      }
      const page = await store.list({ status: status as SagaStatus | undefined, limit });
      if (values.json) io.stdout.write(`${JSON.stringify(page.sagas, null, 2)}\n`);
      else {
        const counts = await store.countByStatus();
        io.stdout.write(`${file}: ${STATUSES.map((s) => `${s} ${counts[s]}`).join(', ')}\n`);
        for (const s of page.sagas) io.stdout.write(`${summaryLine(s)}\n`);
      }
      return EXIT.ok;
    } finally {
      await store.close();
    }
  },
};
