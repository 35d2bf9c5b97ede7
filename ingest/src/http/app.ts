import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import type { Logger } from "pino";
import type { ClickEvent, EdgeLink } from "../../../shared/event.ts";
import type { Keys } from "../../../shared/keys.ts";
import { failedAuthThrottle } from "./auth.ts";
import { apiBodyLimit } from "./body-limit.ts";
import { clickRoutes } from "./routes/beacons.ts";
import { requestId } from "./request-id.ts";
import type { Config } from "../config.ts";
import type { Sql } from "../db/connect.ts";
import { isDomainError } from "../errors.ts";
import { ApiError, domainErrorResponse, errorBody } from "./errors.ts";
import { dashboardRoutes } from "./routes/dashboard.ts";
import { domainRoutes } from "./routes/domains.ts";
import { txtLookup } from "../links/domain-verify.ts";
import { keyRoutes, workspaceRoutes } from "./routes/keys.ts";
import type { EdgeSync } from "../links/edge-sync.ts";
import { deadClickRecorder, replayEdgeDeadLetters } from "../clicks/dead-letters.ts";
import { linkGuard } from "../clicks/link-guard.ts";
import { linkStore } from "../links/store.ts";
import { linkRoutes } from "./routes/links.ts";
import { webhookRoutes } from "./routes/webhooks.ts";
import { webhookStore } from "../webhooks/store.ts";
import type { Metrics } from "../metrics.ts";
import type { Pipeline } from "../pipeline/index.ts";
import { pgGate, isUnavailable } from "./pg-gate.ts";
import { pipelineRoutes } from "./routes/pipeline.ts";
import { healthRoutes } from "./routes/health.ts";
import { readiness } from "../db/readiness.ts";
import { memoryExceeded } from "../analytics/clickhouse.ts";
import { countRefusedBeacons } from "./beacon-refusals.ts";
import { sreRoutes } from "./routes/sre.ts";
import { recentClickRoutes, statsRoutes } from "./routes/stats.ts";
import { createApi } from "./openapi.ts";
import { resolveRoutes } from "./routes/resolve.ts";
import { ownHostsOf } from "../links/url-safety.ts";

export interface AppDeps {
  sql: Sql;
  config: Pick<
    Config,
    | "SHORT_BASE_URL"
    | "PRIMARY_HOSTS"
    | "ALLOW_PRIVATE_DESTINATIONS"
    | "DNS_RESOLVER"
    | "STATS_STREAMS_PER_KEY"
    | "STATS_STREAMS_PER_WORKSPACE"
    | "AUTH_FAILURES_PER_MINUTE"
  >;
  /** The purpose keys of EDGE_SECRET, then of EDGE_SECRET_PREVIOUS while set (shared/keys.ts). */
  keys: Keys[];
  /** Stores beacon events durably; resolves with the click_ids that were new (see group-commit.ts). */
  storeClicks: (events: ClickEvent[]) => Promise<Set<string>>;
  log: Logger;
  /** KV write-through (edge-sync.ts); a bare push function means deletes are not propagated. */
  pushEdge: EdgeSync | ((link: EdgeLink) => Promise<boolean>);
  metrics: Metrics;
  pipeline: Pipeline;
}


