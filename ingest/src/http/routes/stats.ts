import { apiRouter, bearerSecurity } from "../openapi.ts";
import { createRoute, z } from "@hono/zod-openapi";
import { streamSSE } from "hono/streaming";
import { errorResponses, json, okHeaders } from "../api-router.ts";
import { requireScope } from "../auth.ts";
import { chTime, rows } from "../../analytics/clickhouse.ts";
import type { Sql } from "../../db/connect.ts";
import { ApiError } from "../errors.ts";
import { DIMENSION_KEYS, GROUP_BY_KEYS, queryStats, workspaceLinkIds, type Dimension, type StatsDeps } from "../../analytics/stats-query.ts";
import { INTERVAL_KEYS, validTimeZone } from "../../analytics/time.ts";

/** The stats API (scope stats:read); the queries are analytics/stats-query.ts's. */

const csv = z.string().max(2000).optional();
export const StatsQuery = z
  .object({
    link: z.coerce.number().int().positive().optional().openapi({ description: "a link id of the key's workspace" }),
    domain: z.string().max(253).optional().openapi({ description: "links of this short domain ('' or absent: any)" }),
    tag: z.string().min(1).max(100).optional().openapi({ description: "links carrying this tag" }),
    from: z.union([z.iso.datetime({ offset: true }), z.iso.date()]).optional().openapi({ description: "inclusive: an instant, or a plain date (its start in `tz`); default: depends on interval" }),
    to: z.union([z.iso.datetime({ offset: true }), z.iso.date()]).optional().openapi({ description: "an instant (exclusive), or a plain date (inclusive: the range ends with that day in `tz`); default: the next full hour" }),
    interval: z.enum(INTERVAL_KEYS).default("day").openapi({ description: "bucket size; weeks start on Monday" }),
    tz: z.string().max(64).default("UTC").refine(validTimeZone, "unknown time zone (IANA name, e.g. Europe/Berlin)").openapi({ description: "IANA time zone of the buckets" }),
    group_by: z.enum(GROUP_BY_KEYS).optional().openapi({ description: "breakdown by a dimension, or `link` for the top links" }),
    bots: z.enum(["exclude", "include", "only"]).default("exclude"),
    limit: z.coerce.number().int().min(1).max(1000).default(10).openapi({ description: "breakdown rows (top N by clicks)" }),
    ...(Object.fromEntries(DIMENSION_KEYS.map((d) => [d, csv.openapi({ description: `filter: comma-separated ${d} values (any of)` })])) as Record<Dimension, typeof csv>),
  })
  .superRefine((q, ctx) => {
    if (q.qr !== undefined && !["true", "false"].includes(q.qr)) ctx.addIssue({ code: "custom", path: ["qr"], message: "qr filter is true or false" });
  });
export type StatsQuery = z.infer<typeof StatsQuery>;

const LiveQuery = z.object({
  link: z.coerce.number().int().positive().optional(),
  domain: z.string().max(253).optional(),
  tag: z.string().min(1).max(100).optional(),
  bots: z.enum(["exclude", "include", "only"]).default("exclude"),
});
const StreamQuery = LiveQuery.extend({
  max_seconds: z.coerce.number().int().min(1).max(86_400).optional().openapi({ description: "close the stream after this long (bounded by STATS_STREAM_MAX_S)" }),
});
const botCond = (bots: string) => (bots === "exclude" ? " AND NOT is_bot" : bots === "only" ? " AND is_bot" : "");

