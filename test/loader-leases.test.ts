import { CreateStreamCommand, ListShardsCommand, SplitShardCommand, waitUntilStreamExists } from "@aws-sdk/client-kinesis";
import pino from "pino";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { ClickHouseClient } from "../ingest/src/analytics/clickhouse.ts";
import { startEmbeddedKinesis } from "../ingest/src/pipeline/embedded-kinesis.ts";
import { kinesisClient } from "../ingest/src/pipeline/kinesis.ts";
import { createLoader, type Loader } from "../ingest/src/pipeline/loader.ts";
import { createMetrics } from "../ingest/src/metrics.ts";
import { migrate } from "../ingest/src/db/migrate.ts";
import { testSchema } from "./helpers.ts";

/**
 * Shard leases in PostgreSQL, fast: three in-process loaders with a 2 s lease on an empty 4-shard
 * stream (no records, so no ClickHouse). The multi-process version with data and a SIGKILL is
 * test/faults/loaders.test.ts.
 */
const LEASE_S = 2;
const RENEW_MS = 200;
const STREAM = "leases";

let db: Awaited<ReturnType<typeof testSchema>>;
let kin: Awaited<ReturnType<typeof startEmbeddedKinesis>>;
let kinesis: ReturnType<typeof kinesisClient>;
const loaders: Loader[] = [];
beforeAll(async () => {
  db = await testSchema();
  await migrate(db.sql);
  kin = await startEmbeddedKinesis();
  kinesis = kinesisClient({ endpoint: kin.endpoint });
  await kinesis.send(new CreateStreamCommand({ StreamName: STREAM, ShardCount: 4 }));
  await waitUntilStreamExists({ client: kinesis, maxWaitTime: 30, minDelay: 1 }, { StreamName: STREAM });
});
afterAll(async () => {
  for (const l of loaders) await l.stop();
  kinesis?.destroy();
  await kin?.stop();
  await db?.drop();
});

const loader = (owner: string) =>
  createLoader({
    sql: db.sql,
    kinesis,
    ch: {} as ClickHouseClient, // never called: the stream stays empty
    database: "linkflow",
    stream: STREAM,
    batchRows: 100,
    batchMs: 50,
    maxAttempts: 3,
    breakerFailures: 3,
    breakerResetMs: 1_000,
    log: pino({ level: "silent" }),
    metrics: createMetrics(),
    owner,
    leaseS: LEASE_S,
    renewMs: RENEW_MS,
    listShardsMs: RENEW_MS,
  });

const leases = () =>
  db.sql<{ shard_id: string; owner: string | null; live: boolean; finished: boolean }[]>`
    SELECT shard_id, owner, lease_until > now() AS live, finished FROM loader_checkpoints WHERE stream = ${STREAM} ORDER BY shard_id`;
async function until<T>(ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out: ${JSON.stringify(await leases())}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
const perOwner = (ls: { owner: string | null; live: boolean }[]) => {
  const m = new Map<string, number>();
  for (const l of ls) if (l.live && l.owner) m.set(l.owner, (m.get(l.owner) ?? 0) + 1);
  return m;
};

it("spreads shards over live loaders, takes a crashed loader's shards after its lease, follows a split", async () => {
  // One loader first: it takes all four; the next two take shares from it (2/1/1).
  loaders.push(loader("a"));
  loaders[0]!.start();
  await until(10_000, async () => ((await leases()).filter((l) => l.owner === "a" && l.live).length === 4 ? true : undefined));
  loaders.push(loader("b"), loader("c"));
  loaders[1]!.start();
  loaders[2]!.start();
  const spread = await until(10_000, async () => {
    const m = perOwner(await leases());
    return m.size === 3 && [...m.values()].sort().join() === "1,1,2" ? m : undefined;
  });
  expect([...spread.keys()].sort()).toEqual(["a", "b", "c"]);
  // Stable: shares do not swap back and forth.
  await new Promise((r) => setTimeout(r, 5 * RENEW_MS));
  expect([...perOwner(await leases()).values()].sort().join()).toBe("1,1,2");

  // Crash the busiest loader (no release): its shards stay leased until the lease expires.
  const [victim] = [...spread].sort((x, y) => y[1] - x[1])[0]!;
  const orphaned = (await leases()).filter((l) => l.owner === victim).map((l) => l.shard_id);
  const idx = ["a", "b", "c"].indexOf(victim);
  const crashedAt = Date.now();
  await loaders[idx]!.crash();
  loaders.splice(idx, 1);
  await new Promise((r) => setTimeout(r, (LEASE_S * 1000) / 2));
  expect((await leases()).filter((l) => orphaned.includes(l.shard_id)).every((l) => l.owner === victim)).toBe(true);
  const took = await until((LEASE_S + 5) * 1000, async () => {
    const ls = (await leases()).filter((l) => orphaned.includes(l.shard_id));
    return ls.every((l) => l.live && l.owner && l.owner !== victim) ? Date.now() - crashedAt : undefined;
  });
  expect(took).toBeLessThanOrEqual(LEASE_S * 1000 + RENEW_MS + 2_000); // lease + one renewal (+ slack for a busy CI)
  expect([...perOwner(await leases()).values()].sort().join()).toBe("2,2");

  // A split: the parent is read to its end and finished, then its two children are leased.
  const { Shards } = await kinesis.send(new ListShardsCommand({ StreamName: STREAM }));
  const parent = Shards![0]!;
  const { StartingHashKey: lo, EndingHashKey: hi } = parent.HashKeyRange!;
  await kinesis.send(new SplitShardCommand({ StreamName: STREAM, ShardToSplit: parent.ShardId!, NewStartingHashKey: String((BigInt(lo!) + BigInt(hi!)) / 2n) }));
  const after = await until(15_000, async () => {
    const ls = await leases();
    return ls.length === 6 && ls.filter((l) => l.finished).length === 1 && ls.filter((l) => !l.finished).every((l) => l.live && l.owner) ? ls : undefined;
  });
  expect(after.find((l) => l.finished)?.shard_id).toBe(parent.ShardId);
  expect([...perOwner(after.filter((l) => !l.finished)).values()].sort().join()).toBe("2,3");
});
