import { OpenAPIHono, type Hook } from "@hono/zod-openapi";
import { Scalar } from "@scalar/hono-api-reference";
import type { AuthVars } from "./auth.ts";
import { ApiError } from "./errors.ts";

/**
 * The documented API: one OpenAPIHono root that mounts every public router, so each appears
 * in /openapi.json (OpenAPI 3.1) and the interactive reference at /docs.
 *
 * To add a router: build it as an OpenAPIHono (`createRouter()` here, or api-router.ts's
 * `apiRouter()`), define its routes with `createRoute` (security: `bearerSecurity`, errors:
 * the `Error` schema), and add `{ path, router }` to the list app.ts passes to `createApi`.
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
    "Links, keys, workspaces and custom domains of the Linkflow URL shortener. Authenticate with an API key: " +
    "`Authorization: Bearer lf_…`. Errors are always `{ error: { status, code, message, field? } }`.",
};

/** The API root: mounts `routers`, serves /openapi.json and /docs. Mount it on the app at "/". */
export function createApi(routers: MountedRouter[]) {
  const api = new OpenAPIHono({ defaultHook: validationHook });
  api.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
    description: "an API key (lf_<prefix>_<secret>); scopes: links:read, links:write, stats:read, admin",
  });
  for (const { path, router } of routers) api.route(path, router);
  api.doc31("/openapi.json", { openapi: "3.1.0", info: API_INFO });
  // The reference page loads Scalar's script from its CDN; the spec itself is served from here.
  api.get("/docs", Scalar({ url: "/openapi.json", pageTitle: "Linkflow API" }));
  return api;
}
