import type { ClickEvent } from "../shared/event.ts";
import { sign, SIGNATURE_HEADER } from "../shared/signing.ts";
import { EDGE_SECRET } from "./helpers.ts";

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
  { secret = EDGE_SECRET, t, headers = {} }: { secret?: string; t?: number; headers?: Record<string, string> } = {},
) {
  const raw = typeof body === "string" ? body : JSON.stringify(body);
  return fetch(`${ingestUrl}/v1/clicks`, {
    method: "POST",
    headers: { "content-type": "application/json", [SIGNATURE_HEADER]: await sign(secret, raw, t), ...headers },
    body: raw,
  });
}
