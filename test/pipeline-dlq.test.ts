import { PutRecordsCommand } from "@aws-sdk/client-kinesis";
import pino from "pino";
import { afterAll, beforeAll, expect, it } from "vitest";
import { z } from "zod";
import { CACHE_TIERS } from "../shared/event.ts";
import { packRecords } from "../ingest/src/pipeline/aggregate.ts";
import { rows } from "../ingest/src/analytics/clickhouse.ts";
import { createLoader, recordSchema } from "../ingest/src/pipeline/loader.ts";
import { createMetrics } from "../ingest/src/metrics.ts";
import { clickEvent, postBeacon, seedLinks } from "./fixtures.ts";
import { body, eventually, json, startStack, type Stack } from "./helpers.ts";

/**
 * Poison records go to the dead-letter table and the shard keeps moving; replay re-drives them
 * (back through the outbox and Kinesis) once their cause is fixed. The "cause" here: a newer
 * edge sends a cache tier this loader does not know yet; the fix is a loader that knows it.
 */
let s: Stack;
let stream: string;
beforeAll(async () => {
  s = await startStack({ edge: false, pipeline: true, env: { LOG_LEVEL: process.env.LF_LOG ?? "silent" } });
  stream = `clicks-${(await s.sql`SELECT current_schema() AS s`)[0]!.s}`;
});
afterAll(() => s.close());

const api = async (path: string, init: RequestInit = {}) => body(await fetch(`${s.ingest.url}${path}`, { headers: json(s.adminKey), ...init }));
const inClickHouse = async (id: string) =>
  Number((await rows<{ n: number }>(s.ingest.pipeline.ch!, "SELECT count() AS n FROM linkflow.clicks WHERE click_id = {id:UUID}", { id }))[0]!.n);

it("dead-letters a bad click of an aggregated record alone (KPL and the format before it); a corrupt KPL record whole", async () => {
  const kinesis = s.ingest.pipeline.kinesis!;
  const record = (e: ReturnType<typeof clickEvent>) => Buffer.from(JSON.stringify({ ...e, received_at: new Date().toISOString() }));
  const [a, b, c, d, e, f] = Array.from({ length: 6 }, () => clickEvent({ code: "agg" }));
  const poison = Buffer.from("{\"click_id\": oops");
  // As the forwarder packs outbox rows: the poison under a code of its own.
  const rows = [record(a!), poison, record(b!)].map((data, i) => ({ id: String(i + 1), partition_key: i === 1 ? "poison" : "agg", data }));
  const [kpl] = packRecords(rows, 50_000);
  const corrupt = Buffer.from(packRecords([record(e!), record(f!)].map((data, i) => ({ id: String(i + 1), partition_key: "agg", data })), 50_000)[0]!.Data);
  corrupt[corrupt.length - 1]! ^= 0xff; // the MD5 no longer matches
  // A record in Linkflow's format before the KPL's, as streams written before still hold.
  const legacy = Buffer.concat([Buffer.from([0xf3, 0x4c, 0x46, 0x31]), ...[record(c!), poison, record(d!)].flatMap((p) => [Buffer.from([0, 0, p.length >> 8, p.length & 0xff]), p])]);
  const [kplPut, legacyPut, corruptPut] = (
    await kinesis.send(
      new PutRecordsCommand({
        StreamName: stream,
        Records: [
          { PartitionKey: kpl!.PartitionKey, ExplicitHashKey: kpl!.ExplicitHashKey, Data: kpl!.Data },
          { PartitionKey: "agg", Data: legacy },
          { PartitionKey: "outbox-1", Data: corrupt },
        ],
      }),
    )
  ).Records!;
  for (const x of [a, b, c, d]) expect(await eventually(async () => (await inClickHouse(x!.click_id)) === 1, 20_000, 100)).toBe(true);
  expect(await eventually(async () => (await api("/api/pipeline/dlq")).items.length === 3, 20_000, 100)).toBe(true);
  const dlq = new Map<string, Record<string, unknown>>((await api("/api/pipeline/dlq")).items.map((i: { sequence_number: string }) => [i.sequence_number, i]));
  expect(dlq.get(`${kplPut!.SequenceNumber}:1`)).toMatchObject({ source: "loader", partition_key: "poison", payload_base64: poison.toString("base64"), error: expect.stringMatching(/invalid JSON/) });
  expect(dlq.get(`${legacyPut!.SequenceNumber}:1`)).toMatchObject({ source: "loader", payload_base64: poison.toString("base64"), error: expect.stringMatching(/invalid JSON/) });
  // A corrupt aggregate is one bad record: none of its clicks is taken on trust.
  expect(dlq.get(corruptPut!.SequenceNumber!)).toMatchObject({ source: "loader", payload_base64: corrupt.toString("base64"), error: expect.stringMatching(/checksum/i) });
  expect(await inClickHouse(e!.click_id)).toBe(0);
  await s.sql`DELETE FROM dead_letters`; // the next test counts its own
});

