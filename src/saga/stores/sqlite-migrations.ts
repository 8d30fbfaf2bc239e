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
];
