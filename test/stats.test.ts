import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rows } from "../ingest/src/analytics/clickhouse.ts";
import { storeClicks } from "../ingest/src/clicks/store.ts";
import { applyPrivacy, visitorHash } from "../ingest/src/clicks/privacy.ts";
import type { ClickEvent } from "../shared/event.ts";
import { clickEvent, postBeacon } from "./fixtures.ts";
import { body, DATABASE_URL, eventually, json, KEYS, startStack, type Stack } from "./helpers.ts";

/**
 * Stats, SRE and recent-clicks APIs over a seeded set of clicks, end to end (PostgreSQL →
 * Kinesis → ClickHouse), with every batch delivered twice by the forwarder. The seeded clicks
 * are days old, older than a beacon may carry (shared/event.ts MAX_CLICK_AGE_MS): they are
 * stored as the beacon route stores them (privacy step, then click and outbox rows); a few
 * current clicks go through the beacon route itself.
 */
const UA = {
  iphone: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
  chrome: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
  googlebot: "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
};
const H = 3_600_000;
const D = Math.floor(Date.now() / (24 * H)) * 24 * H - 2 * 24 * H; // UTC midnight two days ago
const at = (ms: number) => new Date(D + ms).toISOString();
const iso = (ms: number) => new Date(ms).toISOString();
/** Ingest's visitor-hash secret when VISITOR_SALT_SECRET is unset: the derived visitor-salt key, as hex. */
const SALT_SECRET = Buffer.from(KEYS.visitorSalt).toString("hex");

let s: Stack;
let linkA: number;
let linkB: number;
let linkC: number;
let otherKey: string;
let statsKey: string;
let readKey: string;
const clicks: Record<string, ClickEvent> = {};
/** Current clicks (after the stats range) through the beacon route. */
const current: ClickEvent[] = [];

const api = (path: string, key = statsKey) => fetch(`${s.ingest.url}${path}`, { headers: json(key) });
const stats = async (query: Record<string, string | number>, key = statsKey) => {
  const res = await api(`/api/stats?${new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)]))}`, key);
  expect(res.status).toBe(200);
  return body(res);
};
const range = { from: iso(D), to: iso(D + 48 * H) };