const security = bearerSecurity;
const Counts = z.object({
  clicks: z.number().int().openapi({ description: "distinct clicks: exact (a click delivered twice counts once)" }),
  visitors: z.number().int().openapi({ description: "distinct visitors (salted per UTC day): approximate, a uniqCombined64(12) sketch (~1.6 % standard error; exact up to 127)" }),
});
const StatsResponse = z
  .object({
    from: z.string(),
    to: z.string(),
    interval: z.string(),
    tz: z.string(),
    group_by: z.string().nullable(),
    bots: z.string(),
    source: z.string().openapi({ description: "the tables that answered, joined by '+': rollup_weekly (whole UTC weeks of a workspace), rollup_daily, rollup_hourly (closed hours, rolled up), rollup_quarter (a workspace's hours that a day, week or month boundary splits in a zone a fraction of an hour off UTC, such as Asia/Kolkata, by quarter hour), clicks (the raw table: the open hour, hours not yet rolled up, minute buckets, filters on two dimensions). For up to 100 links, the raw table and today's hourly rows are left out when PostgreSQL, where every click lands first, holds none of their clicks in those recent hours. none when no link matched or no table had to be read" }),
    links: z.number().int().openapi({ description: "links of the workspace matched by link/domain/tag" }),
    totals: Counts,
    series: z.array(Counts.extend({ t: z.string().openapi({ description: "bucket start (UTC instant of the local bucket start)" }) })),
    breakdown: z
      .array(
        Counts.extend({
          value: z.string().openapi({ description: "the dimension's value ('' = none, e.g. a direct visit); for group_by=link, the link id" }),
          link: z.object({ id: z.number().int(), domain: z.string(), code: z.string(), url: z.string(), title: z.string().nullable() }).optional().openapi({ description: "group_by=link: the link" }),
        }),
      )
      .nullable(),
  })
  .openapi("Stats");

/** Most concurrent /api/stats/stream connections per key and per workspace (besides the process cap). */
export interface StreamCaps {
  perKey: number;
  perWorkspace: number;
}

/** Open-stream counts (process, per key, per workspace); `open` returns the release, or why not. */
function streamSlots(max: () => number, caps: StreamCaps) {
  let total = 0;
  const byKey = new Map<number, number>();
  const byWs = new Map<number, number>();
  const bump = (m: Map<number, number>, k: number, d: number) => {
    const n = (m.get(k) ?? 0) + d;
    if (n > 0) m.set(k, n);
    else m.delete(k);
  };
  return {
    get total() {
      return total;
    },
    open(keyId: number, workspaceId: number): (() => void) | "key" | "workspace" | "process" {
      if ((byKey.get(keyId) ?? 0) >= caps.perKey) return "key";
      if ((byWs.get(workspaceId) ?? 0) >= caps.perWorkspace) return "workspace";
      if (total >= max()) return "process";
      total++;
      bump(byKey, keyId, 1);
      bump(byWs, workspaceId, 1);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        total--;
        bump(byKey, keyId, -1);
        bump(byWs, workspaceId, -1);
      };
    },
  };
}

/** What the stream route needs besides the queries: its caps, longest stream, and open-stream gauge. */
export interface StreamDeps extends StreamCaps {
  /** Most open streams in this process (STATS_STREAMS_MAX). */
  max: number;
  /** Longest a stream stays open, in seconds (STATS_STREAM_MAX_S). */
  maxSeconds: number;
  /** Reports the open streams (the stats_streams gauge). */
  gauge: (open: number) => void;
}

