import { Hono } from "hono";
import en from "zod/v4/locales/en.js";
import { robotsKey, robotsSchema } from "../../shared/edge-link.ts";
import { requestMessage, SIGNATURE_HEADER, verify } from "../../shared/signing.ts";
import { num, type Env } from "./env.ts";
import { acceptedKeys } from "./keys.ts";

/**
 * robots.txt, per domain (each has its own code space), as Shlink writes it: everything is
 * disallowed but the links that opted in (`crawlable`), whose `Allow` lines come first for
 * crawlers that take the first matching line. The worker cannot list KV cheaply, so ingest
 * keeps the rendered file in KV under `robots:<domain>` (PostgreSQL is the truth) and pushes
 * it again whenever a link's crawlable state, code or domain changes (PUT /_admin/robots).
 */
export const robotsTxt = (allow: readonly string[]) => `User-agent: *\n${allow.map((code) => `Allow: /${code}\n`).join("")}Disallow: /\n`;

/** GET /robots.txt of a domain ("" the primary): KV's copy, else nothing allowed. */
export async function robotsResponse(env: Env, domain: string): Promise<Response> {
  const text = (await env.LINKS.get(robotsKey(domain), { cacheTtl: Math.max(30, num(env.KV_CACHE_TTL_S, 60)) })) ?? robotsTxt([]);
  return new Response(text, { headers: { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "public, max-age=300" } });
}

const english = { error: en().localeError };
const refuse = (status: 400 | 401, code: string, message: string) => ({ error: { status, code, message } });

/**
 * PUT /_admin/robots `{ domain, allow: [codes] }`: the whole list of a domain's crawlable codes
 * (codes only, so a push cannot add other lines), signed with the edge-admin key like
 * /_admin/links. An empty list deletes the key (the default file is the same).
 */
export const robotsAdmin = new Hono<{ Bindings: Env }>().put("/robots", async (c) => {
  const body = await c.req.text();
  const ring = (await acceptedKeys(c.env)).map((k) => k.edgeAdmin);
  const check = await verify(ring, c.req.header(SIGNATURE_HEADER), requestMessage("PUT", "/_admin/robots", body));
  if (!check.ok) return c.json(refuse(401, "bad_signature", `signature ${check.reason}`), 401);
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    json = undefined;
  }
  const parsed = robotsSchema.safeParse(json, english);
  if (!parsed.success) return c.json(refuse(400, "invalid_body", parsed.error.issues[0]!.message), 400);
  const { domain, allow } = parsed.data;
  if (allow.length) await c.env.LINKS.put(robotsKey(domain), robotsTxt(allow));
  else await c.env.LINKS.delete(robotsKey(domain));
  return c.body(null, 204);
});
