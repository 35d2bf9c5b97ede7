import { GetRecordsCommand, GetShardIteratorCommand, ListShardsCommand } from "@aws-sdk/client-kinesis";
import { deaggregateSync, type UserRecordV3 } from "aws-kinesis-agg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { rows } from "../ingest/src/analytics/clickhouse.ts";
import { GZIP_MAGIC, KPL_MAGIC } from "../ingest/src/pipeline/aggregate.ts";
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

  // The stream as Firehose or a Lambda reads it in the default configuration (records not
  // gzipped): aws-kinesis-agg deaggregates every record, and every click is there.
  const kinesis = s.ingest.pipeline.kinesis!;
  const stream = `clicks-${(await s.sql`SELECT current_schema() AS s`)[0]!.s}`;
  const seen = new Set<string>();
  for (const shard of (await kinesis.send(new ListShardsCommand({ StreamName: stream }))).Shards!) {
    let it = (await kinesis.send(new GetShardIteratorCommand({ StreamName: stream, ShardId: shard.ShardId!, ShardIteratorType: "TRIM_HORIZON" }))).ShardIterator;
    for (;;) {
      const out = await kinesis.send(new GetRecordsCommand({ ShardIterator: it, Limit: 10_000 }));
      for (const rec of out.Records ?? []) {
        expect(Buffer.from(rec.Data!.subarray(0, 3)).equals(GZIP_MAGIC)).toBe(false);
        const kpl = Buffer.from(rec.Data!.subarray(0, 4)).equals(KPL_MAGIC);
        deaggregateSync(rec as { Data: Uint8Array }, true, (err: Error | null | undefined, users?: UserRecordV3[]) => {
          expect(err).toBeFalsy();
          for (const u of users ?? []) seen.add(JSON.parse((kpl ? Buffer.from(u.Data, "base64") : Buffer.from(u.Data as unknown as Uint8Array)).toString("utf8")).click_id);
        });
      }
      it = out.NextShardIterator;
      if (!out.Records?.length) break;
    }
  }
  expect(seen).toEqual(new Set(events.map((e) => e.click_id)));

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