it("dead-letters poison, keeps the shard moving, and replays after the fix", async () => {
  const kinesis = s.ingest.pipeline.kinesis!;
  const before = clickEvent({ code: "same" });
  const after = clickEvent({ code: "same" });
  const newer = { ...clickEvent({ code: "same" }), cache_tier: "tiered", received_at: new Date().toISOString() };
  await seedLinks(s.sql, [before]);
  expect((await postBeacon(s.ingest.url, before)).status).toBe(202);
  // Same partition key, so the poison sits between good records on one shard.
  await kinesis.send(
    new PutRecordsCommand({
      StreamName: stream,
      Records: [
        { PartitionKey: "same", Data: Buffer.from("\u0000not json at all") },
        { PartitionKey: "same", Data: Buffer.from(JSON.stringify(newer)) },
      ],
    }),
  );
  expect((await postBeacon(s.ingest.url, after)).status).toBe(202);

  expect(await eventually(async () => (await inClickHouse(after.click_id)) === 1, 20_000, 100)).toBe(true);
  expect(await inClickHouse(before.click_id)).toBe(1);
  const dlq = await api("/api/pipeline/dlq");
  expect(dlq.items).toHaveLength(2);
  expect(dlq.items[0]).toMatchObject({ source: "loader", partition_key: "same", payload_base64: Buffer.from("\u0000not json at all").toString("base64") });
  expect(dlq.items[0].error).toMatch(/invalid JSON/);
  expect(dlq.items[1].error).toMatch(/cache_tier/);
  expect((await api("/api/pipeline")).dlq).toBe(2);

  // The fix ships: a loader that knows the new tier takes over the shards.
  await s.ingest.pipeline.loader!.stop();
  const fixed = createLoader({
    sql: s.sql,
    kinesis,
    ch: s.ingest.pipeline.ch!,
    database: "linkflow",
    stream,
    batchRows: 1000,
    batchMs: 100,
    maxAttempts: 3,
    breakerFailures: 3,
    breakerResetMs: 1000,
    log: pino({ level: "silent" }),
    metrics: createMetrics(),
    owner: "fixed-loader",
    schema: recordSchema.extend({ cache_tier: z.enum([...CACHE_TIERS, "tiered"]) }) as unknown as typeof recordSchema,
  });
  fixed.start();
  try {
    const replayed = await api("/api/pipeline/dlq/replay", { method: "POST", body: JSON.stringify({ ids: [dlq.items[1].id] }) });
    expect(replayed).toEqual({ replayed: 1 });
    expect(await eventually(async () => (await inClickHouse(newer.click_id)) === 1, 20_000, 100)).toBe(true);
    // The unfixable one, replayed, simply comes back to the dead-letter table.
    expect(await api("/api/pipeline/dlq/replay", { method: "POST", body: "" })).toEqual({ replayed: 1 });
    expect(await eventually(async () => (await api("/api/pipeline/dlq")).items.length === 1, 20_000, 100)).toBe(true);
    const again = await api("/api/pipeline/dlq");
    expect(again.items[0].payload_base64).toBe(Buffer.from("\u0000not json at all").toString("base64"));
    expect(again.items[0].id).toBeGreaterThan(dlq.items[1].id);
  } finally {
    await fixed.stop();
  }
  const bad = await fetch(`${s.ingest.url}/api/pipeline/dlq/replay`, { method: "POST", headers: json(s.adminKey), body: '{"ids":"all"}' });
  expect(bad.status).toBe(400);
}, 90_000);
