import { parseArgs } from 'node:util';
import { sagaLogSettings } from '../../platform/config.js';
import { describeSagaLog, openSagaLog } from '../../saga/stores/open.js';
import { SAGA_STATUSES as STATUSES, type SagaLog, type SagaRecord, type SagaStatus } from '../../saga/model.js';

export const INSPECT_USAGE = `Usage: sagas inspect [<saga_id>] [--status S] [--limit N] [--json]

Reads the saga log directly, read-only, whichever store the gateway uses: PostgreSQL when
SAGA_LOG_URL is set, else the SQLite file (SAGA_LOG_DB_PATH, or DATA_DIR/saga.db). The gateways
may be running or not.
  sagas inspect                    the newest sagas (20), newest first
  sagas inspect --status PARKED    only sagas in that status (RUNNING, COMPENSATING, COMPLETED,
                                   COMPENSATED, PARKED)
  sagas inspect <saga_id>          one saga: its state and every event of its timeline
  --json                           machine-readable output
`;

const iso = (ms: number) => new Date(ms).toISOString();

interface Io {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
}

function summaryLine(s: SagaRecord): string {
  const failure = s.failure ? `  ${s.failure.code} at ${s.failure.step}` : '';
  return `${s.id}  ${s.status.padEnd(12)} step ${s.stepIndex}  ${iso(s.createdAt)}${failure}`;
}

/** `sagas inspect`: what an operator looks at when a saga is parked or stuck. */
export async function runInspect(argv: readonly string[], io: Io): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: { status: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean' } },
    });
  } catch (err) {
    io.stderr.write(`sagas inspect: ${(err as Error).message}\n\n${INSPECT_USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout.write(INSPECT_USAGE);
    return 0;
  }
  const status = values.status?.toUpperCase();
  if (status !== undefined && !STATUSES.includes(status as SagaStatus)) {
    io.stderr.write(`sagas inspect: --status must be one of ${STATUSES.join(', ')}\n`);
    return 2;
  }
  const limit = values.limit === undefined ? 20 : Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
    io.stderr.write('sagas inspect: --limit must be an integer from 1 to 10000\n');
    return 2;
  }
  let store: SagaLog;
  let file: string;
  try {
    const settings = sagaLogSettings(io.env);
    file = describeSagaLog(settings);
    try {
      store = await openSagaLog(settings, { readonly: true });
    } catch (err) {
      io.stderr.write(`sagas inspect: cannot open the saga log ${file}: ${(err as Error).message}\n`);
      return 1;
    }
  } catch (err) {
    io.stderr.write(`sagas inspect: ${(err as Error).message}\n`);
    return 2;
  }
  try {
    const id = positionals[0];
    if (id !== undefined) {
      const saga = await store.get(id);
      if (!saga) {
        io.stderr.write(`sagas inspect: no saga ${id} in ${file}\n`);
        return 1;
      }
      const events = await store.events(id);
      if (values.json) {
        io.stdout.write(`${JSON.stringify({ saga, events }, null, 2)}\n`);
        return 0;
      }
      io.stdout.write(`${summaryLine(saga)}\n`);
      if (saga.failure) io.stdout.write(`  failure: ${saga.failure.message}\n`);
      for (const e of events) {
        const step = e.step ? ` ${e.step}` : '';
        const attempt = e.attempt ? ` #${e.attempt}` : '';
        const error = e.error ? `  ${e.error}${e.retryable ? ' (retrying)' : ''}` : '';
        io.stdout.write(`  ${String(e.seq).padStart(3)} ${iso(e.at)} ${e.type}${step}${attempt}${error}${e.traceId ? `  trace ${e.traceId}` : ''}\n`);
      }
      return 0;
    }
    const page = await store.list({ status: status as SagaStatus | undefined, limit });
    if (values.json) io.stdout.write(`${JSON.stringify(page.sagas, null, 2)}\n`);
    else {
      const counts = await store.countByStatus();
      io.stdout.write(`${file}: ${STATUSES.map((s) => `${s} ${counts[s]}`).join(', ')}\n`);
      for (const s of page.sagas) io.stdout.write(`${summaryLine(s)}\n`);
    }
    return 0;
  } finally {
    await store.close();
  }
}
