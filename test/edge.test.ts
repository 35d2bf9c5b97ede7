import autocannon from "autocannon";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { linkKey, type EdgeLink } from "../shared/event.ts";
import { body, eventually, json, startStack, type Stack } from "./helpers.ts";

let s: Stack;
let edgeUrl: string;
beforeAll(async () => {
  s = await startStack();
  edgeUrl = s.edge!.url;
});
afterAll(() => s.close());

const visitor = { "user-agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0", referer: "https://news.example/post" };
const visit = (code: string, init: RequestInit = {}) => fetch(`${edgeUrl}/${code}`, { redirect: "manual", headers: visitor, ...init });

async function createLink(link: Record<string, unknown>) {
  const res = await fetch(`${s.ingest.url}/api/links`, { method: "POST", headers: json(s.adminKey), body: JSON.stringify(link) });
  expect(res.status).toBe(201);
  return (await body(res)) as { id: number; code: string; url: string };
}
const clicksFor = async (code: string) => s.sql`SELECT * FROM clicks WHERE code = ${code} ORDER BY received_at`;
const kv = () => s.edge!.mf.getKVNamespace("LINKS");

describe("redirect at the edge", () => {
  it("redirects a new link at once (KV write-through) and records one click with every field", async () => {
    const link = await createLink({ url: "https://example.com/landing?x=1" });
    expect(await (await kv()).get(linkKey("", link.code), "json")).toMatchObject({ url: link.url, status: 302 });

    const res = await visit(link.code);
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toBe("https://example.com/landing?x=1");
    expect(res.headers.get("cache-control")).toBe("private, max-age=0");
    expect(res.headers.get("x-cache-tier")).toBe("kv");

    const rows = await eventually(async () => ((await clicksFor(link.code)).length ? clicksFor(link.code) : null), 2000);
    expect(rows).toHaveLength(1);
    const c = rows![0]!;
    expect(c).toMatchObject({
      link_id: String(link.id),
      domain: "",
      original_url: link.url,
      user_agent: visitor["user-agent"],
      referer: visitor.referer,
      cache_tier: "kv",
      redirect_status: 302,
    });
    expect(c.short_url).toBe(`${edgeUrl}/${link.code}`);
    expect(c.click_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(c.ip_address).toMatch(/^(127\.0\.0\.1|::1|::ffff:127\.0\.0\.1)$/);
    expect(c.geo_location).toMatchObject({ country: "US", city: "San Francisco", colo: "DEV", latitude: 37.78, longitude: -122.39 });
    expect(Math.abs(Date.now() - (c.ts as Date).getTime())).toBeLessThan(60_000);
  });

  it("answers HEAD like GET (no body), uncounted (test/security/edge-head.test.ts)", async () => {
    const link = await createLink({ url: "https://example.com/head" });
    const res = await visit(link.code, { method: "HEAD" });
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toBe(link.url);
    expect(await res.text()).toBe("");
  });

  it("gives exactly N rows for N sequential redirects, served from the isolate after the first", async () => {
    const link = await createLink({ url: "https://example.com/hundred" });
    const tiers = new Map<string, number>();
    for (let i = 0; i < 100; i++) {
      const res = await visit(link.code);
      expect(res.status).toBe(302);
      const tier = res.headers.get("x-cache-tier")!;
      tiers.set(tier, (tiers.get(tier) ?? 0) + 1);
    }
    expect(tiers.get("isolate")).toBeGreaterThanOrEqual(99);
    const n = async () => Number((await s.sql`SELECT count(*) AS n FROM clicks WHERE code = ${link.code}`)[0]!.n);
    await eventually(async () => (await n()) >= 100, 10_000);
    await new Promise((r) => setTimeout(r, 300)); // a late duplicate would show up here
    expect(await n()).toBe(100);
    const [d] = await s.sql`SELECT count(DISTINCT click_id)::int AS n FROM clicks WHERE code = ${link.code}`;
    expect(d!.n).toBe(100);
  });

  it("falls back to the origin on a KV miss, writes the record back to KV, then serves from the isolate", async () => {
    // Insert behind the API's back, so neither KV nor the isolate has it.
    const [row] = await s.sql`INSERT INTO links (workspace_id, code, url, redirect_status)
      VALUES (1, 'origin-only', 'https://example.com/origin', 307) RETURNING id`;
    const before = s.proxy.count("/v1/resolve/origin-only");
    const first = await visit("origin-only");
    expect(first.status).toBe(307);
    expect(first.headers.get("x-cache-tier")).toBe("origin");
    expect(s.proxy.count("/v1/resolve/origin-only")).toBe(before + 1);
    const stored = await eventually(async () => (await kv()).get(linkKey("", "origin-only"), "json"));
    expect(stored).toEqual({ id: Number(row!.id), domain: "", code: "origin-only", url: "https://example.com/origin", status: 307 });
    const second = await visit("origin-only");
    expect(second.headers.get("x-cache-tier")).toBe("isolate");
    expect(s.proxy.count("/v1/resolve/origin-only")).toBe(before + 1);
  });

  it("serves a link seeded only in KV without asking the origin, with its 301", async () => {
    const link: EdgeLink = { id: 999, domain: "", code: "kv-seeded", url: "https://example.com/kv", status: 301 };
    await (await kv()).put(linkKey(link.domain, link.code), JSON.stringify(link));
    const res = await visit("kv-seeded");
    expect(res.status).toBe(301);
    expect(res.headers.get("cache-control")).toBe("private, max-age=0");
    expect(res.headers.get("x-cache-tier")).toBe("kv");
    expect(s.proxy.count("/v1/resolve/kv-seeded")).toBe(0);
  });

  it("404s an unknown code, and a second request inside the negative-cache window does not reach ingest", async () => {
    const first = await visit("never-made");
    expect(first.status).toBe(404);
    expect(first.headers.get("content-type")).toMatch(/text\/html/);
    expect(s.proxy.count("/v1/resolve/never-made")).toBe(1);
    const second = await visit("never-made");
    expect(second.status).toBe(404);
    expect(s.proxy.count("/v1/resolve/never-made")).toBe(1);
    // Paths that cannot be codes never cost a lookup.
    expect((await visit("a.b")).status).toBe(404);
    expect((await visit("x/y")).status).toBe(404);
    expect(s.proxy.count("/v1/resolve/a.b")).toBe(0);
  });

  it("a link created after a miss redirects at once: the write-through clears the negative entry", async () => {
    expect((await visit("late-link")).status).toBe(404);
    await createLink({ url: "https://example.com/late", slug: "late-link" });
    expect((await visit("late-link")).status).toBe(302);
  });
});

describe("click beacon delivery", () => {
  it("batches concurrent clicks of an isolate into few beacons, every click stored once", async () => {
    const link = await createLink({ url: "https://example.com/burst" });
    await visit(link.code); // warm the isolate cache
    await eventually(async () => (await clicksFor(link.code)).length === 1);
    const before = s.proxy.count("/v1/clicks");
    const res = await Promise.all(Array.from({ length: 50 }, () => visit(link.code)));
    expect(res.every((r) => r.status === 302)).toBe(true);
    const n = async () => Number((await s.sql`SELECT count(*) AS n FROM clicks WHERE code = ${link.code}`)[0]!.n);
    expect(await eventually(async () => (await n()) === 51, 5000)).toBe(true);
    // The proxy counts a beacon once its answer went through, possibly after the rows showed.
    expect(await eventually(async () => s.proxy.count("/v1/clicks") > before, 5000)).toBe(true);
    const beacons = s.proxy.count("/v1/clicks") - before;
    expect(beacons).toBeGreaterThanOrEqual(1);
    expect(beacons).toBeLessThan(25);
  });

  it("loses no click under a burst of load (every 302 becomes exactly one row)", async () => {
    const link = await createLink({ url: "https://example.com/load" });
    const CONNECTIONS = 16;
    // A fixed number of requests (not a duration): the burst is the same size however busy the machine is.
    const r = await autocannon({ url: `${edgeUrl}/${link.code}`, connections: CONNECTIONS, amount: 1500 });
    const redirects = r["3xx"];
    expect(redirects).toBe(1500);
    const n = async () => Number((await s.sql`SELECT count(*) AS n FROM clicks WHERE code = ${link.code}`)[0]!.n);
    await eventually(async () => (await n()) >= redirects, 20_000, 200);
    expect(await n()).toBe(redirects);
    const [d] = await s.sql`SELECT count(DISTINCT click_id)::int AS n FROM clicks WHERE code = ${link.code}`;
    expect(d!.n).toBe(await n());
  }, 40_000);

  it("retries a failed beacon with backoff and delivers it once", async () => {
    const link = await createLink({ url: "https://example.com/retry" });
    const before = s.proxy.count("/v1/clicks");
    s.proxy.failures.set("/v1/clicks", 2);
    expect((await visit(link.code)).status).toBe(302);
    const rows = await eventually(async () => ((await clicksFor(link.code)).length ? clicksFor(link.code) : null), 5000);
    expect(rows).toHaveLength(1);
    // The proxy records the delivering request when ingest's answer passes it, which may be
    // after the row is visible here.
    const sent = () => s.proxy.count("/v1/clicks") - before;
    expect(await eventually(async () => (sent() >= 3 ? sent() : 0), 5000)).toBe(3);
  });

  it("keeps redirecting from KV while ingest is unreachable, and answers 503 for what only the origin knows", async () => {
    const link = await createLink({ url: "https://example.com/outage" });
    s.proxy.down = true;
    try {
      const res = await visit(link.code);
      expect(res.status).toBe(302);
      expect(res.headers.get("location")).toBe(link.url);
      const unknown = await visit("only-origin-knows");
      expect(unknown.status).toBe(503);
      expect(unknown.headers.get("retry-after")).toBe("5");
    } finally {
      s.proxy.down = false;
    }
    // The outage was not cached as "not found".
    await s.sql`INSERT INTO links (workspace_id, code, url) VALUES (1, 'only-origin-knows', 'https://example.com/o')`;
    expect((await visit("only-origin-knows")).status).toBe(302);
  });
});

describe("admin route", () => {
  it("refuses unsigned KV writes", async () => {
    const res = await fetch(`${edgeUrl}/_admin/links`, {
      method: "PUT",
      body: JSON.stringify({ id: 1, domain: "", code: "evil", url: "https://evil.example/", status: 302 }),
    });
    expect(res.status).toBe(401);
    expect(await (await kv()).get(linkKey("", "evil"))).toBeNull();
  });
});