/** /api/stats, /api/stats/live, /api/stats/stream (scope stats:read). */
export function statsRoutes({ streams: caps, ...deps }: StatsDeps & { streams: StreamDeps }) {
  const { sql } = deps;
  const streams = streamSlots(() => caps.max, caps);
  const app = apiRouter();
  app.use(requireScope(sql, "stats:read"));
  app.openapi(
    createRoute({ method: "get", path: "/", operationId: "getStats", summary: "Clicks and visitors over time, with totals and a top-N breakdown (by a dimension, or the top links)", tags: ["stats"], security, request: { query: StatsQuery }, responses: { 200: json(StatsResponse, "time series, totals and top-N breakdown"), ...errorResponses(400, 401, 403, 404, 429, 503) } }),
    async (c) => c.json(await queryStats(deps, c.var.principal.workspaceId, c.req.valid("query")), 200),
  );
  app.openapi(
    createRoute({
      method: "get",
      path: "/live",
      operationId: "getLiveStats",
      summary: "Clicks per second over the last 60 seconds",
      tags: ["stats"],
      security,
      request: { query: LiveQuery },
      responses: { 200: json(z.object({ to: z.string(), seconds: z.array(z.object({ t: z.string(), clicks: z.number().int() })), total: z.number().int() }), "clicks per second over the last 60 s"), ...errorResponses(400, 401, 403, 404, 429, 503) },
    }),
    async (c) => {
      if (!deps.ch) throw new ApiError(503, "unavailable", "this process has no ClickHouse connection");
      const q = c.req.valid("query");
      const ids = await workspaceLinkIds(deps.replica, c.var.principal.workspaceId, q);
      const end = Math.floor(Date.now() / 1000) * 1000 + 1000;
      const start = end - 60_000;
      const got = ids.length
        ? await rows<{ t: number; clicks: number }>(
            deps.ch,
            `SELECT toUnixTimestamp(toStartOfSecond(ts)) AS t, uniqExact(click_id) AS clicks FROM ${deps.database}.clicks
             WHERE link_id IN {ids:Array(UInt64)} AND ts >= {from:DateTime64(3, 'UTC')} AND ts < {to:DateTime64(3, 'UTC')}${botCond(q.bots)}
             GROUP BY t`,
            { ids, from: chTime(new Date(start)), to: chTime(new Date(end)) },
          )
        : [];
      const by = new Map(got.map((r) => [Number(r.t) * 1000, Number(r.clicks)]));
      const seconds = Array.from({ length: 60 }, (_, i) => start + i * 1000).map((t) => ({ t: new Date(t).toISOString(), clicks: by.get(t) ?? 0 }));
      return c.json({ to: new Date(end).toISOString(), seconds, total: seconds.reduce((s, x) => s + x.clicks, 0) }, 200);
    },
  );
  // Server-sent events: `click` per new click in ClickHouse (polled every second, at most 100
  // per tick), `tick` every second with that second's count; closes after max_seconds.
  app.openapi(
    createRoute({
      method: "get",
      path: "/stream",
      operationId: "streamStats",
      summary: "Live clicks as server-sent events",
      description:
        "Events: `click` per new click (`id` is the click_id; data: the click as JSON: click_id, link_id, code, ts, country, device, browser, os, referer_host, cache_tier, qr, inserted_at), " +
        "at most 100 a second, and `tick` every second (data: `{ t, clicks }`). Closes after max_seconds. " +
        "Open streams are capped per API key and per workspace (429 too_many_streams, Retry-After) and per process (503).",
      tags: ["stats"],
      security,
      request: { query: StreamQuery },
      responses: {
        200: { description: "a text/event-stream of `click` and `tick` events", headers: okHeaders, content: { "text/event-stream": { schema: z.string().openapi({ description: "server-sent events" }) } } },
        ...errorResponses(400, 401, 403, 404, 429, 503),
      },
    }),
    async (c) => {
      if (!deps.ch) throw new ApiError(503, "unavailable", "this process has no ClickHouse connection");
      const q = c.req.valid("query");
      const ids = await workspaceLinkIds(deps.replica, c.var.principal.workspaceId, q);
      const p = c.var.principal;
      const slot = streams.open(p.keyId, p.workspaceId);
      if (slot === "process") throw new ApiError(503, "unavailable", "too many open streams; retry later");
      if (typeof slot === "string") {
        // One key (or workspace) cannot hold every slot: its own limit, while others still connect.
        c.header("Retry-After", "10");
        const n = slot === "key" ? caps.perKey : caps.perWorkspace;
        throw new ApiError(429, "too_many_streams", `at most ${n} open streams per ${slot === "key" ? "API key" : "workspace"}; close one or retry later`);
      }
      const maxMs = Math.min(q.max_seconds ?? caps.maxSeconds, caps.maxSeconds) * 1000;
      caps.gauge(streams.total);
      const release = () => {
        slot();
        caps.gauge(streams.total);
      };
      return streamSSE(c, async (stream) => {
        const seen = new Map<string, number>(); // click_id → when seen (a 10 s window of overlap)
        let since = Date.now() - 2_000;
        const until = Date.now() + maxMs;
        try {
          // stream.aborted, not an onAbort flag: an abort before this callback ran counts too.
          // The slot goes back when the loop ends (within a tick of a disconnect).
          while (!stream.aborted && Date.now() < until) {
            const now = Date.now();
            const fresh = ids.length
              ? await rows<{ click_id: string; link_id: number; code: string; ts: string; country: string; device: string; browser: string; os: string; referer_host: string; cache_tier: string; qr: boolean; inserted_at: string }>(
                  deps.ch!,
                  // Rows become visible a little after inserted_at: look back 5 s, skip what was sent.
                  `SELECT click_id, link_id, code, ts, country, device, browser, os, referer_host, cache_tier, qr, inserted_at
                   FROM ${deps.database}.clicks
                   WHERE link_id IN {ids:Array(UInt64)} AND inserted_at >= {since:DateTime64(3, 'UTC')}${botCond(q.bots)}
                   ORDER BY inserted_at LIMIT 1000`,
                  { ids, since: chTime(new Date(since - 5_000)) },
                )
              : [];
            let n = 0;
            for (const r of fresh) {
              if (seen.has(r.click_id) || n >= 100) continue;
              seen.set(r.click_id, now);
              n++;
              await stream.writeSSE({ event: "click", id: r.click_id, data: JSON.stringify({ ...r, link_id: Number(r.link_id), ts: new Date(r.ts.replace(" ", "T") + "Z").toISOString() }) });
            }
            await stream.writeSSE({ event: "tick", data: JSON.stringify({ t: new Date(now).toISOString(), clicks: n }) });
            since = now;
            for (const [id, at] of seen) if (at < now - 10_000) seen.delete(id);
            await stream.sleep(1000);
          }
        } finally {
          release();
        }
      });
    },
  );
  return app;
}

