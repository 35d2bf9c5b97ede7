import { z } from "zod";
import { secretProblem } from "../../shared/keys.ts";

/**
 * Every setting ingest reads, with its default. docs/CONFIGURATION.md lists the same table. Secrets have
 * no default: ingest refuses to start without them (`npm start` generates them in DATA_DIR).
 */
const envSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(8788),
  HOST: z.string().default("127.0.0.1"),
  /** Unset: embedded PGlite under DATA_DIR (npm start only). */
  DATABASE_URL: z.string().optional(),
  /** Connections in ingest's PostgreSQL pool. */
  DATABASE_POOL_MAX: z.coerce.number().int().min(1).max(200).default(10),
  /**
   * Beacon group commits in flight at once per process (each on its own connection, within the
   * pool less 3). Fewer lanes make bigger groups: 2 gave ~35 clicks per commit and about half
   * the PostgreSQL and ingest CPU per click of 7 under 256 connections (bench/ingest.ts).
   */
  GROUP_COMMIT_LANES: z.coerce.number().int().min(1).max(64).default(2),
  DATA_DIR: z.string().default("data"),
  /**
   * Shared with the worker; every key it uses is derived from it per purpose (shared/keys.ts).
   * Required (checked in loadConfig, with a message that says how to set it).
   */
  EDGE_SECRET: z.string().optional(),
  /** The secret before a rotation: accepted (never used to sign) while set. */
  EDGE_SECRET_PREVIOUS: z.string().optional(),
  /** Where ingest pushes link records for KV (the worker's admin route). Empty: no push. */
  EDGE_ADMIN_URL: z.string().default("http://127.0.0.1:8787"),
  EDGE_SYNC_RETRY_MS: z.coerce.number().int().min(50).default(5_000),
  /** Base of the short links it hands out (the worker's public origin). */
  SHORT_BASE_URL: z.url().default("http://localhost:8787"),
  /** The worker's primary hostnames (as in wrangler.toml): destinations there would loop. */
  PRIMARY_HOSTS: z.string().default("localhost,127.0.0.1"),
  /** DNS servers for custom-domain TXT verification (comma list of ip or ip:port); unset: the system's resolvers. */
  DNS_RESOLVER: z.string().optional(),
  /** Bootstrap admin key, required (npm start generates one and keeps it in DATA_DIR/admin-key). */
  ADMIN_API_KEY: z.string().optional(),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),

  /** Which background workers this process runs (comma list; empty: none, HTTP only). */
  PIPELINE_ROLES: z.string().default("forwarder,loader,archiver,maintenance,webhooks"),
  /** Kinesis: unset endpoint and no AWS region → embedded kinesalite under DATA_DIR/kinesis. */
  KINESIS_ENDPOINT: z.string().optional(),
  KINESIS_STREAM: z.string().regex(/^[a-zA-Z0-9_.-]{1,128}$/).default("clicks"),
  KINESIS_SHARDS: z.coerce.number().int().min(1).max(500).default(2),
  /** Create the stream when it does not exist (local and first deployments). */
  KINESIS_CREATE_STREAM: z.enum(["true", "false"]).default("true"),
  AWS_REGION: z.string().optional(),
  /** ClickHouse: unset → embedded chDB under DATA_DIR/chdb. */
  CLICKHOUSE_URL: z.string().optional(),
  CLICKHOUSE_USER: z.string().default("default"),
  /** Unset: the client's default (no password). */
  CLICKHOUSE_PASSWORD: z.string().optional(),
  CLICKHOUSE_DATABASE: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/).default("linkflow"),
  /** Embedded chDB: its memory bound in MiB (queries, merges, caches); over it a query fails, large GROUP BYs spill to disk first. */
  CHDB_MAX_MEMORY_MB: z.coerce.number().int().min(256).default(1024),
  /** A ClickHouse cluster (remote_servers name): DDL ON CLUSTER, Replicated + Distributed tables. Needs CLICKHOUSE_URL. */
  CLICKHOUSE_CLUSTER: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/).optional(),
  /** Forwarder: outbox rows per PutRecords (Kinesis allows 500 records), idle poll interval. */
  FORWARDER_BATCH: z.coerce.number().int().min(1).max(500).default(500),
  /** Largest aggregated Kinesis record (several clicks a record, ingest/src/pipeline/aggregate.ts); 0: one click a record. Kinesis allows 1 MiB. */
  KINESIS_AGGREGATE_BYTES: z.coerce.number().int().min(0).max(1_000_000).default(50_000),
  /** gzip: each aggregated record is put gzipped (its consumers gunzip, then deaggregate); none: plain KPL aggregates (Firehose deaggregates them). */
  KINESIS_COMPRESSION: z.enum(["gzip", "none"]).default("none"),
  FORWARDER_IDLE_MS: z.coerce.number().int().min(1).default(100),
  /** PutRecords batches in flight at once per process (rows are leased, so never sent twice at once). */
  FORWARDER_CONCURRENCY: z.coerce.number().int().min(1).max(32).default(2),
  /** Loader: flush to ClickHouse at this many rows or after this long. */
  LOADER_BATCH_ROWS: z.coerce.number().int().min(1).default(10_000),
  LOADER_BATCH_MS: z.coerce.number().int().min(1).default(500),
  /** How often the sealer rolls up closed hours the loader marked (analytics/rollup.ts). */
  ROLLUP_INTERVAL_MS: z.coerce.number().int().min(100).default(5_000),
  /** Insert attempts before a batch is split to find the poison rows (data errors only). */
  LOADER_MAX_ATTEMPTS: z.coerce.number().int().min(1).default(3),
  /** Circuit breakers: open after this many failures in a row, probe again after this long. */
  BREAKER_FAILURES: z.coerce.number().int().min(1).default(3),
  BREAKER_RESET_MS: z.coerce.number().int().min(100).default(5_000),
  /** Clicks stay in PostgreSQL this long (whole monthly partitions, once in ClickHouse); at least 2 days, since stats trust its "no click" about the last 36 hours (skipQuiet). */
  PG_RETENTION_DAYS: z.coerce.number().int().min(2).default(90),
  /** How often the maintenance role checks click limits (max_clicks) against ClickHouse. */
  CLICK_LIMIT_INTERVAL_MS: z.coerce.number().int().min(100).default(5_000),
  /** Archive (gzip NDJSON per hour of clicks); unset: DATA_DIR/archive. */
  ARCHIVE_DIR: z.string().optional(),
  ARCHIVE_INTERVAL_MS: z.coerce.number().int().min(1_000).default(60_000),
  /** An hour is archived this long after it ends (received_at is its transaction's start). */
  /** Completeness check: a block of click numbers is settled after this long without a click for it (ingest/src/clicks/sequences.ts). */
  CLICKS_MISSING_WINDOW_MS: z.coerce.number().int().min(0).default(300_000),
  ARCHIVE_GRACE_MS: z.coerce.number().int().min(0).default(120_000),
  /** Also upload each hour file to this bucket, same key under ARCHIVE_S3_PREFIX. */
  ARCHIVE_S3_BUCKET: z.string().min(3).optional(),
  ARCHIVE_S3_PREFIX: z.string().default(""),
  /** S3-compatible stores (MinIO, …); unset: AWS S3. */
  ARCHIVE_S3_ENDPOINT: z.string().optional(),

  /** Store truncated IPs (/24, /48) in PostgreSQL, the outbox, Kinesis and the archive. */
  IP_ANONYMIZE: z.enum(["true", "false"]).default("true"),
  /** Honour the edge's `dnt` flag (DNT: 1 / Sec-GPC: 1): count the click, drop its personal fields. */
  RESPECT_DNT: z.enum(["true", "false"]).default("true"),
  /** Secret the daily visitor-hash salts derive from; unset: a key derived from EDGE_SECRET. Same value in every ingest. */
  VISITOR_SALT_SECRET: z.string().min(16).optional(),
  /** A PostgreSQL read replica for operational reads (recent clicks, link ids of stats); unset: the primary. */
  DATABASE_REPLICA_URL: z.string().optional(),
  /** Most concurrent /api/stats/stream connections per process, and the longest one (seconds). */
  STATS_STREAMS_MAX: z.coerce.number().int().min(0).default(100),
  STATS_STREAM_MAX_S: z.coerce.number().int().min(1).default(3600),
  /** …and per API key and per workspace (429 too_many_streams beyond them). */
  STATS_STREAMS_PER_KEY: z.coerce.number().int().min(0).default(5),
  STATS_STREAMS_PER_WORKSPACE: z.coerce.number().int().min(0).default(20),
  /** Failed API-key authentications a minute per client address before it gets 429 for the rest of the minute; 0: no limit. */
  AUTH_FAILURES_PER_MINUTE: z.coerce.number().int().min(0).default(20),
  /** Allow destinations in private, loopback and link-local address space (shared/destination.ts). */
  ALLOW_PRIVATE_DESTINATIONS: z.enum(["true", "false"]).default("false"),

  /** Webhooks (docs/WEBHOOKS.md): most clicks in one link.clicked message (the forwarder's batch, FORWARDER_BATCH, bounds it too). */
  WEBHOOK_BATCH_MAX_CLICKS: z.coerce.number().int().min(1).max(500).default(100),
  /** Messages each process sends at once, and the time one POST may take. */
  WEBHOOK_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(8),
  WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
  /** Retries: base·2^(attempt−1) with jitter, capped at WEBHOOK_RETRY_MAX_MS; dead-lettered after WEBHOOK_MAX_ATTEMPTS (defaults: ~7–9 hours). */
  WEBHOOK_RETRY_BASE_MS: z.coerce.number().int().min(1).default(5_000),
  WEBHOOK_RETRY_MAX_MS: z.coerce.number().int().min(1).default(3_600_000),
  WEBHOOK_MAX_ATTEMPTS: z.coerce.number().int().min(1).default(18),
  /** How often an idle sender looks for due messages. */
  WEBHOOK_POLL_MS: z.coerce.number().int().min(10).default(500),
  /** Delivered and dead-lettered messages are kept this long in the delivery log. */
  WEBHOOK_RETENTION_DAYS: z.coerce.number().int().min(1).default(7),
});

