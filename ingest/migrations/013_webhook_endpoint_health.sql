-- An endpoint's health (docs/WEBHOOKS.md, "When an endpoint is down"): while its receiver refuses
-- connections, times out or answers 5xx/429, the sender holds all of the endpoint's messages until
-- retry_at (backing off with each failed round) instead of retrying each message on its own
-- schedule; its first delivery after that sends the held messages at once.
ALTER TABLE webhook_endpoints
  ADD COLUMN failures      int NOT NULL DEFAULT 0,
  ADD COLUMN failing_since timestamptz,
  ADD COLUMN retry_at      timestamptz NOT NULL DEFAULT '-infinity';
CREATE INDEX webhook_deliveries_endpoint_due_idx ON webhook_deliveries (endpoint_id, next_attempt_at) WHERE status = 'pending';
