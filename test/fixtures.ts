import type { ClickEvent } from "../shared/event.ts";
import { sign, SIGNATURE_HEADER, type KeyMaterial } from "../shared/signing.ts";
import type { Sql } from "../ingest/src/db/connect.ts";
import { KEYS } from "./helpers.ts";

/** A complete, valid click event (override what the test is about). */
export const clickEvent = (over: Partial<ClickEvent> = {}): ClickEvent => ({
  click_id: crypto.randomUUID(),
  short_url: "http://localhost:8787/abc1234",
  original_url: "https://example.com/landing",
  timestamp: new Date().toISOString(),
  user_agent: "Mozilla/5.0 (test)",
  ip_address: "203.0.113.7",
  referer: "https://news.example/",
  geo_location: { country: "DE", city: "Berlin", colo: "FRA", latitude: 52.5, longitude: 13.4, timezone: "Europe/Berlin" },
  domain: "",
  code: "abc1234",
  link_id: 1,
  redirect_status: 302,
  cache_tier: "kv",
  ...over,
});

/** POSTs a signed beacon (body as given, or JSON of it) to ingest. */
export async function postBeacon(
  ingestUrl: string,
  body: unknown,
  { secret = KEYS.beacon, t, headers = {} }: { secret?: KeyMaterial; t?: number; headers?: Record<string, string> } = {},
) {
  const raw = typeof body === "string" ? body : JSON.stringify(body);
  return fetch(`${ingestUrl}/v1/clicks`, {
    method: "POST",
    headers: { "content-type": "application/json", [SIGNATURE_HEADER]: await sign(secret, raw, t), ...headers },
    body: raw,
  });
}

/**
 * The links that synthetic clicks name, as real rows: ingest takes a click only for the link at
 * its (domain, code) (ingest/src/clicks/link-guard.ts). Inserts each (link_id, domain, code) once, with
 * that id, in the first workspace.
 */
export async function seedLinks(sql: Sql, events: Pick<ClickEvent, "link_id" | "domain" | "code" | "original_url">[]): Promise<void> {
  const links = new Map(events.map((e) => [e.link_id, e]));
  for (const e of links.values())
    await sql`
      INSERT INTO links (id, workspace_id, domain, code, url)
      VALUES (${e.link_id}, (SELECT min(id) FROM workspaces), ${e.domain}, ${e.code}, ${e.original_url})
      ON CONFLICT DO NOTHING`;
  // Links made through the API later take ids after these.
  await sql`SELECT setval(pg_get_serial_sequence('links', 'id'), (SELECT max(id) FROM links))`;
}
