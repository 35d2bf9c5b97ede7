import { Hono } from "hono";
import { requestMessage, SIGNATURE_HEADER, verify } from "../../../../shared/signing.ts";
import type { Sql } from "../../db/connect.ts";
import { ApiError } from "../errors.ts";
import { toEdgeLink } from "../../links/edge-record.ts";
import type { LinkRow } from "../../links/row.ts";

/**
 * GET /v1/resolve/:code?domain=: the edge's origin lookup, signed with the resolve key (`accept`:
 * current and previous). The record carries the password verifier, never the stored hash.
 */
export function resolveRoutes(sql: Sql, keys: { accept: Uint8Array<ArrayBuffer>[]; passwordKey: Uint8Array<ArrayBuffer> }) {
  return new Hono().get("/:code", async (c) => {
    const url = new URL(c.req.url);
    const check = await verify(keys.accept, c.req.header(SIGNATURE_HEADER), requestMessage("GET", url.pathname + url.search));
    if (!check.ok) throw new ApiError(401, "bad_signature", `resolve signature ${check.reason}`);
    // A custom domain's links are served only while the link's workspace holds it verified.
    const [row] = await sql<LinkRow[]>`
      SELECT l.* FROM links l WHERE l.domain = ${c.req.query("domain") ?? ""} AND l.code = ${c.req.param("code")}
        AND (l.domain = '' OR EXISTS (SELECT 1 FROM domains d
              WHERE d.hostname = l.domain AND d.workspace_id = l.workspace_id AND d.verified_at IS NOT NULL))`;
    if (!row) throw new ApiError(404, "not_found", "no such link");
    // The same mapping as the KV write-through: expired, gone and protected links are the edge's call.
    return c.json(await toEdgeLink(row, keys.passwordKey));
  });
}
