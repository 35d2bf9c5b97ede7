import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureSchema, quarterTableMissing, rollupStatements, rows, VISITOR_SKETCH_TYPE } from "../ingest/src/analytics/clickhouse.ts";
import { hostOf, parseAgent } from "../ingest/src/analytics/enrich.ts";
import { backfillWeeks, markAllHours, seal } from "../ingest/src/analytics/rollup.ts";
import { skipQuiet, type Plan } from "../ingest/src/analytics/stats-query.ts";
import { QUARTER_HOURS } from "../ingest/src/analytics/time.ts";
import { copyAllOwners } from "../ingest/src/analytics/link-owners.ts";
import { storeClicks } from "../ingest/src/clicks/store.ts";
import type { ClickEvent } from "../shared/event.ts";
import { clickEvent } from "./fixtures.ts";
import { body, eventually, json, startStack, type Stack } from "./helpers.ts";

/**
 * Exactness of the rollups (docs/ANALYTICS.md), as a property: random clicks over two weeks
 * (at least one whole UTC week, so weekly rows are read too) and the open hour, then random redeliveries of some of them — in separate batches, after
 * their hours were rolled up, on hour boundaries — and new clicks arriving late into hours
 * already rolled up. Every stats shape must equal a brute-force count over the distinct clicks,
 * both while the sealer has not yet redone the hours (they are read raw) and after it has.
 */
