-- Redirect conventions: the visitor's query is forwarded to the destination unless the link turns
-- it off (Shlink's forwardQuery, default on); robots.txt disallows everything but the links that
-- opt in (Shlink's crawlable, default off). Existing links get the defaults.
ALTER TABLE links
  ADD COLUMN forward_query boolean NOT NULL DEFAULT true,
  ADD COLUMN crawlable     boolean NOT NULL DEFAULT false;

-- A domain's robots.txt lists its crawlable codes: few rows, read on every change of one.
CREATE INDEX links_crawlable_idx ON links (domain, code) WHERE crawlable;
