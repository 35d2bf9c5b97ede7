import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clickhouseClient, memoryExceeded, rows, type ClickHouseClient } from "../ingest/src/analytics/clickhouse.ts";

/**
 * Embedded chDB's memory bound (CHDB_MAX_MEMORY_MB → max_server_memory_usage, passed to the
 * engine when its data folder opens: patches/chdb+3.4.0.patch). Real chDB in this test's own
 * process (one data folder per process): the bound is the engine's, a GROUP BY larger than it
 * spills to disk and finishes, and what cannot spill fails with the memory-limit error that the
 * sealer halves its passes on and the HTTP layer answers 503 for.
 */
const BOUND = 512 * 2 ** 20;
let dir: string;
let ch: ClickHouseClient;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "linkflow-chdb-memory-"));
  ch = clickhouseClient({ path: join(dir, "chdb"), maxMemoryBytes: BOUND });
});
afterAll(async () => {
  await ch?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("embedded chDB memory bound", () => {
  it("is the engine's server-wide bound", async () => {
    expect(await rows(ch, "SELECT value FROM system.server_settings WHERE name = 'max_server_memory_usage'")).toEqual([{ value: String(BOUND) }]);
    // Its mark caches a share of it, not a server's 5 GiB each.
    expect(await rows(ch, "SELECT name, value FROM system.server_settings WHERE name IN ('mark_cache_size', 'index_mark_cache_size') ORDER BY name")).toEqual([
      { name: "index_mark_cache_size", value: String(BOUND / 16) },
      { name: "mark_cache_size", value: String(BOUND / 8) },
    ]);
  });

  it("a GROUP BY of 40M keys (over 1 GiB of hash table) spills and finishes under it", async () => {
    const [r] = await rows<{ n: number }>(ch, "SELECT count() AS n FROM (SELECT number, count() FROM numbers(40000000) GROUP BY number) SETTINGS max_threads = 2");
    expect(Number(r!.n)).toBe(40_000_000);
  });

  it("what cannot spill fails with the memory-limit error, and the engine answers afterwards", async () => {
    const err = await rows(ch, "SELECT length(groupArray(number)) FROM numbers(100000000)").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err, "an 800 MB array under a 512 MiB bound").toBeDefined();
    expect(memoryExceeded(err), String(err)).toBe(true);
    expect(await rows(ch, "SELECT 1 AS one")).toEqual([{ one: 1 }]);
  });
});
