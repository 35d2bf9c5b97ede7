import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** Ingest's Prometheus metrics; one registry per ingest instance (tests run several). */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "linkflow_" });
  const m = {
    registry,
    httpDuration: new Histogram({
      name: "linkflow_http_request_duration_seconds",
      help: "HTTP request latency by route and status",
      labelNames: ["method", "route", "status"] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    clicksStored: new Counter({ name: "linkflow_clicks_stored_total", help: "Clicks committed to PostgreSQL (new ones)", registers: [registry] }),
    kinesisSent: new Counter({ name: "linkflow_kinesis_records_sent_total", help: "Outbox records accepted by Kinesis", registers: [registry] }),
    // Every record put again after an earlier attempt (refused by Kinesis, a row whose earlier
    // claim expired or failed, the duplicate-delivery test hook): records read back from the
    // stream beyond the distinct clicks must not exceed this (test/faults/multi-ingest.test.ts).
    kinesisResent: new Counter({ name: "linkflow_kinesis_records_resent_total", help: "Records sent to Kinesis again after an earlier attempt (retries that may duplicate)", registers: [registry] }),
    kinesisFailed: new Counter({ name: "linkflow_kinesis_records_failed_total", help: "Records Kinesis refused (FailedRecordCount) or calls that failed", registers: [registry] }),
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
    dlqOpen: new Gauge({ name: "linkflow_dead_letters_open", help: "Dead letters not replayed", registers: [registry] }),
    edgeClicks: new Counter({ name: "linkflow_edge_clicks_total", help: "New clicks stored, by the edge cache tier that answered (isolate, kv, origin)", labelNames: ["cache_tier"] as const, registers: [registry] }),
    statsQueryDuration: new Histogram({
      name: "linkflow_stats_query_duration_seconds",
      help: "ClickHouse stats queries by source table (clicks, clicks_hourly, clicks_daily)",
      labelNames: ["source"] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    statsStreams: new Gauge({ name: "linkflow_stats_streams", help: "Open /api/stats/stream connections", registers: [registry] }),
    shardLagMs: new Gauge({ name: "linkflow_kinesis_millis_behind_latest", help: "Loader position behind the stream tip, per shard", labelNames: ["shard"] as const, registers: [registry] }),
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;
