import { OpenAPIHono, type Hook } from "@hono/zod-openapi";
import type { AuthVars } from "./auth.ts";
import { registerHeaders } from "./api-router.ts";
import { ApiError } from "./errors.ts";
import { docsRoutes } from "./routes/docs.ts";

/**
 * The documented API: one OpenAPIHono root that mounts every public router, so each appears
 * in /openapi.json (OpenAPI 3.1) and the interactive reference at /docs.
 *
 * To add a router: build it as an OpenAPIHono (`createRouter()` here, or api-router.ts's
 * `apiRouter()`), define its routes with `createRoute` (an operationId, a summary, security:
 * `bearerSecurity`, responses: api-router.ts's `json` and `errorResponses`), and add
 * `{ path, router }` to the list app.ts passes to `createApi`. test/openapi.test.ts fails for
 * an /api route that is not in the spec; test/openapi-lint.test.ts runs Redocly's linter on it.
 */

/** Validation failures → our JSON error (400), naming the field; the code says which part was wrong. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const validationHook: Hook<any, any, any, void> = (result) => {
  if (result.success) return;
  const issue = result.error.issues[0]!;
  const field = issue.path.map(String).join(".");
  const code = result.target === "json" || result.target === "form" ? "invalid_body" : result.target === "query" ? "invalid_query" : "invalid_params";
  throw new ApiError(400, code, field ? `${field}: ${issue.message}` : issue.message, field || undefined);
};

/** A router whose routes end up in the spec when mounted through `createApi`. */
export const createRouter = () => new OpenAPIHono<{ Variables: AuthVars }>({ defaultHook: validationHook });

/** `security` of a route that needs an API key. */
/** A router of the documented API (one validation hook for all). */
export const apiRouter = createRouter;

export const bearerSecurity = [{ bearer: [] as string[] }];

export interface MountedRouter {
  /** Mount path, e.g. "/api/links". */
  path: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  router: OpenAPIHono<any, any, any>;
}

export const API_INFO = {
  title: "Linkflow API",
  version: "1.0.0",
  description:
    "Links, keys, workspaces, custom domains, click statistics and pipeline health of the Linkflow URL shortener. " +
    "Authenticate with an API key: `Authorization: Bearer lf_…`. Errors are always `{ error: { status, code, message, field? } }`. " +
    "Every response carries `X-Request-Id`; once the key is known, `X-RateLimit-Limit` and `X-RateLimit-Remaining`; a 429 carries `Retry-After`.",
  // The project is not published under an open licence (package.json: private, no licence).
  license: { name: "Proprietary", identifier: "LicenseRef-Linkflow-Proprietary" },
};

/** Relative: the spec describes the server that serves it, whatever its origin. */
export const API_SERVERS = [{ url: "/", description: "this ingest server" }];

export const API_TAGS = [
  { name: "links", description: "Short links: create, change, list, bulk, CSV import/export, QR codes (scopes links:read, links:write)" },
  { name: "keys", description: "API keys of the caller's workspace (admin)" },
  { name: "workspaces", description: "Workspaces, each with its first admin key (operator)" },
  { name: "domains", description: "Custom short domains, proven by a DNS TXT record (admin; listing: links:read)" },
  { name: "stats", description: "Click statistics from ClickHouse, live counts and streams, recent clicks (stats:read)" },
  { name: "sre", description: "Edge cache tiers and hit ratio (stats:read; an operator key sees every workspace)" },
  { name: "pipeline", description: "Click pipeline health and dead letters, instance-wide (operator)" },
  { name: "webhooks", description: "Webhook endpoints for link and click events, their delivery log and replays (webhooks:read, webhooks:write)" },
];

/** The API root: mounts `routers`, serves /openapi.json and /docs. Mount it on the app at "/". */
export function createApi(routers: MountedRouter[]) {
  const api = new OpenAPIHono({ defaultHook: validationHook });
  api.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
    description: "an API key (lf_<prefix>_<secret>); scopes: links:read, links:write, stats:read, webhooks:read, webhooks:write, admin",
  });
  registerHeaders(api);
  for (const { path, router } of routers) api.route(path, router);
  api.doc31("/openapi.json", { openapi: "3.1.0", info: API_INFO, servers: API_SERVERS, tags: API_TAGS });
  // The reference page, its script served from node_modules (no CDN), under the dashboard's CSP.
  api.route("/", docsRoutes());
  return api;
}
