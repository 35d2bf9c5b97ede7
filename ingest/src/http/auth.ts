import { createHash } from "node:crypto";
import { getConnInfo } from "@hono/node-server/conninfo";
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { LRUCache } from "lru-cache";
import type { Sql } from "../db/connect.ts";
import { ApiError } from "./errors.ts";
import { authenticate, type Principal, type Scope } from "../auth/keys.ts";
import { failureThrottle, rateLimiter } from "../auth/rate-limit.ts";

// One limiter for the process: every route counts against the same per-key bucket.
const take = rateLimiter();

/**
 * Keys that failed to authenticate (by SHA-256), per database: for 30 s a retried unknown key is
 * refused without a lookup. Only ever delays a key that becomes valid (ensureKey at start-up, in
 * a fresh process), never admits one; a revoked key is refused anyway.
 */
const unknownKeys = new WeakMap<Sql, LRUCache<string, true>>();
const unknownKeysOf = (sql: Sql) => {
  let cache = unknownKeys.get(sql);
  if (!cache) unknownKeys.set(sql, (cache = new LRUCache<string, true>({ max: 10_000, ttl: 30_000 })));
  return cache;
};

export type AuthVars = { principal: Principal };

/**
 * Bearer API key with `scope` (or admin, for any scope but operator); `null`: any valid key
 * (GET /api/keys/me). Sets `c.var.principal`.
 */
export const requireScope = (sql: Sql, scope: Scope | null) =>
  createMiddleware<{ Variables: AuthVars }>(async (c, next) => {
    const header = c.req.header("authorization") ?? "";
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m) throw new ApiError(401, "unauthorized", "send an API key as 'Authorization: Bearer <key>'");
    const unknown = unknownKeysOf(sql);
    const hash = createHash("sha256").update(m[1]!).digest("base64");
    const principal = unknown.has(hash) ? null : await authenticate(sql, m[1]!);
    if (!principal) {
      unknown.set(hash, true);
      throw new ApiError(401, "unauthorized", "unknown or revoked API key");
    }
    const limit = take(principal.keyId, principal.requestsPerMinute);
    c.header("X-RateLimit-Limit", String(principal.requestsPerMinute));
    c.header("X-RateLimit-Remaining", String(limit.remaining));
    if (limit.retryAfterS !== null) {
      c.header("Retry-After", String(limit.retryAfterS));
      throw new ApiError(429, "rate_limited", `this key allows ${principal.requestsPerMinute} requests a minute; retry in ${limit.retryAfterS} s`);
    }
    // admin implies every workspace scope, never the instance-wide operator scope.
    if (scope && !principal.scopes.includes(scope) && !(scope !== "operator" && principal.scopes.includes("admin")))
      throw new ApiError(403, "forbidden", `this key lacks the '${scope}' scope`);
    c.set("principal", principal);
    await next();
  });

/**
 * The client's address as the throttle counts it: the socket's peer (X-Forwarded-For is not
 * trusted), an IPv4-mapped address as IPv4, an IPv6 address by its /64 (one host's usual share).
 */
export function clientAddress(c: Context): string {
  let addr: string | undefined;
  try {
    addr = getConnInfo(c).remote.address;
  } catch {
    return "unknown"; // not served by @hono/node-server
  }
  if (!addr) return "unknown";
  if (/^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(addr)) return addr.slice(7);
  if (!addr.includes(":")) return addr;
  const [head = "", tail = ""] = addr.split("::");
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = addr.includes("::") ? [...h, ...Array(Math.max(0, 8 - h.length - t.length)).fill("0"), ...t] : h;
  return groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, "")).join(":") + "::/64";
}

/**
 * Failed authentication per client address: after `perMinute` 401s in a minute, every request
 * under the mount answers 429 `rate_limited` (Retry-After) until the minute ends, a correct key's
 * too — checking the key would be the database lookup this avoids. 0: off.
 */
export function failedAuthThrottle(perMinute: number) {
  const throttle = failureThrottle(perMinute);
  return createMiddleware(async (c, next) => {
    if (perMinute <= 0) return next();
    const addr = clientAddress(c);
    const wait = throttle.retryAfterS(addr);
    if (wait !== null) {
      c.header("Retry-After", String(wait));
      throw new ApiError(429, "rate_limited", `too many failed authentications from this address; retry in ${wait} s`);
    }
    await next();
    if (c.res.status === 401) throttle.fail(addr);
  });
}
