import type { CacheTier } from "../../shared/constants.ts";
import { edgeLinkSchema, linkKey, type EdgeLink } from "../../shared/edge-link.ts";
import { requestMessage, sign, SIGNATURE_HEADER } from "../../shared/signing.ts";
import { isolateCache } from "./cache.ts";
import { num, type Env } from "./env.ts";
import { signingKeys } from "./keys.ts";

/** `originMs`: how long the origin resolve took (ms), set only when the origin was asked. */
export type Resolution =
  | { link: EdgeLink; tier: CacheTier; originMs?: number }
  | { link: null; tier: CacheTier; originMs?: number }
  /** The origin could not answer (ingest down or failing) and no tier had the link. */
  | { link: undefined; tier: "origin"; originMs?: number };

/** The origin resolve call: signed GET /v1/resolve/:code?domain=. */
async function fromOrigin(env: Env, domain: string, code: string): Promise<EdgeLink | null | undefined> {
  const path = `/v1/resolve/${encodeURIComponent(code)}?domain=${encodeURIComponent(domain)}`;
  try {
    const res = await fetch(env.INGEST_URL + path, {
      headers: { [SIGNATURE_HEADER]: await sign((await signingKeys(env)).resolve, requestMessage("GET", path)) },
      signal: AbortSignal.timeout(3000),
    });
    if (res.status === 404) return null;
    if (!res.ok) return undefined;
    const parsed = edgeLinkSchema.safeParse(await res.json());
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Finds a link: isolate cache, then KV (with its edge cacheTtl), then ingest. An origin hit is
 * written back to KV (after the response); a miss is remembered briefly in the isolate.
 */
export async function resolveLink(env: Env, ctx: Pick<ExecutionContext, "waitUntil">, domain: string, code: string): Promise<Resolution> {
  const key = linkKey(domain, code);
  const cache = isolateCache(num(env.ISOLATE_MAX_ENTRIES, 10_000));
  const hit = cache.get(key);
  if (hit) return { link: hit.link, tier: "isolate" };

  const kv = await env.LINKS.get<EdgeLink>(key, { type: "json", cacheTtl: Math.max(30, num(env.KV_CACHE_TTL_S, 60)) });
  const ttl = num(env.ISOLATE_TTL_MS, 10_000);
  // A record of the old format (the stored password hash itself) is read as a miss: the origin's
  // answer, with a verifier, replaces it in KV.
  if (kv && !("password_hash" in kv)) {
    if (ttl > 0) cache.set(key, { link: kv }, { ttl });
    return { link: kv, tier: "kv" };
  }

  // Timed only here, where the origin is asked (isolate and KV hits cost nothing more). In
  // workerd Date.now() moves only across I/O, and this span is the I/O: the resolve's fetch.
  const started = Date.now();
  const link = await fromOrigin(env, domain, code);
  const originMs = Date.now() - started;
  if (link === undefined) return { link: undefined, tier: "origin", originMs };
  if (link) {
    if (ttl > 0) cache.set(key, { link }, { ttl });
    ctx.waitUntil(env.LINKS.put(key, JSON.stringify(link)));
  } else {
    const negativeTtl = num(env.NEGATIVE_TTL_MS, 5_000);
    if (negativeTtl > 0) cache.set(key, { link: null }, { ttl: negativeTtl }); // lru-cache reads 0 as "forever"
  }
  return { link, tier: "origin", originMs };
}
