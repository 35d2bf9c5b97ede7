import { isIP } from "node:net";
import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses, json } from "../api-router.ts";
import { apiRouter } from "../openapi.ts";
import { requireScope } from "../auth.ts";
import type { Sql } from "../../db/connect.ts";
import { challengeName, challengeValue, newVerificationToken, type TxtLookup } from "../../links/domain-verify.ts";
import { ApiError } from "../errors.ts";
import { normaliseHost } from "../../links/url-safety.ts";

const HOSTNAME = /^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+$/;
// Special-use and internal names (RFC 6761, 6762, 2606, .internal): no public owner can prove them.
const RESERVED_SUFFIXES = ["localhost", "local", "internal", "arpa", "test", "invalid", "example"];
const VerificationSchema = z
  .object({
    type: z.literal("TXT"),
    name: z.string().openapi({ example: "_linkflow-challenge.go.example.com" }),
    value: z.string().openapi({ example: "linkflow-verify=0123456789abcdef0123456789abcdef" }),
    instructions: z.string(),
  })
  .openapi("DomainVerification");
const DomainSchema = z
  .object({
    id: z.number().int(),
    hostname: z.string(),
    created_at: z.string(),
    verified: z.boolean(),
    verified_at: z.string().nullable(),
    verification: VerificationSchema.optional().openapi({ description: "while pending: the DNS TXT record that proves ownership" }),
  })
  .openapi("Domain");
const security = [{ bearer: [] }];
const IdParams = z.object({ id: z.coerce.number().int().positive().openapi({ param: { name: "id", in: "path" } }) });
const UNIQUE_VIOLATION = "23505";
// The host of a stored (WHATWG-serialised, so lower-case) destination URL.
const URL_HOST = "^[A-Za-z][A-Za-z0-9+.-]*://([^/:?#]*)";

type Row = { id: string; hostname: string; created_at: Date; verified_at: Date | null; verification_token: string | null };

function verificationOf(r: Row) {
  if (r.verified_at || !r.verification_token) return {};
  const name = challengeName(r.hostname);
  const value = challengeValue(r.verification_token);
  return {
    verification: {
      type: "TXT" as const,
      name,
      value,
      instructions: `Add a DNS TXT record named ${name} with the value "${value}", then POST /api/domains/${r.id}/verify. Links can use the domain once it is verified.`,
    },
  };
}
const present = (r: Row) => ({
  id: Number(r.id),
  hostname: r.hostname,
  created_at: r.created_at.toISOString(),
  verified: r.verified_at !== null,
  verified_at: r.verified_at ? r.verified_at.toISOString() : null,
  ...verificationOf(r),
});

/** The normalised hostname a workspace may claim, or 400 invalid_hostname saying why not. */
function claimable(raw: string, ownHosts: ReadonlySet<string>): string {
  const bad = (why: string) => new ApiError(400, "invalid_hostname", why, "hostname");
  const trimmed = raw.trim();
  const host = normaliseHost(trimmed); // IDN → punycode, case, trailing dot, IPv4 forms (0x7f.1)
  const last = host.split(".").at(-1) ?? "";
  if (trimmed.startsWith("[") || isIP(trimmed) || isIP(host) || /^(0x[0-9a-f]*|\d+)$/i.test(last)) throw bad("an IP address cannot be a custom domain; use a DNS name like go.example.com");
  if (!host) throw bad("hostname must be a DNS name like go.example.com");
  if (!host.includes(".")) throw bad("a single-label name cannot be a custom domain; use a DNS name like go.example.com");
  if (!HOSTNAME.test(host)) throw bad("hostname must be a DNS name like go.example.com");
  if (RESERVED_SUFFIXES.some((s) => host === s || host.endsWith("." + s))) throw bad(`'${host}' is a reserved or internal name (.${last}) and cannot be a custom domain`);
  if (ownHosts.has(host)) throw bad("that is the shortener's own domain");
  return host;
}

/**
 * /api/domains: a workspace's custom short domains (each its own code space). A claim is pending
 * until the workspace proves it controls the name with a DNS TXT record (POST /{id}/verify); only
 * a verified domain serves links, is refused as a link destination (a loop), and is unique across
 * workspaces. Point its DNS at the worker and add it to the worker's routes.
 */
