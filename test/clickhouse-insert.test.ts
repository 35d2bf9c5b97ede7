import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clickhouseClient, ensureSchema, LOADER_INSERT_SETTINGS, rows, type ClickHouseClient } from "../ingest/src/analytics/clickhouse.ts";
import { CLICK_COLUMNS, clickInsert, recordSchema, toClickHouseRow } from "../ingest/src/pipeline/loader.ts";

/**
 * The loader's insert (ingest/src/pipeline/loader.ts) against a real ClickHouse (chDB). Its
 * settings (LOADER_INSERT_SETTINGS): no cluster runs here, so what can be checked is that every
 * setting is one ClickHouse knows, under the name the server reads, and that it asks for
 * synchronous Distributed inserts once applied to a query. Its rows: read back as written.
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

describe("the loader's insert (JSONCompactEachRow under one column list)", () => {
  it("writes every column of a row where toClickHouseRow put it, NULLs and all", async () => {
    await ensureSchema(ch, "linkflow");
    const base = {
      short_url: "https://lnk.example/abc", original_url: "https://example.com/p?utm_source=news&utm_medium=email&utm_campaign=fall",
      user_agent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
      ip_address: "", domain: "lnk.example", code: "abc", redirect_status: 302, cache_tier: "origin",
    };
    const full = recordSchema.parse({
      ...base, click_id: "0b6f2c1e-6f4e-4c59-9a55-3d0c8a1f0001", timestamp: "2026-12-04T18:05:09.042Z", received_at: "2026-12-04T18:05:09.142Z",
      referer: "https://news.ycombinator.com/item?id=1", link_id: 7, qr: true, origin_ms: 41, visitor_hash: "ab".repeat(32),
      geo_location: { country: "DE", region: "Berlin", city: "Berlin", latitude: 52.52, longitude: 13.4, timezone: "Europe/Berlin", colo: "FRA", asn: 3320 },
    });
    const bare = recordSchema.parse({ ...base, click_id: "0b6f2c1e-6f4e-4c59-9a55-3d0c8a1f0002", timestamp: "2026-12-04T18:05:10+01:00", received_at: "2026-12-04T17:05:10.5Z", referer: "", link_id: 8, geo_location: {} });
    const written = [toClickHouseRow(full), toClickHouseRow(bare)];
    for (const r of written) expect(Object.keys(r)).toEqual([...CLICK_COLUMNS]);
    await ch.insert(clickInsert("linkflow.clicks", written));
    const read = await rows<Record<string, unknown>>(
      ch,
      `SELECT ${CLICK_COLUMNS.map((c) => (c === "ts" || c === "received_at" ? `toString(${c}) AS ${c}` : c)).join(", ")} FROM linkflow.clicks ORDER BY click_id
       SETTINGS output_format_json_quote_64bit_integers = 0`,
    );
    expect(read).toEqual(written.map((r) => ({ ...r, ts: r.ts, received_at: r.received_at })));
    expect(read[1]).toMatchObject({ ts: "2026-12-04 17:05:10.000", latitude: null, origin_ms: null, country: "", qr: false });
  });
});
