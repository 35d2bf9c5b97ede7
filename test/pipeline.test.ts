import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clickEventSchema } from "../shared/event.ts";
import { rows } from "../ingest/src/analytics/clickhouse.ts";
import { clickEvent, postBeacon, seedLinks } from "./fixtures.ts";
import { body, eventually, json, sealedTotals, startStack, streamRecords, userRecords, type Stack } from "./helpers.ts";

/** PostgreSQL server, kinesalite and chDB, all real; N concurrent signed beacons end to end. */
const N = 10_000;
const CONCURRENCY = 64;

let s: Stack;
beforeAll(async () => {
  // Aggregates gzipped (the option; plain KPL aggregates, the default, run end to end in every other pipeline test).
  s = await startStack({ edge: false, pipeline: true, env: { KINESIS_COMPRESSION: "gzip" } });
});
afterAll(() => s.close());

const status = async () => body(await fetch(`${s.ingest.url}/api/pipeline`, { headers: json(s.adminKey) }));

describe("PostgreSQL → Kinesis → ClickHouse", () => {
  it(`carries ${N} concurrent beacons into ClickHouse exactly once, views included`, async () => {
    const hours = [0, 1, 2].map((h) => new Date(Date.now() - h * 3_600_000).toISOString());
    const events = Array.from({ length: N }, (_, i) =>
      clickEvent({ link_id: 1 + (i % 7), code: `code${i % 7}`, timestamp: hours[i % 3]!, referer: i % 2 ? "https://a.example/x" : "" }),
    );
    await seedLinks(s.sql, events);
    let next = 0;
    const statuses: number[] = [];
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < events.length) statuses.push((await postBeacon(s.ingest.url, events[next++]!)).status);
      }),
    );
    expect(statuses.filter((x) => x !== 202)).toEqual([]);
    expect(Number((await s.sql`SELECT count(*) AS n FROM clicks`)[0]!.n)).toBe(N);

    const drained = await eventually(async () => (await status()).clickhouse_clicks === N, 60_000, 250);
    expect(drained).toBe(true);
    expect(await status()).toMatchObject({ postgres_clicks: N, kinesis_sent: N, clickhouse_clicks: N, outbox_backlog: 0, dlq: 0, breakers: { kinesis: "closed", clickhouse: "closed" } });

    const ch = s.ingest.pipeline.ch!;
    // Rolled up (the sealer told the day is over), the rollups hold each click once.
    expect(await sealedTotals(s)).toEqual({ hourly: N, daily: N });
    const perLink = await rows<{ link_id: number; n: number }>(ch, `SELECT link_id, uniqExact(click_id) AS n FROM linkflow.clicks WHERE link_id = {id:UInt64} GROUP BY link_id`, { id: 3 });
    expect(Number(perLink[0]!.n)).toBe(events.filter((e) => e.link_id === 3).length);
    // No raw IP reaches ClickHouse.
    const cols = await rows<{ name: string }>(ch, `SELECT name FROM system.columns WHERE database = 'linkflow' AND table = 'clicks'`);
    expect(cols.map((c) => c.name)).not.toContain("ip_address");

    // Kinesis itself: every record carries every event field (plus the commit time).
    const { shards, records } = await streamRecords(s);
    expect(shards).toBe(2);
    const seen = new Set<string>();
    const keys = new Set<string>();
    for (const rec of records) {
      // A record is one click (partition key: its code) or a gzipped KPL aggregate of several
      // (partition key: its first outbox id, so aggregates spread over the shards).
      const { gz, kpl, users } = userRecords(rec);
      expect(kpl).toBe(gz);
      if (kpl) expect(rec.PartitionKey).toMatch(/^outbox-\d+$/);
      keys.add(rec.PartitionKey!);
      expect(users.length > 1 || !kpl).toBe(true);
      for (const user of users) {
        const data = JSON.parse(user.data.toString("utf8"));
        for (const field of Object.keys(clickEventSchema.shape)) expect(data).toHaveProperty(field);
        // Each click under its own partition key, its code, aggregated or not.
        expect(user.partitionKey).toBe(data.code);
        expect(Date.parse(data.received_at)).not.toBeNaN();
        seen.add(data.click_id);
      }
    }
    expect(seen.size).toBe(N);
    // Exactly the clicks stored in ClickHouse.
    const stored = await rows<{ id: string }>(ch, `SELECT DISTINCT toString(click_id) AS id FROM linkflow.clicks`);
    expect(new Set(stored.map((r) => r.id))).toEqual(seen);
    // 10,000 concurrent beacons: the forwarder packed them (~100 a record), on both shards.
    expect(records.length).toBeLessThan(N / 10);
    expect(keys.size).toBeGreaterThan(1);
    const sent = new Set(events.map((e) => e.click_id));
    expect([...seen].every((id) => sent.has(id))).toBe(true);
  }, 180_000);

  it("reports the end-to-end lag of what it carried", async () => {
    const lag = await body(await fetch(`${s.ingest.url}/api/pipeline/lag?since=${new Date(Date.now() - 3_600_000).toISOString()}`, { headers: json(s.adminKey) }));
    expect(lag.clicks).toBe(N);
    expect(lag.p50_ms).toBeGreaterThanOrEqual(0);
    expect(lag.p99_ms).toBeGreaterThanOrEqual(lag.p50_ms);
    expect(lag.max_ms).toBeGreaterThanOrEqual(lag.p99_ms);
    const bad = await fetch(`${s.ingest.url}/api/pipeline/lag?since=yesterday`, { headers: json(s.adminKey) });
    expect(bad.status).toBe(400);
  });

  it("exposes breaker states and the backlog in /metrics, as valid Prometheus text format", async () => {
    const res = await fetch(`${s.ingest.url}/metrics`);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    // Exposition format 0.0.4: HELP/TYPE lines, then samples `name{label="v",…} value`.
    const typed = new Map<string, string>();
    for (const line of text.split("\n").filter(Boolean)) {
      const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
      if (meta) {
        if (meta[1] === "TYPE") {
          expect(["counter", "gauge", "histogram", "summary", "untyped"]).toContain(meta[3]);
          typed.set(meta[2]!, meta[3]!);
        }
        continue;
      }
      const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$/.exec(line);
      expect(sample, line).not.toBeNull();
      const family = sample![1]!.replace(/_(bucket|sum|count)$/, "");
      expect(typed.has(sample![1]!) || typed.has(family), line).toBe(true);
    }
    expect(text).toMatch(/linkflow_breaker_state\{breaker="kinesis"\} 0/);
    expect(text).toMatch(/linkflow_breaker_state\{breaker="clickhouse"\} 0/);
    expect(text).toMatch(/linkflow_outbox_backlog 0/);
    expect(text).toMatch(/linkflow_loader_lag_seconds_count \d+/);
    expect(text).toMatch(/linkflow_http_request_duration_seconds_bucket/);
  });

  it("keeps /api/pipeline to admin keys", async () => {
    expect((await fetch(`${s.ingest.url}/api/pipeline`)).status).toBe(401);
  });
});
