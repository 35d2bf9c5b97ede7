-- Analytics rollups (docs/ANALYTICS.md). An hour with clicks loaded into ClickHouse and not yet
-- rolled up from them: the loader marks every hour of a batch in the transaction that
-- checkpoints the batch (so after its rows are in ClickHouse), and the sealer recomputes those
-- hours from the deduplicated raw table and deletes the marks it saw. A mark made again while
-- the sealer worked has a new seq, so it survives the delete and the hour is recomputed again.
-- Until then the stats queries read the hour from the raw table: a mark means "rollup stale".
CREATE SEQUENCE rollup_dirty_seq;
CREATE TABLE rollup_dirty (
  hour timestamptz PRIMARY KEY,
  seq bigint NOT NULL DEFAULT nextval('rollup_dirty_seq')
);

-- Each link's clicks (bots excluded), exact, for link objects and sorting the links list:
-- counted when PostgreSQL first stores a click (the insert is idempotent on click_id, so a
-- retried beacon adds nothing). A slot per concurrent writer, as pipeline_counters, so flushes
-- of one busy link never queue on one row.
CREATE TABLE link_clicks (
  link_id bigint NOT NULL,
  slot smallint NOT NULL,
  clicks bigint NOT NULL,
  PRIMARY KEY (link_id, slot)
);
-- Clicks stored before this table: counted once, from the clicks still in PostgreSQL (older
-- ones are gone past PG_RETENTION_DAYS), with bots told apart by a pattern close to isbot's
-- (ingest uses isbot itself from here on).
INSERT INTO link_clicks (link_id, slot, clicks)
SELECT link_id, 0, count(*) FROM clicks
WHERE user_agent !~* '(bot|crawl|spider|slurp|curl|wget|python|headless|http|fetch|preview|monitor|^$)'
GROUP BY link_id;
