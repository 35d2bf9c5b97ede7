import { describe, expect, it, vi } from "vitest";
import type { EdgeLink } from "../../shared/event.ts";
import { decide, type Agent, type RequestFacts } from "./decide.ts";
import { PASSWORD_WINDOW_S } from "./throttle.ts";

const NOW = Date.parse("2026-11-25T12:00:00Z");
const link: EdgeLink = { id: 1, domain: "", code: "c", url: "https://example.com/?utm_source=nl", status: 308 };

/** Facts of a plain desktop visit; the thunks throw unless a test provides them, so a test fails if decide() asks needlessly. */
const facts = (over: Partial<RequestFacts> = {}): RequestFacts => ({
  now: NOW,
  country: "US",
  agent: () => {
    throw new Error("agent parsed");
  },
  languages: () => {
    throw new Error("languages parsed");
  },
  qr: false,
  ...over,
});
const agent = (a: Agent) => () => a;
const go = (l: EdgeLink, f: RequestFacts = facts()) => decide({ link: l, tier: "kv" }, f);

describe("decide: lookup outcomes", () => {
  it("redirects with the link's own status and the tier that answered, parsing nothing", () => {
    expect(decide({ link, tier: "isolate" }, facts())).toEqual({ kind: "redirect", status: 308, location: link.url, link, tier: "isolate", qr: false, count: true, noindex: true });
  });
  it("honours every redirect status", () => {
    for (const status of [301, 302, 307, 308] as const) expect(go({ ...link, status })).toMatchObject({ kind: "redirect", status });
  });
  it("answers not_found for a known miss and unavailable when the origin could not say", () => {
    expect(decide({ link: null, tier: "origin" }, facts())).toEqual({ kind: "not_found" });
    expect(decide({ link: undefined, tier: "origin" }, facts())).toEqual({ kind: "unavailable" });
  });
  it("carries the QR flag into the redirect", () => {
    expect(go(link, facts({ qr: true }))).toMatchObject({ kind: "redirect", qr: true, location: link.url });
  });
});

describe("decide: HEAD", () => {
  it("gives a HEAD the same redirect, marked uncounted (link checkers and unfurlers send HEAD)", () => {
    const get = go(link);
    expect(go(link, facts({ head: true }))).toEqual({ ...get, count: false });
    expect(get).toMatchObject({ count: true });
  });
  it("gives a HEAD the same expired fallback, uncounted, and the same form for a locked link", () => {
    const l = { ...link, expires_at: NOW, expired_url: "https://example.com/over" };
    expect(go(l, facts({ head: true }))).toMatchObject({ kind: "expired_redirect", location: l.expired_url, count: false });
    const locked = { ...link, password: "pbkdf2-sha256+hmac$1$a$b" };
    expect(go(locked, facts({ head: true }))).toEqual({ kind: "password_form", link: locked });
    expect(go(locked, facts({ head: true, password: "cookie" }))).toMatchObject({ kind: "redirect", count: false });
  });
});

describe("decide: expiry and gone", () => {
  it("is live before expires_at and expired from it on (410 without a fallback)", () => {
    expect(go({ ...link, expires_at: NOW + 1 })).toMatchObject({ kind: "redirect" });
    expect(go({ ...link, expires_at: NOW })).toEqual({ kind: "expired", link: { ...link, expires_at: NOW } });
  });
  it("sends an expired or gone link to its expired_url with a 302", () => {
    const l = { ...link, expires_at: NOW - 1, expired_url: "https://example.com/over" };
    expect(go(l, facts({ qr: true }))).toEqual({ kind: "expired_redirect", status: 302, location: "https://example.com/over", link: l, tier: "kv", qr: true, count: true, noindex: true });
    expect(go({ ...link, gone: true })).toMatchObject({ kind: "expired" });
    expect(go({ ...link, gone: true, expired_url: "https://example.com/sold-out" })).toMatchObject({ kind: "expired_redirect", location: "https://example.com/sold-out" });
  });
  it("does not ask for the password of an expired link", () => {
    expect(go({ ...link, gone: true, password: "pbkdf2-sha256+hmac$1$a$b" })).toMatchObject({ kind: "expired" });
  });
});

