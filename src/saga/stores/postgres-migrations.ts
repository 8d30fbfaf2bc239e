/** The PostgreSQL saga log's schema history, and how it is applied at start (migrate), one gateway at a time. */
import type pg from 'pg';
import { withoutDeadline } from '../../platform/storage/pg.js';
import type { Logger } from '../../platform/telemetry/logger.js';

/** The statuses of a saga still being driven, as SQL: the partial index's and the recovery scan's. */
export const UNFINISHED = `('RUNNING', 'COMPENSATING')`;

/**
 * Ordered schema steps; step i is version i + 1 in saga_log_migrations. The tables mirror the
 * SQLite store's. JSON columns are `json`, not `jsonb`: the text is kept as written (key order,
 * and a "\u0000" in a string, which jsonb refuses).
 */
export const MIGRATIONS: readonly string[] = [
  `
CREATE TABLE saga_log_identity (
  singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  id         uuid NOT NULL DEFAULT gen_random_uuid(),
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO saga_log_identity DEFAULT VALUES;
CREATE TABLE sagas (
  seq              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id               text NOT NULL UNIQUE,
  definition       text NOT NULL,
  version          integer NOT NULL,
  status           text NOT NULL,
  step_index       integer NOT NULL,
  comp_index       integer NOT NULL,
  attempt          integer NOT NULL,
  input            json NOT NULL,
  results          json NOT NULL,
  failure          json,
  traceparent      text,
  idempotency_key  text UNIQUE,
  lease_owner      text,
  lease_expires_at bigint NOT NULL,
  deadline_at      bigint NOT NULL,
  next_event_seq   integer NOT NULL,
  created_at       bigint NOT NULL,
  updated_at       bigint NOT NULL
);
CREATE INDEX sagas_unfinished ON sagas (lease_expires_at) WHERE status IN ${UNFINISHED};
CREATE INDEX sagas_status ON sagas (status, seq);
CREATE TABLE saga_events (
  saga_id   text NOT NULL,
  seq       integer NOT NULL,
  type      text NOT NULL,
  step      text,
  attempt   integer,
  error     text,
  retryable boolean,
  data      json,
  trace_id  text,
  span_id   text,
  at        bigint NOT NULL,
  PRIMARY KEY (saga_id, seq)
);
CREATE INDEX saga_events_trace ON saga_events (trace_id);
`,
  // The console's filters and the PARKED queue, each through its own index (bench/README.md,
  // "Admin console at 100,000 sagas"). subject and current_step stay NULL on the rows written
  // before this step until the engine's next write to each (a finished saga keeps NULL). The id
  // prefix search compares ids in binary order (COLLATE "C"), whatever the database's collation.
  `
ALTER TABLE sagas ADD COLUMN subject text, ADD COLUMN current_step text;
CREATE INDEX sagas_subject ON sagas (subject, seq) WHERE subject IS NOT NULL;
CREATE INDEX sagas_step ON sagas (current_step, seq) WHERE current_step IS NOT NULL;
CREATE INDEX sagas_created ON sagas (created_at, seq);
CREATE INDEX sagas_parked ON sagas (updated_at, seq) WHERE status = 'PARKED';
CREATE INDEX sagas_id_binary ON sagas ((id COLLATE "C"));
`,
  // The counts per status without counting: every insert, status change and delete of a saga
  // appends its +1/-1 to saga_status_deltas in the same transaction (a trigger; appends never
  // wait on each other, unlike one counter row per status would), and countByStatus folds the
  // deltas into saga_status_counts as it reads. Seeded here from the rows as they are (writers
  // wait: CREATE TRIGGER locks the table until this commits).
  `
CREATE TABLE saga_status_counts (status text PRIMARY KEY, n bigint NOT NULL);
CREATE TABLE saga_status_deltas (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, status text NOT NULL, n integer NOT NULL);
CREATE FUNCTION saga_status_delta() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') AND (TG_OP = 'DELETE' OR OLD.status IS DISTINCT FROM NEW.status) THEN
    INSERT INTO saga_status_deltas (status, n) VALUES (OLD.status, -1);
  END IF;
  IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND OLD.status IS DISTINCT FROM NEW.status) THEN
    INSERT INTO saga_status_deltas (status, n) VALUES (NEW.status, 1);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER sagas_status_delta AFTER INSERT OR DELETE OR UPDATE OF status ON sagas FOR EACH ROW EXECUTE FUNCTION saga_status_delta();
INSERT INTO saga_status_counts (status, n) SELECT status, count(*) FROM sagas GROUP BY status;
`,
  // As in the SQLite log: nothing reads events by trace id, and an index on random trace ids
  // costs every event a random leaf.
  `
DROP INDEX saga_events_trace;
`,
  // The batch statement sets status on every row it updates (to itself when unpatched): the
  // trigger's WHEN decides, without a PL/pgSQL call or a queued trigger event per unchanged row,
  // whether there is a delta to write.
  `
DROP TRIGGER sagas_status_delta ON sagas;
CREATE TRIGGER sagas_status_delta AFTER INSERT OR DELETE ON sagas FOR EACH ROW EXECUTE FUNCTION saga_status_delta();
CREATE TRIGGER sagas_status_change AFTER UPDATE OF status ON sagas FOR EACH ROW
  WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION saga_status_delta();
`,
  // Bulk operator actions (src/saga/bulk.ts), as in the SQLite log: a job and its frozen
  // selection, one row per saga with what the action did to it.
  `
CREATE TABLE bulk_jobs (
  id               text PRIMARY KEY,
  action           text NOT NULL,
  note             text,
  filter           json NOT NULL,
  rate             double precision NOT NULL,
  cap              integer NOT NULL,
  actor            text NOT NULL,
  state            text NOT NULL,
  total            integer NOT NULL,
  created_at       bigint NOT NULL,
  updated_at       bigint NOT NULL,
  finished_at      bigint,
  lease_owner      text,
  lease_expires_at bigint NOT NULL
);
CREATE TABLE bulk_job_sagas (
  job_id   text NOT NULL,
  position integer NOT NULL,
  saga_id  text NOT NULL,
  result   text NOT NULL DEFAULT 'pending',
  code     text,
  message  text,
  at       bigint,
  PRIMARY KEY (job_id, position)
);
CREATE INDEX bulk_job_sagas_result ON bulk_job_sagas (job_id, result, position);
`,
  // progress_at: when the saga last made progress (its status, step or compensation moved; a
  // failed attempt is none), by the log's clock. No index of its own: the column is not indexed,
  // so an append stays a HOT update, and the stuck read goes through sagas_unfinished. NULL (a
  // row finished before this step: no rewrite of the table) reads as updated_at; the in-flight
  // rows are filled in here.
  `
ALTER TABLE sagas ADD COLUMN progress_at bigint;
UPDATE sagas SET progress_at = updated_at WHERE status IN ${UNFINISHED};
`,
  // Retention (src/saga/retention.ts): the finished sagas a policy may prune, oldest end first
  // per outcome. Partial: a saga enters it once, when it ends. Deleting them goes through the
  // status-delta trigger, so the counts stay right.
  `
CREATE INDEX sagas_ended ON sagas (status, updated_at, seq) WHERE status IN ('COMPLETED', 'COMPENSATED', 'RESOLVED');
`,
  // HOT appends (issue 27). PostgreSQL (15) rewrites a row on its own page without an entry in
  // any index (a HOT update) only when no column an index uses (key, expression, or partial
  // predicate, whether the row matches it or not) changes and the new version fits on the page.
  // Every append changed updated_at (sagas_parked, sagas_ended), most current_step (sagas_step),
  // a lease renewal lease_expires_at (sagas_unfinished): each cost an entry in every index. Now
  // no column that the writes of a saga in flight change is in an index:
  // - settled_at and settled_step are updated_at and current_step of a saga at rest (neither
  //   RUNNING nor COMPENSATING), NULL in flight. Generated, so every write path keeps them, and a
  //   read by them means what it meant by the columns they copy. They move only with the status
  //   (indexed itself, so never HOT) or with a write to a saga at rest (an operator's). The
  //   PARKED queue, retention and the step filter's sagas at rest read them.
  // - sagas_unfinished is keyed by seq, which never changes: recovery's expired-lease scan and
  //   the step filter's in-flight half walk it in seq order and check the lease or the step in
  //   the row (the in-flight set is small: what the gateways drive at once).
  // - fillfactor 50: inserts fill a page to half; the other half takes the next versions of the
  //   sagas created with them, which are in flight together. A page read with less free space
  //   than that is pruned of its dead versions first, so even a group commit that rewrites every
  //   row of a page at once (a statement cannot prune what it rewrote itself) finds room. Bench
  //   at 64 in flight, appends not HOT per saga besides its one status change: 1.2 at fillfactor
  //   80, 0.7 at 70, 0.5 at 60, 0.02 at 50 (one run each). The price: the pages of finished
  //   sagas stay half empty, the table twice its data (retention bounds it).
  // Rows written before this step read the same after it: the rewrite that adds the generated
  // columns fills them in (and repacks the table at the new fillfactor; writers wait for it, as
  // for every step here).
  `
DROP INDEX sagas_unfinished, sagas_step, sagas_parked, sagas_ended;
ALTER TABLE sagas SET (fillfactor = 50);
ALTER TABLE sagas
  ADD COLUMN settled_at bigint GENERATED ALWAYS AS (CASE WHEN status IN ${UNFINISHED} THEN NULL ELSE updated_at END) STORED,
  ADD COLUMN settled_step text GENERATED ALWAYS AS (CASE WHEN status IN ${UNFINISHED} THEN NULL ELSE current_step END) STORED;
CREATE INDEX sagas_unfinished ON sagas (seq) WHERE status IN ${UNFINISHED};
CREATE INDEX sagas_step ON sagas (settled_step, seq) WHERE settled_step IS NOT NULL;
CREATE INDEX sagas_parked ON sagas (settled_at, seq) WHERE status = 'PARKED';
CREATE INDEX sagas_ended ON sagas (status, settled_at, seq) WHERE status IN ('COMPLETED', 'COMPENSATED', 'RESOLVED');
`,
];

