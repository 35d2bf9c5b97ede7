import { createRoute, z } from "@hono/zod-openapi";
import { apiRouter, errorResponses } from "./api-router.ts";
import { requireScope } from "./auth.ts";
import type { Sql } from "./db.ts";
import { ApiError } from "./errors.ts";

const HOSTNAME = /^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+$/;
const DomainSchema = z.object({ id: z.number().int(), hostname: z.string(), created_at: z.string() }).openapi("Domain");
const json = <T extends z.ZodType>(schema: T, description: string) => ({ description, content: { "application/json": { schema } } });
const security = [{ bearer: [] }];
const UNIQUE_VIOLATION = "23505";

type Row = { id: string; hostname: string; created_at: Date };
const present = (r: Row) => ({ id: Number(r.id), hostname: r.hostname, created_at: r.created_at.toISOString() });

/**
 * /api/domains: a workspace's custom short domains (each its own code space). The hostname is
 * unique across workspaces; point its DNS at the worker and add it to the worker's routes.
 */
export function domainRoutes(sql: Sql, ownHosts: string[]) {
  const app = apiRouter();
  app.openapi(
    createRoute({
      method: "post",
      path: "/",
      tags: ["domains"],
      security,
      middleware: [requireScope(sql, "admin")] as const,
      request: { body: { content: { "application/json": { schema: z.object({ hostname: z.string().min(3).max(253) }).strict() } }, required: true } },
      responses: { 201: json(DomainSchema, "the domain"), ...errorResponses(400, 401, 403, 409, 429) },
    }),
    async (c) => {
      const hostname = c.req.valid("json").hostname.trim().toLowerCase().replace(/\.$/, "");
      if (!HOSTNAME.test(hostname)) throw new ApiError(400, "invalid_hostname", "hostname must be a DNS name like go.example.com", "hostname");
      if (ownHosts.includes(hostname)) throw new ApiError(400, "invalid_hostname", "that is the shortener's primary domain", "hostname");
      try {
        const [row] = await sql<Row[]>`INSERT INTO domains (workspace_id, hostname) VALUES (${c.var.principal.workspaceId}, ${hostname}) RETURNING id, hostname, created_at`;
        return c.json(present(row!), 201);
      } catch (err) {
        if ((err as { code?: string }).code === UNIQUE_VIOLATION) throw new ApiError(409, "domain_taken", "that hostname is already registered", "hostname");
        throw err;
      }
    },
  );
  app.openapi(
    createRoute({ method: "get", path: "/", tags: ["domains"], security, middleware: [requireScope(sql, "links:read")] as const, responses: { 200: json(z.object({ items: z.array(DomainSchema) }), "the workspace's domains"), ...errorResponses(401, 403, 429) } }),
    async (c) => {
      const rows = await sql<Row[]>`SELECT id, hostname, created_at FROM domains WHERE workspace_id = ${c.var.principal.workspaceId} ORDER BY hostname`;
      return c.json({ items: rows.map(present) }, 200);
    },
  );
  app.openapi(
    createRoute({
      method: "delete",
      path: "/{id}",
      tags: ["domains"],
      security,
      middleware: [requireScope(sql, "admin")] as const,
      request: { params: z.object({ id: z.coerce.number().int().positive().openapi({ param: { name: "id", in: "path" } }) }) },
      responses: { 200: json(DomainSchema, "the removed domain"), ...errorResponses(400, 401, 403, 404, 409, 429) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const ws = c.var.principal.workspaceId;
      const [row] = await sql<Row[]>`SELECT id, hostname, created_at FROM domains WHERE id = ${id} AND workspace_id = ${ws}`;
      if (!row) throw new ApiError(404, "not_found", "no such domain in this workspace");
      const [inUse] = await sql`SELECT 1 FROM links WHERE domain = ${row.hostname} LIMIT 1`;
      if (inUse) throw new ApiError(409, "domain_in_use", "delete or move the domain's links first");
      await sql`DELETE FROM domains WHERE id = ${id} AND workspace_id = ${ws}`;
      return c.json(present(row), 200);
    },
  );
  return app;
}
