import { afterAll, beforeAll, expect, it } from "vitest";
import { rows } from "../ingest/src/analytics/clickhouse.ts";
import { clickEvent, postBeacon, seedLinks } from "./fixtures.ts";
import { body, eventually, json, sealedTotals, startStack, streamRecords, userRecords, type Stack } from "./helpers.ts";

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

  // The stream as Firehose or a Lambda reads it in the default configuration (records not
  // gzipped): aws-kinesis-agg deaggregates every record, and every click is there.
  const seen = new Set<string>();
  for (const rec of (await streamRecords(s)).records) {
    const { gz, users } = userRecords(rec);
    expect(gz).toBe(false);
    for (const u of users) seen.add(JSON.parse(u.data.toString("utf8")).click_id);
  }
  expect(seen).toEqual(new Set(events.map((e) => e.click_id)));

  const ch = s.ingest.pipeline.ch!;
  // (How many duplicate rows are still physically there depends on background merges; the
  // clickhouse_rows counter above already proves that every batch arrived twice.)
  // Rolled up (the sealer told the hour is closed), the rollups hold each click once.
  expect(await sealedTotals(s)).toEqual({ hourly: N, daily: N });
  // After a merge, ReplacingMergeTree keeps one row per click.
  await ch.command({ query: "OPTIMIZE TABLE linkflow.clicks FINAL" });
  const [merged] = await rows<{ n: number }>(ch, "SELECT count() AS n FROM linkflow.clicks");
  expect(Number(merged!.n)).toBe(N);
}, 60_000);
