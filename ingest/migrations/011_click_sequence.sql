-- Click event version 3 (docs/EVENTS.md): the worker isolate that emitted a click and its number
-- there. NULL: not numbered (an older event). Nullable without a default: a catalog change only.
ALTER TABLE clicks ADD COLUMN isolate_id uuid, ADD COLUMN seq bigint;

-- The completeness check (ingest/src/clicks/sequences.ts, docs/PIPELINE.md): per isolate and
-- block of 256 click numbers (block b holds seq b*256+1 … b*256+256), how many distinct numbers
-- were stored and the highest. Written by the click insert itself, for fresh rows only, so a
-- redelivered click changes nothing. One row per insert slot too (the group committer's
-- concurrent flushes never wait on one another's row lock): a block's figures are summed over
-- its slots. A block is settled once it is quiet and a later block exists (or its isolate went
-- quiet): its missing clicks join the `clicks_missing` total; a click that arrives for a
-- settled block after that is counted in `late` (and in `clicks_late`).
CREATE TABLE click_sequences (
  isolate_id uuid        NOT NULL,
  block      bigint      NOT NULL,
  slot       smallint    NOT NULL,
  max_seq    bigint      NOT NULL,
  seen       bigint      NOT NULL,
  late       bigint      NOT NULL DEFAULT 0,
  settled    boolean     NOT NULL DEFAULT false,
  last_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (isolate_id, block, slot)
);
INSERT INTO pipeline_counters (name, slot, value) VALUES ('clicks_missing', 0, 0), ('clicks_late', 0, 0);
