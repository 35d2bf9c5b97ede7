import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../config.ts";
import { schemaStatements } from "./clickhouse.ts";

// String-level only: no ClickHouse cluster is available here (chDB is one node), so the cluster
// DDL is checked as text, not executed.
describe("schemaStatements", () => {
  it("single-node output is unchanged by the cluster refactor", () => {
    const before = JSON.parse(readFileSync(new URL("./__fixtures__/schema-single-node.json", import.meta.url), "utf8"));
    expect(schemaStatements("linkflow")).toEqual(before);
  });

  it("cluster output: ON CLUSTER, Replicated local tables, Distributed tables, views on the local tables", () => {
    const ddl = schemaStatements("linkflow", "prod");
    const squeeze = (q: string) => q.replace(/\s+/g, " ").trim();
    for (const q of ddl) expect(q).toMatch(/^\s*(CREATE (DATABASE|TABLE|MATERIALIZED VIEW) IF NOT EXISTS|ALTER TABLE) linkflow(\.\w+)? ON CLUSTER prod\b/);
    // Same tables and views as single-node, plus one *_local per table.
    const names = (qs: string[]) => qs.map((q) => q.match(/IF NOT EXISTS (linkflow\.\w+)/)?.[1]).filter(Boolean);
    const single = names(schemaStatements("linkflow").filter((q) => !q.startsWith("ALTER")));
    const clustered = names(ddl.filter((q) => !q.startsWith("ALTER")));
    expect(clustered.filter((n) => !n!.endsWith("_local"))).toEqual(single.filter((n) => n !== "linkflow"));
    expect(clustered.filter((n) => n!.endsWith("_local")).sort()).toEqual(
      ["clicks", "clicks_daily", "clicks_daily_totals", "clicks_hourly", "clicks_hourly_totals"].map((t) => `linkflow.${t}_local`).sort(),
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
        "CREATE TABLE IF NOT EXISTS linkflow.clicks_hourly_local ON CLUSTER prod ( link_id UInt64, hour DateTime('UTC'), country LowCardinality(Strin",
        "CREATE TABLE IF NOT EXISTS linkflow.clicks_hourly ON CLUSTER prod AS linkflow.clicks_hourly_local ENGINE = Distributed(prod, linkflow, click",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS linkflow.clicks_hourly_mv ON CLUSTER prod TO linkflow.clicks_hourly_local AS SELECT link_id, toStartO",
        "CREATE TABLE IF NOT EXISTS linkflow.clicks_daily_local ON CLUSTER prod ( link_id UInt64, day DateTime('UTC'), country LowCardinality(String)",
        "CREATE TABLE IF NOT EXISTS linkflow.clicks_daily ON CLUSTER prod AS linkflow.clicks_daily_local ENGINE = Distributed(prod, linkflow, clicks_",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS linkflow.clicks_daily_mv ON CLUSTER prod TO linkflow.clicks_daily_local AS SELECT link_id, toStartOfD",
        "CREATE TABLE IF NOT EXISTS linkflow.clicks_hourly_totals_local ON CLUSTER prod ( link_id UInt64, hour DateTime('UTC'), is_bot Bool, clicks A",
        "CREATE TABLE IF NOT EXISTS linkflow.clicks_hourly_totals ON CLUSTER prod AS linkflow.clicks_hourly_totals_local ENGINE = Distributed(prod, l",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS linkflow.clicks_hourly_totals_mv ON CLUSTER prod TO linkflow.clicks_hourly_totals_local AS SELECT lin",
        "CREATE TABLE IF NOT EXISTS linkflow.clicks_daily_totals_local ON CLUSTER prod ( link_id UInt64, day DateTime('UTC'), is_bot Bool, clicks Agg",
        "CREATE TABLE IF NOT EXISTS linkflow.clicks_daily_totals ON CLUSTER prod AS linkflow.clicks_daily_totals_local ENGINE = Distributed(prod, lin",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS linkflow.clicks_daily_totals_mv ON CLUSTER prod TO linkflow.clicks_daily_totals_local AS SELECT link_",
      ]
    `);
  });

  it("the local raw table and one view, in full", () => {
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
    expect(get("CREATE MATERIALIZED VIEW IF NOT EXISTS linkflow.clicks_daily_totals_mv")).toMatchInlineSnapshot(`
      "
          CREATE MATERIALIZED VIEW IF NOT EXISTS linkflow.clicks_daily_totals_mv ON CLUSTER prod TO linkflow.clicks_daily_totals_local AS
          
          SELECT link_id, toStartOfDay(ts) AS day, is_bot,
                 uniqExactState(click_id) AS clicks, uniqExactState(nullIf(visitor_hash, '')) AS visitors
          FROM linkflow.clicks_local GROUP BY link_id, day, is_bot"
    `);
    expect(get("CREATE TABLE IF NOT EXISTS linkflow.clicks_daily_totals_local")).toMatchInlineSnapshot(`
      "
          CREATE TABLE IF NOT EXISTS linkflow.clicks_daily_totals_local ON CLUSTER prod (
            link_id UInt64,
            day DateTime('UTC'),
            is_bot Bool,
            clicks AggregateFunction(uniqExact, UUID),
            visitors AggregateFunction(uniqExact, Nullable(String))
          ) ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
          PARTITION BY toYYYYMM(day)
          ORDER BY (link_id, day, is_bot)
          TTL toDateTime(day) + INTERVAL 3 YEAR"
    `);
    expect(get("CREATE TABLE IF NOT EXISTS linkflow.clicks_daily_totals ON")).toMatchInlineSnapshot(`
      "CREATE TABLE IF NOT EXISTS linkflow.clicks_daily_totals ON CLUSTER prod AS linkflow.clicks_daily_totals_local
          ENGINE = Distributed(prod, linkflow, clicks_daily_totals_local)"
    `);
  });

  it("CLICKHOUSE_CLUSTER needs a ClickHouse server", () => {
    const secrets = { EDGE_SECRET: "unit-test-edge-secret-0123456789-abcd", ADMIN_API_KEY: "unit-test-admin-key-0123" };
    expect(() => loadConfig({ ...secrets, CLICKHOUSE_CLUSTER: "prod" })).toThrow(/CLICKHOUSE_URL/);
    expect(loadConfig({ ...secrets, CLICKHOUSE_CLUSTER: "prod", CLICKHOUSE_URL: "http://ch:8123" }).CLICKHOUSE_CLUSTER).toBe("prod");
    expect(() => loadConfig({ ...secrets, CLICKHOUSE_CLUSTER: "x; DROP", CLICKHOUSE_URL: "http://ch:8123" })).toThrow(/CLICKHOUSE_CLUSTER/);
  });
});
