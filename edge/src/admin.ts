import { Hono } from "hono";
import { z } from "zod";
import { edgeLinkSchema, linkKey } from "../../shared/event.ts";
import { requestMessage, SIGNATURE_HEADER, verify } from "../../shared/signing.ts";
import { isolateCache } from "./cache.ts";
import { num, type Env } from "./env.ts";

const deleteSchema = z.object({ domain: z.string(), code: z.string().min(1) });

/**
 * KV write-through from ingest: PUT a link's edge record, DELETE it. Signed with EDGE_SECRET;
 * also drops this isolate's cached copy so the change shows here at once.
 */
export const admin = new Hono<{ Bindings: Env }>().on(["PUT", "DELETE"], "/links", async (c) => {
  const body = await c.req.text();
  const check = await verify(c.env.EDGE_SECRET, c.req.header(SIGNATURE_HEADER), requestMessage(c.req.method, "/_admin/links", body));
  if (!check.ok) return c.json({ error: { status: 401, code: "bad_signature", message: `signature ${check.reason}` } }, 401);
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    json = undefined;
  }
  const schema = c.req.method === "PUT" ? edgeLinkSchema : deleteSchema;
  const parsed = schema.safeParse(json);
  if (!parsed.success) return c.json({ error: { status: 400, code: "invalid_body", message: parsed.error.issues[0]!.message } }, 400);
  const key = linkKey(parsed.data.domain, parsed.data.code);
  if (c.req.method === "PUT") await c.env.LINKS.put(key, JSON.stringify(parsed.data));
  else await c.env.LINKS.delete(key);
  isolateCache(num(c.env.ISOLATE_MAX_ENTRIES, 10_000)).delete(key);
  return c.body(null, 204);
});
