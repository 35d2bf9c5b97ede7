import { describe, expect, it } from "vitest";
import { clickEventSchema } from "../../../shared/event.ts";
import { applyPrivacy, truncateIp, visitorHash } from "./privacy.ts";

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
const privacy = { anonymizeIp: true, respectDnt: true, saltSecret: "secret-0123456789abcdef" };

describe("privacy", () => {
  it("truncates IPs to /24 and /48", () => {
    expect(truncateIp("203.0.113.77")).toBe("203.0.113.0");
    expect(truncateIp("2001:db8:abcd:12::1")).toBe("2001:db8:abcd::");
    expect(truncateIp("2001:0db8:0000:0012:0000:0000:0000:0001")).toBe("2001:db8:0::");
    expect(truncateIp("::1")).toBe("0:0:0::");
    expect(truncateIp("::ffff:192.0.2.9")).toBe("::ffff:192.0.2.0");
    expect(truncateIp("")).toBe("");
  });

  it("hashes visitors with a daily salt from the full IP", () => {
    const a = applyPrivacy(base, privacy);
    expect(a.ip_address).toBe("198.51.100.0");
    expect(a.visitor_hash).toBe(visitorHash(privacy.saltSecret, base.timestamp, "198.51.100.23", base.user_agent));
    expect(a.visitor_hash).toMatch(/^[0-9a-f]{32}$/);
    expect(applyPrivacy({ ...base, timestamp: "2026-03-01T23:59:59.000Z" }, privacy).visitor_hash).toBe(a.visitor_hash);
    expect(applyPrivacy({ ...base, timestamp: "2026-03-02T00:00:00.000Z" }, privacy).visitor_hash).not.toBe(a.visitor_hash);
    // The salt is the UTC day's, whatever offset the timestamp was written with.
    expect(applyPrivacy({ ...base, timestamp: "2026-03-02T01:30:00.000+02:00" }, privacy).visitor_hash).toBe(a.visitor_hash);
    expect(applyPrivacy(base, { ...privacy, anonymizeIp: false }).ip_address).toBe(base.ip_address);
  });

  it("drops personal fields of a Do-Not-Track click when respected", () => {
    const d = applyPrivacy({ ...base, dnt: true }, privacy);
    expect(d).toMatchObject({ ip_address: "", user_agent: "mobile", referer: "https://news.example/", visitor_hash: "", dnt: true });
    expect(d.geo_location).toEqual({ country: "DE", colo: "FRA" });
    const ignored = applyPrivacy({ ...base, dnt: true }, { ...privacy, respectDnt: false });
    expect(ignored.dnt).toBe(false);
    expect(ignored.user_agent).toBe(base.user_agent);
  });

  it("keeps every field of the shared schema (the prepared event is built field by field)", () => {
    const fields = [...Object.keys(clickEventSchema.shape), "visitor_hash"].sort();
    expect(Object.keys(applyPrivacy(base, privacy)).sort()).toEqual(fields);
    expect(Object.keys(applyPrivacy({ ...base, dnt: true }, privacy)).sort()).toEqual(fields);
    const kept = applyPrivacy({ ...base, qr: true }, { ...privacy, anonymizeIp: false });
    // A version 1 event (no v) becomes a current-version record, the new fields at their defaults.
    expect(kept).toEqual({ ...base, qr: true, dnt: false, v: 3, origin_ms: null, isolate_id: null, seq: null, visitor_hash: kept.visitor_hash });
    expect(applyPrivacy({ ...base, v: 2, cache_tier: "origin", origin_ms: 41 }, privacy)).toMatchObject({ v: 3, origin_ms: 41 });
  });
});
