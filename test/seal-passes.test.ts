import type { Logger } from "pino";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { ClickHouseClient } from "../ingest/src/analytics/clickhouse.ts";
import { DENSE_LINK_DAY, MAX_SLICES, seal } from "../ingest/src/analytics/rollup.ts";
import { storeClicks } from "../ingest/src/clicks/store.ts";
import { clickEvent, seedLinks } from "./fixtures.ts";
import { body, eventually, json, startStack, type Stack } from "./helpers.ts";

/**
 * A backlog sealed in short passes (the sealer halves its pass when ClickHouse's memory bound is
 * hit, down to an hour): a closed day's rows are computed once, by the pass that takes its last
 * marked hour, not once per pass (at 50M clicks a day's recount took ~10 s, so hour-long passes
 * recounting their day took ~20 s each). The days' numbers are still exact. A day's dense-link
 * statement cannot get smaller with the pass: refused, it runs in slices of the links.
 */
const H = 3_600_000;
const DAY = 24 * H;
let s: Stack;
beforeAll(async () => {
  // The live sealer stays out of the way: this test runs the passes itself.
  s = await startStack({ edge: false, pipeline: true, env: { ROLLUP_INTERVAL_MS: "3600000" } });
});
afterAll(() => s.close());

it("computes a closed day's rows once when its hours are sealed an hour a pass, and they are exact", async () => {
  const today = Math.floor(Date.now() / DAY) * DAY;
  const days = [today - 2 * DAY, today - DAY];
  // Clicks in 10 hours of each of two closed days, over two links.
  const events = days.flatMap((d) =>
    Array.from({ length: 120 }, (_, i) => clickEvent({ link_id: 1 + (i % 2), code: `pass${i % 2}`, timestamp: new Date(d + (i % 10) * H + i * 1000).toISOString() })),
  );
  await seedLinks(s.sql, events);
  await storeClicks(s.sql, events);
  const status = async () => body(await fetch(`${s.ingest.url}/api/pipeline`, { headers: json(s.adminKey) }));
  expect(await eventually(async () => (await status()).clickhouse_rows >= events.length, 60_000, 200)).toBe(true);
  const marked = Number((await s.sql`SELECT count(*)::int AS n FROM rollup_dirty WHERE hour < ${new Date(today)}`)[0]!.n);
  expect(marked).toBe(20);

  // The sealer's statements, counted by table.
  const ch = s.ingest.pipeline.ch!;
  const inserts = { hourly: 0, daily: 0 };
  const counting = {
    query: (a: Parameters<ClickHouseClient["query"]>[0]) => ch.query(a),
    command: (a: Parameters<ClickHouseClient["command"]>[0]) => {
      if (/INSERT INTO \S+\.rollup_daily/.test(a.query)) inserts.daily++;
      if (/INSERT INTO \S+\.rollup_hourly/.test(a.query)) inserts.hourly++;
      return ch.command(a);
    },
  } as unknown as ClickHouseClient;
  expect(await seal({ sql: s.sql, ch: counting, database: "linkflow", wait: true, chunkHours: 1 })).toBe(20);
  // Three hourly statements a pass (links, workspaces, all); two daily ones a day, not a pass.
  expect(inserts).toEqual({ hourly: 3 * 20, daily: 2 * days.length });

  // Those days now come from rollup_daily, and their counts are the clicks stored.
  const r = await body(
    await fetch(`${s.ingest.url}/api/stats?${new URLSearchParams({ interval: "day", bots: "include", from: new Date(days[0]!).toISOString(), to: new Date(today).toISOString() })}`, { headers: json(s.adminKey) }),
  );
  expect(r.source).toBe("rollup_daily");
  expect(r.totals.clicks).toBe(events.length);
  expect(r.series.map((b: { t: string; clicks: number }) => [Date.parse(b.t), b.clicks])).toEqual(days.map((d) => [d, 120]));
  const link1 = await body(
    await fetch(`${s.ingest.url}/api/stats?${new URLSearchParams({ link: "1", interval: "day", bots: "include", group_by: "country", from: new Date(days[0]!).toISOString(), to: new Date(today).toISOString() })}`, { headers: json(s.adminKey) }),
  );
  expect(link1.totals.clicks).toBe(120);
  expect(link1.breakdown.reduce((a: number, b: { clicks: number }) => a + b.clicks, 0)).toBe(120);
}, 120_000);

