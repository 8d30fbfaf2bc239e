/**
 * The admin-console scale bench (`npm run bench:admin`, bench/src/admin-scale.ts) end to end on a
 * small log: a real subprocess seeds it, times every query and prints the table; on SQLite and on
 * the machine's PostgreSQL (whose database it drops).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { MACHINE_POSTGRES_URL } from '../helpers/postgres.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);
const bench = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench/src/admin-scale.ts'), ...args], {
    cwd: ROOT,
    timeout: 60_000,
    env: { ...process.env, ...env },
  });

const QUERIES = [
  'first page, no filter',
  'customer (subject)',
  'step=charge_payment',
  'created on one day 20 days ago',
  'id prefix (4 characters)',
  'the counts per status',
  'PARKED queue, oldest first, 50',
];

describe('bench:admin', () => {
  for (const store of ['sqlite', 'postgres'] as const) {
    it(`seeds ${store} with 2,000 sagas and prints every query's median and max`, { timeout: 60_000 }, async () => {
      // Exit 1 says a query took 100 ms or more: a loaded machine's doing on a log this small, not a failure here.
      const { stdout } = await bench(['--sagas', '2000', '--runs', '2', '--saga-log', store], {
        SAGA_LOG_URL: MACHINE_POSTGRES_URL,
      }).catch((err: { code?: number; stdout?: string }) => {
        if (err.code !== 1 || !err.stdout) throw err;
        return { stdout: err.stdout };
      });
      assert.match(stdout, new RegExp(`^admin-scale: 2000 sagas in ${store}`));
      assert.match(
        stdout,
        /statuses: RUNNING \d+, COMPENSATING \d+, COMPLETED \d+, COMPENSATED \d+, PARKED \d+, RESOLVED \d+/,
      );
      for (const q of QUERIES)
        assert.match(
          stdout,
          new RegExp(`\\| ${q.replace(/[()]/g, '\\$&')}\\s+\\|\\s+\\d+ \\|\\s+[\\d.]+ \\|\\s+[\\d.]+ \\|`),
          q,
        );
      assert.match(stdout, /every query under 100 ms \(max\)|over 100 ms: /);
      if (store === 'postgres') {
        const c = new pg.Client({ connectionString: MACHINE_POSTGRES_URL });
        await c.connect();
        try {
          const name = /database (sagas_bench_\w+)/.exec(stdout)?.[1];
          assert.ok(name);
          assert.equal((await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount, 0, 'dropped');
        } finally {
          await c.end();
        }
      }
    });
  }

  it('a bad option exits 2 with the usage', async () => {
    await assert.rejects(bench(['--saga-log', 'mysql']), (err: { code?: number; stderr?: string }) => {
      assert.equal(err.code, 2);
      assert.match(err.stderr ?? '', /Usage: node --import tsx bench\/src\/admin-scale.ts/);
      return true;
    });
  });
});
