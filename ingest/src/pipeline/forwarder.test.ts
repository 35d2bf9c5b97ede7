import { GetRecordsCommand, GetShardIteratorCommand, ListShardsCommand } from "@aws-sdk/client-kinesis";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rowsReadBy, testSchema } from "../../../test/helpers.ts";
import type { Sql } from "../db/connect.ts";
import { migrate } from "../db/migrate.ts";
import { createMetrics } from "../metrics.ts";
import { startEmbeddedKinesis } from "./embedded-kinesis.ts";
import { claimOutbox, createForwarder } from "./forwarder.ts";
import { ensureStream, kinesisClient } from "./kinesis.ts";

let db: Awaited<ReturnType<typeof testSchema>>;
let kinesalite: Awaited<ReturnType<typeof startEmbeddedKinesis>>;
const STREAM = "forwarder-test";

beforeAll(async () => {
  db = await testSchema();
  await migrate(db.sql);
  kinesalite = await startEmbeddedKinesis();
}, 60_000);
afterAll(async () => {
  await kinesalite?.stop();
  await db?.drop();
});

async function readBack(kinesis: ReturnType<typeof kinesisClient>): Promise<string[]> {
  const out: string[] = [];
  for (const shard of (await kinesis.send(new ListShardsCommand({ StreamName: STREAM }))).Shards ?? []) {
    const it = (await kinesis.send(new GetShardIteratorCommand({ StreamName: STREAM, ShardId: shard.ShardId!, ShardIteratorType: "TRIM_HORIZON" }))).ShardIterator;
    const got = await kinesis.send(new GetRecordsCommand({ ShardIterator: it, Limit: 10_000 }));
    for (const r of got.Records ?? []) out.push(Buffer.from(r.Data!).toString("utf8"));
  }
  return out.sort();
}

const row = (sql: Sql, id: number, attempts = 0) =>
  sql`INSERT INTO outbox (id, partition_key, data, attempts) VALUES (${id}, ${`k${id}`}, ${Buffer.from(`r${id}`)}, ${attempts})`;