it("runs a closed day's dense links in slices when ClickHouse refuses the statement whole, and their dimensions are exact", async () => {
  const today = Math.floor(Date.now() / DAY) * DAY;
  const day = today - 4 * DAY;
  // Three links dense that day, each with clicks from three countries.
  const links = [11, 12, 13];
  const countries = ["DE", "FR", "US"];
  const perLink = DENSE_LINK_DAY + 8;
  const events = links.flatMap((link, l) =>
    Array.from({ length: perLink }, (_, i) =>
      clickEvent({ link_id: link, code: `slice${link}`, timestamp: new Date(day + (i % 24) * H + l * 60_000 + i * 1000).toISOString(), geo_location: { country: countries[(i + l) % 3]!, colo: "FRA" } }),
    ),
  );
  const status = async () => body(await fetch(`${s.ingest.url}/api/pipeline`, { headers: json(s.adminKey) }));
  const before = (await status()).clickhouse_rows as number;
  await seedLinks(s.sql, events);
  await storeClicks(s.sql, events);
  expect(await eventually(async () => (await status()).clickhouse_rows >= before + events.length, 60_000, 200)).toBe(true);

  // ClickHouse refuses the dense statement over fewer than four slices, as its memory bound would.
  const ch = s.ingest.pipeline.ch!;
  const tried: string[] = [];
  const refusing = {
    query: (a: Parameters<ClickHouseClient["query"]>[0]) => ch.query(a),
    command: (a: Parameters<ClickHouseClient["command"]>[0]) => {
      const p = a.query_params as { slices?: number; slice?: number } | undefined;
      if (p?.slices === undefined) return ch.command(a);
      tried.push(`${p.slices}/${p.slice}`);
      if (p.slices < 4) return Promise.reject(Object.assign(new Error("Code: 241. DB::Exception: Query memory limit exceeded (injected)"), { code: "241" }));
      return ch.command(a);
    },
  } as unknown as ClickHouseClient;
  const warned: { slices?: number }[] = [];
  const log = { warn: (o: { slices?: number }) => warned.push(o) } as unknown as Logger;
  expect(await seal({ sql: s.sql, ch: refusing, database: "linkflow", wait: true, chunkHours: 24, log })).toBe(24);
  expect(tried).toEqual(["1/0", "2/0", "4/0", "4/1", "4/2", "4/3"]);
  // An operator sees each refusal and the slices taken next.
  expect(warned.map((w) => w.slices)).toEqual([2, 4]);
  expect(MAX_SLICES).toBeGreaterThanOrEqual(4);

  // Each link's day by country comes from its dense rows, and equals its clicks.
  for (const [l, link] of links.entries()) {
    const r = await body(
      await fetch(`${s.ingest.url}/api/stats?${new URLSearchParams({ link: String(link), interval: "day", bots: "include", group_by: "country", from: new Date(day).toISOString(), to: new Date(day + DAY).toISOString() })}`, {
        headers: json(s.adminKey),
      }),
    );
    expect(r.source).toBe("rollup_daily");
    const want = Object.fromEntries(countries.map((c, k) => [c, Array.from({ length: perLink }, (_, i) => (i + l) % 3).filter((x) => x === k).length]));
    expect(Object.fromEntries(r.breakdown.map((b: { value: string; clicks: number }) => [b.value, b.clicks]))).toEqual(want);
  }
}, 120_000);