/** pg_advisory_xact_lock key held while migrating, so that gateways starting together migrate one at a time. */
const MIGRATION_LOCK = 4_711_560_339_201;

/**
 * Applies the missing migrations in one transaction, under an advisory lock: concurrent openers take
 * turns. Without the log's statement deadline: a step may rewrite a large table, and a gateway
 * waits for another's migration to end.
 */
export async function migrate(pool: pg.Pool, logger: Logger | undefined): Promise<void> {
  const c = await pool.connect();
  const q = <R extends pg.QueryResultRow>(text: string, values?: unknown[]) =>
    c.query<R>(withoutDeadline(text, values));
  try {
    await q('BEGIN');
    await q(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`);
    await q(`CREATE TABLE IF NOT EXISTS saga_log_migrations (
        version    integer PRIMARY KEY,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
    const { rows } = await q<{ v: number | null }>('SELECT max(version) AS v FROM saga_log_migrations');
    const current = rows[0]?.v ?? 0;
    if (current > MIGRATIONS.length) {
      logger?.warn(
        { schema_version: current, known: MIGRATIONS.length },
        'saga log schema is newer than this build knows',
      );
    }
    for (let v = current; v < MIGRATIONS.length; v++) {
      await q(MIGRATIONS[v] as string);
      await q('INSERT INTO saga_log_migrations (version) VALUES ($1)', [v + 1]);
      logger?.info({ version: v + 1 }, 'saga log schema migrated');
    }
    await q('COMMIT');
    c.release();
  } catch (err) {
    await q('ROLLBACK').catch(() => undefined);
    c.release(err instanceof Error ? err : true);
    throw err;
  }
}
