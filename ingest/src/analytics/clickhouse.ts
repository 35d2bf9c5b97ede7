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
/** Dimensions of the hourly and daily views, in their sorting key (all derived from the event). */
export const VIEW_DIMENSIONS = ["country", "region", "city", "device", "browser", "os", "referer_host", "utm_source", "utm_medium", "utm_campaign", "qr", "cache_tier", "colo", "is_bot"] as const;
const VIEW_TYPES: Record<(typeof VIEW_DIMENSIONS)[number], string> = {
  country: "LowCardinality(String)",
  region: "String",
  city: "String",
  device: "LowCardinality(String)",
  browser: "LowCardinality(String)",
  os: "LowCardinality(String)",
  referer_host: "LowCardinality(String)",
  utm_source: "String",
  utm_medium: "String",
  utm_campaign: "String",
  qr: "Bool",
  cache_tier: "LowCardinality(String)",
  colo: "LowCardinality(String)",
  is_bot: "Bool",
};
/** Columns added after the first release (ALTERed into older data folders). */
const ADDED_CLICK_COLUMNS = [
  "qr Bool DEFAULT false",
  "browser LowCardinality(String) DEFAULT ''",
  "os LowCardinality(String) DEFAULT ''",
  "device LowCardinality(String) DEFAULT ''",
  "is_bot Bool DEFAULT false",
  "utm_source String DEFAULT ''",
  "utm_medium String DEFAULT ''",
  "utm_campaign String DEFAULT ''",
  "utm_term String DEFAULT ''",
  "utm_content String DEFAULT ''",
  "visitor_hash String DEFAULT ''",
  // Click event version 2: the origin resolve's duration (ms) on origin-tier clicks; NULL when not measured.
  "origin_ms Nullable(UInt32)",
];

/**
 * Settings of the loader's inserts. On a cluster `clicks` is a Distributed table, and by default an
 * insert into it is acknowledged once it is queued on the node that received it, then forwarded
 * to the shards in the background: the loader would checkpoint Kinesis past rows no shard holds
 * yet (gone with that node's queue). `insert_distributed_sync` (alias of
 * distributed_foreground_insert) answers only after the shards wrote them, so the checkpoint
 * follows data that is really there. It changes nothing for a single node's MergeTree table.
 */
export const LOADER_INSERT_SETTINGS = { insert_distributed_sync: 1 } as const;

/** The Replicated engines' ZooKeeper/Keeper path and replica name (macros of each server). */
export const REPLICA_PATH = "'/clickhouse/tables/{shard}/{database}/{table}', '{replica}'";

/**
 * The analytics DDL, single-node or for a cluster, from one source. With `cluster` (from
 * CLICKHOUSE_CLUSTER): every statement runs `ON CLUSTER`; each table is a `<name>_local` with the
 * Replicated engine, plus a Distributed table under today's name, so the loader's inserts and the
 * stats queries are unchanged; the materialized views read and write the local tables on each
 * shard (a view fires on the shard its rows are inserted into).
 *
 * Sharding key of `clicks`: cityHash64(click_id). A redelivered click has the same click_id, so
 * it lands on the same shard and replica set as its first copy — ReplacingMergeTree collapses
 * it there, and the views' uniqExact states already hold it. (link_id would keep duplicates
 * together too, but one viral link would then load one shard; with click_id the load is even
 * and per-link queries merge uniqExact states across shards, which is exact.) The views'
 * Distributed tables are read-only (their rows come from the local materialized views), so they
 * need no sharding key.
 */
export function schemaStatements(db: string, cluster?: string): string[] {
  const on = cluster ? ` ON CLUSTER ${cluster}` : "";
  const local = (name: string) => (cluster ? `${name}_local` : name);
  const engine = (kind: string) => (cluster ? `Replicated${kind}(${REPLICA_PATH})` : kind);
  const distributed = (name: string, key?: string) =>
    cluster
      ? [`CREATE TABLE IF NOT EXISTS ${db}.${name}${on} AS ${db}.${local(name)}
    ENGINE = Distributed(${cluster}, ${db}, ${local(name)}${key ? `, ${key}` : ""})`]
      : [];
  const ttl3y = (col: string) => `TTL toDateTime(${col}) + INTERVAL 3 YEAR`;
  const aggTable = (name: string, bucket: string, dimensions: readonly string[] = VIEW_DIMENSIONS) => `
    CREATE TABLE IF NOT EXISTS ${db}.${local(name)}${on} (
      link_id UInt64,
      ${bucket} DateTime('UTC'),
      ${dimensions.map((d) => `${d} ${VIEW_TYPES[d as keyof typeof VIEW_TYPES]}`).join(",\n      ")},
      clicks AggregateFunction(uniqExact, UUID),
      visitors AggregateFunction(uniqExact, Nullable(String))
    ) ENGINE = ${engine("AggregatingMergeTree")}
    PARTITION BY toYYYYMM(${bucket})
    ORDER BY (link_id, ${bucket}, ${dimensions.join(", ")})
    ${ttl3y(bucket)}`;
  const aggView = (name: string, bucket: string, fn: string, dimensions: readonly string[] = VIEW_DIMENSIONS) => `
    CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.${name}_mv${on} TO ${db}.${local(name)} AS
    ${aggSelect(db, bucket, fn, dimensions, local("clicks"))}`;
  const view = (name: string, bucket: string, fn: string, dimensions?: readonly string[]) => [
    aggTable(name, bucket, dimensions),
    ...distributed(name),
    aggView(name, bucket, fn, dimensions),
  ];
  const addColumns = (table: string) => ADDED_CLICK_COLUMNS.map((c) => `ALTER TABLE ${db}.${table}${on} ADD COLUMN IF NOT EXISTS ${c}`);
  return [
    `CREATE DATABASE IF NOT EXISTS ${db}${on}`,
    `CREATE TABLE IF NOT EXISTS ${db}.${local("clicks")}${on} (
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
      ${ADDED_CLICK_COLUMNS.join(",\n      ")}
    ) ENGINE = ${engine("ReplacingMergeTree")}
    PARTITION BY toYYYYMM(ts)
    ORDER BY (link_id, ts, click_id)
    ${ttl3y("ts")}`,
    // Data folders made before a column existed (CREATE TABLE IF NOT EXISTS leaves them as they are).
    ...addColumns(local("clicks")),
    ...distributed("clicks", "cityHash64(click_id)"),
    ...(cluster ? addColumns("clicks") : []),
    ...view("clicks_hourly", "hour", "toStartOfHour"),
    ...view("clicks_daily", "day", "toStartOfDay"),
    // Narrow views for time series and totals without breakdowns or filters (the main stats
    // query): one row per link, bucket and bot flag, so a month of a link's clicks is ~60 rows
    // instead of one per dimension combination (≈ one per click in the wide views).
    ...view("clicks_hourly_totals", "hour", "toStartOfHour", ["is_bot"]),
    ...view("clicks_daily_totals", "day", "toStartOfDay", ["is_bot"]),
  ];
}