beforeAll(async () => {
  s = await startStack({ edge: false, pipeline: true, extras: { duplicateDelivery: true }, env: { IP_ANONYMIZE: "true", RESPECT_DNT: "true", DATABASE_REPLICA_URL: DATABASE_URL } });
  const ws = await body(await fetch(`${s.ingest.url}/api/workspaces`, { method: "POST", headers: json(s.adminKey), body: JSON.stringify({ name: "other" }) }));
  otherKey = ws.admin_key.key;
  const link = async (workspace: number | null, code: string, url: string, tags: string[]) => {
    const [r] = await s.sql`INSERT INTO links (workspace_id, domain, code, url, tags)
      VALUES (${workspace ?? s.sql`(SELECT min(id) FROM workspaces)`}, '', ${code}, ${url}, ${tags}) RETURNING id`;
    return Number(r!.id);
  };
  linkA = await link(null, "statsA", "https://shop.example/spring?utm_source=news&utm_medium=email&utm_campaign=spring", ["promo"]);
  linkB = await link(null, "statsB", "https://shop.example/b", []);
  linkC = await link(ws.workspace.id, "statsC", "https://acme.example/", []);
  const key = async (scopes: string[]) =>
    (await body(await fetch(`${s.ingest.url}/api/keys`, { method: "POST", headers: json(s.adminKey), body: JSON.stringify({ name: scopes.join("+"), scopes }) }))).key;
  statsKey = await key(["stats:read"]);
  readKey = await key(["links:read"]);

  const A = { link_id: linkA, code: "statsA", original_url: "https://shop.example/spring?utm_source=news&utm_medium=email&utm_campaign=spring" };
  const geo = (country: string, colo: string) => ({ country, colo, city: "X", latitude: 1, longitude: 2 });
  Object.assign(clicks, {
    c1: clickEvent({ ...A, timestamp: at(10.25 * H), user_agent: UA.iphone, ip_address: "198.51.100.23", referer: "https://news.example/a", geo_location: geo("DE", "FRA"), qr: true, cache_tier: "isolate" }),
    c2: clickEvent({ ...A, timestamp: at(10.75 * H), user_agent: UA.chrome, ip_address: "2001:db8:abcd:12::1", referer: "https://www.google.com/search?q=x", geo_location: geo("US", "IAD"), cache_tier: "kv" }),
    c3: clickEvent({ ...A, timestamp: at(23.5 * H), user_agent: UA.chrome, ip_address: "192.0.2.50", referer: "", geo_location: geo("DE", "FRA"), cache_tier: "kv" }),
    c4: clickEvent({ ...A, timestamp: at(11 * H), user_agent: UA.googlebot, ip_address: "66.249.66.1", referer: "", geo_location: geo("US", "IAD"), cache_tier: "origin" }),
    c5: clickEvent({ ...A, timestamp: at(33 * H), user_agent: UA.iphone, ip_address: "198.51.100.23", referer: "", geo_location: geo("DE", "FRA"), cache_tier: "isolate" }),
    c6: clickEvent({ ...A, timestamp: at(12 * H), user_agent: UA.iphone, ip_address: "198.51.100.23", referer: "", geo_location: geo("DE", "FRA"), cache_tier: "isolate" }),
    c7: clickEvent({ ...A, timestamp: at(13 * H), user_agent: UA.chrome, ip_address: "203.0.113.9", referer: "https://social.example/path?x=1", geo_location: geo("FR", "CDG"), cache_tier: "origin", dnt: true }),
    c8: clickEvent({ link_id: linkB, code: "statsB", timestamp: at(10 * H), user_agent: UA.chrome, geo_location: geo("GB", "LHR"), cache_tier: "kv" }),
    c9: clickEvent({ link_id: linkC, code: "statsC", timestamp: at(10 * H), user_agent: UA.chrome, geo_location: geo("JP", "NRT"), cache_tier: "kv" }),
  });
  // The route's own clicks: what /metrics counts per edge tier, and a visitor hash salted by ingest itself.
  current.push(...Array.from({ length: 4 }, () => clickEvent({ link_id: linkB, code: "statsB", user_agent: UA.iphone, ip_address: "198.51.100.23", cache_tier: "kv" })));
  expect((await postBeacon(s.ingest.url, current)).status).toBe(202);
  // The seeded clicks, as the route stores them with this stack's privacy settings.
  const privacy = { anonymizeIp: true, respectDnt: true, saltSecret: SALT_SECRET };
  await storeClicks(s.sql, Object.values(clicks).map((e) => applyPrivacy(e, privacy)));
  const all = [...Object.values(clicks), ...current];
  const status = async () => body(await fetch(`${s.ingest.url}/api/pipeline`, { headers: json(s.adminKey) }));
  // Every batch reached ClickHouse twice (forced duplicate delivery), and still 13 distinct clicks.
  expect(await eventually(async () => (await status()).clickhouse_rows >= 2 * all.length, 30_000, 200)).toBe(true);
  expect((await status()).clickhouse_clicks).toBe(all.length);
  // And the sealer rolled up every closed hour they fall in (docs/ANALYTICS.md).
  expect(await eventually(async () => (await s.sql`SELECT count(*)::int AS n FROM rollup_dirty WHERE hour < date_trunc('hour', now())`)[0]!.n === 0, 30_000, 200)).toBe(true);
}, 90_000);
afterAll(() => s?.close());