/** The configuration, with the required secrets known to be there. */
export type Config = z.infer<typeof envSchema> & { EDGE_SECRET: string; ADMIN_API_KEY: string };

/** A configuration ingest cannot start with; its message is one line that says what to set. */
export class ConfigError extends Error {
  readonly code = "invalid_configuration";
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const msg = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new ConfigError(`invalid configuration: ${msg}`);
  }
  const c = parsed.data;
  if (c.CLICKHOUSE_CLUSTER && !c.CLICKHOUSE_URL)
    throw new Error("invalid configuration: CLICKHOUSE_CLUSTER needs CLICKHOUSE_URL (embedded chDB is one node)");
  const secret = secretProblem("EDGE_SECRET", c.EDGE_SECRET) ?? (c.EDGE_SECRET_PREVIOUS !== undefined ? secretProblem("EDGE_SECRET_PREVIOUS", c.EDGE_SECRET_PREVIOUS) : null);
  if (secret) throw new ConfigError(secret);
  if (!c.ADMIN_API_KEY)
    throw new ConfigError("ADMIN_API_KEY is not set: set it to the bootstrap admin key (16 to 256 characters, e.g. `openssl rand -base64 32`); `npm start` generates one in data/admin-key");
  if (c.ADMIN_API_KEY.length < 16 || c.ADMIN_API_KEY.length > 256) throw new ConfigError("ADMIN_API_KEY must be 16 to 256 characters long");
  return c as Config;
}
