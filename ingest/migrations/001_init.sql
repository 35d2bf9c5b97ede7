-- Workspaces own links and keys (one default workspace until teams arrive).
CREATE TABLE workspaces (
  id         bigserial PRIMARY KEY,
  name       text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO workspaces (name) VALUES ('default');

-- API keys are stored as SHA-256 hashes; the prefix finds the row, the hash proves it.
CREATE TABLE api_keys (
  id           bigserial PRIMARY KEY,
  workspace_id bigint NOT NULL REFERENCES workspaces(id),
  name         text NOT NULL,
  prefix       text NOT NULL UNIQUE,
  key_hash     bytea NOT NULL,
  scopes       text[] NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  revoked_at   timestamptz
);

-- The truth about links. KV at the edge is a copy of these rows.
-- domain '' is the primary short domain; custom domains each have their own code space.
CREATE TABLE links (
  id              bigserial PRIMARY KEY,
  workspace_id    bigint NOT NULL REFERENCES workspaces(id),
  domain          text NOT NULL DEFAULT '',
  code            text NOT NULL,
  url             text NOT NULL,
  redirect_status smallint NOT NULL DEFAULT 302 CHECK (redirect_status IN (301, 302, 307, 308)),
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT links_domain_code_key UNIQUE (domain, code)
);
CREATE INDEX links_workspace_idx ON links (workspace_id, id);

-- Every acknowledged click, in monthly partitions of the event time (ingest/src/partitions.ts
-- creates them ahead; the DEFAULT partition only catches timestamps outside them).
-- The primary key must include the partition key: a retried beacon carries the same click_id
-- and timestamp, so (click_id, ts) still makes it a no-op. ClickHouse dedups by click_id alone.
CREATE TABLE clicks (
  click_id        uuid NOT NULL,
  link_id         bigint NOT NULL,
  domain          text NOT NULL,
  code            text NOT NULL,
  short_url       text NOT NULL,
  original_url    text NOT NULL,
  ts              timestamptz NOT NULL,
  user_agent      text NOT NULL,
  ip_address      text NOT NULL,
  referer         text NOT NULL,
  geo_location    jsonb NOT NULL,
  redirect_status smallint NOT NULL,
  cache_tier      text NOT NULL,
  received_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (click_id, ts)
) PARTITION BY RANGE (ts);
CREATE TABLE clicks_default PARTITION OF clicks DEFAULT;
CREATE INDEX clicks_link_ts_idx ON clicks (link_id, ts);
CREATE INDEX clicks_received_idx ON clicks (received_at);

-- Transactional outbox: one row per newly committed click, written in the beacon's transaction.
-- A separate table rather than reading clicks by id: ids are not committed in order, so a
-- high-water mark over clicks could skip a row that commits late; here the forwarder simply
-- takes unclaimed rows and deletes them once Kinesis accepted them (clicks stay untouched).
-- claimed_until is a lease, so several forwarders never send a row at the same time and a
-- crashed forwarder's rows are taken over when its lease runs out.
CREATE TABLE outbox (
  id            bigserial PRIMARY KEY,
  partition_key text NOT NULL,
  data          bytea NOT NULL, -- the Kinesis record's bytes
  created_at    timestamptz NOT NULL DEFAULT now(),
  attempts      int NOT NULL DEFAULT 0,
  claimed_until timestamptz NOT NULL DEFAULT '-infinity'
);
CREATE INDEX outbox_claim_idx ON outbox (claimed_until, id);

-- Running totals without a hot row: each writer bumps one of 16 slots; readers sum them.
CREATE TABLE pipeline_counters (
  name  text NOT NULL,
  slot  smallint NOT NULL,
  value bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (name, slot)
);
INSERT INTO pipeline_counters (name, slot)
  SELECT n, s FROM unnest(ARRAY['postgres_clicks', 'kinesis_sent', 'clickhouse_rows']) n, generate_series(0, 15) s;

-- Loader position per Kinesis shard (written after ClickHouse acknowledged the insert), and
-- its lease, so one loader at a time reads a shard.
CREATE TABLE loader_checkpoints (
  stream          text NOT NULL,
  shard_id        text NOT NULL,
  sequence_number text,
  finished        boolean NOT NULL DEFAULT false,
  owner           text,
  lease_until     timestamptz NOT NULL DEFAULT '-infinity',
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (stream, shard_id)
);

-- Records the pipeline could not process (poison data), with what went wrong; replayable.
CREATE TABLE dead_letters (
  id              bigserial PRIMARY KEY,
  source          text NOT NULL,
  shard_id        text,
  sequence_number text,
  partition_key   text NOT NULL,
  payload         bytea NOT NULL, -- the record's bytes, as read (poison need not be text)
  error           text NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  replayed_at     timestamptz
);
CREATE INDEX dead_letters_open_idx ON dead_letters (id) WHERE replayed_at IS NULL;
-- A record re-read after a crash is dead-lettered once, not twice.
CREATE UNIQUE INDEX dead_letters_record_idx ON dead_letters (source, shard_id, sequence_number);
