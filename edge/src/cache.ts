import { LRUCache } from "lru-cache";
import type { EdgeLink } from "../../shared/event.ts";

/** A cached lookup: the link, or `null` for a known miss (negative entry). */
export type Cached = { link: EdgeLink | null };

let cache: LRUCache<string, Cached> | undefined;

/**
 * The in-isolate cache, shared by all requests an isolate serves. Bounded in entries; each
 * entry carries its own TTL (short for misses, so a new link is not hidden for long).
 */
export function isolateCache(max: number): LRUCache<string, Cached> {
  cache ??= new LRUCache<string, Cached>({ max, ttlAutopurge: false, allowStale: false });
  return cache;
}
