import { createMiddleware } from "hono/factory";
import type { Sql } from "./db.ts";
import { ApiError } from "./errors.ts";
import { authenticate, type Principal, type Scope } from "./keys.ts";
import { rateLimiter } from "./rate-limit.ts";

// One limiter for the process: every route counts against the same per-key bucket.
const take = rateLimiter();

export type AuthVars = { principal: Principal };

/** Bearer API key with `scope` (or admin, for any scope but operator). Sets `c.var.principal`. */
export const requireScope = (sql: Sql, scope: Scope) =>
  createMiddleware<{ Variables: AuthVars }>(async (c, next) => {
    const header = c.req.header("authorization") ?? "";
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m) throw new ApiError(401, "unauthorized", "send an API key as 'Authorization: Bearer <key>'");
    const principal = await authenticate(sql, m[1]!);
    if (!principal) throw new ApiError(401, "unauthorized", "unknown or revoked API key");
    const limit = take(principal.keyId, principal.requestsPerMinute);
    c.header("X-RateLimit-Limit", String(principal.requestsPerMinute));
    c.header("X-RateLimit-Remaining", String(limit.remaining));
    if (limit.retryAfterS !== null) {
      c.header("Retry-After", String(limit.retryAfterS));
      throw new ApiError(429, "rate_limited", `this key allows ${principal.requestsPerMinute} requests a minute; retry in ${limit.retryAfterS} s`);
    }
    // admin implies every workspace scope, never the instance-wide operator scope.
    if (!principal.scopes.includes(scope) && !(scope !== "operator" && principal.scopes.includes("admin")))
      throw new ApiError(403, "forbidden", `this key lacks the '${scope}' scope`);
    c.set("principal", principal);
    await next();
  });