describe("forwarder claims", () => {
  it("read about a batch of rows however long the backlog, on an outbox without statistics (a claim that read them all fell behind for good)", async () => {
    // A schema of its own: the other tests' vacuums leave statistics on theirs.
    const fresh = await testSchema();
    try {
      await migrate(fresh.sql);
      await fresh.sql`INSERT INTO outbox (partition_key, data) SELECT 'k', convert_to('r', 'UTF8') FROM generate_series(1, 20000)`;
      const { result, read } = await rowsReadBy(fresh.sql, "outbox", (tx) => claimOutbox(tx, 0, 500));
      const claimed = result.map((r) => Number(r.id)).sort((a, b) => a - b);
      expect(claimed).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
      // The batch, and the update's lookup of each row by id; a sorted bitmap scan read 20,500.
      expect(read).toBeLessThanOrEqual(1_000);
    } finally {
      await fresh.drop();
    }
  }, 30_000);

  it("start from a floor below the oldest row, yet send a row committed under it, and count a row that failed before as a re-send", async () => {
    const kinesis = kinesisClient({ endpoint: kinesalite.endpoint });
    await ensureStream(kinesis, STREAM, 2);
    const metrics = createMetrics();
    const fw = createForwarder({ sql: db.sql, kinesis, stream: STREAM, batch: 500, idleMs: 50, breakerFailures: 5, breakerResetMs: 1000, log: pino({ level: "silent" }), metrics });
    for (const id of [50_000, 50_001, 50_002]) await row(db.sql, id);
    // The first batch sweeps first: the floor is now 40,000 (50,000 less the margin).
    expect(await fw.forwardOnce()).toBe(3);
    // A row that commits with an id under the floor (handed out long before, committed late) is
    // not claimed before a sweep; one whose put failed before is, and counts as a re-send…
    await row(db.sql, 7);
    await row(db.sql, 50_003, 1);
    expect(await fw.forwardOnce()).toBe(1);
    expect(await fw.forwardOnce()).toBe(0);
    // …and the late one is after the sweep (a second later).
    await new Promise((r) => setTimeout(r, 1_100));
    expect(await fw.forwardOnce()).toBe(1);
    expect(await db.sql`SELECT id FROM outbox`).toEqual([]);
    expect(await readBack(kinesis)).toEqual(["r50000", "r50001", "r50002", "r50003", "r7"]);
    expect((await metrics.kinesisResent.get()).values[0]!.value).toBe(1);
  }, 30_000);

  it("leave rows another transaction holds (a forwarder putting them), and take them once it ends without deleting them", async () => {
    const kinesis = kinesisClient({ endpoint: kinesalite.endpoint });
    await ensureStream(kinesis, STREAM, 2);
    const fw = createForwarder({ sql: db.sql, kinesis, stream: STREAM, batch: 500, idleMs: 50, breakerFailures: 5, breakerResetMs: 1000, log: pino({ level: "silent" }), metrics: createMetrics() });
    for (let id = 70_000; id < 70_005; id++) await row(db.sql, id);
    // Another forwarder's batch: it holds the first two rows, then dies (its transaction ends
    // without a delete).
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let claimedByOther: number[] = [];
    const other = db.sql
      .begin(async (tx) => {
        claimedByOther = (await claimOutbox(tx, 0, 2)).map((r) => Number(r.id));
        await held;
        throw new Error("crashed");
      })
      .catch(() => {});
    while (!claimedByOther.length) await new Promise((r) => setTimeout(r, 10));
    expect(claimedByOther).toEqual([70_000, 70_001]);
    expect(await fw.forwardOnce()).toBe(3);
    expect((await db.sql<{ id: string }[]>`SELECT id FROM outbox ORDER BY id`).map((r) => Number(r.id))).toEqual([70_000, 70_001]);
    release();
    await other;
    expect(await fw.forwardOnce()).toBe(2);
    expect(await db.sql`SELECT id FROM outbox`).toEqual([]);
  }, 30_000);

  it("keep the rows of a put that failed, with the attempt counted, and send them again later as counted re-sends", async () => {
    // Nothing listens there: the put fails to connect.
    const down = kinesisClient({ endpoint: "http://127.0.0.1:9" });
    const metrics = createMetrics();
    const failing = createForwarder({ sql: db.sql, kinesis: down, stream: STREAM, batch: 500, idleMs: 50, breakerFailures: 5, breakerResetMs: 1000, log: pino({ level: "silent" }), metrics });
    for (let id = 80_000; id < 80_003; id++) await row(db.sql, id);
    await expect(failing.forwardOnce()).rejects.toThrow();
    expect((await db.sql<{ attempts: number }[]>`SELECT attempts FROM outbox ORDER BY id`).map((r) => r.attempts)).toEqual([1, 1, 1]);
    const kinesis = kinesisClient({ endpoint: kinesalite.endpoint });
    await ensureStream(kinesis, STREAM, 2);
    const fw = createForwarder({ sql: db.sql, kinesis, stream: STREAM, batch: 500, idleMs: 50, breakerFailures: 5, breakerResetMs: 1000, log: pino({ level: "silent" }), metrics });
    expect(await fw.forwardOnce()).toBe(3);
    expect((await metrics.kinesisResent.get()).values[0]!.value).toBe(3);
    expect(await db.sql`SELECT id FROM outbox`).toEqual([]);
  }, 30_000);

  it("vacuums the outbox itself once it has deleted enough rows (a queue outruns autovacuum, and some servers run none)", async () => {
    const kinesis = kinesisClient({ endpoint: kinesalite.endpoint });
    await ensureStream(kinesis, STREAM, 2);
    const vacuums = async () => Number((await db.sql<{ n: string }[]>`SELECT vacuum_count AS n FROM pg_stat_user_tables WHERE relid = 'outbox'::regclass`)[0]!.n);
    const before = await vacuums();
    const fw = createForwarder({ sql: db.sql, kinesis, stream: STREAM, batch: 500, idleMs: 50, breakerFailures: 5, breakerResetMs: 1000, log: pino({ level: "silent" }), metrics: createMetrics(), vacuumAfterRows: 10 });
    for (let id = 60_000; id < 60_020; id++) await row(db.sql, id);
    expect(await fw.forwardOnce()).toBe(20);
    expect(await vacuums()).toBe(before);
    // The next sweep (a second on) vacuums: 20 deletions since the last, over the 10 asked.
    await new Promise((r) => setTimeout(r, 1_100));
    expect(await fw.forwardOnce()).toBe(0);
    expect(await vacuums()).toBe(before + 1);
  }, 30_000);
});
