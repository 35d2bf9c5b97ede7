-- Custom domains need proof of ownership: a claim stays pending until the workspace publishes
-- the DNS TXT record `_linkflow-challenge.<hostname>` = `linkflow-verify=<verification_token>`
-- and POST /api/domains/{id}/verify finds it. Only verified domains serve links or count as the
-- shortener's own hosts, so a pending claim blocks nobody.
ALTER TABLE domains
  ADD COLUMN verification_token text,
  ADD COLUMN verified_at        timestamptz;

-- Existing domains were added before verification existed and may already serve links: they are
-- treated as verified (since their creation), so existing deployments keep working unchanged.
UPDATE domains SET verified_at = created_at;

ALTER TABLE domains ADD CONSTRAINT domains_pending_has_token CHECK (verified_at IS NOT NULL OR verification_token IS NOT NULL);

-- The hostname is unique among verified domains only; pending claims of the same name by several
-- workspaces may coexist (one per workspace), and the first to verify removes the others.
ALTER TABLE domains DROP CONSTRAINT domains_hostname_key;
ALTER TABLE domains ADD CONSTRAINT domains_workspace_hostname_key UNIQUE (workspace_id, hostname);
CREATE UNIQUE INDEX domains_verified_hostname_key ON domains (hostname) WHERE verified_at IS NOT NULL;