export function domainRoutes(sql: Sql, ownHosts: ReadonlySet<string>, lookupTxt: TxtLookup) {
  const app = apiRouter();
  const verifiedElsewhere = async (hostname: string, ws: number) =>
    (await sql`SELECT 1 FROM domains WHERE hostname = ${hostname} AND verified_at IS NOT NULL AND workspace_id <> ${ws}`).length > 0;

  app.openapi(
    createRoute({
      method: "post",
      path: "/",
      operationId: "createDomain",
      summary: "Claim a custom domain (pending until verified by DNS)",
      tags: ["domains"],
      security,
      middleware: [requireScope(sql, "admin")] as const,
      request: { body: { content: { "application/json": { schema: z.object({ hostname: z.string().min(3).max(253) }).strict() } }, required: true } },
      responses: { 201: json(DomainSchema, "the pending domain, with the TXT record to publish"), ...errorResponses(400, 401, 403, 409, 429) },
    }),
    async (c) => {
      const hostname = claimable(c.req.valid("json").hostname, ownHosts);
      const ws = c.var.principal.workspaceId;
      if (await verifiedElsewhere(hostname, ws)) throw new ApiError(409, "domain_taken", "that hostname is already verified by another workspace", "hostname");
      try {
        const [row] = await sql<Row[]>`
          INSERT INTO domains (workspace_id, hostname, verification_token) VALUES (${ws}, ${hostname}, ${newVerificationToken()})
          RETURNING id, hostname, created_at, verified_at, verification_token`;
        return c.json(present(row!), 201);
      } catch (err) {
        if ((err as { code?: string }).code === UNIQUE_VIOLATION) throw new ApiError(409, "domain_taken", "this workspace has already added that hostname", "hostname");
        throw err;
      }
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/{id}/verify",
      operationId: "verifyDomain",
      summary: "Verify a claimed domain by its DNS TXT record",
      tags: ["domains"],
      security,
      middleware: [requireScope(sql, "admin")] as const,
      request: { params: IdParams },
      responses: { 200: json(DomainSchema, "the verified domain"), ...errorResponses(400, 401, 403, 404, 409, 422, 429) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const ws = c.var.principal.workspaceId;
      const [row] = await sql<Row[]>`SELECT id, hostname, created_at, verified_at, verification_token FROM domains WHERE id = ${id} AND workspace_id = ${ws}`;
      if (!row) throw new ApiError(404, "not_found", "no such domain in this workspace");
      if (row.verified_at) return c.json(present(row), 200);
      const host = row.hostname;
      if (await verifiedElsewhere(host, ws)) throw new ApiError(409, "domain_taken", "that hostname is already verified by another workspace");
      const name = challengeName(host);
      const value = challengeValue(row.verification_token!);
      const expected = `expected a DNS TXT record ${name} with the value "${value}"`;
      const found = await lookupTxt(name);
      if (!found.ok) throw new ApiError(422, "verification_failed", `${found.reason}; ${expected}`);
      if (!found.values.includes(value)) throw new ApiError(422, "verification_failed", `${found.values.length ? "no matching TXT record found" : "no TXT record found"}: ${expected}`);
      try {
        const verified = await sql.begin(async (tx) => {
          // This workspace's links to the host would then redirect into the shortener (a loop):
          // they must go first. Other workspaces' links never block the owner (that would be
          // squatting again); they keep sending visitors to whatever the owner's DNS serves.
          const [inUse] = await tx<{ n: number }[]>`
            SELECT count(*)::int AS n FROM links WHERE workspace_id = ${ws} AND (
              substring(url from ${URL_HOST}) = ${host} OR substring(expired_url from ${URL_HOST}) = ${host}
              OR EXISTS (SELECT 1 FROM jsonb_array_elements(targeting) t WHERE substring(t->>'url' from ${URL_HOST}) = ${host}))`;
          const n = inUse!.n;
          if (n > 0)
            throw new ApiError(409, "domain_in_use_as_destination", `${n} link${n === 1 ? "" : "s"} of this workspace point${n === 1 ? "s" : ""} at ${host}; once it is a short domain they would redirect back into the shortener: change their destinations, then verify again`);
          const [done] = await tx<Row[]>`
            UPDATE domains SET verified_at = now() WHERE id = ${id} AND workspace_id = ${ws} AND verified_at IS NULL
            RETURNING id, hostname, created_at, verified_at, verification_token`;
          if (!done) throw new ApiError(404, "not_found", "no such domain in this workspace");
          // The name is decided: the other workspaces' pending claims go.
          await tx`DELETE FROM domains WHERE hostname = ${host} AND id <> ${id} AND verified_at IS NULL`;
          return done;
        });
        return c.json(present(verified), 200);
      } catch (err) {
        if ((err as { code?: string }).code === UNIQUE_VIOLATION) throw new ApiError(409, "domain_taken", "that hostname is already verified by another workspace");
        throw err;
      }
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/",
      operationId: "listDomains",
      summary: "The workspace's domains, verified and pending",
      tags: ["domains"],
      security,
      middleware: [requireScope(sql, "links:read")] as const,
      responses: { 200: json(z.object({ items: z.array(DomainSchema) }), "the workspace's domains"), ...errorResponses(401, 403, 429) },
    }),
    async (c) => {
      const rows = await sql<Row[]>`SELECT id, hostname, created_at, verified_at, verification_token FROM domains WHERE workspace_id = ${c.var.principal.workspaceId} ORDER BY hostname`;
      return c.json({ items: rows.map(present) }, 200);
    },
  );
  app.openapi(
    createRoute({
      method: "delete",
      path: "/{id}",
      operationId: "deleteDomain",
      summary: "Remove a domain (or withdraw a pending claim)",
      tags: ["domains"],
      security,
      middleware: [requireScope(sql, "admin")] as const,
      request: { params: IdParams },
      responses: { 200: json(DomainSchema, "the removed domain"), ...errorResponses(400, 401, 403, 404, 409, 429) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const ws = c.var.principal.workspaceId;
      const [row] = await sql<Row[]>`SELECT id, hostname, created_at, verified_at, verification_token FROM domains WHERE id = ${id} AND workspace_id = ${ws}`;
      if (!row) throw new ApiError(404, "not_found", "no such domain in this workspace");
      const [inUse] = await sql`SELECT 1 FROM links WHERE domain = ${row.hostname} AND workspace_id = ${ws} LIMIT 1`;
      if (inUse) throw new ApiError(409, "domain_in_use", "delete or move the domain's links first");
      await sql`DELETE FROM domains WHERE id = ${id} AND workspace_id = ${ws}`;
      return c.json(present(row), 200);
    },
  );
  return app;
}
