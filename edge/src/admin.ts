import { Hono } from "hono";
import * as z from "zod/mini";
import en from "zod/v4/locales/en.js";
import { checkUrl } from "../../shared/destination.ts";
import { edgeLinkSchema, linkKey, type EdgeLink } from "../../shared/edge-link.ts";
import { requestMessage, SIGNATURE_HEADER, verify } from "../../shared/signing.ts";
import { isolateCache } from "./cache.ts";
import { num, type Env } from "./env.ts";
import { acceptedKeys } from "./keys.ts";

const deleteSchema = z.strictObject({ domain: z.string(), code: z.string().check(z.minLength(1)) });
// zod/mini has no messages of its own (every issue reads "Invalid input"): classic zod's English ones.
const english = { error: en().localeError };

/**
 * A pushed record's destinations under the rules ingest applies (shared/destination.ts): a
 * signed push is still refused what ingest would refuse, so a leaked admin key cannot make a
 * short link send visitors to `javascript:`, a CR/LF header or the operator's own network.
 * Returns the first problem, or null.
 */
export function unsafeDestination(link: EdgeLink, allowPrivate: boolean): string | null {
  const urls: [string, string][] = [["url", link.url]];
  if (link.expired_url !== undefined) urls.push(["expired_url", link.expired_url]);
  link.targeting?.forEach((t, i) => urls.push([`targeting.${i}.url`, t.url]));
  for (const [field, url] of urls) {
    const r = checkUrl(url, { allowPrivate });
    if (!r.ok) return `${field}: ${r.reason}`;
  }
  return null;
}

const refuse = (status: 400 | 401, code: string, message: string) => ({ error: { status, code, message } });

/**
 * KV write-through from ingest: PUT a link's edge record, DELETE it. Signed with the edge-admin
 * key (EDGE_SECRET's, or EDGE_SECRET_PREVIOUS's during a rotation); also drops this isolate's
 * cached copy so the change shows here at once.
 */
export const admin = new Hono<{ Bindings: Env }>().on(["PUT", "DELETE"], "/links", async (c) => {
  const body = await c.req.text();
  const ring = (await acceptedKeys(c.env)).map((k) => k.edgeAdmin);
  const check = await verify(ring, c.req.header(SIGNATURE_HEADER), requestMessage(c.req.method, "/_admin/links", body));
  if (!check.ok) return c.json(refuse(401, "bad_signature", `signature ${check.reason}`), 401);
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    json = undefined;
  }
  const put = c.req.method === "PUT";
  const parsed = (put ? edgeLinkSchema : deleteSchema).safeParse(json, english);
  if (!parsed.success) return c.json(refuse(400, "invalid_body", parsed.error.issues[0]!.message), 400);
  if (put) {
    const unsafe = unsafeDestination(parsed.data as EdgeLink, c.env.ALLOW_PRIVATE_DESTINATIONS === "true");
    if (unsafe) return c.json(refuse(400, "unsafe_url", unsafe), 400);
  }
  const key = linkKey(parsed.data.domain, parsed.data.code);
  if (put) await c.env.LINKS.put(key, JSON.stringify(parsed.data));
  else await c.env.LINKS.delete(key);
  isolateCache(num(c.env.ISOLATE_MAX_ENTRIES, 10_000)).delete(key);
  return c.body(null, 204);
});