const RecentQuery = z.object({
  link: z.coerce.number().int().positive(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
});
const RecentClick = z.object({
  click_id: z.string(),
  ts: z.string(),
  received_at: z.string(),
  referer: z.string(),
  user_agent: z.string(),
  country: z.string().nullable(),
  city: z.string().nullable(),
  colo: z.string().nullable(),
  cache_tier: z.string(),
  qr: z.boolean(),
});

/** GET /api/clicks/recent?link=: the link's latest clicks from PostgreSQL (the replica when configured); no IPs. */
export function recentClickRoutes({ sql, replica }: { sql: Sql; replica: Sql }) {
  const app = apiRouter();
  app.use(requireScope(sql, "stats:read"));
  app.openapi(
    createRoute({ method: "get", path: "/recent", operationId: "listRecentClicks", summary: "A link's latest clicks (from PostgreSQL; no IP addresses)", tags: ["stats"], security, request: { query: RecentQuery }, responses: { 200: json(z.object({ items: z.array(RecentClick) }), "latest clicks, newest first"), ...errorResponses(400, 401, 403, 404, 429) } }),
    async (c) => {
      const q = c.req.valid("query");
      await workspaceLinkIds(replica, c.var.principal.workspaceId, { link: q.link });
      const items = await replica<{ click_id: string; ts: Date; received_at: Date; referer: string; user_agent: string; country: string | null; city: string | null; colo: string | null; cache_tier: string; qr: boolean }[]>`
        SELECT click_id, ts, received_at, referer, user_agent, geo_location->>'country' AS country, geo_location->>'city' AS city,
               geo_location->>'colo' AS colo, cache_tier, qr
        FROM clicks WHERE link_id = ${q.link} ORDER BY ts DESC LIMIT ${q.limit}`;
      return c.json({ items: items.map((r) => ({ ...r, ts: r.ts.toISOString(), received_at: r.received_at.toISOString() })) }, 200);
    },
  );
  return app;
}
