import { afterAll, beforeAll, expect, it } from "vitest";
import type { ClickHouseClient } from "../ingest/src/analytics/clickhouse.ts";
import { seal } from "../ingest/src/analytics/rollup.ts";
import { storeClicks } from "../ingest/src/clicks/store.ts";
import { clickEvent, seedLinks } from "./fixtures.ts";
import { body, eventually, json, startStack, type Stack } from "./helpers.ts";

/**
 * A backlog sealed in short passes (the sealer halves its pass when ClickHouse's memory bound is
 * hit, down to an hour): a closed day's rows are computed once, by the pass that takes its last
 * marked hour, not once per pass (at 50M clicks a day's recount took ~10 s, so hour-long passes
 * recounting their day took ~20 s each). The days' numbers are still exact.
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
