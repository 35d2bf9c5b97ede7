import { get as httpGet } from "node:http";
import { get as httpsGet } from "node:https";
import { join, resolve } from "node:path";
import type { KinesisClient } from "@aws-sdk/client-kinesis";
import type { Logger } from "pino";
import { EDGE_DEAD_LETTER_SOURCE } from "../clicks/dead-letters.ts";
import { createArchiver, partitionArchived, s3Uploader, type Archiver } from "./archiver.ts";
import type { BreakerState } from "./breaker.ts";
import { clickhouseClient, ensureSchema, quarterTableMissing, type ClickHouseClient } from "../analytics/clickhouse.ts";
import type { Config } from "../config.ts";
import { readCounters } from "../db/counters.ts";
import { completeness, settleSequences } from "../clicks/sequences.ts";
import { connect, type Sql } from "../db/connect.ts";
import { startEmbeddedKinesis } from "./embedded-kinesis.ts";
import { createForwarder, type Forwarder } from "./forwarder.ts";
import { ensureStream, kinesisClient } from "./kinesis.ts";
import { createLoader, type Loader, type LoaderOptions } from "./loader.ts";
import type { Metrics } from "../metrics.ts";
import { createDispatcher, type Dispatcher } from "../webhooks/dispatcher.ts";
import { displayAddress, reaching } from "../errors.ts";
import { dropExpiredPartitions, ensurePartitions } from "./partitions.ts";
import { backfillWeeks, markAllHours, startSealer } from "../analytics/rollup.ts";
import { QUARTER_HOURS } from "../analytics/time.ts";
import { copyAllOwners } from "../analytics/link-owners.ts";
import { countClicks } from "../analytics/stats-query.ts";
import { loaderLag, type LoaderLag } from "../analytics/loader-lag.ts";

export type Role = "forwarder" | "loader" | "archiver" | "maintenance" | "webhooks";

export interface PipelineStatus {
  postgres_clicks: number;
  /** Outbox rows confirmed sent (a batch re-sent after a crash counts once). */
  kinesis_sent: number;
  /** Distinct click_ids in ClickHouse (null when this process has no ClickHouse, or it failed). */
  clickhouse_clicks: number | null;
  /** Rows the loaders inserted and checkpointed (a batch re-inserted after a crash counts once). */
  clickhouse_rows: number;
  outbox_backlog: number;
  dlq: number;
  /**
   * Of those, clicks the worker's dead-letter queue handed over because ingest refuses them as
   * invalid (source edge_queue, clicks/dead-letters.ts). Clicks still waiting in the queue for
   * ingest to come back are not known here until they are replayed (docs/PIPELINE.md).
   */
  edge_dead_letters: number;
  /** Clicks the completeness check found missing and still missing (clicks/sequences.ts): missing - late. */
  clicks_missing: number;
  /** Clicks found missing that arrived after all (a running total). */
  clicks_late: number;
  breakers: Record<string, BreakerState>;
  shards: {
    shard_id: string;
    sequence_number: string | null;
    owner: string | null;
    lease_until: Date;
    finished: boolean;
    /** GetRecords' MillisBehindLatest, when this process's loader reads the shard (else null). */
    millis_behind_latest: number | null;
  }[];
  /** Outbox records confirmed sent to Kinesis and rows loaded into ClickHouse per second, over the last minute (all processes). */
  rates: { kinesis_sent_per_s: number | null; clickhouse_rows_per_s: number | null; window_s: number };
  /** PostgreSQL commit → ClickHouse of the clicks committed in the last 5 minutes (null: no ClickHouse here). */
  loader_lag: { clicks: number; p50_ms: number; p99_ms: number; max_ms: number } | null;
}

export interface PipelineExtras {
  /** Test hooks: forced duplicate delivery, a newer record schema, a wrapped ClickHouse insert. */
  duplicateDelivery?: boolean;
  schema?: LoaderOptions["schema"];
  insert?: LoaderOptions["insert"];
}

