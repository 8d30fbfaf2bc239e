/** The SQLite saga log's schema history (PRAGMA user_version counts the steps applied). */

export const MIGRATIONS = [
  `
CREATE TABLE sagas (
  seq              INTEGER PRIMARY KEY AUTOINCREMENT,
  id               TEXT NOT NULL UNIQUE,
  definition       TEXT NOT NULL,
  version          INTEGER NOT NULL,
  status           TEXT NOT NULL,
  step_index       INTEGER NOT NULL,
  comp_index       INTEGER NOT NULL,
  attempt          INTEGER NOT NULL,
  input            TEXT NOT NULL,
  results          TEXT NOT NULL,
  failure          TEXT,
  traceparent      TEXT,
  idempotency_key  TEXT UNIQUE,
  lease_owner      TEXT,
  lease_expires_at INTEGER NOT NULL,
  deadline_at      INTEGER NOT NULL,
  next_event_seq   INTEGER NOT NULL,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL
);
CREATE INDEX sagas_unfinished ON sagas (lease_expires_at) WHERE status IN ('RUNNING', 'COMPENSATING');
CREATE INDEX sagas_status ON sagas (status, seq);
CREATE TABLE saga_events (
  saga_id   TEXT NOT NULL,
  seq       INTEGER NOT NULL,
  type      TEXT NOT NULL,
  step      TEXT,
  attempt   INTEGER,
  error     TEXT,
  retryable INTEGER,
  data      TEXT,
  trace_id  TEXT,
  span_id   TEXT,
  at        INTEGER NOT NULL,
  PRIMARY KEY (saga_id, seq)
) WITHOUT ROWID;
CREATE INDEX saga_events_trace ON saga_events (trace_id);
`,
  // The console's filters and the PARKED queue, each through its own index (bench/README.md,
  // "Admin console at 100,000 sagas"). subject and current_step stay NULL on the rows written
  // before this step until the engine's next write to each (a finished saga keeps NULL).
  `
ALTER TABLE sagas ADD COLUMN subject TEXT;
ALTER TABLE sagas ADD COLUMN current_step TEXT;
CREATE INDEX sagas_subject ON sagas (subject, seq) WHERE subject IS NOT NULL;
CREATE INDEX sagas_step ON sagas (current_step, seq) WHERE current_step IS NOT NULL;
CREATE INDEX sagas_created ON sagas (created_at, seq);
CREATE INDEX sagas_parked ON sagas (updated_at, seq) WHERE status = 'PARKED';
`,
  // Nothing reads events by trace id (a trace finds its saga by the saga.id attribute of its
  // spans), and trace ids are random: the index put every event on a random leaf, about a third
  // of the pages each commit wrote (bench/README.md, "Where the writes go").
  `
DROP INDEX saga_events_trace;
`,
  // Bulk operator actions (src/saga/bulk.ts): a job and its frozen selection, one row per saga
  // with what the action did to it. Kept beside the log so a restarted gateway resumes a job.
  `
CREATE TABLE bulk_jobs (
  id               TEXT PRIMARY KEY,
  action           TEXT NOT NULL,
  note             TEXT,
  filter           TEXT NOT NULL,
  rate             REAL NOT NULL,
  cap              INTEGER NOT NULL,
  actor            TEXT NOT NULL,
  state            TEXT NOT NULL,
  total            INTEGER NOT NULL,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  finished_at      INTEGER,
  lease_owner      TEXT,
  lease_expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE bulk_job_sagas (
  job_id   TEXT NOT NULL,
  position INTEGER NOT NULL,
  saga_id  TEXT NOT NULL,
  result   TEXT NOT NULL DEFAULT 'pending',
  code     TEXT,
  message  TEXT,
  at       INTEGER,
  PRIMARY KEY (job_id, position)
) WITHOUT ROWID;
CREATE INDEX bulk_job_sagas_result ON bulk_job_sagas (job_id, result, position);
`,
  // progress_at: when the saga last made progress (its status, step or compensation moved; a
  // failed attempt is none), by the log's clock, so that a saga stuck while it says RUNNING can be
  // told from an old one. No index of its own (the hot path updates no more index entries): the
  // stuck read goes through sagas_unfinished, and reads only in-flight rows. NULL (a row finished
  // before this step) reads as updated_at; the in-flight rows are filled in here.
  `
ALTER TABLE sagas ADD COLUMN progress_at INTEGER;
UPDATE sagas SET progress_at = updated_at WHERE status IN ('RUNNING', 'COMPENSATING');
`,
  // Retention (src/saga/retention.ts): the finished sagas a policy may prune, oldest end first
  // per outcome. Partial: a saga enters it once, when it ends; the hot path's updates of sagas
  // in flight do not touch it.
  `
CREATE INDEX sagas_ended ON sagas (status, updated_at, seq) WHERE status IN ('COMPLETED', 'COMPENSATED', 'RESOLVED');
`,
];
