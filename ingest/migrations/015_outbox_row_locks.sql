-- The forwarder's claim (ingest/src/pipeline/forwarder.ts) becomes row locks held by its
-- batch's transaction while the records are put (FOR UPDATE SKIP LOCKED), instead of a lease
-- written into each row: a claim was an update of every row (its ~700 bytes written again,
-- with an entry in each index) that the delete then made dead as well. Without leases the
-- claim index goes; a crashed forwarder's locks go with its connection. A forwarder of the
-- code before this migration fails its claims from now on (no claimed_until) and backs off:
-- the rows wait for the new ones.
DROP INDEX outbox_claim_idx;
ALTER TABLE outbox DROP COLUMN claimed_until;
-- attempts: puts of the row that failed or were refused (it may have reached Kinesis, so
-- sending it again is a counted re-send); under the leases it counted every claim.
UPDATE outbox SET attempts = greatest(attempts - 1, 0);