describe("decide: password", () => {
  const locked = { ...link, password: "pbkdf2-sha256+hmac$1$a$b" };
  it("asks for it without proof, re-asks with an error after a wrong one", () => {
    expect(go(locked)).toEqual({ kind: "password_form", link: locked });
    expect(go(locked, facts({ post: true, password: "wrong" }))).toEqual({ kind: "password_form", link: locked, error: "wrong_password" });
  });
  it("unlocks on the right one and redirects with a valid cookie", () => {
    expect(go(locked, facts({ post: true, password: "verified" }))).toEqual({ kind: "unlocked", link: locked });
    expect(go(locked, facts({ password: "cookie" }))).toMatchObject({ kind: "redirect", location: link.url });
  });
  it("answers a throttled submission with 429's decision and its window, before anything else about the password", () => {
    expect(go(locked, facts({ post: true, password: "throttled" }))).toEqual({ kind: "throttled", link: locked, retryAfterS: PASSWORD_WINDOW_S });
    expect(PASSWORD_WINDOW_S).toBe(60);
  });
  it("never throttles a link without a password, or an expired one (nothing to guess)", () => {
    expect(go(link, facts({ post: true, password: "throttled" }))).toEqual({ kind: "reload" });
    expect(go({ ...locked, expires_at: NOW }, facts({ post: true, password: "throttled" }))).toEqual({ kind: "reload" });
  });
  it("turns a POST to a link without a password (or an expired one) into a GET of the same URL", () => {
    expect(go(link, facts({ post: true }))).toEqual({ kind: "reload" });
    expect(go({ ...locked, gone: true }, facts({ post: true }))).toEqual({ kind: "reload" });
  });
});

describe("decide: targeting", () => {
  const targeted: EdgeLink = {
    ...link,
    utm: { utm_source: "nl", utm_medium: "email" },
    targeting: [
      { country: ["DE", "AT"], device: ["mobile"], url: "https://example.com/de-mobile" },
      { os: ["ios"], url: "https://apps.example/ios?utm_medium=app" },
      { language: ["fr"], url: "https://example.com/fr" },
      { country: ["DE"], url: "https://example.com/de" },
    ],
  };
  const iphone = agent({ device: "mobile", os: "iOS" });
  const android = agent({ device: "mobile", os: "Android" });
  const desktop = agent({ device: "desktop", os: "Windows" });

  it("takes the first rule whose conditions all hold, with the link's UTM merged in", () => {
    expect(go(targeted, facts({ country: "DE", agent: android, languages: () => [] }))).toMatchObject({
      kind: "redirect",
      location: "https://example.com/de-mobile?utm_source=nl&utm_medium=email",
    });
    // DE but desktop: rule 1 fails on device, 2 on OS, 3 on language; rule 4 matches.
    expect(go(targeted, facts({ country: "DE", agent: desktop, languages: () => ["en"] }))).toMatchObject({
      location: "https://example.com/de?utm_source=nl&utm_medium=email",
    });
  });
  it("compares OS names case-insensitively and keeps a UTM parameter the URL already has", () => {
    expect(go(targeted, facts({ agent: iphone }))).toMatchObject({ location: "https://apps.example/ios?utm_medium=app&utm_source=nl" });
  });
  it("matches a language if any of the visitor's languages is listed", () => {
    expect(go(targeted, facts({ agent: desktop, languages: () => ["en", "fr"] }))).toMatchObject({ location: "https://example.com/fr?utm_source=nl&utm_medium=email" });
  });
  it("falls back to the link's URL (UTM already in it) when no rule matches, or the country is unknown", () => {
    expect(go(targeted, facts({ country: undefined, agent: desktop, languages: () => ["en"] }))).toMatchObject({ location: link.url });
  });
  it("parses the User-Agent and languages only when a rule needs them, and at most as the rules ask", () => {
    const ua = vi.fn(desktop);
    const langs = vi.fn(() => ["de"]);
    const countryOnly: EdgeLink = { ...link, targeting: [{ country: ["FR"], url: "https://example.com/fr" }] };
    expect(go(countryOnly, facts({ agent: ua, languages: langs }))).toMatchObject({ location: link.url });
    expect(ua).not.toHaveBeenCalled();
    expect(langs).not.toHaveBeenCalled();
    // US: rule 1 fails on country before its device is looked at; rule 2 needs the OS.
    expect(go(targeted, facts({ country: "US", agent: ua, languages: langs }))).toMatchObject({ location: link.url });
    expect(ua).toHaveBeenCalledTimes(1);
    expect(langs).toHaveBeenCalledTimes(1);
  });
  it("uses a targeting URL that does not parse as it is", () => {
    expect(go({ ...link, utm: { utm_source: "x" }, targeting: [{ country: ["US"], url: "not a url" }] })).toMatchObject({ location: "not a url" });
  });
});

