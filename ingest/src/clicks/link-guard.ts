import { LRUCache } from "lru-cache";
import type { ClickEvent } from "../../../shared/event.ts";
import type { Sql } from "../db/connect.ts";

/**
 * Does each click's link_id belong to its (domain, code)? A beacon is signed by the worker, but
 * a signature proves only who sent it: a forged or confused click must not land on another
 * workspace's link (its counts, its max_clicks). The pairs are cached, so a busy link costs no
 * query; a beacon's unknown or mismatching pairs cost one query together. PostgreSQL decides
 * (UNIQUE (domain, code)); the cache only remembers what it said, briefly, because a code can
 * be deleted and taken again by another link.
 */
export function linkGuard(sql: Sql, opts: { max?: number; ttlMs?: number } = {}) {
  const known = new LRUCache<string, number>({ max: opts.max ?? 100_000, ttl: opts.ttlMs ?? 60_000 });
  const keyOf = (e: Pick<ClickEvent, "domain" | "code">) => `${e.domain}\n${e.code}`;

  /** The clicks whose link_id is not the link at their (domain, code) now. */
  return async function mismatched(events: ClickEvent[]): Promise<ClickEvent[]> {
    const unsure = events.filter((e) => known.get(keyOf(e)) !== e.link_id);
    if (!unsure.length) return [];
    const pairs = new Map(unsure.map((e) => [keyOf(e), e]));
    const domains = [...pairs.values()].map((e) => e.domain);
    const codes = [...pairs.values()].map((e) => e.code);
    const rows = await sql<{ id: string; domain: string; code: string }[]>`
      SELECT l.id, l.domain, l.code FROM links l
      JOIN unnest(${domains}::text[], ${codes}::text[]) AS k(domain, code) USING (domain, code)`;
    for (const r of rows) known.set(keyOf(r), Number(r.id));
    return unsure.filter((e) => known.get(keyOf(e)) !== e.link_id);
  };
}
export type LinkGuard = ReturnType<typeof linkGuard>;