/**
 * What a view holds for a group: uniqExact *states* of click_id and of the visitor hash (a
 * Do-Not-Track click has none: '' → NULL, which uniqExact skips). States are sets, so a
 * duplicate insert — or a backfill overlapping the view — changes no count.
 */
const aggSelect = (db: string, bucket: string, fn: string, dimensions: readonly string[], source = "clicks") => `
    SELECT link_id, ${fn}(ts) AS ${bucket}, ${dimensions.join(", ")},
           uniqExactState(click_id) AS clicks, uniqExactState(nullIf(visitor_hash, '')) AS visitors
    FROM ${db}.${source} GROUP BY link_id, ${bucket}, ${dimensions.join(", ")}`;

/** Views added to data folders that already hold clicks: filled once from the raw table. */
const BACKFILLED = [
  { name: "clicks_hourly_totals", bucket: "hour", fn: "toStartOfHour", dimensions: ["is_bot"] },
  { name: "clicks_daily_totals", bucket: "day", fn: "toStartOfDay", dimensions: ["is_bot"] },
] as const;

/**
 * Views made before the stats dimensions existed (sorting key: link, bucket, country,
 * referer_host, cache_tier, colo): add the columns, extend the key, and replace the
 * materialized view's query. Rows already aggregated keep '' / false in the new dimensions
 * and no visitors (the raw table has no such data for them either).
 */
function viewUpgrades(db: string, name: string, bucket: string, fn: string): string[] {
  const added = VIEW_DIMENSIONS.filter((d) => !["country", "referer_host", "cache_tier", "colo"].includes(d));
  return [
    `ALTER TABLE ${db}.${name} ${added.map((d) => `ADD COLUMN IF NOT EXISTS ${d} ${VIEW_TYPES[d]}`).join(", ")},
       ADD COLUMN IF NOT EXISTS visitors AggregateFunction(uniqExact, Nullable(String)),
       MODIFY ORDER BY (link_id, ${bucket}, country, referer_host, cache_tier, colo, ${added.join(", ")})`,
    `DROP VIEW IF EXISTS ${db}.${name}_mv`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.${name}_mv TO ${db}.${name} AS ${aggSelect(db, bucket, fn, VIEW_DIMENSIONS)}`,
  ];
}

export async function ensureSchema(ch: ClickHouseClient, db: string, cluster?: string): Promise<void> {
  if (cluster) {
    // A cluster starts from the current schema: no pre-visitors views to upgrade, nothing to
    // backfill (the in-place upgrades below are single-node only).
    for (const query of schemaStatements(db, cluster)) await ch.command({ query });
    return;
  }
  // Older view tables first (their CREATE … IF NOT EXISTS would leave them as they are).
  const old = await rows<{ table: string }>(
    ch,
    `SELECT table FROM system.columns WHERE database = {db:String} AND table IN ('clicks_hourly', 'clicks_daily')
     GROUP BY table HAVING countIf(name = 'visitors') = 0`,
    { db },
  ).catch(() => []);
  const statements = schemaStatements(db);
  // The raw table's columns must exist before an upgraded view selects them.
  const rawEnd = statements.findIndex((q) => q.includes("clicks_hourly"));
  for (const query of statements.slice(0, rawEnd)) await ch.command({ query });
  for (const { table } of old)
    for (const query of viewUpgrades(db, table, table === "clicks_hourly" ? "hour" : "day", table === "clicks_hourly" ? "toStartOfHour" : "toStartOfDay"))
      await ch.command({ query });
  const missing = [];
  for (const v of BACKFILLED) if (!(await rows<{ result: number }>(ch, `EXISTS TABLE ${db}.${v.name}`))[0]?.result) missing.push(v);
  for (const query of statements.slice(rawEnd)) await ch.command({ query });
  for (const v of missing) await ch.command({ query: `INSERT INTO ${db}.${v.name} ${aggSelect(db, v.bucket, v.fn, v.dimensions)}` });
}

/** Rows from a query, with 64-bit numbers as JS numbers (chDB gives numbers, HTTP strings). */
export async function rows<T = Record<string, unknown>>(ch: ClickHouseClient, query: string, query_params: Record<string, unknown> = {}): Promise<T[]> {
  const rs = await ch.query({ query, query_params, format: "JSONEachRow" });
  return rs.json<T>();
}

/** A time as ClickHouse's DateTime64(3, 'UTC') text, for rows and query parameters. */
export const chTime = (t: string | Date) => new Date(t).toISOString().replace("T", " ").replace("Z", "");
