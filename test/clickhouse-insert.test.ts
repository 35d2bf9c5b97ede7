import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clickhouseClient, LOADER_INSERT_SETTINGS, rows, type ClickHouseClient } from "../ingest/src/analytics/clickhouse.ts";

/**
 * The loader's insert settings (LOADER_INSERT_SETTINGS, used by ingest/src/pipeline/loader.ts) against a
 * real ClickHouse (chDB): no cluster runs here, so what can be checked is that every setting is
 * one ClickHouse knows, under the name the server reads, and that it asks for synchronous
 * Distributed inserts once applied to a query.
 */
let dir: string;
let ch: ClickHouseClient;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "linkflow-ch-insert-"));
  ch = clickhouseClient({ path: join(dir, "chdb") });
});
afterAll(async () => {
  await ch?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("loader insert settings", () => {
  it("make inserts into a Distributed table synchronous (distributed_foreground_insert = 1)", async () => {
    expect(LOADER_INSERT_SETTINGS).toEqual({ insert_distributed_sync: 1 });
    // Without them, the default is the asynchronous queue the setting exists to avoid. (First:
    // chDB's session keeps a query's settings afterwards.)
    expect(await rows(ch, "SELECT value FROM system.settings WHERE name = 'distributed_foreground_insert'")).toEqual([{ value: "0" }]);
    const applied = await ch.query({
      query: "SELECT name, value FROM system.settings WHERE name IN ('insert_distributed_sync', 'distributed_foreground_insert') ORDER BY name",
      format: "JSONEachRow",
      clickhouse_settings: LOADER_INSERT_SETTINGS,
    });
    expect(await applied.json()).toEqual([
      { name: "distributed_foreground_insert", value: "1" },
      { name: "insert_distributed_sync", value: "1" },
    ]);
  });
});
