import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../config.ts";
import { MAX_CLICK_AGE_MS, MAX_CLICK_FUTURE_MS } from "../../../shared/constants.ts";
import { chTime, chTimeOfIso, RECENT_DAYS, schemaStatements } from "./clickhouse.ts";
import fc from "fast-check";
import { z } from "zod";

// String-level only: no ClickHouse cluster is available here (chDB is one node), so the cluster
// DDL is checked as text, not executed.
describe("schemaStatements", () => {
  it("single node: the raw table as it was (the fixture: the schema before rollups); the views it had are dropped", () => {
    const before: string[] = JSON.parse(readFileSync(new URL("./__fixtures__/schema-single-node.json", import.meta.url), "utf8"));
    const raw = (qs: string[]) => qs.filter((q) => /^(CREATE TABLE|ALTER TABLE) IF NOT EXISTS linkflow\.clicks |^ALTER TABLE linkflow\.clicks /.test(q.trim()));
    expect(raw(schemaStatements("linkflow"))).toEqual(raw(before));
    expect(raw(schemaStatements("linkflow")).length).toBe(1 + 12);
    const now = schemaStatements("linkflow");
    for (const v of ["clicks_hourly", "clicks_daily", "clicks_hourly_totals", "clicks_daily_totals"]) {
      expect(now).toContain(`DROP VIEW IF EXISTS linkflow.${v}_mv`);
      expect(now).toContain(`DROP TABLE IF EXISTS linkflow.${v}`);
    }
    // One materialized view only: the copy of new clicks into clicks_recent (no aggregation).
    expect(now.filter((q) => q.startsWith("CREATE MATERIALIZED VIEW"))).toEqual(["CREATE MATERIALIZED VIEW IF NOT EXISTS linkflow.clicks_recent_mv TO linkflow.clicks_recent AS SELECT * FROM linkflow.clicks"]);
  });

  it("cluster output: ON CLUSTER, Replicated local tables, Distributed tables", () => {
    const ddl = schemaStatements("linkflow", "prod");
    const squeeze = (q: string) => q.replace(/\s+/g, " ").trim();
    for (const q of ddl) expect(q).toMatch(/^\s*(CREATE (DATABASE|TABLE|MATERIALIZED VIEW) IF NOT EXISTS|ALTER TABLE|DROP (VIEW|TABLE) IF EXISTS) linkflow(\.\w+)? ON CLUSTER prod\b/);
    // Same tables and views as single-node, plus one *_local per table.
    const names = (qs: string[]) => qs.map((q) => q.match(/IF NOT EXISTS (linkflow\.\w+)/)?.[1]).filter(Boolean);
    const single = names(schemaStatements("linkflow").filter((q) => !q.startsWith("ALTER")));
    const clustered = names(ddl.filter((q) => !q.startsWith("ALTER")));
    expect(clustered.filter((n) => !n!.endsWith("_local"))).toEqual(single.filter((n) => n !== "linkflow"));
    expect(clustered.filter((n) => n!.endsWith("_local")).sort()).toEqual(
      ["clicks", "clicks_recent", "rollup_daily", "rollup_hourly", "rollup_weekly", "rollup_quarter"].map((t) => `linkflow.${t}_local`).sort(),
    );
    expect(ddl.map(squeeze).map((q) => q.slice(0, 140))).toMatchInlineSnapshot(`
      [
        "CREATE DATABASE IF NOT EXISTS linkflow ON CLUSTER prod",
        "CREATE TABLE IF NOT EXISTS linkflow.clicks_local ON CLUSTER prod ( click_id UUID, link_id UInt64, domain LowCardinality(String), code String",
        "ALTER TABLE linkflow.clicks_local ON CLUSTER prod ADD COLUMN IF NOT EXISTS qr Bool DEFAULT false",
        "ALTER TABLE linkflow.clicks_local ON CLUSTER prod ADD COLUMN IF NOT EXISTS browser LowCardinality(String) DEFAULT ''",
        "ALTER TABLE linkflow.clicks_local ON CLUSTER prod ADD COLUMN IF NOT EXISTS os LowCardinality(String) DEFAULT ''",
        "ALTER TABLE linkflow.clicks_local ON CLUSTER prod ADD COLUMN IF NOT EXISTS device LowCardinality(String) DEFAULT ''",
        "ALTER TABLE linkflow.clicks_local ON CLUSTER prod ADD COLUMN IF NOT EXISTS is_bot Bool DEFAULT false",
        "ALTER TABLE linkflow.clicks_local ON CLUSTER prod ADD COLUMN IF NOT EXISTS utm_source String DEFAULT ''",
        "ALTER TABLE linkflow.clicks_local ON CLUSTER prod ADD COLUMN IF NOT EXISTS utm_medium String DEFAULT ''",
        "ALTER TABLE linkflow.clicks_local ON CLUSTER prod ADD COLUMN IF NOT EXISTS utm_campaign String DEFAULT ''",
        "ALTER TABLE linkflow.clicks_local ON CLUSTER prod ADD COLUMN IF NOT EXISTS utm_term String DEFAULT ''",
        "ALTER TABLE linkflow.clicks_local ON CLUSTER prod ADD COLUMN IF NOT EXISTS utm_content String DEFAULT ''",
        "ALTER TABLE linkflow.clicks_local ON CLUSTER prod ADD COLUMN IF NOT EXISTS visitor_hash String DEFAULT ''",
        "ALTER TABLE linkflow.clicks_local ON CLUSTER prod ADD COLUMN IF NOT EXISTS origin_ms Nullable(UInt32)",
        "CREATE TABLE IF NOT EXISTS linkflow.clicks ON CLUSTER prod AS linkflow.clicks_local ENGINE = Distributed(prod, linkflow, clicks_local, cityH",
        "ALTER TABLE linkflow.clicks ON CLUSTER prod ADD COLUMN IF NOT EXISTS qr Bool DEFAULT false",
        "ALTER TABLE linkflow.clicks ON CLUSTER prod ADD COLUMN IF NOT EXISTS browser LowCardinality(String) DEFAULT ''",
        "ALTER TABLE linkflow.clicks ON CLUSTER prod ADD COLUMN IF NOT EXISTS os LowCardinality(String) DEFAULT ''",
        "ALTER TABLE linkflow.clicks ON CLUSTER prod ADD COLUMN IF NOT EXISTS device LowCardinality(String) DEFAULT ''",
        "ALTER TABLE linkflow.clicks ON CLUSTER prod ADD COLUMN IF NOT EXISTS is_bot Bool DEFAULT false",
        "ALTER TABLE linkflow.clicks ON CLUSTER prod ADD COLUMN IF NOT EXISTS utm_source String DEFAULT ''",
        "ALTER TABLE linkflow.clicks ON CLUSTER prod ADD COLUMN IF NOT EXISTS utm_medium String DEFAULT ''",
        "ALTER TABLE linkflow.clicks ON CLUSTER prod ADD COLUMN IF NOT EXISTS utm_campaign String DEFAULT ''",
        "ALTER TABLE linkflow.clicks ON CLUSTER prod ADD COLUMN IF NOT EXISTS utm_term String DEFAULT ''",
        "ALTER TABLE linkflow.clicks ON CLUSTER prod ADD COLUMN IF NOT EXISTS utm_content String DEFAULT ''",
        "ALTER TABLE linkflow.clicks ON CLUSTER prod ADD COLUMN IF NOT EXISTS visitor_hash String DEFAULT ''",
        "ALTER TABLE linkflow.clicks ON CLUSTER prod ADD COLUMN IF NOT EXISTS origin_ms Nullable(UInt32)",
        "CREATE TABLE IF NOT EXISTS linkflow.clicks_recent_local ON CLUSTER prod AS linkflow.clicks_local ENGINE = ReplicatedReplacingMergeTree('/cli",
        "CREATE TABLE IF NOT EXISTS linkflow.clicks_recent ON CLUSTER prod AS linkflow.clicks_recent_local ENGINE = Distributed(prod, linkflow, click",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS linkflow.clicks_recent_mv ON CLUSTER prod TO linkflow.clicks_recent_local AS SELECT * FROM linkflow.c",
        "DROP VIEW IF EXISTS linkflow.clicks_hourly_mv ON CLUSTER prod",
        "DROP TABLE IF EXISTS linkflow.clicks_hourly ON CLUSTER prod",
        "DROP TABLE IF EXISTS linkflow.clicks_hourly_local ON CLUSTER prod",
        "DROP VIEW IF EXISTS linkflow.clicks_daily_mv ON CLUSTER prod",
        "DROP TABLE IF EXISTS linkflow.clicks_daily ON CLUSTER prod",
        "DROP TABLE IF EXISTS linkflow.clicks_daily_local ON CLUSTER prod",
        "DROP VIEW IF EXISTS linkflow.clicks_hourly_totals_mv ON CLUSTER prod",
        "DROP TABLE IF EXISTS linkflow.clicks_hourly_totals ON CLUSTER prod",
        "DROP TABLE IF EXISTS linkflow.clicks_hourly_totals_local ON CLUSTER prod",
        "DROP VIEW IF EXISTS linkflow.clicks_daily_totals_mv ON CLUSTER prod",
        "DROP TABLE IF EXISTS linkflow.clicks_daily_totals ON CLUSTER prod",
        "DROP TABLE IF EXISTS linkflow.clicks_daily_totals_local ON CLUSTER prod",
        "CREATE TABLE IF NOT EXISTS linkflow.rollup_hourly_local ON CLUSTER prod ( level Enum8('link' = 1, 'workspace' = 2, 'all' = 3), id UInt64, di",
        "CREATE TABLE IF NOT EXISTS linkflow.rollup_hourly ON CLUSTER prod AS linkflow.rollup_hourly_local ENGINE = Distributed(prod, linkflow, rollu",
        "CREATE TABLE IF NOT EXISTS linkflow.rollup_daily_local ON CLUSTER prod ( level Enum8('link' = 1, 'workspace' = 2, 'all' = 3), id UInt64, dim",
        "CREATE TABLE IF NOT EXISTS linkflow.rollup_daily ON CLUSTER prod AS linkflow.rollup_daily_local ENGINE = Distributed(prod, linkflow, rollup_",
        "CREATE TABLE IF NOT EXISTS linkflow.rollup_weekly_local ON CLUSTER prod ( level Enum8('link' = 1, 'workspace' = 2, 'all' = 3), id UInt64, di",
        "CREATE TABLE IF NOT EXISTS linkflow.rollup_weekly ON CLUSTER prod AS linkflow.rollup_weekly_local ENGINE = Distributed(prod, linkflow, rollu",
        "CREATE TABLE IF NOT EXISTS linkflow.rollup_quarter_local ON CLUSTER prod ( level Enum8('link' = 1, 'workspace' = 2, 'all' = 3), id UInt64, d",
        "CREATE TABLE IF NOT EXISTS linkflow.rollup_quarter ON CLUSTER prod AS linkflow.rollup_quarter_local ENGINE = Distributed(prod, linkflow, rol",
        "CREATE TABLE IF NOT EXISTS linkflow.link_workspaces ON CLUSTER prod (link_id UInt64, workspace_id UInt64) ENGINE = ReplicatedReplacingMergeT",
      ]
    `);
  });

  it("the local raw table and a rollup table, in full", () => {
    const ddl = schemaStatements("linkflow", "prod");
    const get = (prefix: string) => ddl.find((q) => q.trim().startsWith(prefix))!;
    expect(get("CREATE TABLE IF NOT EXISTS linkflow.clicks_local")).toMatchInlineSnapshot(`
      "CREATE TABLE IF NOT EXISTS linkflow.clicks_local ON CLUSTER prod (
            click_id UUID,
            link_id UInt64,
            domain LowCardinality(String),
            code String,
            short_url String,
            original_url String,
            ts DateTime64(3, 'UTC'),
            received_at DateTime64(3, 'UTC'),
            inserted_at DateTime64(3, 'UTC') DEFAULT now64(3),
            user_agent String,
            referer String,
            referer_host LowCardinality(String),
            country LowCardinality(String),
            region String,
            city String,
            latitude Nullable(Float64),
            longitude Nullable(Float64),
            timezone LowCardinality(String),
            colo LowCardinality(String),
            asn UInt32,
            redirect_status UInt16,
            cache_tier LowCardinality(String),
            qr Bool DEFAULT false,
            browser LowCardinality(String) DEFAULT '',
            os LowCardinality(String) DEFAULT '',
            device LowCardinality(String) DEFAULT '',
            is_bot Bool DEFAULT false,
            utm_source String DEFAULT '',
            utm_medium String DEFAULT '',
            utm_campaign String DEFAULT '',
            utm_term String DEFAULT '',
            utm_content String DEFAULT '',
            visitor_hash String DEFAULT '',
            origin_ms Nullable(UInt32)
          ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
          PARTITION BY toYYYYMM(ts)
          ORDER BY (link_id, ts, click_id)
          TTL toDateTime(ts) + INTERVAL 3 YEAR"
    `);
    expect(get("CREATE TABLE IF NOT EXISTS linkflow.clicks ON")).toMatchInlineSnapshot(`
      "CREATE TABLE IF NOT EXISTS linkflow.clicks ON CLUSTER prod AS linkflow.clicks_local
          ENGINE = Distributed(prod, linkflow, clicks_local, cityHash64(click_id))"
    `);
    expect(get("CREATE TABLE IF NOT EXISTS linkflow.rollup_daily_local")).toMatchInlineSnapshot(`
      "CREATE TABLE IF NOT EXISTS linkflow.rollup_daily_local ON CLUSTER prod (
            level Enum8('link' = 1, 'workspace' = 2, 'all' = 3),
            id UInt64,
            dim LowCardinality(String),
            t DateTime('UTC'),
            is_bot Bool,
            value String,
            clicks SimpleAggregateFunction(max, UInt64),
            visitors AggregateFunction(uniqCombined64(12), Nullable(String))
          ) ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
          PARTITION BY toYYYYMM(t)
          ORDER BY (level, id, dim, t, is_bot, value)
          TTL t + INTERVAL 3 YEAR
          SETTINGS index_granularity = 256, min_bytes_for_wide_part = 0, min_rows_for_wide_part = 0, min_age_to_force_merge_seconds = 86400, min_age_to_force_merge_on_partition_only = 1"
    `);
    expect(get("CREATE TABLE IF NOT EXISTS linkflow.rollup_daily ON")).toMatchInlineSnapshot(`"CREATE TABLE IF NOT EXISTS linkflow.rollup_daily ON CLUSTER prod AS linkflow.rollup_daily_local ENGINE = Distributed(prod, linkflow, rollup_daily_local, cityHash64(level, id))"`);
  });

  it("CLICKHOUSE_CLUSTER needs a ClickHouse server", () => {
    const secrets = { EDGE_SECRET: "unit-test-edge-secret-0123456789-abcd", ADMIN_API_KEY: "unit-test-admin-key-0123" };
    expect(() => loadConfig({ ...secrets, CLICKHOUSE_CLUSTER: "prod" })).toThrow(/CLICKHOUSE_URL/);
    expect(loadConfig({ ...secrets, CLICKHOUSE_CLUSTER: "prod", CLICKHOUSE_URL: "http://ch:8123" }).CLICKHOUSE_CLUSTER).toBe("prod");
    expect(() => loadConfig({ ...secrets, CLICKHOUSE_CLUSTER: "x; DROP", CLICKHOUSE_URL: "http://ch:8123" })).toThrow(/CLICKHOUSE_CLUSTER/);
  });

  it("clicks_recent keeps every click a beacon may still bring (the loader-lag figure reads only it)", () => {
    // A click received now happened at most MAX_CLICK_AGE ago; the lag query looks 5 minutes back from there.
    expect(MAX_CLICK_AGE_MS + MAX_CLICK_FUTURE_MS + 5 * 60_000).toBeLessThan(RECENT_DAYS * 86_400_000);
  });
});

describe("chTimeOfIso", () => {
  it("gives what chTime gives for every instant zod accepts, in toISOString's form or another", () => {
    const instant = z.iso.datetime({ offset: true });
    const forms = (d: Date) => {
      const iso = d.toISOString();
      return [iso, iso.replace(/\.\d{3}Z$/, "Z"), iso.replace("Z", "+00:00"), iso.replace(/Z$/, "123Z"), `${iso.slice(0, 19)}.5+05:30`];
    };
    fc.assert(
      fc.property(fc.date({ min: new Date("1970-01-01T00:00:00Z"), max: new Date("2299-12-31T23:59:59Z"), noInvalidDate: true }), (d) => {
        for (const t of forms(d)) {
          expect(instant.safeParse(t).success).toBe(true);
          expect(chTimeOfIso(t)).toBe(chTime(t));
        }
      }),
      { numRuns: 500 },
    );
    expect(chTimeOfIso("2026-12-04T18:05:09.042Z")).toBe("2026-12-04 18:05:09.042");
  });
});
