-- Webhooks (docs/WEBHOOKS.md): per-workspace endpoints, a durable delivery log, and the clicks
-- waiting to be batched for each endpoint subscribed to link.clicked.
CREATE TABLE webhook_endpoints (
  id           bigserial PRIMARY KEY,
  workspace_id bigint NOT NULL REFERENCES workspaces(id),
  url          text NOT NULL,
  description  text,
  events       text[] NOT NULL,
  -- The signing secret (whsec_<base64>): needed in clear to sign, shown to the API once.
  secret       text NOT NULL,
  -- After a rotation the previous secret signs too, until previous_secret_until (receivers move over).
  previous_secret       text,
  previous_secret_until timestamptz,
  enabled      boolean NOT NULL DEFAULT true,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_workspace_idx ON webhook_endpoints (workspace_id, id);

-- One message to one endpoint: a link event, or a batch of clicks. webhook_id is the Standard
-- Webhooks `webhook-id`, fixed when the row is written: every attempt and replay of the message
-- carries it, so receivers deduplicate. status: pending (next_attempt_at), delivered, failed
-- (dead-lettered after the last attempt; a replay makes it pending again).
CREATE TABLE webhook_deliveries (
  id               bigserial PRIMARY KEY,
  endpoint_id      bigint NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
  webhook_id       text NOT NULL UNIQUE DEFAULT 'msg_' || replace(gen_random_uuid()::text, '-', ''),
  event_type       text NOT NULL,
  payload          jsonb NOT NULL,
  status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts         int NOT NULL DEFAULT 0,
  next_attempt_at  timestamptz NOT NULL DEFAULT now(),
  claimed_until    timestamptz NOT NULL DEFAULT '-infinity',
  last_status_code int,
  last_error       text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  last_attempt_at  timestamptz,
  delivered_at     timestamptz
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, id DESC);

-- Which clicks each endpoint was sent: written by the forwarder in the transaction that takes the
-- clicks out of the outbox, with the link.clicked messages that carry them (so none is lost
-- between the two). The primary key makes a click re-sent by the pipeline (a crash, a dead-letter
-- replay) a no-op: each click goes into exactly one message per endpoint. Slim on purpose (the
-- click itself is in the message); pruned after WEBHOOK_RETENTION_DAYS (BRIN: cheap to keep).
CREATE TABLE webhook_clicks (
  endpoint_id bigint NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
  click_id    uuid NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (endpoint_id, click_id)
);
CREATE INDEX webhook_clicks_created_idx ON webhook_clicks USING brin (created_at);