describe("GET /api/stats", () => {
  it("counts exactly under duplicate delivery: totals, daily series, unique visitors", async () => {
    const r = await stats({ link: linkA, interval: "day", ...range });
    expect(r.source).toBe("rollup_daily");
    // c1 c2 c3 c5 c6 c7 (c4 is Googlebot). Visitors: c1 = c6 (same IP, UA, day), c2, c3, c5
    // (same visitor as c1 but the next day's salt); c7 asked not to be tracked: no visitor.
    expect(r.totals).toEqual({ clicks: 6, visitors: 4 });
    expect(r.series).toEqual([
      { t: iso(D), clicks: 5, visitors: 3 },
      { t: iso(D + 24 * H), clicks: 1, visitors: 1 },
    ]);
    // A breakdown's rows, and the raw table at the range's partial edges, agree with the totals rows.
    const wide = await stats({ link: linkA, interval: "day", group_by: "country", ...range });
    // A link's dimensions are rolled up only on days with 32 clicks or more: A's few are read raw,
    // and a breakdown by a dimension of few values takes its series from the same rows (one query).
    expect(wide.source).toBe("clicks");
    expect(wide.totals).toEqual(r.totals);
    expect(wide.series).toEqual(r.series);
    const raw = await stats({ link: linkA, interval: "day", from: iso(D + 1), to: range.to });
    expect(raw.source).toBe("rollup_daily+rollup_hourly+clicks");
    expect(raw.series).toEqual(r.series);
    const hourly = await stats({ link: linkA, interval: "hour", ...range });
    expect(hourly.source).toBe("rollup_hourly");
    expect(hourly.series.map((b: { t: string; clicks: number }) => [b.t, b.clicks])).toEqual([
      [at(10 * H), 2],
      [at(12 * H), 1],
      [at(13 * H), 1],
      [at(23 * H), 1],
      [at(33 * H), 1],
    ]);
    const minute = await stats({ link: linkA, interval: "minute", from: at(10 * H), to: at(11 * H) });
    expect(minute.source).toBe("clicks");
    expect(minute.series.map((b: { t: string }) => b.t)).toEqual([at(10.25 * H), at(10.75 * H)]);
  });

  it("shifts day buckets with the time zone (23:30 UTC is the next day in Berlin)", async () => {
    for (const from of [range.from, iso(D + 1)]) {
      const r = await stats({ link: linkA, interval: "day", tz: "Europe/Berlin", from, to: range.to });
      expect(r.source).toBe(from === range.from ? "rollup_hourly" : "rollup_hourly+clicks");
      expect(r.series.map((b: { t: string; clicks: number }) => [b.t, b.clicks])).toEqual([
        [iso(D - H), 4],
        [iso(D + 23 * H), 2],
      ]);
    }
    // A half-hour zone: a link's range is read raw; a workspace's reads the hours its midnights
    // split (18:00–19:00 UTC for Kolkata's) by quarter hour and the others from the hourly rollups.
    const india = await stats({ link: linkA, interval: "day", tz: "Asia/Kolkata", ...range });
    expect(india.source).toBe("clicks");
    const indiaWorkspace = await stats({ interval: "day", tz: "Asia/Kolkata", ...range });
    expect(indiaWorkspace.source).toBe("rollup_hourly+rollup_quarter");
    expect(india.series.map((b: { t: string; clicks: number }) => [b.t, b.clicks])).toEqual([
      [iso(D - 5.5 * H), 4],
      [iso(D + 18.5 * H), 2],
    ]);
    expect(india.totals.clicks).toBe(6);
    // The workspace: link B's click (10:00 UTC) too.
    expect(indiaWorkspace.series.map((b: { t: string; clicks: number }) => [b.t, b.clicks])).toEqual([
      [iso(D - 5.5 * H), 5],
      [iso(D + 18.5 * H), 2],
    ]);
  });

  it("breaks down by every dimension", async () => {
    const by = async (group_by: string, extra: Record<string, string> = {}) =>
      (await stats({ link: linkA, group_by, ...range, ...extra })).breakdown.map((b: { value: string; clicks: number }) => [b.value, b.clicks]);
    expect(await by("country")).toEqual([["DE", 4], ["FR", 1], ["US", 1]]);
    expect(await by("device")).toEqual([["desktop", 3], ["mobile", 3]]);
    expect(await by("browser")).toEqual([["Mobile Safari", 3], ["Chrome", 2], ["", 1]]);
    expect(await by("os")).toEqual([["iOS", 3], ["Windows", 2], ["", 1]]);
    expect(await by("referer_host")).toEqual([["", 3], ["news.example", 1], ["social.example", 1], ["www.google.com", 1]]);
    expect(await by("utm_source")).toEqual([["news", 6]]);
    expect(await by("utm_medium")).toEqual([["email", 6]]);
    expect(await by("utm_campaign")).toEqual([["spring", 6]]);
    expect(await by("qr")).toEqual([["false", 5], ["true", 1]]);
    expect(await by("cache_tier")).toEqual([["isolate", 3], ["kv", 2], ["origin", 1]]);
    expect(await by("colo")).toEqual([["FRA", 4], ["CDG", 1], ["IAD", 1]]);
    expect(await by("region")).toEqual([["", 6]]);
    expect(await by("city")).toEqual([["X", 5], ["", 1]]); // the DNT click keeps no city
    // The same through the raw table.
    expect(await by("browser", { from: iso(D + 1) })).toEqual([["Mobile Safari", 3], ["Chrome", 2], ["", 1]]);
    const visitors = (await stats({ link: linkA, group_by: "browser", ...range })).breakdown;
    expect(visitors.find((b: { value: string }) => b.value === "Mobile Safari").visitors).toBe(2);
    expect((await stats({ link: linkA, group_by: "country", limit: 1, ...range })).breakdown).toHaveLength(1);
  });

  it("filters, and includes or isolates bots", async () => {
    expect((await stats({ link: linkA, country: "DE", ...range })).totals.clicks).toBe(4);
    expect((await stats({ link: linkA, country: "DE,US", device: "mobile", ...range })).totals.clicks).toBe(3);
    expect((await stats({ link: linkA, qr: "true", ...range })).totals.clicks).toBe(1);
    expect((await stats({ link: linkA, bots: "include", ...range })).totals.clicks).toBe(7);
    const only = await stats({ link: linkA, bots: "only", group_by: "country", ...range });
    expect(only.totals.clicks).toBe(1);
    expect(only.breakdown).toEqual([{ value: "US", clicks: 1, visitors: 1 }]);
    expect((await stats({ link: linkA, bots: "only", from: iso(D + 1), to: range.to })).totals.clicks).toBe(1);
    // Link selection: the workspace's links, by tag, by domain.
    expect((await stats(range)).totals.clicks).toBe(7); // A (6) + B (1); never C
    expect((await stats({ tag: "promo", ...range })).totals.clicks).toBe(6);
    expect((await stats({ tag: "none", ...range })).totals).toEqual({ clicks: 0, visitors: 0 });
    expect((await stats({ domain: "", ...range })).totals.clicks).toBe(7);
  });

  it("isolates workspaces and enforces the scope", async () => {
    expect((await api(`/api/stats?link=${linkA}`, otherKey)).status).toBe(404);
    const theirs = await stats(range, otherKey);
    expect(theirs.totals.clicks).toBe(1); // only C
    expect((await stats({ group_by: "country", ...range }, otherKey)).breakdown).toEqual([{ value: "JP", clicks: 1, visitors: 1 }]);
    expect((await api(`/api/stats?link=${linkC}`)).status).toBe(404);
    const forbidden = await api(`/api/stats?link=${linkA}`, readKey);
    expect(forbidden.status).toBe(403);
    expect((await body(forbidden)).error.code).toBe("forbidden");
    expect((await fetch(`${s.ingest.url}/api/stats`)).status).toBe(401);
    expect((await api(`/api/clicks/recent?link=${linkA}`, readKey)).status).toBe(403);
    expect((await api(`/api/sre/edge`, readKey)).status).toBe(403);
  });

  it("refuses bad parameters with a JSON error naming the field; injection is data or 400", async () => {
    const bad = async (q: string, field: string) => {
      const res = await api(`/api/stats?${q}`);
      expect(res.status).toBe(400);
      const e = (await body(res)).error;
      expect(e.field).toBe(field);
      expect(e.status).toBe(400);
    };
    await bad("tz=Mars%2FOlympus", "tz");
    await bad(`tz=${encodeURIComponent("UTC') OR 1=1 --")}`, "tz");
    await bad("group_by=ip_address", "group_by");
    await bad(`group_by=${encodeURIComponent("country; DROP TABLE clicks")}`, "group_by");
    await bad("interval=fortnight", "interval");
    await bad("bots=maybe", "bots");
    await bad("from=yesterday", "from");
    await bad(`link=${encodeURIComponent("1 OR 1=1")}`, "link");
    await bad("qr=1", "qr");
    await bad(`interval=minute&from=${range.from}&to=${iso(D + 30 * 24 * H)}`, "from");
    // As data: matches nothing, and the tables are still there.
    expect((await stats({ link: linkA, country: "DE' OR '1'='1", ...range })).totals.clicks).toBe(0);
    expect((await stats({ tag: "promo' OR 'x'='x", ...range })).totals.clicks).toBe(0);
    expect((await stats({ link: linkA, ...range })).totals.clicks).toBe(6);
  });
});