describe("decide: the visitor's query (forwarded by default)", () => {
  // What ingest pushes for url https://example.com/p?id=7&utm_source=site with utm { utm_source: "nl", utm_medium: "email" }:
  // the destination's own utm_source kept, the link's utm_medium appended.
  const campaign: EdgeLink = { ...link, url: "https://example.com/p?id=7&utm_source=site&utm_medium=email", utm: { utm_source: "nl", utm_medium: "email" } };
  const q = (query: string, over: Partial<RequestFacts> = {}) => facts({ query, ...over });

  it("appends the visitor's parameters to the destination's own and the link's UTM", () => {
    expect(go(campaign, q("ref=y&lang=de"))).toMatchObject({ kind: "redirect", location: "https://example.com/p?id=7&utm_source=site&utm_medium=email&ref=y&lang=de" });
  });
  it("lets a key the visitor sends replace that key, as Shlink and Dub do: visitor > destination's own > link UTM", () => {
    expect(go(campaign, q("utm_source=x&ref=y"))).toMatchObject({ location: "https://example.com/p?id=7&utm_medium=email&utm_source=x&ref=y" });
    expect(go(campaign, q("utm_medium=social&id=8"))).toMatchObject({ location: "https://example.com/p?utm_source=site&utm_medium=social&id=8" });
  });
  it("replaces every pair of a repeated key, keeps the visitor's repeats, and compares keys decoded (a+b is a%20b)", () => {
    const l = { ...link, url: "https://example.com/?t=1&k=0&t=2&a%20b=1" };
    expect(go(l, q("t=3&t=4"))).toMatchObject({ location: "https://example.com/?k=0&a%20b=1&t=3&t=4" });
    expect(go(l, q("a+b=2"))).toMatchObject({ location: "https://example.com/?t=1&k=0&t=2&a+b=2" });
  });
  it("adds a query to a destination without one, before its fragment, keeping both sides' encoding", () => {
    expect(go({ ...link, url: "https://example.com/a#top" }, q("x=1"))).toMatchObject({ location: "https://example.com/a?x=1#top" });
    expect(go({ ...link, url: "https://example.com/?q=a%20b&flag#f" }, q("n=J%C3%BCrgen+X&e"))).toMatchObject({ location: "https://example.com/?q=a%20b&flag&n=J%C3%BCrgen+X&e#f" });
  });
  it("never forwards the QR marker qr=1 (other qr values are plain parameters), nor empty pairs", () => {
    expect(go(link, q("qr=1", { qr: true }))).toMatchObject({ location: link.url, qr: true });
    expect(go(link, q("qr=1&x=2", { qr: true }))).toMatchObject({ location: `${link.url}&x=2` });
    expect(go(link, q("qr=0"))).toMatchObject({ location: `${link.url}&qr=0` });
    expect(go(link, q("&&"))).toMatchObject({ location: link.url });
    expect(go(link, q(""))).toMatchObject({ location: link.url });
  });
  it("forwards into the matching targeting rule's URL, after its UTM", () => {
    const t: EdgeLink = { ...campaign, targeting: [{ country: ["DE"], url: "https://example.de/?utm_medium=app" }] };
    expect(go(t, q("utm_campaign=x", { country: "DE" }))).toMatchObject({ location: "https://example.de/?utm_medium=app&utm_source=nl&utm_campaign=x" });
  });
  it("forwards nothing for a link with forward_query false, or into an expired link's fallback", () => {
    expect(go({ ...campaign, forward_query: false }, q("ref=y"))).toMatchObject({ kind: "redirect", location: campaign.url });
    expect(go({ ...link, gone: true, expired_url: "https://example.com/over" }, q("ref=y"))).toMatchObject({ kind: "expired_redirect", location: "https://example.com/over" });
  });
  it("gives a HEAD the same forwarded location", () => {
    expect(go(link, q("x=1", { head: true }))).toMatchObject({ location: `${link.url}&x=1`, count: false });
  });
});

describe("decide: indexing", () => {
  it("marks every redirect noindex but a crawlable link's; an expired link's fallback always", () => {
    expect(go(link)).toMatchObject({ kind: "redirect", noindex: true });
    expect(go({ ...link, crawlable: true })).toMatchObject({ kind: "redirect", noindex: false });
    expect(go({ ...link, crawlable: true, gone: true, expired_url: "https://example.com/over" })).toMatchObject({ kind: "expired_redirect", noindex: true });
  });
});
