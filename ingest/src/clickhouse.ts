import { mkdirSync } from "node:fs";
import { createClient, type ClickHouseClient, type ClickHouseClientConfigOptions } from "@clickhouse/client";
import { createChdbConnection } from "chdb/connection";

export type { ClickHouseClient };

export interface ClickHouseOptions {
  /** A ClickHouse server over HTTP; unset → embedded chDB at `path`. */
  url?: string;
  username?: string;
  password?: string;
  /** chDB data folder: one per process (chDB locks it). */
  path: string;
}

type Connection = NonNullable<ClickHouseClientConfigOptions["connection"]>;

/**
 * The one ClickHouse client: HTTP to a server, or chDB (ClickHouse in-process) through the same
 * @clickhouse/client API. (The cast: chDB types against its own copy of client-common.)
 */
export function clickhouseClient(o: ClickHouseOptions): ClickHouseClient {
  if (o.url) return createClient({ url: o.url, username: o.username, password: o.password, request_timeout: 30_000 });
  mkdirSync(o.path, { recursive: true });
  return createClient({ connection: createChdbConnection({ path: o.path }) as unknown as Connection });
}

/**
 * The analytics schema. `clicks` is a ReplacingMergeTree whose sorting key ends in click_id, so
 * a click delivered twice (at-least-once pipeline) collapses on merge; queries count
 * uniqExact(click_id), which is exact before merges too.
 *
 * The hourly and daily views hold uniqExact *states* of click_id, not counts: a duplicate
 * insert adds the same click_id to the same group's set, so merged results stay exact under
 * redelivery (a count would not). A duplicate always lands in the same group because every
 * grouping column comes from the event itself.
 */
export function schemaStatements(db: string): string[] {
  const ttl3y = (col: string) => `TTL toDateTime(${col}) + INTERVAL 3 YEAR`;
  const aggTable = (name: string, bucket: string) => `
    CREATE TABLE IF NOT EXISTS ${db}.${name} (
      link_id UInt64,
      ${bucket} DateTime('UTC'),
      country LowCardinality(String),
      referer_host LowCardinality(String),
      cache_tier LowCardinality(String),
      colo LowCardinality(String),
      clicks AggregateFunction(uniqExact, UUID)
    ) ENGINE = AggregatingMergeTree
    PARTITION BY toYYYYMM(${bucket})
    ORDER BY (link_id, ${bucket}, country, referer_host, cache_tier, colo)
    ${ttl3y(bucket)}`;
  const aggView = (name: string, bucket: string, fn: string) => `
    CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.${name}_mv TO ${db}.${name} AS
    SELECT link_id, ${fn}(ts) AS ${bucket}, country, referer_host, cache_tier, colo, uniqExactState(click_id) AS clicks
    FROM ${db}.clicks GROUP BY link_id, ${bucket}, country, referer_host, cache_tier, colo`;
  return [
    `CREATE DATABASE IF NOT EXISTS ${db}`,
    `CREATE TABLE IF NOT EXISTS ${db}.clicks (
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
      qr Bool DEFAULT false
    ) ENGINE = ReplacingMergeTree
    PARTITION BY toYYYYMM(ts)
    ORDER BY (link_id, ts, click_id)
    ${ttl3y("ts")}`,
    // Data folders made before a column existed (CREATE TABLE IF NOT EXISTS leaves them as they are).
    `ALTER TABLE ${db}.clicks ADD COLUMN IF NOT EXISTS qr Bool DEFAULT false`,
    aggTable("clicks_hourly", "hour"),
    aggView("clicks_hourly", "hour", "toStartOfHour"),
    aggTable("clicks_daily", "day"),
    aggView("clicks_daily", "day", "toStartOfDay"),
  ];
}

export async function ensureSchema(ch: ClickHouseClient, db: string): Promise<void> {
  for (const query of schemaStatements(db)) await ch.command({ query });
}

/** Rows from a query, with 64-bit numbers as JS numbers (chDB gives numbers, HTTP strings). */
export async function rows<T = Record<string, unknown>>(ch: ClickHouseClient, query: string, query_params: Record<string, unknown> = {}): Promise<T[]> {
  const rs = await ch.query({ query, query_params, format: "JSONEachRow" });
  return rs.json<T>();
}

/** A time as ClickHouse's DateTime64(3, 'UTC') text, for rows and query parameters. */
export const chTime = (t: string | Date) => new Date(t).toISOString().replace("T", " ").replace("Z", "");
