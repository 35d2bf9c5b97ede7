import { ListShardsCommand, SplitShardCommand } from "@aws-sdk/client-kinesis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BeaconLoad, loadLinks } from "./load.ts";
import { assertDrained, postgresIds, waitDrained } from "./probes.ts";
import { clickhouseIds, IngestProcess } from "./processes.ts";
import { scenario, scenarioKinesis, type Scenario } from "./scenario.ts";
import { sleep } from "./util.ts";

/**
 * A shard split mid-stream under load: the parent is read to its end and checkpointed as
 * finished before its children are leased (ingest/src/pipeline/loader.ts), the children are found by the
 * next ListShards (≤ 10 s) and read from their start. Afterwards ClickHouse holds exactly the
 * clicks PostgreSQL committed: nothing lost, nothing counted twice.
 */
let s: Scenario;
let ingest: IngestProcess;
beforeAll(async () => {
  s = await scenario("shard split mid-stream");
  ingest = new IngestProcess(s, { env: { KINESIS_SHARDS: "2" } });
  await ingest.start();
});
afterAll(async () => {
  await ingest?.kill("SIGKILL").catch(() => {});
  await s?.close();
});

describe("fault: shard split mid-stream", () => {
  it("loses and double-counts nothing across a SplitShard", async () => {
    const load = new BeaconLoad(s.url, { rate: 100, maxInFlight: 32, links: await loadLinks(s) }).start();
    await sleep(4_000);
    const k = scenarioKinesis(s);
    const before = (await k.send(new ListShardsCommand({ StreamName: s.stream }))).Shards!;
    const parent = before[0]!;
    const { StartingHashKey: lo, EndingHashKey: hi } = parent.HashKeyRange!;
    await k.send(
      new SplitShardCommand({ StreamName: s.stream, ShardToSplit: parent.ShardId!, NewStartingHashKey: String((BigInt(lo!) + BigInt(hi!)) / 2n) }),
    );
    // Past the loader's next ListShards (10 s): the children get leased and read. Meanwhile, no
    // child is leased or checkpointed while its parent is not finished.
    const early: unknown[] = [];
    for (const end = Date.now() + 12_000; Date.now() < end; await sleep(100)) {
      const cps = await s.pg<{ shard_id: string; owner: string | null; finished: boolean; sequence_number: string | null }[]>`
        SELECT shard_id, owner, finished, sequence_number FROM loader_checkpoints WHERE stream = ${s.stream}`;
      const p = cps.find((c) => c.shard_id === parent.ShardId);
      const known = new Set(before.map((b) => b.ShardId));
      if (!p?.finished) early.push(...cps.filter((c) => !known.has(c.shard_id) && (c.owner || c.sequence_number)));
    }
    expect(early).toEqual([]);
    const stats = await load.stop(60_000);
    expect(stats.refused).toEqual([]);
    expect(stats.unacked).toEqual([]);

    const after = (await k.send(new ListShardsCommand({ StreamName: s.stream }))).Shards!;
    k.destroy();
    const children = after.filter((sh) => sh.ParentShardId === parent.ShardId).map((sh) => sh.ShardId!);
    expect(children).toHaveLength(2);

    const drain = await waitDrained(s, stats.acked.size, 60_000);
    assertDrained(drain, ingest);
    const cps = await s.pg<{ shard_id: string; finished: boolean; sequence_number: string | null }[]>`
      SELECT shard_id, finished, sequence_number FROM loader_checkpoints WHERE stream = ${s.stream}`;
    expect(cps.find((c) => c.shard_id === parent.ShardId)?.finished).toBe(true);
    for (const c of children) expect(cps.find((x) => x.shard_id === c)?.sequence_number).toBeTruthy(); // both children carried clicks

    await ingest.kill("SIGTERM");
    const pg = await postgresIds(s);
    const ch = await clickhouseIds(s);
    console.log(`[split] ${stats.acked.size} clicks; ClickHouse ${ch.distinct} distinct / ${ch.rows} rows; checkpoints ${JSON.stringify(cps)}`);
    expect(pg.size).toBe(stats.acked.size);
    expect([...pg.keys()].filter((id) => !ch.ids.has(id))).toEqual([]);
    expect([...ch.ids].filter((id) => !pg.has(id))).toEqual([]);
    expect(ch.distinct).toBe(stats.acked.size);
    expect(drain.status.clickhouse_clicks).toBe(stats.acked.size);
  });
});
