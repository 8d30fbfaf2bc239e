/**
 * Every participant keeps tombstones: a compensation that found nothing to undo records one, so
 * that an action for the same order arriving late (delayed, retried) is refused.
 */
export const TOMBSTONES_TABLE = `
  CREATE TABLE tombstones (
    order_id   TEXT PRIMARY KEY,
    reason     TEXT NOT NULL,
    created_at INTEGER NOT NULL
  ) WITHOUT ROWID;
`;
