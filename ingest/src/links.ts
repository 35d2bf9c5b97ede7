import { Hono } from "hono";
import { z } from "zod";
import type { EdgeLink } from "../../shared/event.ts";
import { requireScope, type AuthVars } from "./auth.ts";
import { isAllowedSlug, randomCode } from "./codes.ts";
import type { Sql } from "./db.ts";
import { ApiError } from "./errors.ts";
import { parseJson } from "./validate.ts";

const httpUrl = z.url({ protocol: /^https?$/, error: "url must be an absolute http(s) URL" }).max(8192);

const createLinkSchema = z
  .object({
    url: httpUrl,
    slug: z.string().refine(isAllowedSlug, "slug must be 1-64 of A-Z a-z 0-9 _ - (starting with a letter or digit) and not reserved").optional(),
  })
  .strict();

interface LinkRow {
  id: string;
  domain: string;
  code: string;
  url: string;
  redirect_status: number;
  created_at: Date;
}

const UNIQUE_VIOLATION = "23505";
const CODE_ATTEMPTS = 5;

export const toEdgeLink = (r: LinkRow): EdgeLink => ({
  id: Number(r.id),
  domain: r.domain,
  code: r.code,
  url: r.url,
  status: r.redirect_status as EdgeLink["status"],
});

export interface LinkDeps {
  sql: Sql;
  shortBaseUrl: string;
  pushEdge: (link: EdgeLink) => Promise<boolean>;
}

export function linkRoutes({ sql, shortBaseUrl, pushEdge }: LinkDeps) {
  const present = (r: LinkRow) => ({
    id: Number(r.id),
    code: r.code,
    domain: r.domain,
    short_url: `${shortBaseUrl.replace(/\/$/, "")}/${r.code}`,
    url: r.url,
    redirect_status: r.redirect_status,
    created_at: r.created_at.toISOString(),
  });

  async function insert(workspaceId: number, url: string, code: string): Promise<LinkRow | null> {
    try {
      const [row] = await sql<LinkRow[]>`
        INSERT INTO links (workspace_id, domain, code, url) VALUES (${workspaceId}, '', ${code}, ${url})
        RETURNING id, domain, code, url, redirect_status, created_at`;
      return row!;
    } catch (err) {
      if ((err as { code?: string }).code === UNIQUE_VIOLATION) return null;
      throw err;
    }
  }

  return new Hono<{ Variables: AuthVars }>()
    .post("/", requireScope(sql, "links:write"), async (c) => {
      const body = parseJson(createLinkSchema, await c.req.text());
      const ws = c.var.principal.workspaceId;
      let row: LinkRow | null = null;
      if (body.slug !== undefined) {
        row = await insert(ws, body.url, body.slug);
        if (!row) throw new ApiError(409, "slug_taken", `the slug '${body.slug}' is already in use`, "slug");
      } else {
        // The UNIQUE constraint is the collision check; a clash just draws again.
        for (let i = 0; i < CODE_ATTEMPTS && !row; i++) row = await insert(ws, body.url, randomCode());
        if (!row) throw new ApiError(503, "code_space_exhausted", "could not allocate a short code; retry");
      }
      await pushEdge(toEdgeLink(row));
      return c.json(present(row), 201);
    })
    .get("/:code", requireScope(sql, "links:read"), async (c) => {
      const [row] = await sql<LinkRow[]>`
        SELECT id, domain, code, url, redirect_status, created_at FROM links
        WHERE domain = ${c.req.query("domain") ?? ""} AND code = ${c.req.param("code")}
          AND workspace_id = ${c.var.principal.workspaceId}`;
      if (!row) throw new ApiError(404, "not_found", "no such link in this workspace");
      return c.json(present(row));
    });
}
