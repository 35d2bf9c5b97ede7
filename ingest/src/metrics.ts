import { readFileSync } from "node:fs";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

const VERSION = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;
/** Request latencies, up to 10 s: a slow PostgreSQL or ClickHouse shows in the top buckets, not past them. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
// prom-client's sums of nodejs_active_{handles,requests,resources} by type: gauges named
// `_total`, which `promtool check metrics` refuses (only counters end in _total). The per-type
// gauges stay; sum() over them gives the same figure.
const GAUGES_NAMED_TOTAL = ["handles", "requests", "resources"].map((k) => `linkflow_nodejs_active_${k}_total`);

/**
 * Ingest's Prometheus metrics; one registry per ingest instance (tests run several). Names and
 * units follow Prometheus' conventions (base units, `_total` only on counters): test/metrics.test.ts
 * runs `promtool check metrics` on the scrape.
 */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "linkflow_" });
  for (const name of GAUGES_NAMED_TOTAL) registry.removeSingleMetric(name);
  const m = {
    registry,
    httpDuration: new Histogram({
      name: "linkflow_http_request_duration_seconds",
      help: "HTTP request latency by route and status",
      labelNames: ["method", "route", "status"] as const,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    clicksStored: new Counter({ name: "linkflow_clicks_stored_total", help: "Clicks committed to PostgreSQL (new ones)", registers: [registry] }),
    kinesisSent: new Counter({ name: "linkflow_kinesis_records_sent_total", help: "Outbox records accepted by Kinesis", registers: [registry] }),
    // Every record put again after an earlier attempt (refused by Kinesis, a row whose earlier
    // claim expired or failed, the duplicate-delivery test hook): records read back from the
    // stream beyond the distinct clicks must not exceed this (test/faults/multi-ingest.test.ts).
    kinesisResent: new Counter({ name: "linkflow_kinesis_records_resent_total", help: "Records sent to Kinesis again after an attempt that failed or was refused (retries that may duplicate)", registers: [registry] }),
    kinesisFailed: new Counter({ name: "linkflow_kinesis_records_failed_total", help: "Records Kinesis refused (FailedRecordCount) or calls that failed", registers: [registry] }),
    rollupsSealed: new Counter({ name: "linkflow_rollup_sealed_total", help: "Hour rollups computed (or recomputed) from the raw clicks table by the sealer", registers: [registry] }),
    loaderRows: new Counter({ name: "linkflow_loader_rows_total", help: "Rows inserted into ClickHouse (duplicates included)", registers: [registry] }),
    loaderLag: new Histogram({
      name: "linkflow_loader_lag_seconds",
      help: "PostgreSQL commit → ClickHouse insert acknowledged, per click",
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300],
      registers: [registry],
    }),
    deadLetters: new Counter({ name: "linkflow_dead_letters_total", help: "Records sent to the dead-letter table", labelNames: ["source"] as const, registers: [registry] }),
    breakerState: new Gauge({ name: "linkflow_breaker_state", help: "Circuit breaker state: 0 closed, 1 half-open, 2 open", labelNames: ["breaker"] as const, registers: [registry] }),
    outboxBacklog: new Gauge({ name: "linkflow_outbox_backlog", help: "Outbox rows not yet accepted by Kinesis", registers: [registry] }),
    // The completeness check's running totals (PostgreSQL's, the same in every process; clicks/sequences.ts).
    clicksMissing: new Counter({ name: "linkflow_clicks_missing_total", help: "Clicks the completeness check found missing: numbers of a worker isolate's click sequence that never arrived, once settled", registers: [registry] }),
    clicksLate: new Counter({ name: "linkflow_clicks_late_total", help: "Clicks found missing that arrived after all (lost = missing - late)", registers: [registry] }),
    dlqOpen: new Gauge({ name: "linkflow_dead_letters_open", help: "Dead letters not replayed", registers: [registry] }),
    edgeClicks: new Counter({ name: "linkflow_edge_clicks_total", help: "New clicks stored, by the edge cache tier that answered (isolate, kv, origin)", labelNames: ["cache_tier"] as const, registers: [registry] }),
    statsQueryDuration: new Histogram({
      name: "linkflow_stats_query_duration_seconds",
      help: "ClickHouse stats queries by source table (clicks, clicks_hourly, clicks_daily)",
      labelNames: ["source"] as const,
      buckets: LATENCY_BUCKETS.slice(2),
      registers: [registry],
    }),
    statsStreams: new Gauge({ name: "linkflow_stats_streams", help: "Open /api/stats/stream connections", registers: [registry] }),
    // GetRecords' MillisBehindLatest, in seconds (set with ms / 1000).
    shardBehind: new Gauge({ name: "linkflow_kinesis_behind_latest_seconds", help: "Loader position behind the stream tip, per shard", labelNames: ["shard"] as const, registers: [registry] }),
    beaconsRefused: new Counter({
      name: "linkflow_beacons_refused_total",
      help: "Beacon requests (POST /v1/clicks) refused, by error code (bad_signature: the edge's secret does not match; unavailable: PostgreSQL down)",
      labelNames: ["reason"] as const,
      registers: [registry],
    }),
    webhookDeliveries: new Counter({
      name: "linkflow_webhook_deliveries_total",
      help: "Webhook delivery attempts by outcome (delivered; retry: failed, another attempt scheduled; failed: the last attempt failed, dead-lettered)",
      labelNames: ["outcome"] as const,
      registers: [registry],
    }),
    webhookBacklog: new Gauge({ name: "linkflow_webhook_backlog", help: "Webhook messages pending (not yet delivered, not dead-lettered)", registers: [registry] }),
    webhookEndpointsDown: new Gauge({
      name: "linkflow_webhook_endpoints_down",
      help: "Enabled webhook endpoints whose last round failed (no answer, timeout, 5xx, 429): their messages are held until the endpoint's next try",
      registers: [registry],
    }),
    webhookDeadLettered: new Gauge({ name: "linkflow_webhook_dead_lettered", help: "Webhook messages dead-lettered after their last attempt (status failed), not replayed", registers: [registry] }),
    buildInfo: new Gauge({ name: "linkflow_build_info", help: "Always 1; the labels say which ingest build and Node.js runtime", labelNames: ["version", "node_version"] as const, registers: [registry] }),
  };
  m.buildInfo.set({ version: VERSION, node_version: process.version }, 1);
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;
