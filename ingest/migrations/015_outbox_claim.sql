-- The forwarder's claim (ingest/src/pipeline/forwarder.ts): the oldest `batch` unclaimed rows
-- from `floor_id` on, leased for `lease_s` seconds. A function, so that it is planned once for
-- any parameters and carries its own planner settings. The outbox is a queue: it rarely has
-- statistics (no ANALYZE ever runs on it where autovacuum is off, and its contents change every
-- second where it is on), and the same statement sent by the forwarder was planned for its
-- values as a few hundred unclaimed rows: a bitmap scan of all of them, a sort, then the LIMIT.
-- Every claim read the whole backlog, claims fell behind, and the backlog grew (a bench run went
-- from 0.3 to 4.8 ms of CPU a click, its lag from 2 to 105 s). With sorts and sequential scans
-- off, what is left reads the rows in id order from an index, stops after `batch`, and updates
-- those by id.
CREATE FUNCTION outbox_claim(lease_s double precision, floor_id bigint, batch integer)
RETURNS TABLE (id bigint, partition_key text, data bytea, attempts integer, replayed boolean)
LANGUAGE sql
SET enable_sort = off
SET enable_seqscan = off
AS $$
  UPDATE outbox AS o SET claimed_until = now() + make_interval(secs => lease_s), attempts = o.attempts + 1
  WHERE o.id = ANY(ARRAY(
    SELECT u.id FROM outbox AS u WHERE u.claimed_until = '-infinity' AND u.id >= floor_id
    ORDER BY u.id LIMIT batch FOR UPDATE SKIP LOCKED))
  RETURNING o.id, o.partition_key, o.data, o.attempts, o.replayed
$$;
