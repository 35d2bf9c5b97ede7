-- KV write-through that failed (worker unreachable or refusing): the (domain, code) keys whose KV
-- copy may differ from PostgreSQL. A retry loop pushes each key's current state (the link's edge
-- record, or a delete when no link has that key any more) until the worker takes it. KV records
-- have no expiry, so without this a failed update or delete would stay at the edge for good.
CREATE SEQUENCE edge_sync_version;
CREATE TABLE edge_sync_pending (
  domain     text NOT NULL,
  code       text NOT NULL,
  -- Set again by every new failure for the key, so a retry that read an older state never
  -- deletes the row of a newer failure (it deletes only the version it claimed; a bigint, as
  -- JavaScript dates would lose timestamptz's microseconds).
  version    bigint NOT NULL DEFAULT nextval('edge_sync_version'),
  queued_at  timestamptz NOT NULL DEFAULT now(),
  attempts   integer NOT NULL DEFAULT 0,
  next_at    timestamptz NOT NULL DEFAULT now(),
  last_error text,
  PRIMARY KEY (domain, code)
);
CREATE INDEX edge_sync_pending_next_at ON edge_sync_pending (next_at);