const MAINTENANCE_MS = 60 * 60 * 1000;

/** GET `url`, any answer will do (node:http, not fetch: fetch refuses some ports outright). */
function httpPing(url: URL): Promise<void> {
  return new Promise((done, fail) => {
    const req = (url.protocol === "https:" ? httpsGet : httpGet)(url, { timeout: 10_000 }, (res) => {
      res.resume();
      done();
    });
    req.on("timeout", () => req.destroy(Object.assign(new Error("no answer in 10 s"), { code: "ETIMEDOUT" })));
    req.on("error", fail);
  });
}

/**
 * The asynchronous half of click tracking, in the roles this process runs: forwarder
 * (outbox → Kinesis), loader (Kinesis → ClickHouse), archiver (PostgreSQL → gzip NDJSON per
 * hour, optionally S3), maintenance (partitions, retention), webhooks (the webhook sender,
 * ingest/src/webhooks/dispatcher.ts; the forwarder writes the click messages).
 * Without KINESIS_ENDPOINT or AWS_REGION it runs kinesalite in-process; without
 * CLICKHOUSE_URL, chDB.
 */
export async function startPipeline(config: Config, sql: Sql, log: Logger, metrics: Metrics, extras: PipelineExtras = {}) {
  const roles = new Set(config.PIPELINE_ROLES.split(",").map((r) => r.trim()).filter(Boolean) as Role[]);
  const stops: (() => Promise<void>)[] = [];
  let kinesis: KinesisClient | undefined;
  let ch: ClickHouseClient | undefined;
  let forwarder: Forwarder | undefined;
  let loader: Loader | undefined;
  let archiver: Archiver | undefined;
  let webhooks: Dispatcher | undefined;

  /** A start-up step failed: stop what was started (kinesalite, clients) before the error goes up. */
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {});
  };
  if (roles.size) await ensurePartitions(sql);
  // Read-only operational queries go to the replica when there is one (same schema as the primary).
  let replica: Sql = sql;
  if (config.DATABASE_REPLICA_URL) {
    const [{ schema }] = (await sql`SELECT current_schema() AS schema`) as unknown as [{ schema: string }];
    replica = connect(config.DATABASE_REPLICA_URL, { max: 4, schema });
    stops.push(() => replica.end({ timeout: 5 }));
  }
  if (roles.has("forwarder") || roles.has("loader")) {
    let endpoint = config.KINESIS_ENDPOINT;
    if (!endpoint && !config.AWS_REGION) {
      const local = await startEmbeddedKinesis(resolve(join(config.DATA_DIR, "kinesis")));
      endpoint = local.endpoint;
      stops.push(local.stop);
      log.info({ endpoint }, "embedded kinesalite");
    }
    kinesis = kinesisClient({ endpoint, region: config.AWS_REGION });
    stops.push(async () => kinesis!.destroy());
    if (config.KINESIS_CREATE_STREAM === "true")
      await reaching(config.KINESIS_ENDPOINT ? "Kinesis (KINESIS_ENDPOINT)" : "Kinesis", endpoint ?? `https://kinesis.${config.AWS_REGION}.amazonaws.com`, () =>
        ensureStream(kinesis!, config.KINESIS_STREAM, config.KINESIS_SHARDS),
      ).catch(async (err) => {
        await stopAll();
        throw err;
      });
  }
  // ClickHouse: for the loader and maintenance, and for the stats API when a server is configured
  // (embedded chDB is opened only by a process that runs those roles: one process per folder).
  if (roles.has("loader") || roles.has("maintenance") || config.CLICKHOUSE_URL) {
    ch = clickhouseClient({
      url: config.CLICKHOUSE_URL,
      username: config.CLICKHOUSE_USER,
      password: config.CLICKHOUSE_PASSWORD,
      path: resolve(join(config.DATA_DIR, "chdb")),
      maxMemoryBytes: config.CHDB_MAX_MEMORY_MB * 2 ** 20,
    });
    stops.push(() => ch!.close());
    await reaching(config.CLICKHOUSE_URL ? "ClickHouse (CLICKHOUSE_URL)" : "the embedded ClickHouse (chDB)", config.CLICKHOUSE_URL ?? "file:" + resolve(join(config.DATA_DIR, "chdb")), async () => {
      // GET /ping first (no credentials needed): a refused connection is reported without the
      // client's own multi-line error log (its ping logs one too).
      if (config.CLICKHOUSE_URL) await httpPing(new URL("/ping", displayAddress(config.CLICKHOUSE_URL)));
      // A new rollup_quarter beside existing rollups: the hours it will hold are marked first (read
      // raw until the sealer has rolled them up again, by quarter hour too), so no query reads it empty.
      if (await quarterTableMissing(ch!, config.CLICKHOUSE_DATABASE))
        log.info({ hours: await markAllHours(sql, ch!, config.CLICKHOUSE_DATABASE, QUARTER_HOURS) }, "rollups: new quarter-hour table; the hours it holds are marked for the sealer");
      const { rollupsCreated, weeklyCreated, ownersCreated } = await ensureSchema(ch!, config.CLICKHOUSE_DATABASE, config.CLICKHOUSE_CLUSTER);
      if (ownersCreated) log.info({ links: await copyAllOwners(sql, ch!, config.CLICKHOUSE_DATABASE) }, "link owners' copy sorted by workspace now: copied again");
      if (weeklyCreated) log.info({ weeks: await backfillWeeks(ch!, config.CLICKHOUSE_DATABASE) }, "rollups: new weekly table, summed from the daily rows");
      if (rollupsCreated) {
        const links = await copyAllOwners(sql, ch!, config.CLICKHOUSE_DATABASE);
        const n = await markAllHours(sql, ch!, config.CLICKHOUSE_DATABASE);
        if (n) log.info({ hours: n, links }, "rollups: new tables; every hour already in ClickHouse is marked for the sealer");
      }
    }).catch(async (err) => {
      await stopAll();
      throw err;
    });
  }
  const common = { sql, log, metrics, breakerFailures: config.BREAKER_FAILURES, breakerResetMs: config.BREAKER_RESET_MS };
  if (roles.has("forwarder")) {
    forwarder = createForwarder({
      ...common,
      kinesis: kinesis!,
      stream: config.KINESIS_STREAM,
      batch: config.FORWARDER_BATCH,
      aggregateBytes: config.KINESIS_AGGREGATE_BYTES,
      gzip: config.KINESIS_COMPRESSION === "gzip",
      idleMs: config.FORWARDER_IDLE_MS,
      concurrency: config.FORWARDER_CONCURRENCY,
      duplicateDelivery: extras.duplicateDelivery,
      webhookBatchMax: config.WEBHOOK_BATCH_MAX_CLICKS,
    });
    forwarder.start();
  }
  if (roles.has("loader")) {
    loader = createLoader({
      ...common,
      kinesis: kinesis!,
      ch: ch!,
      database: config.CLICKHOUSE_DATABASE,
      stream: config.KINESIS_STREAM,
      batchRows: config.LOADER_BATCH_ROWS,
      batchMs: config.LOADER_BATCH_MS,
      maxAttempts: config.LOADER_MAX_ATTEMPTS,
      owner: `${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
      schema: extras.schema,
      insert: extras.insert,
    });
    loader.start();
  }
  // The sealer runs beside each loader (an advisory lock lets one work at a time).
  let sealer: ReturnType<typeof startSealer> | undefined;
  if (roles.has("loader")) {
    sealer = startSealer({ sql, ch: ch!, database: config.CLICKHOUSE_DATABASE, log, intervalMs: config.ROLLUP_INTERVAL_MS, onSealed: (n) => metrics.rollupsSealed.inc(n) });
    stops.push(() => sealer!.stop());
  }
  if (roles.has("archiver")) {
    const s3 = config.ARCHIVE_S3_BUCKET
      ? s3Uploader({ bucket: config.ARCHIVE_S3_BUCKET, prefix: config.ARCHIVE_S3_PREFIX, region: config.AWS_REGION, endpoint: config.ARCHIVE_S3_ENDPOINT })
      : undefined;
    if (s3) stops.push(async () => s3.destroy());
    archiver = createArchiver({ sql, log, dir: archiveDir(config), upload: s3?.upload, graceMs: config.ARCHIVE_GRACE_MS });
    archiver.start(config.ARCHIVE_INTERVAL_MS);
  }
  if (roles.has("webhooks")) {
    webhooks = createDispatcher({
      sql,
      log,
      metrics,
      allowPrivate: config.ALLOW_PRIVATE_DESTINATIONS === "true",
      concurrency: config.WEBHOOK_CONCURRENCY,
      timeoutMs: config.WEBHOOK_TIMEOUT_MS,
      retryBaseMs: config.WEBHOOK_RETRY_BASE_MS,
      retryMaxMs: config.WEBHOOK_RETRY_MAX_MS,
      maxAttempts: config.WEBHOOK_MAX_ATTEMPTS,
      pollMs: config.WEBHOOK_POLL_MS,
      retentionDays: config.WEBHOOK_RETENTION_DAYS,
    });
    webhooks.start();
  }
  let maintenance: NodeJS.Timeout | undefined;
  if (roles.has("maintenance")) {
    const tick = async () => {
      try {
        await ensurePartitions(sql);
        // a partition leaves PostgreSQL only once it is in ClickHouse *and* archived
        // (whichever process runs the archiver; archive_log is shared).
        await dropExpiredPartitions(sql, ch!, config.CLICKHOUSE_DATABASE, config.PG_RETENTION_DAYS, log, (p) => partitionArchived(sql, p));
      } catch (err) {
        log.warn({ err: String(err) }, "maintenance failed; next run in an hour");
      }
    };
    void tick();
    maintenance = setInterval(tick, MAINTENANCE_MS);
  }

  // Send and load rates from the shared counters (every process's work), sampled every 5 s.
  const samples: { at: number; sent: number; rows: number }[] = [];
  const sample = async () => {
    try {
      const c = await readCounters(sql);
      samples.push({ at: Date.now(), sent: c.kinesis_sent, rows: c.clickhouse_rows });
      // The completeness check advances without a scrape too (one process at a time: a try-lock).
      await settleSequences(sql, config.CLICKS_MISSING_WINDOW_MS);
      while (samples.length > 13) samples.shift();
    } catch {
      // PostgreSQL unavailable: no sample this time
    }
  };
  const sampler = setInterval(sample, 5_000);
  sampler.unref();
  void sample();
  const rates = (now: { sent: number; rows: number }): PipelineStatus["rates"] => {
    const first = samples[0];
    const dt = first ? (Date.now() - first.at) / 1000 : 0;
    if (!first || dt < 1) return { kinesis_sent_per_s: null, clickhouse_rows_per_s: null, window_s: 0 };
    const r = (x: number) => Math.round(x * 100) / 100;
    return { kinesis_sent_per_s: r((now.sent - first.sent) / dt), clickhouse_rows_per_s: r((now.rows - first.rows) / dt), window_s: Math.round(dt) };
  };

  /** PostgreSQL commit → ClickHouse insert, for clicks committed since `since` (null: no ClickHouse here). */
  const lag = async (since: Date): Promise<LoaderLag | null> => (ch ? loaderLag(ch, config.CLICKHOUSE_DATABASE, since) : null);

  /** The rollups' all-workspaces total plus the hours read raw: no full scan. */
  async function clickhouseClicks(): Promise<number | null> {
    if (!ch) return null;
    try {
      return await countClicks({ sql, ch, database: config.CLICKHOUSE_DATABASE });
    } catch (err) {
      log.warn({ err: String(err) }, "clickhouse count failed");
      return null;
    }
  }

  async function status(): Promise<PipelineStatus> {
    // Independent reads, asked at once (PostgreSQL's pool and ClickHouse answer them side by side).
    const [counters, [{ backlog, dlq, edge_dead_letters }], seqs, shardRows, clickhouse_clicks, loader_lag] = await Promise.all([
      readCounters(sql),
      sql`
      SELECT (SELECT count(*) FROM outbox)::int AS backlog,
             (SELECT count(*) FROM dead_letters WHERE replayed_at IS NULL)::int AS dlq,
             (SELECT count(*) FROM dead_letters WHERE replayed_at IS NULL AND source = ${EDGE_DEAD_LETTER_SOURCE})::int AS edge_dead_letters`.then(
        (r) => r as unknown as [{ backlog: number; dlq: number; edge_dead_letters: number }],
      ),
      // The completeness check: settle what can be, then read the totals (clicks/sequences.ts).
      settleSequences(sql, config.CLICKS_MISSING_WINDOW_MS)
        .catch((err) => log.warn({ err: String(err) }, "completeness check failed"))
        .then(() => completeness(sql)),
      sql<Omit<PipelineStatus["shards"][number], "millis_behind_latest">[]>`
      SELECT shard_id, sequence_number, owner, lease_until, finished FROM loader_checkpoints
      WHERE stream = ${config.KINESIS_STREAM} ORDER BY shard_id`,
      clickhouseClicks(),
      ch ? lag(new Date(Date.now() - 5 * 60_000)).catch(() => null) : null,
    ]);
    const behind = new Map((await metrics.shardBehind.get()).values.map((v) => [String(v.labels.shard), Math.round(v.value * 1000)]));
    const shards = shardRows.map((r) => ({ ...r, millis_behind_latest: loader ? (behind.get(r.shard_id) ?? null) : null }));
    metrics.outboxBacklog.set(backlog);
    metrics.dlqOpen.set(dlq);
    metrics.clicksMissing.inc(Math.max(0, seqs.missing_total - (await metrics.clicksMissing.get()).values[0]!.value));
    metrics.clicksLate.inc(Math.max(0, seqs.late_total - (await metrics.clicksLate.get()).values[0]!.value));
    const breakers: Record<string, BreakerState> = {};
    if (forwarder) breakers.kinesis = forwarder.breaker.state;
    if (loader) breakers.clickhouse = loader.breaker.state;
    return {
      postgres_clicks: counters.postgres_clicks,
      kinesis_sent: counters.kinesis_sent,
      clickhouse_clicks,
      clickhouse_rows: counters.clickhouse_rows,
      outbox_backlog: backlog,
      dlq,
      edge_dead_letters,
      clicks_missing: Math.max(0, seqs.missing_total - seqs.late_total),
      clicks_late: seqs.late_total,
      breakers,
      shards,
      rates: rates({ sent: counters.kinesis_sent, rows: counters.clickhouse_rows }),
      loader_lag,
    };
  }

  return {
    roles,
    kinesis,
    ch,
    forwarder,
    loader,
    sealer,
    archiver,
    webhooks,
    status,
    lag,
    /** What the stats, SRE and recent-clicks routes read. */
    analytics: { database: config.CLICKHOUSE_DATABASE, replica, streamsMax: config.STATS_STREAMS_MAX, streamMaxS: config.STATS_STREAM_MAX_S, metrics },
    async stop() {
      clearInterval(sampler);
      if (maintenance) clearInterval(maintenance);
      await forwarder?.stop();
      await loader?.stop();
      await archiver?.stop();
      await webhooks?.stop();
      for (const stop of stops.reverse()) await stop().catch(() => {});
    },
  };
}
/** ARCHIVE_DIR, or DATA_DIR/archive. */
export const archiveDir = (config: Config) => resolve(config.ARCHIVE_DIR ?? join(config.DATA_DIR, "archive"));

export type Pipeline = Awaited<ReturnType<typeof startPipeline>>;