describe("privacy", () => {
  it("keeps no IP column in ClickHouse, and truncated IPs (or none, with DNT) in PostgreSQL", async () => {
    const cols = await rows<{ name: string }>(s.ingest.pipeline.ch!, "SELECT name FROM system.columns WHERE database = 'linkflow' AND table = 'clicks'");
    expect(cols.map((c) => c.name).filter((n) => /ip/i.test(n))).toEqual([]);
    const pg = async (c: ClickEvent) => (await s.sql`SELECT ip_address, user_agent, referer, geo_location FROM clicks WHERE click_id = ${c.click_id}`)[0]!;
    expect((await pg(clicks.c1!)).ip_address).toBe("198.51.100.0");
    expect((await pg(clicks.c2!)).ip_address).toBe("2001:db8:abcd::");
    const dnt = await pg(clicks.c7!);
    expect(dnt).toMatchObject({ ip_address: "", user_agent: "desktop", referer: "https://social.example/" });
    expect(dnt.geo_location).toEqual({ country: "FR", colo: "CDG" });
    // The visitor hash came from the full IP, before truncation.
    const [h] = await rows<{ visitor_hash: string }>(s.ingest.pipeline.ch!, "SELECT visitor_hash FROM linkflow.clicks WHERE click_id = {id:UUID} LIMIT 1", { id: clicks.c1!.click_id });
    expect(h!.visitor_hash).toBe(visitorHash(SALT_SECRET, clicks.c1!.timestamp, "198.51.100.23", UA.iphone));
    expect(h!.visitor_hash).not.toBe(visitorHash(SALT_SECRET, clicks.c1!.timestamp, "198.51.100.0", UA.iphone));
    // Through the beacon route too: ingest salts with the key it derives from EDGE_SECRET.
    const [r] = await rows<{ visitor_hash: string }>(s.ingest.pipeline.ch!, "SELECT visitor_hash FROM linkflow.clicks WHERE click_id = {id:UUID} LIMIT 1", { id: current[0]!.click_id });
    expect(r!.visitor_hash).toBe(visitorHash(SALT_SECRET, current[0]!.timestamp, "198.51.100.23", UA.iphone));
  });
});