export function createApp({ sql, config, keys, log, pushEdge, metrics, pipeline, storeClicks }: AppDeps) {
  const app = new Hono();
  // One link guard (and its cache) for beacons and for replayed dead letters.
  const guard = linkGuard(sql);
  app.use(requestId());
  app.use(async (c, next) => {
    const end = metrics.httpDuration.startTimer();
    await next();
    end({ method: c.req.method, route: c.req.routePath, status: String(c.res.status) });
  });
  // Everything under /v1 and /api needs PostgreSQL: during an outage it answers 503 at once.
  const db = pgGate(sql, log);
  app.use("/v1/clicks", countRefusedBeacons(metrics)); // before the gate: its 503s count too
  app.use("/v1/*", db.middleware);
  app.use("/api/*", db.middleware);
  // Failed-auth throttle per client address (auth.ts), then body size limits (body-limit.ts).
  app.use("/api/*", failedAuthThrottle(config.AUTH_FAILURES_PER_MINUTE), apiBodyLimit());

  // Prometheus scrape (the same figures as /api/pipeline, plus latency histograms).
  app.get("/metrics", async (c) => {
    await pipeline.status().catch(() => undefined); // refreshes the backlog and DLQ gauges
    return c.text(await metrics.registry.metrics(), 200, { "Content-Type": metrics.registry.contentType });
  });

  app.get("/healthz", async (c) => {
    await sql`SELECT 1`;
    return c.json({ ok: true });
  });
  app.route("/", healthRoutes(readiness(sql), db)); // GET /livez, GET /readyz

  // The documented API (/openapi.json, /docs): every router listed here is in the spec.
  const edge: EdgeSync = "remove" in pushEdge ? pushEdge : { push: pushEdge, remove: async () => false };
  const ownHosts = ownHostsOf(config.SHORT_BASE_URL, config.PRIMARY_HOSTS);
  const store = linkStore({
    sql,
    shortBaseUrl: config.SHORT_BASE_URL,
    ownHosts,
    edge,
    passwordKey: keys[0]!.password,
    allowPrivate: config.ALLOW_PRIVATE_DESTINATIONS === "true",
  });
  // The routes get only what they use of the pipeline.
  const { replica, database, metrics: am } = pipeline.analytics;
  const ch = pipeline.ch;
  const streams = {
    max: pipeline.analytics.streamsMax,
    maxSeconds: pipeline.analytics.streamMaxS,
    perKey: config.STATS_STREAMS_PER_KEY,
    perWorkspace: config.STATS_STREAMS_PER_WORKSPACE,
    gauge: (open: number) => am.statsStreams.set(open),
  };
  const observe = (source: string, s: number) => am.statsQueryDuration.observe({ source }, s);
  app.route(
    "/",
    createApi([
      { path: "/api/links", router: linkRoutes({ sql, store, shortBaseUrl: config.SHORT_BASE_URL, log }) },
      { path: "/api/keys", router: keyRoutes(sql) },
      { path: "/api/workspaces", router: workspaceRoutes(sql) },
      { path: "/api/domains", router: domainRoutes(sql, ownHosts, txtLookup(config.DNS_RESOLVER)) },
      { path: "/api/stats", router: statsRoutes({ sql, replica, ch, database, observe, streams }) },
      { path: "/api/clicks", router: recentClickRoutes({ sql, replica }) },
      { path: "/api/sre", router: sreRoutes({ sql, replica, ch, database }) },
      { path: "/api/webhooks", router: webhookRoutes({ sql, store: webhookStore({ sql, allowPrivate: config.ALLOW_PRIVATE_DESTINATIONS === "true" }) }) },
      { path: "/api/pipeline", router: pipelineRoutes({ sql, status: pipeline.status, lag: pipeline.lag, replayEdge: (ids) => replayEdgeDeadLetters(sql, { store: storeClicks, mismatched: guard }, ids) }) },
    ]),
  );
  app.route("/v1/resolve", resolveRoutes(sql, { accept: keys.map((k) => k.resolve), passwordKey: keys[0]!.password }));
  app.route("/v1/clicks", clickRoutes({ store: storeClicks, keys: keys.map((k) => k.beacon), mismatched: guard, recordDead: deadClickRecorder(sql) }));

  app.route("/", dashboardRoutes()); // the web dashboard (dist/dashboard, built by `npm run build`)

  app.notFound((c) => c.json(errorBody(404, "not_found", `no route for ${c.req.method} ${c.req.path}`), 404));

  // The one place errors become responses.
  app.onError((err, c) => {
    if (err instanceof ApiError) return c.json(errorBody(err.status, err.code, err.message, err.field), err.status);
    if (isDomainError(err)) {
      const { status, body } = domainErrorResponse(err);
      return c.json(body, status);
    }
    if (err instanceof HTTPException) {
      // The OpenAPI validators' own errors: unparsable JSON, a body of an undeclared content type.
      const code = err.status === 400 && /JSON/.test(err.message) ? "invalid_json" : err.status === 415 ? "unsupported_media_type" : "http_error";
      return c.json(errorBody(err.status, code, code === "invalid_json" ? "the body is not valid JSON" : err.message), err.status);
    }
    if (isUnavailable(err)) {
      db.failed(err);
      log.warn({ code: (err as { code?: unknown }).code, reqId: c.get("requestId") }, "database unavailable");
      c.header("Retry-After", "1");
      return c.json(errorBody(503, "unavailable", "the database is unavailable; retry"), 503);
    }
    if (memoryExceeded(err)) {
      // ClickHouse's memory bound (CHDB_MAX_MEMORY_MB, or the server's): busy now, not broken.
      log.warn({ reqId: c.get("requestId"), err: String(err).slice(0, 300) }, "ClickHouse over its memory limit");
      c.header("Retry-After", "2");
      return c.json(errorBody(503, "unavailable", "analytics are over their memory limit just now; retry"), 503);
    }
    log.error({ err, reqId: c.get("requestId") }, "unhandled error");
    return c.json(errorBody(500, "internal", "internal error"), 500);
  });
  return app;
}
