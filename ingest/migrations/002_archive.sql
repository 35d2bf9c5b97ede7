-- Hours of clicks.received_at written to the archive (ingest/src/archiver.ts), one row per hour.
-- The row is inserted in the same transaction that read the hour, after its file was written
-- (and uploaded): an hour listed here is in the archive; an hour not listed is written again,
-- under the same object name, which overwrites rather than duplicates.
-- Retention drops a click partition only when every received_at hour of its rows is listed.
CREATE TABLE archive_log (
  hour        timestamptz PRIMARY KEY,
  rows        int NOT NULL,
  location    text NOT NULL,
  archived_at timestamptz NOT NULL DEFAULT now()
);