describe("operational and SRE views", () => {
  it("lists a link's recent clicks from PostgreSQL, without IPs", async () => {
    const r = await body(await api(`/api/clicks/recent?link=${linkA}&limit=3`));
    expect(r.items.map((i: { click_id: string }) => i.click_id)).toEqual([clicks.c5!.click_id, clicks.c3!.click_id, clicks.c7!.click_id]);
    expect(JSON.stringify(r)).not.toContain("ip_address");
    expect((await api(`/api/clicks/recent?link=${linkA}`, otherKey)).status).toBe(404);
  });

  it("reports edge hit ratios over time and by colo (all links for the operator, own links otherwise)", async () => {
    const r = await body(await api(`/api/sre/edge?interval=day&from=${range.from}&to=${range.to}`, s.adminKey));
    expect(r.scope).toBe("all");
    expect(r.totals).toEqual({ isolate: 3, kv: 4, origin: 2, total: 9, hit_ratio: 0.7778 });
    expect(r.series.map((b: { t: string; total: number }) => [b.t, b.total])).toEqual([[iso(D), 8], [iso(D + 24 * H), 1]]);
    expect(r.by_colo.find((b: { colo: string }) => b.colo === "FRA")).toMatchObject({ isolate: 3, kv: 1, origin: 0, total: 4, hit_ratio: 1 });
    // Version 1 clicks carry no origin resolve time: nothing measured.
    expect(r.origin_resolve_latency_ms).toEqual({ samples: 0, p50_ms: null, p99_ms: null, by_colo: [] });
    const mine = await body(await api(`/api/sre/edge?interval=day&from=${range.from}&to=${range.to}`, otherKey));
    expect(mine.scope).toBe("workspace");
    expect(mine.totals).toMatchObject({ kv: 1, total: 1, hit_ratio: 1 });
    const ws = await body(await api(`/api/sre/edge?interval=day&from=${range.from}&to=${range.to}`));
    expect(ws.totals.total).toBe(8);
  });

  it("extends /api/pipeline with per-shard lag, rates and loader lag; /metrics with edge figures", async () => {
    const st = await body(await fetch(`${s.ingest.url}/api/pipeline`, { headers: json(s.adminKey) }));
    expect(st.shards.length).toBe(2);
    for (const sh of st.shards) expect(typeof sh.millis_behind_latest).toBe("number");
    expect(st.rates).toHaveProperty("kinesis_sent_per_s");
    // The clicks received in the last 5 minutes that happened recently (the seeded ones are days old: no beacon carries those).
    expect(st.loader_lag.clicks).toBeGreaterThanOrEqual(4);
    const text = await (await fetch(`${s.ingest.url}/metrics`)).text();
    expect(text).toMatch(/linkflow_edge_clicks_total\{cache_tier="kv"\} 4/);
    expect(text).toMatch(/linkflow_stats_query_duration_seconds_count\{source="rollup_daily"\} \d+/);
    expect(text).toMatch(/linkflow_kinesis_behind_latest_seconds\{shard="[^"]+"\} [\d.e+-]+$/m);
  });

  it("streams new clicks (SSE) and counts the last minute per second", async () => {
    const ctrl = new AbortController();
    const res = await fetch(`${s.ingest.url}/api/stats/stream?link=${linkA}&max_seconds=20`, { headers: json(statsKey), signal: ctrl.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/text\/event-stream/);
    const live = clickEvent({ link_id: linkA, code: "statsA", user_agent: UA.chrome, geo_location: { country: "NL", colo: "AMS" } });
    expect((await postBeacon(s.ingest.url, live)).status).toBe(202);
    const reader = res.body!.getReader();
    let text = "";
    const until = Date.now() + 15_000;
    while (!text.includes(live.click_id) && Date.now() < until) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    ctrl.abort();
    expect(text).toContain("event: tick");
    const ev = text.split("\n\n").find((e) => e.includes(`id: ${live.click_id}`))!;
    expect(ev).toContain("event: click");
    expect(JSON.parse(ev.split("\n").find((l) => l.startsWith("data: "))!.slice(6))).toMatchObject({ click_id: live.click_id, country: "NL", browser: "Chrome", link_id: linkA });

    const sec = await body(await api(`/api/stats/live?link=${linkA}`));
    expect(sec.seconds).toHaveLength(60);
    expect(sec.total).toBe(1);
    expect(sec.seconds.find((x: { clicks: number }) => x.clicks === 1).t).toBe(new Date(Math.floor(Date.parse(live.timestamp) / 1000) * 1000).toISOString());
    expect((await body(await api(`/api/stats/live?link=${linkA}`, otherKey.slice(0, -1) + (otherKey.endsWith("x") ? "y" : "x")))).error.status).toBe(401);
  }, 30_000);
});
