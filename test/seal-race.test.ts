import { afterAll, beforeAll, expect, it } from "vitest";
import { clickEvent, postBeacon, seedLinks } from "./fixtures.ts";
import { body, eventually, json, startStack, type Stack } from "./helpers.ts";

/**
 * The hour boundary under load: clicks of the hour that just closed keep arriving while the
 * sealer (every 100 ms here) rolls that hour up again and again. Each batch re-marks the hour
 * after its rows are in ClickHouse, and the sealer deletes only the marks it read, so the hour's
 * last rollup must hold every click (docs/ANALYTICS.md, "Marks are the safety"). Once no mark is
 * left, the count below comes from that rollup, not from the raw table.
 */
const N = 6_000;
let s: Stack;
beforeAll(async () => {
  s = await startStack({ edge: false, pipeline: true, env: { ROLLUP_INTERVAL_MS: "100" } });
});
afterAll(() => s.close());

it("counts every late click of the hour just closed while the sealer keeps rolling it up", async () => {
  const hour = Math.floor(Date.now() / 3_600_000) * 3_600_000;
  const events = Array.from({ length: N }, (_, i) => clickEvent({ link_id: 1 + (i % 4), code: `race${i % 4}`, timestamp: new Date(hour - 1 - Math.floor(Math.random() * 5000)).toISOString() }));
  await seedLinks(s.sql, events);
  for (let i = 0; i < N; i += 40) {
    for (const r of await Promise.all([0, 20].map((o) => postBeacon(s.ingest.url, events.slice(i + o, i + o + 20))))) expect(r.status).toBe(202);
    await new Promise((r) => setTimeout(r, 5));
  }
  const status = async () => body(await fetch(`${s.ingest.url}/api/pipeline`, { headers: json(s.adminKey) }));
  expect(await eventually(async () => (await status()).clickhouse_rows >= N, 60_000, 200)).toBe(true);
  // Sealed: no mark left on a closed hour, so that hour is read from rollup_hourly.
  expect(await eventually(async () => Number((await s.sql`SELECT count(*)::int AS n FROM rollup_dirty WHERE hour < ${new Date(hour)}`)[0]!.n) === 0, 30_000, 200)).toBe(true);
  const [rolled] = await s.ingest.pipeline.ch!.query({ query: "SELECT max(clicks) AS n FROM linkflow.rollup_hourly WHERE level = 'all' AND dim = '' AND t = {t:DateTime}", query_params: { t: (hour - 3_600_000) / 1000 }, format: "JSONEachRow" }).then((r) => r.json<{ n: number }>());
  expect(Number(rolled!.n)).toBe(N);
  expect(await status()).toMatchObject({ postgres_clicks: N, clickhouse_clicks: N });
}, 120_000);
