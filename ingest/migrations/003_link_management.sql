-- Link management (issue 5): the fields marketing teams set, custom domains, key limits.

-- Custom domains: each has its own code space (links.domain); '' is the primary short domain.
CREATE TABLE domains (
  id           bigserial PRIMARY KEY,
  workspace_id bigint NOT NULL REFERENCES workspaces(id),
  hostname     text NOT NULL UNIQUE CHECK (hostname = lower(hostname) AND hostname <> ''),
  created_at   timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE links
  ADD COLUMN title            text,
  ADD COLUMN tags             text[] NOT NULL DEFAULT '{}',
  ADD COLUMN expires_at       timestamptz,
  ADD COLUMN expired_url      text,
  ADD COLUMN max_clicks       bigint CHECK (max_clicks > 0),
  -- "pbkdf2-sha256$<iterations>$<salt b64url>$<hash b64url>": the worker verifies it itself.
  ADD COLUMN password_hash    text,
  ADD COLUMN targeting        jsonb NOT NULL DEFAULT '[]',
  ADD COLUMN utm              jsonb NOT NULL DEFAULT '{}',
  ADD COLUMN archived         boolean NOT NULL DEFAULT false,
  -- Set by the click-limit enforcer when the pipeline's count reached max_clicks.
  ADD COLUMN limit_reached_at timestamptz;
CREATE INDEX links_tags_idx ON links USING gin (tags);
CREATE INDEX links_workspace_created_idx ON links (workspace_id, created_at DESC, id DESC);

ALTER TABLE api_keys
  ADD COLUMN requests_per_minute int NOT NULL DEFAULT 600 CHECK (requests_per_minute > 0),
  ADD COLUMN last_used_at        timestamptz;
