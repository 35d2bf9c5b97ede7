import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses, json } from "../api-router.ts";
import { apiRouter } from "../openapi.ts";
import { requireScope } from "../auth.ts";
import type { Sql } from "../../db/connect.ts";
import { ApiError } from "../errors.ts";
import { createKey, SCOPES, type KeyRecord } from "../../auth/keys.ts";

const KeySchema = z
  .object({
    id: z.number().int(),
    workspace_id: z.number().int(),
    name: z.string(),
    prefix: z.string(),
    scopes: z.array(z.enum(SCOPES)),
    requests_per_minute: z.number().int(),
    created_at: z.string(),
    revoked_at: z.string().nullable(),
  })
  .openapi("ApiKey");
const CreatedKeySchema = KeySchema.extend({ key: z.string().describe("the secret: shown once, never again") }).openapi("CreatedApiKey");
const CreateKeyBody = z
  .object({
    name: z.string().min(1).max(100),
    scopes: z.array(z.enum(SCOPES)).min(1).max(SCOPES.length),
    requests_per_minute: z.number().int().min(1).max(100_000).optional(),
  })
  .strict();
const WorkspaceSchema = z.object({ id: z.number().int(), name: z.string(), created_at: z.string() }).openapi("Workspace");
const IdParam = z.object({ id: z.coerce.number().int().positive().openapi({ param: { name: "id", in: "path" } }) });

const present = (r: KeyRecord) => ({
  id: Number(r.id),
  workspace_id: Number(r.workspace_id),
  name: r.name,
  prefix: r.prefix,
  scopes: r.scopes,
  requests_per_minute: r.requests_per_minute,
  created_at: new Date(r.created_at).toISOString(),
  revoked_at: r.revoked_at ? new Date(r.revoked_at).toISOString() : null,
});
const security = [{ bearer: [] }];

/**
 * /api/keys: create (secret shown once), list, revoke — within the caller's workspace (admin
 * scope; granting `operator` needs `operator`); `GET /me`: the calling key itself (any key), so
 * a client (the dashboard) offers only what its scopes allow.
 */
export function keyRoutes(sql: Sql) {
  const app = apiRouter();
  const admin = requireScope(sql, "admin");
  app.openapi(
    createRoute({ method: "get", path: "/me", operationId: "getOwnKey", summary: "The calling API key (no secret): its workspace and scopes", tags: ["keys"], security, middleware: [requireScope(sql, null)] as const, responses: { 200: json(KeySchema, "the calling key"), ...errorResponses(401, 429) } }),
    async (c) => {
      const [row] = await sql<KeyRecord[]>`
        SELECT id, workspace_id, name, prefix, scopes, requests_per_minute, created_at, revoked_at
        FROM api_keys WHERE id = ${c.var.principal.keyId}`;
      return c.json(present(row!), 200);
    },
  );
  app.openapi(
    createRoute({ method: "post", path: "/", operationId: "createKey", summary: "Create an API key in the caller's workspace (the secret is shown once)", tags: ["keys"], security, middleware: [admin] as const, request: { body: { content: { "application/json": { schema: CreateKeyBody } }, required: true } }, responses: { 201: json(CreatedKeySchema, "the new key, with its secret"), ...errorResponses(400, 401, 403, 429) } }),
    async (c) => {
      const body = c.req.valid("json");
      // Only an operator grants operator: a workspace admin cannot mint an instance-wide key.
      if (body.scopes.includes("operator") && !c.var.principal.scopes.includes("operator"))
        throw new ApiError(403, "forbidden", "only a key with the 'operator' scope can grant it", "scopes");
      // Always the caller's own workspace (the body has no workspace field: .strict() refuses one).
      const { key, record } = await createKey(sql, c.var.principal.workspaceId, body.name, [...new Set(body.scopes)], body.requests_per_minute);
      return c.json({ ...present(record), key }, 201);
    },
  );
  app.openapi(
    createRoute({ method: "get", path: "/", operationId: "listKeys", summary: "The workspace's API keys (no secrets)", tags: ["keys"], security, middleware: [admin] as const, responses: { 200: json(z.object({ items: z.array(KeySchema) }), "the workspace's keys (no secrets)"), ...errorResponses(401, 403, 429) } }),
    async (c) => {
      const rows = await sql<KeyRecord[]>`
        SELECT id, workspace_id, name, prefix, scopes, requests_per_minute, created_at, revoked_at
        FROM api_keys WHERE workspace_id = ${c.var.principal.workspaceId} ORDER BY id`;
      return c.json({ items: rows.map(present) }, 200);
    },
  );
  app.openapi(
    createRoute({ method: "delete", path: "/{id}", operationId: "revokeKey", summary: "Revoke an API key", tags: ["keys"], security, middleware: [admin] as const, request: { params: IdParam }, responses: { 200: json(KeySchema, "the revoked key"), ...errorResponses(400, 401, 403, 404, 429) } }),
    async (c) => {
      const { id } = c.req.valid("param");
      const [row] = await sql<KeyRecord[]>`
        UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
        WHERE id = ${id} AND workspace_id = ${c.var.principal.workspaceId}
          AND (${c.var.principal.scopes.includes("operator")} OR NOT 'operator' = ANY(scopes))
        RETURNING id, workspace_id, name, prefix, scopes, requests_per_minute, created_at, revoked_at`;
      if (!row) throw new ApiError(404, "not_found", "no such key in this workspace (an operator key is revoked by an operator key only)");
      return c.json(present(row), 200);
    },
  );
  return app;
}

/**
 * /api/workspaces: the operator (operator scope: the bootstrap key, or a key it granted) creates
 * workspaces; each comes with its first admin key (admin only, not operator), shown once.
 */
export function workspaceRoutes(sql: Sql) {
  const app = apiRouter();
  app.use(requireScope(sql, "operator"));
  app.openapi(
    createRoute({
      method: "post",
      path: "/",
      operationId: "createWorkspace",
      summary: "Create a workspace with its first admin key (operator)",
      tags: ["workspaces"],
      security,
      request: { body: { content: { "application/json": { schema: z.object({ name: z.string().min(1).max(100) }).strict() } }, required: true } },
      responses: { 201: json(z.object({ workspace: WorkspaceSchema, admin_key: CreatedKeySchema }), "the workspace and its first admin key"), ...errorResponses(400, 401, 403, 429) },
    }),
    async (c) => {
      const { name } = c.req.valid("json");
      const [ws] = await sql<{ id: string; name: string; created_at: Date }[]>`INSERT INTO workspaces (name) VALUES (${name}) RETURNING id, name, created_at`;
      const { key, record } = await createKey(sql, Number(ws!.id), "admin", ["admin"]);
      return c.json({ workspace: { id: Number(ws!.id), name: ws!.name, created_at: ws!.created_at.toISOString() }, admin_key: { ...present(record), key } }, 201);
    },
  );
  return app;
}
