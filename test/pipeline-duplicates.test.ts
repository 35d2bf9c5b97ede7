import { afterAll, beforeAll, expect, it } from "vitest";
import { rows } from "../ingest/src/analytics/clickhouse.ts";
import { seal } from "../ingest/src/analytics/rollup.ts";
import { clickEvent, postBeacon, seedLinks } from "./fixtures.ts";
import { body, eventually, json, startStack, type Stack } from "./helpers.ts";

/** The forwarder sends every batch twice: ClickHouse and its views must still count N. */
const N = 2_000;

let s: Stack;
beforeAll(async () => {
  s = await startStack({ edge: false, pipeline: true, extras: { duplicateDelivery: true } });
});
afterAll(() => s.close());

it("counts each click once under forced duplicate delivery", async () => {
  const events = Array.from({ length: N }, (_, i) => clickEvent({ link_id: 1 + (i % 3), code: `dup${i % 3}` }));
  await seedLinks(s.sql, events);
  for (let i = 0; i < N; i += 100) expect((await postBeacon(s.ingest.url, events.slice(i, i + 100))).status).toBe(202);
  const status = async () => body(await fetch(`${s.ingest.url}/api/pipeline`, { headers: json(s.adminKey) }));
  // Twice as many rows reach ClickHouse as there are clicks: the duplicates really arrived.
  expect(await eventually(async () => (await status()).clickhouse_rows >= 2 * N, 30_000, 200)).toBe(true);
  const st = await status();
  expect(st).toMatchObject({ postgres_clicks: N, kinesis_sent: N, clickhouse_clicks: N, outbox_backlog: 0 });

  const ch = s.ingest.pipeline.ch!;
  // (How many duplicate rows are still physically there depends on background merges; the
  // clickhouse_rows counter above already proves that every batch arrived twice.)
  // Rolled up (the sealer told the hour is closed), the rollups hold each click once.
  await seal({ sql: s.sql, ch, database: "linkflow", now: () => Date.now() + 48 * 3_600_000, wait: true });
  const total = (table: string) => rows<{ n: number }>(ch, `SELECT sum(c) AS n FROM (SELECT max(clicks) AS c FROM linkflow.${table} WHERE level = 'all' AND dim = '' GROUP BY t, is_bot)`);
  const [hourly] = await total("rollup_hourly");
  const [daily] = await total("rollup_daily");
  expect(Number(hourly!.n)).toBe(N);
  expect(Number(daily!.n)).toBe(N);
  // After a merge, ReplacingMergeTree keeps one row per click.
  await ch.command({ query: "OPTIMIZE TABLE linkflow.clicks FINAL" });
  const [merged] = await rows<{ n: number }>(ch, "SELECT count() AS n FROM linkflow.clicks");
  expect(Number(merged!.n)).toBe(N);
}, 60_000);
