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

-- Every acknowledged click. UNIQUE(click_id) makes a retried beacon a no-op.
CREATE TABLE clicks (
  id              bigserial PRIMARY KEY,
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
  CONSTRAINT clicks_click_id_key UNIQUE (click_id)
);
CREATE INDEX clicks_link_ts_idx ON clicks (link_id, ts);
