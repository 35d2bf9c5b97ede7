import { describe, expect, it } from "vitest";
import { enrich, utmOf } from "./enrich.ts";

const base = {
  click_id: "00000000-0000-4000-8000-000000000001",
  short_url: "http://localhost:8787/a",
  original_url: "https://x.example/?utm_source=nl&utm_campaign=c1",
  timestamp: "2026-03-01T10:00:00.000Z",
  user_agent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
  ip_address: "198.51.100.23",
  referer: "https://news.example/path?q=1",
  geo_location: { country: "DE", city: "Berlin", latitude: 52.5, longitude: 13.4, colo: "FRA" },
  domain: "",
  code: "a",
  link_id: 1,
  redirect_status: 302 as const,
  cache_tier: "kv" as const,
};

describe("enrichment", () => {
  it("parses agents, bots, referer host and UTM", () => {
    expect(enrich(base)).toMatchObject({ browser: "Mobile Safari", os: "iOS", device: "mobile", is_bot: false, referer_host: "news.example", utm_source: "nl", utm_medium: "", utm_campaign: "c1" });
    expect(enrich({ ...base, user_agent: "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)" }).is_bot).toBe(true);
    expect(enrich({ ...base, user_agent: "bot", dnt: true })).toMatchObject({ is_bot: true, browser: "", device: "desktop" });
    expect(utmOf("not a url").utm_source).toBe("");
  });

  it("parses a destination's UTM once and answers each destination with its own", () => {
    const a = "https://x.example/?utm_source=a&utm_term=" + "t".repeat(300);
    expect(utmOf(a)).toEqual({ utm_source: "a", utm_medium: "", utm_campaign: "", utm_term: "t".repeat(256), utm_content: "" });
    expect(utmOf(a)).toBe(utmOf(a)); // the cached object, frozen: no caller can change it for the next click
    expect(Object.isFrozen(utmOf(a))).toBe(true);
    expect(utmOf("https://x.example/?utm_source=b").utm_source).toBe("b");
    expect(Object.keys(enrich(base)).sort()).toEqual(["browser", "device", "is_bot", "os", "referer_host", "utm_campaign", "utm_content", "utm_medium", "utm_source", "utm_term"]);
  });

});