const SEED = Number(process.env.ANALYTICS_SEED ?? Date.now() % 100_000);
let state = SEED;
/** mulberry32: a small seeded generator, so a failure can be replayed with ANALYTICS_SEED. */
const rand = () => {
  state = (state + 0x6d2b79f5) | 0;
  let t = Math.imul(state ^ (state >>> 15), 1 | state);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;

const H = 3_600_000;
const DAY = 24 * H;
const UAS = [
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
] as const;
const REFERERS = ["", "https://news.example/a", "https://www.google.com/search?q=x", "https://t.co/abc"] as const;
const COUNTRIES = ["DE", "US", "FR", "JP", ""] as const;

let s: Stack;
let key: string;
let otherKey: string;
const links: { id: number; code: string; ws: "mine" | "other"; tag: string }[] = [];
/** Every distinct click stored (the oracle's input). */
const distinct = new Map<string, Visited>();
const now = Date.now();
const openHour = Math.floor(now / H) * H;
const start = Math.floor(now / DAY) * DAY - 13 * DAY;

/** A click with its visitor hash, as the beacon route stores it ('' = not counted, as with DNT). */
type Visited = ClickEvent & { visitor_hash: string };

function randomClick(ts: number): Visited {
  // The first link is busy: its days pass DENSE_LINK_DAY (rolled-up dimensions), the others' stay sparse (read raw).
  const l = rand() < 0.6 ? links[0]! : pick(links);
  // Few visitors, each returning, some without a hash: sketches hold up to 127 exactly, and the
  // brute force counts them exactly (8 a day: ≤ 112 over the property's two weeks).
  const visitor_hash = rand() < 0.1 ? "" : `v${Math.floor(rand() * 8)}-${new Date(ts).toISOString().slice(0, 10)}`;
  const e = clickEvent({
    link_id: l.id,
    code: l.code,
    timestamp: new Date(ts).toISOString(),
    user_agent: pick(UAS),
    referer: pick(REFERERS),
    geo_location: { country: pick(COUNTRIES), colo: pick(["FRA", "IAD"]) },
    cache_tier: pick(["isolate", "kv", "origin"]),
  });
  return { ...e, visitor_hash };
}
/** A time in [start, now): some on hour boundaries (±1 ms), some in the open hour. */
function randomTime(): number {
  const r = rand();
  if (r < 0.15) return openHour + Math.floor(rand() * (now - openHour));
  const t = start + Math.floor(rand() * (openHour - start));
  if (r < 0.3) return Math.min(Math.floor(t / H) * H + pick([-1, 0, 1]), now - 1);
  return t;
}

const status = async () => body(await fetch(`${s.ingest.url}/api/pipeline`, { headers: json(s.adminKey) }));
/** Until ClickHouse holds `n` distinct clicks. */
const loaded = (n: number) => eventually(async () => (await status()).clickhouse_clicks === n, 60_000, 200);
/** Until every closed hour is rolled up (no marks left but the open hour's). */
const sealed = () => eventually(async () => (await s.sql`SELECT count(*)::int AS n FROM rollup_dirty WHERE hour < date_trunc('hour', now())`)[0]!.n === 0, 60_000, 200);
/** Redelivers clicks as a forwarder that crashed after sending would: their outbox records again. */
async function redeliver(events: ClickEvent[]) {
  for (const e of events)
    await s.sql`INSERT INTO outbox (partition_key, data) VALUES (${e.code}, convert_to(${JSON.stringify({ ...e, received_at: new Date().toISOString() })}, 'UTF8'))`;
}

type Q = Record<string, string | number>;
const stats = async (q: Q, k = key) => {
  const res = await fetch(`${s.ingest.url}/api/stats?${new URLSearchParams(Object.entries(q).map(([a, b]) => [a, String(b)]))}`, { headers: json(k) });
  expect(res.status, JSON.stringify(q)).toBe(200);
  return body(res);
};

interface Shape {
  name: string;
  q: Q;
  /** Which clicks count, and the key of a click's bucket (series) and value (breakdown). */
  keep: (e: ClickEvent) => boolean;
  bucket: (ts: number) => string;
  /** The API's bucket start as the same key. */
  apiBucket: (t: string) => string;
  value?: (e: ClickEvent) => string;
}
const isBot = (e: ClickEvent) => parseAgent(e.user_agent).is_bot;
/** t's date (YYYY-MM-DD) in a zone. */
const dateIn = (tz: string) => {
  const f = new Intl.DateTimeFormat("en-CA", { timeZone: tz });
  return (t: number) => f.format(new Date(t));
};
const berlinDate = dateIn("Europe/Berlin");
const kolkataDate = dateIn("Asia/Kolkata");
const adelaideDate = dateIn("Australia/Adelaide");
/** The date of the Monday starting t's week in Kathmandu (+05:45). */
const kathmanduMonday = (t: number) => {
  const d = Date.parse(`${dateIn("Asia/Kathmandu")(t)}T00:00:00Z`);
  return new Date(d - ((new Date(d).getUTCDay() + 6) % 7) * DAY).toISOString().slice(0, 10);
};
const utcDay = (t: number) => new Date(Math.floor(t / DAY) * DAY).toISOString();
const utcHour = (t: number) => new Date(Math.floor(t / H) * H).toISOString();
/** Monday 00:00 UTC of t's week (1970-01-01 was a Thursday). */
const utcWeek = (t: number) => new Date(Math.floor((t + 3 * DAY) / (7 * DAY)) * 7 * DAY - 3 * DAY).toISOString();
const iso = (t: string) => new Date(t).toISOString();

function shapes(): Shape[] {
  const mine = links.filter((l) => l.ws === "mine");
  const busy = mine[0]!;
  const inRange = (from: number, to: number) => (e: ClickEvent) => {
    const t = Date.parse(e.timestamp);
    return t >= from && t < to;
  };
  const to = openHour + H;
  const from = start;
  const ofLink = (id: number) => (e: ClickEvent) => e.link_id === id;
  const ofMine = (e: ClickEvent) => mine.some((l) => l.id === e.link_id);
  const and = (...fs: ((e: ClickEvent) => boolean)[]) => (e: ClickEvent) => fs.every((f) => f(e));
  const range = { from: new Date(from).toISOString(), to: new Date(to).toISOString() };
  return [
    { name: "link page, days", q: { link: busy.id, interval: "day", ...range }, keep: and(ofLink(busy.id), inRange(from, to), (e) => !isBot(e)), bucket: utcDay, apiBucket: iso },
    { name: "link, hours", q: { link: busy.id, interval: "hour", ...range }, keep: and(ofLink(busy.id), inRange(from, to), (e) => !isBot(e)), bucket: utcHour, apiBucket: iso },
    { name: "link, Berlin days", q: { link: busy.id, interval: "day", tz: "Europe/Berlin", ...range }, keep: and(ofLink(busy.id), inRange(from, to), (e) => !isBot(e)), bucket: berlinDate, apiBucket: (t) => berlinDate(Date.parse(t)) },
    // Zones a fraction of an hour off UTC: the hours their bucket boundaries split are a link's raw
    // hours and a workspace's quarter-hour rows (raw under a filter on a dimension of many values); the rest hourly.
    { name: "link, Kolkata days", q: { link: busy.id, interval: "day", tz: "Asia/Kolkata", ...range }, keep: and(ofLink(busy.id), inRange(from, to), (e) => !isBot(e)), bucket: kolkataDate, apiBucket: (t) => kolkataDate(Date.parse(t)) },
    { name: "workspace by device, Kathmandu weeks", q: { interval: "week", tz: "Asia/Kathmandu", group_by: "device", limit: 1000, ...range }, keep: and(ofMine, inRange(from, to), (e) => !isBot(e)), bucket: kathmanduMonday, apiBucket: (t) => kathmanduMonday(Date.parse(t)), value: (e) => parseAgent(e.user_agent).device },
    // A filter on a dimension of many values: no quarter-hour rows, so the split hours are read raw.
    { name: "workspace filtered by referrer, Kolkata days", q: { interval: "day", tz: "Asia/Kolkata", referer_host: "news.example", ...range }, keep: and(ofMine, inRange(from, to), (e) => !isBot(e), (e) => hostOf(e.referer) === "news.example"), bucket: kolkataDate, apiBucket: (t) => kolkataDate(Date.parse(t)) },
    { name: "workspace top links, Adelaide days", q: { interval: "day", tz: "Australia/Adelaide", group_by: "link", limit: 1000, ...range }, keep: and(ofMine, inRange(from, to), (e) => !isBot(e)), bucket: adelaideDate, apiBucket: (t) => adelaideDate(Date.parse(t)), value: (e) => String(e.link_id) },
    { name: "link, top referrers", q: { link: busy.id, interval: "day", group_by: "referer_host", limit: 1000, ...range }, keep: and(ofLink(busy.id), inRange(from, to), (e) => !isBot(e)), bucket: utcDay, apiBucket: iso, value: (e) => hostOf(e.referer) },
    { name: "workspace by country", q: { interval: "day", group_by: "country", limit: 1000, ...range }, keep: and(ofMine, inRange(from, to), (e) => !isBot(e)), bucket: utcDay, apiBucket: iso, value: (e) => e.geo_location.country ?? "" },
    { name: "workspace top links", q: { interval: "day", group_by: "link", limit: 1000, ...range }, keep: and(ofMine, inRange(from, to), (e) => !isBot(e)), bucket: utcDay, apiBucket: iso, value: (e) => String(e.link_id) },
    { name: "workspace by week, bots included", q: { interval: "week", bots: "include", ...range }, keep: and(ofMine, inRange(from, to)), bucket: utcWeek, apiBucket: iso },
    { name: "workspace by week by OS", q: { interval: "week", group_by: "os", limit: 1000, ...range }, keep: and(ofMine, inRange(from, to), (e) => !isBot(e)), bucket: utcWeek, apiBucket: iso, value: (e) => parseAgent(e.user_agent).os },
    { name: "bots only by device", q: { interval: "hour", bots: "only", group_by: "device", limit: 1000, ...range }, keep: and(ofMine, inRange(from, to), isBot), bucket: utcHour, apiBucket: iso, value: (e) => parseAgent(e.user_agent).device },
    { name: "link by country", q: { link: busy.id, interval: "day", group_by: "country", limit: 1000, ...range }, keep: and(ofLink(busy.id), inRange(from, to), (e) => !isBot(e)), bucket: utcDay, apiBucket: iso, value: (e) => e.geo_location.country ?? "" },
    { name: "tag (links scope) by device, bots included", q: { tag: "t1", interval: "day", bots: "include", group_by: "device", limit: 1000, ...range }, keep: and((e) => mine.some((l) => l.tag === "t1" && l.id === e.link_id), inRange(from, to)), bucket: utcDay, apiBucket: iso, value: (e) => parseAgent(e.user_agent).device },
    { name: "tag (links scope) by link", q: { tag: "t1", interval: "day", group_by: "link", limit: 1000, ...range }, keep: and((e) => mine.some((l) => l.tag === "t1" && l.id === e.link_id), inRange(from, to), (e) => !isBot(e)), bucket: utcDay, apiBucket: iso, value: (e) => String(e.link_id) },
    { name: "filter country=DE,US", q: { interval: "day", country: "DE,US", ...range }, keep: and(ofMine, inRange(from, to), (e) => !isBot(e), (e) => ["DE", "US"].includes(e.geo_location.country ?? "")), bucket: utcDay, apiBucket: iso },
    { name: "filter country=DE by referer (raw)", q: { interval: "day", country: "DE", group_by: "referer_host", limit: 1000, ...range }, keep: and(ofMine, inRange(from, to), (e) => !isBot(e), (e) => e.geo_location.country === "DE"), bucket: utcDay, apiBucket: iso, value: (e) => hostOf(e.referer) },
    // A range that starts and ends inside hours: raw at both edges, rollups between.
    { name: "partial hours at both ends", q: { link: busy.id, interval: "hour", from: new Date(from + 30 * 60_000).toISOString(), to: new Date(openHour - 20 * 60_000).toISOString() }, keep: and(ofLink(busy.id), inRange(from + 30 * 60_000, openHour - 20 * 60_000), (e) => !isBot(e)), bucket: utcHour, apiBucket: (t) => utcHour(Date.parse(t)) },
  ];
}

const count = <K>(xs: ClickEvent[], key: (e: ClickEvent) => K) => {
  const m = new Map<K, number>();
  for (const x of xs) m.set(key(x), (m.get(key(x)) ?? 0) + 1);
  return m;
};
/** Distinct visitor hashes per key (clicks without one are not visitors). */
const visitors = <K>(xs: Visited[], key: (e: ClickEvent) => K) => {
  const m = new Map<K, Set<string>>();
  for (const x of xs) if (x.visitor_hash) m.set(key(x), (m.get(key(x)) ?? new Set()).add(x.visitor_hash));
  return new Map([...m].map(([k, v]) => [k, v.size]));
};

async function checkAll(when: string) {
  const clicks = [...distinct.values()];
  for (const sh of shapes()) {
    const r = await stats(sh.q);
    const mine = clicks.filter(sh.keep);
    const label = `${when}: ${sh.name} (seed ${SEED})`;
    expect(r.totals.clicks, label).toBe(mine.length);
    expect(new Map(r.series.map((b: { t: string; clicks: number }) => [sh.apiBucket(b.t), b.clicks])), label).toEqual(count(mine, (e) => sh.bucket(Date.parse(e.timestamp))));
    if (sh.value) expect(new Map(r.breakdown.map((b: { value: string; clicks: number }) => [b.value, b.clicks])), label).toEqual(count(mine, sh.value));
    // Visitors: sketches merged across hours, days and versions of a recomputed hour (exact at this size).
    expect(r.totals.visitors, `${label}: visitors`).toBe(visitors(mine, () => "").get("") ?? 0);
    const perBucket = visitors(mine, (e) => sh.bucket(Date.parse(e.timestamp)));
    expect(new Map(r.series.map((b: { t: string; visitors: number }) => [sh.apiBucket(b.t), b.visitors]).filter(([, v]: [string, number]) => v > 0)), `${label}: visitors per bucket`).toEqual(perBucket);
    if (sh.value) {
      const perValue = visitors(mine, sh.value);
      expect(new Map(r.breakdown.map((b: { value: string; visitors: number }) => [b.value, b.visitors]).filter(([, v]: [string, number]) => v > 0)), `${label}: visitors per value`).toEqual(perValue);
    }
  }
}

beforeAll(async () => {
  s = await startStack({ edge: false, pipeline: true });
  const ws = await body(await fetch(`${s.ingest.url}/api/workspaces`, { method: "POST", headers: json(s.adminKey), body: JSON.stringify({ name: "other" }) }));
  otherKey = ws.admin_key.key;
  for (const [i, w] of (["mine", "mine", "mine", "other"] as const).entries()) {
    const code = `an${i}x`;
    const tag = i < 2 ? "t1" : "t2";
    const [r] = await s.sql`INSERT INTO links (workspace_id, domain, code, url, tags)
      VALUES (${w === "mine" ? s.sql`(SELECT min(id) FROM workspaces)` : ws.workspace.id}, '', ${code}, 'https://shop.example/', ${[tag]}) RETURNING id`;
    links.push({ id: Number(r!.id), code, ws: w, tag });
  }
  key = (await body(await fetch(`${s.ingest.url}/api/keys`, { method: "POST", headers: json(s.adminKey), body: JSON.stringify({ name: "stats", scopes: ["stats:read", "links:read"] }) }))).key;
}, 60_000);
afterAll(() => s?.close());

describe("rollups stay exact under redelivery and late clicks", () => {
  it(`equals a brute-force count over the distinct clicks, before and after the sealer redoes the hours (seed ${SEED})`, async () => {
    // 1. Clicks over two weeks and the open hour, loaded and rolled up.
    const first = Array.from({ length: 1400 }, () => randomClick(randomTime()));
    for (const e of first) distinct.set(e.click_id, e);
    await storeClicks(s.sql, first);
    expect(await loaded(distinct.size)).toBe(true);
    expect(await sealed()).toBe(true);
    await checkAll("rolled up");
    // Zones a fraction of an hour off UTC: a workspace's hours their midnights split come from the quarter-hour rows.
    for (const name of ["workspace by device, Kathmandu weeks", "workspace top links, Adelaide days"])
      expect((await stats(shapes().find((x) => x.name === name)!.q)).source, name).toContain("rollup_quarter");
    expect((await stats(shapes().find((x) => x.name === "workspace filtered by referrer, Kolkata days")!.q)).source).toBe("rollup_hourly+clicks");
    // The closed days come from the daily rollups now, the busy link's dimensions too.
    const closedDays = { link: links[0]!.id, interval: "day", from: new Date(start).toISOString(), to: new Date(openHour - DAY).toISOString().slice(0, 10) + "T00:00:00Z" };
    expect((await stats(closedDays)).source).toBe("rollup_daily");
    expect((await stats({ ...closedDays, group_by: "country" })).source).toBe("rollup_daily");
    // A workspace's breakdown takes whole weeks from the weekly rollups; its series reads days.
    const monday = Date.parse(utcWeek(start + 6 * DAY)); // the first Monday from `start`: its week has ended
    const week = { interval: "week", from: new Date(monday).toISOString(), to: new Date(monday + 7 * DAY).toISOString() };
    expect((await stats(week)).source).toBe("rollup_daily");
    // By day with a breakdown: the series from the days, the breakdown (no buckets) from the week;
    // by a dimension of few values, both from the days in one query.
    expect((await stats({ ...week, interval: "day", group_by: "referer_host" })).source).toBe("rollup_weekly+rollup_daily");
    expect((await stats({ ...week, interval: "day", group_by: "country" })).source).toBe("rollup_daily");
    expect((await stats({ ...week, group_by: "country" })).source).toBe("rollup_weekly");
    expect((await stats({ ...week, interval: "day" })).source).toBe("rollup_daily");

    // 2. Redeliveries of rolled-up clicks in two batches, and new clicks late into rolled-up hours.
    const again = first.filter(() => rand() < 0.3);
    await redeliver(again.slice(0, again.length / 2));
    const late = Array.from({ length: 80 }, () => randomClick(start + Math.floor(rand() * (openHour - start))));
    for (const e of late) distinct.set(e.click_id, e);
    await storeClicks(s.sql, late);
    await redeliver([...again.slice(again.length / 2), ...late.slice(0, 10)]);
    const rows0 = (await status()).clickhouse_rows;
    expect(await loaded(distinct.size)).toBe(true);
    // Whether or not the sealer has redone those hours yet: exact (stale hours are read raw).
    await checkAll("just loaded");
    expect(await eventually(async () => (await status()).clickhouse_rows >= first.length + late.length + again.length + 10, 60_000, 200)).toBe(true);
    expect((await status()).clickhouse_rows).toBeGreaterThan(rows0 - 1);
    expect(await sealed()).toBe(true);
    await checkAll("redone");
    // The raw table holds the redelivered copies; the API counted each click once.
    expect((await status()).clickhouse_clicks).toBe(distinct.size);
  }, 240_000);

  it("gives link objects their exact click count, and sorts the links list by it", async () => {
    const mine = links.filter((l) => l.ws === "mine");
    const humans = [...distinct.values()].filter((e) => !isBot(e));
    for (const l of mine) {
      const got = await body(await fetch(`${s.ingest.url}/api/links/${l.id}`, { headers: json(key) }));
      const expected = humans.filter((e) => e.link_id === l.id).length;
      expect(got.clicks).toBe(expected);
      // The same number as the stats API over the link's lifetime.
      expect((await stats({ link: l.id, interval: "month", from: new Date(start - DAY).toISOString() })).totals.clicks).toBe(expected);
    }
    const page1 = await body(await fetch(`${s.ingest.url}/api/links?sort=-clicks&limit=2`, { headers: json(key) }));
    const page2 = await body(await fetch(`${s.ingest.url}/api/links?sort=-clicks&limit=2&cursor=${page1.next_cursor}`, { headers: json(key) }));
    const listed = [...page1.items, ...page2.items].map((l: { id: number; clicks: number }) => [l.id, l.clicks]);
    const sorted = mine.map((l) => [l.id, humans.filter((e) => e.link_id === l.id).length] as [number, number]).sort((a, b) => b[1] - a[1] || b[0] - a[0]);
    expect(listed).toEqual(sorted);
    expect(page2.next_cursor).toBeNull();
    const asc = await body(await fetch(`${s.ingest.url}/api/links?sort=clicks&limit=10`, { headers: json(key) }));
    expect(asc.items.map((l: { id: number }) => l.id)).toEqual([...sorted].reverse().map(([id]) => id));
  });

  it("takes plain dates in the zone, weeks and months; names the top links; keeps workspaces apart", async () => {
    const day = new Date(start + DAY).toISOString().slice(0, 10);
    const byDate = await stats({ interval: "day", tz: "Europe/Berlin", from: day, to: day, bots: "include" });
    const truth = [...distinct.values()].filter((e) => links.find((l) => l.id === e.link_id)!.ws === "mine" && berlinDate(Date.parse(e.timestamp)) === day);
    expect(byDate.totals.clicks).toBe(truth.length);
    const berlin = (t: string) => new Date(t).toLocaleString("sv-SE", { timeZone: "Europe/Berlin" });
    expect(berlin(byDate.from)).toBe(`${day} 00:00:00`);
    expect(berlin(byDate.to)).toBe(`${new Date(Date.parse(day) + DAY).toISOString().slice(0, 10)} 00:00:00`);
    const month = await stats({ interval: "month", from: new Date(start).toISOString().slice(0, 10), bots: "include" });
    // (A click may sit 1 ms before `start`, on the boundary: outside the range.)
    expect(month.totals.clicks).toBe([...distinct.values()].filter((e) => links.find((l) => l.id === e.link_id)!.ws === "mine" && Date.parse(e.timestamp) >= start).length);
    const top = await stats({ interval: "day", group_by: "link", from: new Date(start).toISOString() });
    expect(top.breakdown[0].link).toMatchObject({ id: Number(top.breakdown[0].value), code: expect.stringMatching(/^an\dx$/) });
    for (const r of top.breakdown) expect(links.find((l) => l.id === Number(r.value))!.ws).toBe("mine");
    const theirs = await stats({ interval: "day", group_by: "link", from: new Date(start).toISOString(), bots: "include" }, otherKey);
    expect(theirs.breakdown.map((r: { value: string }) => Number(r.value))).toEqual([links[3]!.id].filter(() => theirs.totals.clicks > 0));
  });

  it("rebuilds rollups that hold another visitor sketch (a data folder from before precision 12): same clicks, visitors still merge", async () => {
    const ch = s.ingest.pipeline.ch!;
    const before = await stats({ interval: "day", group_by: "country", from: new Date(start).toISOString(), bots: "include" });
    // The rollup table as it was made before: uniqCombined64 at its default precision.
    const old = rollupStatements("linkflow").find((q) => q.includes("linkflow.rollup_hourly ("))!.replace(VISITOR_SKETCH_TYPE, "AggregateFunction(uniqCombined64, Nullable(String))");
    expect(old).toContain("AggregateFunction(uniqCombined64, ");
    await ch.command({ query: "DROP TABLE linkflow.rollup_hourly SYNC" });
    await ch.command({ query: old });
    expect(await ensureSchema(ch, "linkflow")).toEqual({ rollupsCreated: true });
    const types = await rows<{ table: string; type: string }>(ch, "SELECT table, type FROM system.columns WHERE database = 'linkflow' AND name = 'visitors' ORDER BY table");
    expect(types).toEqual(["rollup_daily", "rollup_hourly", "rollup_quarter", "rollup_weekly"].map((table) => ({ table, type: VISITOR_SKETCH_TYPE })));
    // What start-up does with new rollups, then the sealer.
    await markAllHours(s.sql, ch, "linkflow");
    await seal({ sql: s.sql, ch, database: "linkflow", wait: true });
    const after = await stats({ interval: "day", group_by: "country", from: new Date(start).toISOString(), bots: "include" });
    expect(after.source).toContain("rollup");
    expect(after.totals.clicks).toBe(before.totals.clicks);
    expect(after.breakdown.map((r: { value: string; clicks: number }) => [r.value, r.clicks])).toEqual(before.breakdown.map((r: { value: string; clicks: number }) => [r.value, r.clicks]));
    // Few visitors: the sketch is still exact (a set of hashes), so the figures are the same too.
    expect(after.totals.visitors).toBe(before.totals.visitors);
  });

  it("upgrades a data folder: the weekly rollup summed from the daily rows, the quarter-hour one from the hours it holds, the owners' copy sorted by workspace", async () => {
    const ch = s.ingest.pipeline.ch!;
    const q = { interval: "week", group_by: "country", limit: 1000, from: new Date(start).toISOString(), bots: "include" };
    const before = await stats(q);
    expect(before.source).toContain("rollup_weekly");
    expect(before.source).toContain("clicks"); // the open hour: read raw through the owners' copy
    const india = { interval: "day", tz: "Asia/Kolkata", group_by: "link", limit: 1000, from: new Date(start).toISOString() };
    const indiaBefore = await stats(india);
    expect(indiaBefore.source).toContain("rollup_quarter");
    await ch.command({ query: "DROP TABLE linkflow.rollup_weekly SYNC" });
    await ch.command({ query: "DROP TABLE linkflow.rollup_quarter SYNC" });
    // The owners' copy as it was made before: sorted by link.
    await ch.command({ query: "DROP TABLE linkflow.link_workspaces SYNC" });
    await ch.command({ query: "CREATE TABLE linkflow.link_workspaces (link_id UInt64, workspace_id UInt64) ENGINE = ReplacingMergeTree ORDER BY link_id" });
    await copyAllOwners(s.sql, ch, "linkflow");
    // Rollups made before their parts were always Wide, or before closed months were merged whole.
    await ch.command({ query: "ALTER TABLE linkflow.rollup_hourly MODIFY SETTING min_bytes_for_wide_part = 10485760" });
    await ch.command({ query: "ALTER TABLE linkflow.rollup_daily RESET SETTING min_age_to_force_merge_seconds, min_age_to_force_merge_on_partition_only" });
    // What start-up does before ensureSchema: the hours a new rollup_quarter will hold are marked
    // first (read raw until the sealer has rolled them up again), so no query reads it empty.
    expect(await quarterTableMissing(ch, "linkflow")).toBe(true);
    expect(await markAllHours(s.sql, ch, "linkflow", QUARTER_HOURS)).toBeGreaterThan(0);
    expect(await ensureSchema(ch, "linkflow")).toEqual({ rollupsCreated: false, weeklyCreated: true, ownersCreated: true });
    expect(await quarterTableMissing(ch, "linkflow")).toBe(false);
    const settings = await rows<{ name: string; q: string }>(ch, "SELECT name, create_table_query AS q FROM system.tables WHERE database = 'linkflow' AND name LIKE 'rollup_%'");
    expect(settings.map((t) => [t.name, /min_bytes_for_wide_part = 0\b/.test(t.q) && /min_age_to_force_merge_seconds = 86400\b/.test(t.q)]).sort()).toEqual([["rollup_daily", true], ["rollup_hourly", true], ["rollup_quarter", true], ["rollup_weekly", true]]);
    expect(await rows(ch, "SELECT sorting_key AS k FROM system.tables WHERE database = 'linkflow' AND name = 'link_workspaces'")).toEqual([{ k: "workspace_id, link_id" }]);
    expect(await ensureSchema(ch, "linkflow")).toEqual({ rollupsCreated: false });
    await copyAllOwners(s.sql, ch, "linkflow");
    expect(await backfillWeeks(ch, "linkflow")).toBeGreaterThan(0);
    // Its hours read raw until the stack's sealer has taken them, then from the table again.
    const marked = await stats(india);
    expect([marked.totals, marked.series, marked.breakdown]).toEqual([indiaBefore.totals, indiaBefore.series, indiaBefore.breakdown]);
    expect(await sealed()).toBe(true);
    const indiaAfter = await stats(india);
    expect(indiaAfter.source).toBe(indiaBefore.source);
    expect([indiaAfter.totals, indiaAfter.series, indiaAfter.breakdown]).toEqual([indiaBefore.totals, indiaBefore.series, indiaBefore.breakdown]);
    const after = await stats(q);
    expect(after.source).toBe(before.source);
    expect([after.totals, after.series, after.breakdown]).toEqual([before.totals, before.series, before.breakdown]);
  });
  it("leaves out the raw table and the hourly rows for a few links with no click in PostgreSQL in their recent hours, and reads them once one lands there", async () => {
    const [r] = await s.sql`INSERT INTO links (workspace_id, domain, code, url) VALUES ((SELECT min(id) FROM workspaces), '', 'quiet1', 'https://shop.example/') RETURNING id`;
    const id = Number(r!.id);
    const today = { link: id, interval: "day", from: new Date(Math.floor(now / DAY) * DAY).toISOString() };
    const quiet = await stats(today);
    expect(quiet.source).toBe("none");
    expect(quiet.totals.clicks).toBe(0);
    // Only recent parts, each whole, and a few links: older ranges, or many links, are read as before.
    const p: Plan = { weeks: [], days: [], wholeDays: [], lo: openHour - 2 * H, hi: openHour, stale: [], split: [], quarters: [], raw: true, source: "rollup_hourly+clicks" };
    const recent = { from: openHour - 2 * H, to: openHour + H };
    expect(await skipQuiet(s.sql, [id], recent, p)).toMatchObject({ raw: false, quietHours: true, source: "none" });
    expect(await skipQuiet(s.sql, Array.from({ length: 101 }, (_, i) => id + 1000 + i), recent, p)).toBe(p);
    const longer = { ...p, lo: openHour - 50 * H };
    expect(await skipQuiet(s.sql, [id], { from: openHour - 50 * H, to: openHour + H }, longer)).toMatchObject({ raw: false, source: "rollup_hourly" });
    const old = { ...p, lo: openHour - 50 * H, hi: openHour - 40 * H };
    expect(await skipQuiet(s.sql, [id], { from: openHour - 51 * H, to: openHour - 40 * H }, old)).toBe(old);
    // A click in PostgreSQL (not yet in ClickHouse, maybe): the raw table is read again, and
    // counts the click once the pipeline has loaded it.
    await storeClicks(s.sql, [{ ...clickEvent({ link_id: id, code: "quiet1", timestamp: new Date().toISOString(), user_agent: UAS[0] }), visitor_hash: "q1" } as Visited]);
    expect(await skipQuiet(s.sql, [id], recent, p)).toBe(p);
    expect(await skipQuiet(s.sql, [id], { from: openHour - 50 * H, to: openHour + H }, longer)).toBe(longer);
    expect((await stats(today)).source).toContain("clicks");
    expect(await eventually(async () => (await stats(today)).totals.clicks === 1, 20_000)).toBe(true);
  });
});
