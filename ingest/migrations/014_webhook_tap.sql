-- The webhook hand-off without a row per click (docs/WEBHOOKS.md, "How messages travel"): the
-- forwarder hands each outbox row to webhooks in the transaction that deletes it, so a row is
-- handed over exactly once; a click reaches the outbox again only through a dead-letter replay
-- (it was forwarded, and handed over, before the loader refused it): such rows are marked.
ALTER TABLE outbox ADD COLUMN replayed boolean NOT NULL DEFAULT false;
DROP TABLE webhook_clicks;
-- lz4 where the server has it (PostgreSQL's Debian builds do): a link.clicked message is ~100 kB
-- of JSON, and pglz compressing it was a good part of the hand-off's cost.
DO $$ BEGIN
  ALTER TABLE webhook_deliveries ALTER COLUMN payload SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN NULL;
END $$;
