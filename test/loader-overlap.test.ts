import { GetRecordsCommand, type KinesisClient } from "@aws-sdk/client-kinesis";
import pino from "pino";
import { afterAll, beforeAll, expect, it } from "vitest";
import { rows } from "../ingest/src/analytics/clickhouse.ts";
import { createLoader, type InsertClicks } from "../ingest/src/pipeline/loader.ts";
import { createMetrics } from "../ingest/src/metrics.ts";
import { clickEvent, postBeacon, seedLinks } from "./fixtures.ts";
import { eventually, startStack, type Stack } from "./helpers.ts";

/**
 * The loader reads on while a batch is being inserted (one insert at a time), so a slow insert
 * no longer holds back the reading of the next batch. Real stack (PostgreSQL, outbox,
 * forwarder, kinesalite, chDB); the stack's own loader is stopped and replaced by one whose
 * ClickHouse inserts go through a slowing (and, in the second test, once failing) wrapper (the
 * loader's `insert` option around the real chDB insert), and whose Kinesis reads are counted.
 */
let s: Stack;
let stream: string;
beforeAll(async () => {
  s = await startStack({ edge: false, pipeline: true, env: { LOG_LEVEL: process.env.LF_LOG ?? "silent" } });
  stream = `clicks-${(await s.sql`SELECT current_schema() AS s`)[0]!.s}`;
  await s.ingest.pipeline.loader!.stop();
  await seedLinks(s.sql, [clickEvent({ code: "overlap" })]);
});
afterAll(() => s.close());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Wraps the real insert and Kinesis client: inserts take `delayMs` more (the first `failFirst` fail after it), reads during an insert are counted. */
function instrumented(delayMs: number, failFirst = 0) {
  const ch = s.ingest.pipeline.ch!;
  const kinesis = s.ingest.pipeline.kinesis!;
  const seen = { inserts: 0, inFlight: 0, maxInFlight: 0, recordsReadDuringInsert: 0, failed: 0 };
  const slowInsert = (insert: InsertClicks): InsertClicks => async (batch) => {
    seen.inserts++;
    seen.maxInFlight = Math.max(seen.maxInFlight, ++seen.inFlight);
    try {
      await sleep(delayMs);
      if (seen.failed < failFirst) {
        seen.failed++;
        throw new Error("ClickHouse unavailable (test)");
      }
      await insert(batch);
    } finally {
      seen.inFlight--;
    }
  };
  const countingKinesis = new Proxy(kinesis, {
    get(target, key) {
      if (key !== "send") return Reflect.get(target, key, target);
      return async (cmd: Parameters<KinesisClient["send"]>[0]) => {
        const insertRunning = seen.inFlight > 0;
        const out = await target.send(cmd as never);
        if (cmd instanceof GetRecordsCommand && insertRunning) seen.recordsReadDuringInsert += (out as { Records?: unknown[] }).Records?.length ?? 0;
        return out;
      };
    },
  });
  const loader = createLoader({
    sql: s.sql,
    kinesis: countingKinesis,
    ch,
    insert: slowInsert,
    database: "linkflow",
    stream,
    batchRows: 1000,
    batchMs: 100,
    maxAttempts: 3,
    breakerFailures: 5,
    breakerResetMs: 1000,
    log: pino({ level: "silent" }),
    metrics: createMetrics(),
    owner: `overlap-${delayMs}-${failFirst}`,
  });
  return { loader, seen };
}

const inClickHouse = async (ids: string[]) =>
  Number((await rows<{ n: number }>(s.ingest.pipeline.ch!, "SELECT uniqExact(click_id) AS n FROM linkflow.clicks WHERE has({ids:Array(UUID)}, click_id)", { ids }))[0]!.n);
const rowsInClickHouse = async (ids: string[]) =>
  Number((await rows<{ n: number }>(s.ingest.pipeline.ch!, "SELECT count() AS n FROM linkflow.clicks WHERE has({ids:Array(UUID)}, click_id)", { ids }))[0]!.n);

/** Beacons spread over ~`spanMs`, so records keep arriving in Kinesis while inserts run. */
async function clicksOver(n: number, spanMs: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const e = clickEvent({ code: "overlap" });
    expect((await postBeacon(s.ingest.url, e)).status).toBe(202);
    ids.push(e.click_id);
    await sleep(spanMs / n);
  }
  return ids;
}

it("reads the next batch while an insert is in flight, one insert at a time, and checkpoints every shard to its end", async () => {
  const { loader, seen } = instrumented(1_500);
  loader.start();
  try {
    const ids = await clicksOver(40, 4_000);
    expect(await eventually(async () => (await inClickHouse(ids)) === ids.length, 30_000, 100)).toBe(true);
    // Records were read while an insert ran (a loader that reads only between inserts reads none then)…
    expect(seen.recordsReadDuringInsert).toBeGreaterThan(0);
    // …and inserts never overlapped each other (checkpoints move forward in order).
    expect(seen.maxInFlight).toBe(1);
    expect(seen.inserts).toBeGreaterThan(1);
    expect(await rowsInClickHouse(ids)).toBe(ids.length);
  } finally {
    await loader.stop();
  }
  // Stopping waited for the insert in flight and its checkpoint: every shard that has records
  // is checkpointed at its last one, so nothing is read again.
  const checkpoints = await s.sql<{ shard_id: string; sequence_number: string | null }[]>`
    SELECT shard_id, sequence_number FROM loader_checkpoints WHERE stream = ${stream}`;
  expect(checkpoints.some((c) => c.sequence_number !== null)).toBe(true);
  const [pending] = await s.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM outbox`;
  expect(pending!.n).toBe(0);
}, 60_000);

it("retries a failed insert with what was read meanwhile: every click once, none lost", async () => {
  const { loader, seen } = instrumented(600, 2);
  loader.start();
  try {
    const ids = await clicksOver(30, 3_000);
    expect(await eventually(async () => (await inClickHouse(ids)) === ids.length, 30_000, 100)).toBe(true);
    expect(seen.failed).toBe(2);
    expect(seen.maxInFlight).toBe(1);
    // The failed batches' rows were inserted once, after the failures, with the rows read meanwhile.
    expect(await rowsInClickHouse(ids)).toBe(ids.length);
  } finally {
    await loader.stop();
  }
}, 60_000);
