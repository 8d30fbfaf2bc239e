/**
 * The inbox's records in PostgreSQL (see inbox.ts): the key is claimed first, in the effect's own
 * transaction (`INSERT … ON CONFLICT DO NOTHING`), so that two replicas racing on one key are
 * serialised by its unique index: the second waits for the first to commit, then finds the key
 * taken and replays its answer — one effect, never two. A claim rolled back (the effect failed,
 * the process died) frees the key for the retry.
 */
import type { InboxRecords, OnceOutcome, StoredAnswer } from './inbox.js';
import { run, type PgClient, type PgDatabase, type Sql } from './pg.js';

/** The inbox table; `response` is NULL only inside the transaction that claimed the key. */
export const PG_INBOX_TABLE = `
CREATE TABLE inbox (
  key         text COLLATE "C" PRIMARY KEY,
  method      text NOT NULL,
  fingerprint text NOT NULL,
  response    text,
  created_at  bigint NOT NULL
);
`;

const CLAIM: Sql = {
  name: 'inbox_claim',
  text: `INSERT INTO inbox (key, method, fingerprint, response, created_at) VALUES ($1, $2, $3, NULL, $4)
         ON CONFLICT (key) DO NOTHING RETURNING 1 AS claimed`,
};
const READ: Sql = { name: 'inbox_read', text: 'SELECT method, fingerprint, response FROM inbox WHERE key = $1' };
const ANSWER: Sql = { name: 'inbox_answer', text: 'UPDATE inbox SET response = $2 WHERE key = $1' };

type Row = Omit<StoredAnswer, 'response'> & { response: string | null };

/** `txOf` binds the store's writes to the transaction's connection: what an effect writes with. */
export function postgresInboxRecords<Tx>(
  db: PgDatabase,
  txOf: (c: PgClient) => Tx,
  now: () => number = Date.now,
): InboxRecords<Tx> {
  return {
    async find(key) {
      const [row] = await db.query<Row>(READ, [key]);
      return row && row.response !== null ? { ...row, response: row.response } : undefined;
    },
    once: <Res>(key: string, method: string, fp: string, effect: (tx: Tx) => Res | Promise<Res>) =>
      db.transaction(async (c): Promise<OnceOutcome<Res>> => {
        const claimed = await run(c, CLAIM, [key, method, fp, now()]);
        if (claimed.length === 0) {
          const [row] = await run<Row>(c, READ, [key]);
          // A claim commits with its answer, so a taken key another transaction can see has one.
          if (!row || row.response === null) throw new Error(`inbox key ${key} is taken but holds no answer`);
          return { kind: 'stored', answer: { ...row, response: row.response } };
        }
        const response = await effect(txOf(c));
        await run(c, ANSWER, [key, JSON.stringify(response)]);
        return { kind: 'applied', response };
      }),
  };
}
