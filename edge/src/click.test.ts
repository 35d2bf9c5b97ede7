import { describe, expect, it } from "vitest";
import { CLICK_EVENT_VERSION, clickEventSchema, type EdgeLink } from "../../shared/event.ts";
import { buildClick, clientIp, geoFrom, isoTime } from "./click.ts";

const link: EdgeLink = { id: 7, domain: "", code: "abc1234", url: "https://example.com/landing?x=1", status: 302 };

describe("buildClick", () => {
  it("fills every event field from the request and request.cf", () => {
    const req = new Request("http://localhost:8787/abc1234?utm=1", {
      headers: { "user-agent": "Mozilla/5.0", "cf-connecting-ip": "203.0.113.9", referer: "https://news.example/" },
    });
    Object.defineProperty(req, "cf", { value: { country: "DE", city: "Berlin", latitude: "52.52", longitude: "13.40", colo: "FRA", timezone: "Europe/Berlin" } });
    const e = buildClick(req, { link, tier: "kv", location: link.url, status: 302, qr: false }, Date.parse("2026-01-02T03:04:05.000Z"));
    expect(clickEventSchema.parse(e)).toEqual(e);
    expect(e).toMatchObject({
      short_url: "http://localhost:8787/abc1234",
      original_url: link.url,
      timestamp: "2026-01-02T03:04:05.000Z",
      user_agent: "Mozilla/5.0",
      ip_address: "203.0.113.9",
      referer: "https://news.example/",
      geo_location: { country: "DE", city: "Berlin", latitude: 52.52, longitude: 13.4, colo: "FRA", timezone: "Europe/Berlin" },
      cache_tier: "kv",
      link_id: 7,
      code: "abc1234",
      redirect_status: 302,
    });
    expect(e.click_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(e).not.toHaveProperty("qr");
  });

  it("records where the visitor was actually sent, and the QR flag", () => {
    const req = new Request("http://go.example/abc1234?qr=1");
    const e = buildClick(req, { link, tier: "isolate", location: "https://example.com/mobile?utm_source=x", status: 302, qr: true });
    expect(clickEventSchema.parse(e)).toEqual(e);
    expect(e).toMatchObject({ original_url: "https://example.com/mobile?utm_source=x", short_url: "http://go.example/abc1234", qr: true });
  });

  it("clips hostile headers so ingest never refuses (and loses) a real click", () => {
    const req = new Request("http://localhost:8787/abc1234", {
      headers: { "user-agent": "x".repeat(5000), "cf-connecting-ip": "not an ip", referer: "r".repeat(9000) },
    });
    Object.defineProperty(req, "cf", { value: { country: "Germany", latitude: "999", region: "y".repeat(500), asn: -1 } });
    const e = buildClick(req, { link, tier: "origin", location: link.url, status: 302, qr: false });
    expect(clickEventSchema.safeParse(e).success).toBe(true);
    expect(e.ip_address).toBe("");
    expect(e.user_agent).toHaveLength(1024);
    expect(e.geo_location).toEqual({ region: "y".repeat(128) });
  });

  it("takes the first X-Forwarded-For hop when Cloudflare's header is absent", () => {
    expect(clientIp(new Headers({ "x-forwarded-for": "2001:db8::1, 10.0.0.1" }))).toBe("2001:db8::1");
    expect(clientIp(new Headers())).toBe("");
    expect(geoFrom(undefined)).toEqual({});
  });

  it("numbers every click of the isolate: one isolate id, seq counting up by one (the completeness check)", () => {
    const req = () => new Request("http://localhost:8787/abc1234");
    const clicks = Array.from({ length: 5 }, () => buildClick(req(), { link, tier: "isolate", location: link.url, status: 302, qr: false }));
    expect(new Set(clicks.map((c) => c.isolate_id)).size).toBe(1);
    expect(clicks[0]!.isolate_id).toMatch(/^[0-9a-f-]{36}$/);
    const first = clicks[0]!.seq!;
    expect(clicks.map((c) => c.seq)).toEqual([first, first + 1, first + 2, first + 3, first + 4]);
  });

  it("is the current event version, with the origin resolve's duration on origin-tier clicks only", () => {
    const req = () => new Request("http://localhost:8787/abc1234");
    const sent = (tier: "isolate" | "kv" | "origin") => ({ link, tier, location: link.url, status: 302 as const, qr: false });
    const origin = buildClick(req(), sent("origin"), Date.now(), 37);
    expect(clickEventSchema.parse(origin)).toEqual(origin);
    expect(origin).toMatchObject({ v: CLICK_EVENT_VERSION, cache_tier: "origin", origin_ms: 37 });
    // A duration of 0 ms (workerd's clock moved not at all) is a measurement too.
    expect(buildClick(req(), sent("origin"), Date.now(), 0).origin_ms).toBe(0);
    // Isolate and KV hits never asked the origin: no field, whatever the caller passed.
    for (const tier of ["isolate", "kv"] as const) {
      const e = buildClick(req(), sent(tier), Date.now(), 37);
      expect(e.v).toBe(CLICK_EVENT_VERSION);
      expect(e).not.toHaveProperty("origin_ms");
    }
    // Not measured (no duration given): no field either; a clock that stepped back gives 0, not a refused click.
    expect(buildClick(req(), sent("origin"))).not.toHaveProperty("origin_ms");
    const back = buildClick(req(), sent("origin"), Date.now(), -5);
    expect(back.origin_ms).toBe(0);
    expect(clickEventSchema.safeParse(back).success).toBe(true);
  });

  it("flags Do Not Track and Global Privacy Control requests", () => {
    const base = { link, tier: "kv" as const, location: link.url, status: 302 as const, qr: false };
    expect(buildClick(new Request("http://localhost/abc1234", { headers: { dnt: "1" } }), base).dnt).toBe(true);
    expect(buildClick(new Request("http://localhost/abc1234", { headers: { "sec-gpc": "1" } }), base).dnt).toBe(true);
    expect(buildClick(new Request("http://localhost/abc1234", { headers: { dnt: "0" } }), base)).not.toHaveProperty("dnt");
  });
});

describe("isoTime", () => {
  it("is toISOString of the millisecond asked, also when asked again, out of order or across seconds", () => {
    const around = Array.from({ length: 2100 }, (_, i) => 1_767_225_599_000 + i); // three seconds, every ms
    const random = Array.from({ length: 2000 }, () => Math.floor(Math.random() * 4_102_444_800_000)); // 1970–2100
    for (const ms of [0, 1, 9, 10, 99, 100, 999, 1000, -1, -999, -1000, 253_402_300_799_999, ...around, ...random, 1_767_225_600_123, 5])
      expect(isoTime(ms)).toBe(new Date(ms).toISOString());
  });
});
