import { createRoute, z } from "@hono/zod-openapi";
import { streamSSE } from "hono/streaming";
import { apiRouter, errorResponses, json, okHeaders } from "../api-router.ts";
import { requireScope } from "../auth.ts";
import { chTime, rows, type ClickHouseClient } from "../../analytics/clickhouse.ts";
import type { Sql } from "../../db/connect.ts";
import { ApiError } from "../errors.ts";
import { bearerSecurity } from "../openapi.ts";

/**
 * The stats API (scope stats:read): ClickHouse, the hourly/daily views when the query allows,
 * the raw table otherwise. Every count is uniqExact(click_id) (or the merge of its states), so
 * duplicate deliveries never count twice. Workspace isolation: the caller's link ids come from
 * PostgreSQL and ClickHouse is only ever asked about those (link_id IN {ids}).
 * SQL safety: every value is a query parameter; the only identifiers put into SQL come from
 * the fixed maps below, chosen by validated enum keys.
 */

/** group_by / filter name → ClickHouse column (the only identifiers that reach SQL from a request). */
export const DIMENSIONS = {
  country: "country",
  region: "region",
  city: "city",
  device: "device",
  browser: "browser",
  os: "os",
  referer_host: "referer_host",
  utm_source: "utm_source",
  utm_medium: "utm_medium",
  utm_campaign: "utm_campaign",
  qr: "qr",
  cache_tier: "cache_tier",
  colo: "colo",
} as const;
export type Dimension = keyof typeof DIMENSIONS;
const DIMENSION_KEYS = Object.keys(DIMENSIONS) as [Dimension, ...Dimension[]];

const INTERVALS = { minute: 60_000, hour: 3_600_000, day: 86_400_000 } as const;
type Interval = keyof typeof INTERVALS;
const BUCKET_FN: Record<Interval, string> = { minute: "toStartOfMinute", hour: "toStartOfHour", day: "toStartOfDay" };
/** Longest range per interval (bounded series). */
const MAX_RANGE: Record<Interval, number> = { minute: 7 * INTERVALS.day, hour: 400 * INTERVALS.day, day: 5 * 366 * INTERVALS.day };
const DEFAULT_RANGE: Record<Interval, number> = { minute: INTERVALS.hour, hour: 2 * INTERVALS.day, day: 30 * INTERVALS.day };

/** An IANA zone this runtime knows (aliases like "UTC" included); letters, digits, / _ + - only. */
export function validTimeZone(tz: string): boolean {
  if (!/^[A-Za-z][A-Za-z0-9_+\-/]{0,63}$/.test(tz)) return false;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** Minutes east of UTC of `tz` at `t`. */
function offsetMinutes(tz: string, t: number): number {
  const parts = new Intl.DateTimeFormat("en-US", { timeZone: tz, hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric", hour: "numeric", minute: "numeric", second: "numeric" }).formatToParts(new Date(t));
  const n = (type: string) => Number(parts.find((p) => p.type === type)!.value);
  return Math.round((Date.UTC(n("year"), n("month") - 1, n("day"), n("hour"), n("minute"), n("second")) - Math.floor(t / 1000) * 1000) / 60_000);
}
/** The zone's offsets over [from, to] (sampled at both ends and every 15 days between). */
function offsetsOver(tz: string, from: number, to: number): number[] {
  const out = new Set<number>();
  for (let t = from; t < to; t += 15 * INTERVALS.day) out.add(offsetMinutes(tz, t));
  out.add(offsetMinutes(tz, to));
  return [...out];
}

const csv = z.string().max(2000).optional();
export const StatsQuery = z
  .object({
    link: z.coerce.number().int().positive().optional().openapi({ description: "a link id of the key's workspace" }),
    domain: z.string().max(253).optional().openapi({ description: "links of this short domain ('' or absent: any)" }),
    tag: z.string().min(1).max(100).optional().openapi({ description: "links carrying this tag" }),
    from: z.iso.datetime({ offset: true }).optional().openapi({ description: "inclusive; default: depends on interval" }),
    to: z.iso.datetime({ offset: true }).optional().openapi({ description: "exclusive; default: the next full hour" }),
    interval: z.enum(["minute", "hour", "day"]).default("day"),
    tz: z.string().max(64).default("UTC").refine(validTimeZone, "unknown time zone (IANA name, e.g. Europe/Berlin)").openapi({ description: "IANA time zone of the buckets" }),
    group_by: z.enum(DIMENSION_KEYS).optional(),
    bots: z.enum(["exclude", "include", "only"]).default("exclude"),
    limit: z.coerce.number().int().min(1).max(1000).default(10).openapi({ description: "breakdown rows (top N by clicks)" }),
    ...(Object.fromEntries(DIMENSION_KEYS.map((d) => [d, csv.openapi({ description: `filter: comma-separated ${d} values (any of)` })])) as Record<Dimension, typeof csv>),
  })
  .superRefine((q, ctx) => {
    if (q.qr !== undefined && !["true", "false"].includes(q.qr)) ctx.addIssue({ code: "custom", path: ["qr"], message: "qr filter is true or false" });
  });
export type StatsQuery = z.infer<typeof StatsQuery>;

export interface StatsDeps {
  sql: Sql;
  /** Read-only queries (link ids, recent clicks): the replica, or the primary. */
  replica: Sql;
  ch: ClickHouseClient | undefined;
  database: string;
  observe?: (source: string, seconds: number) => void;
}

/** The caller's link ids matching link/domain/tag; 404 when `link` is not theirs. */
export async function workspaceLinkIds(replica: Sql, workspaceId: number, q: { link?: number; domain?: string; tag?: string }): Promise<number[]> {
  const ids = await replica<{ id: string }[]>`
    SELECT id FROM links
    WHERE workspace_id = ${workspaceId}
      AND (${q.link ?? null}::bigint IS NULL OR id = ${q.link ?? null})
      AND (${q.domain ?? null}::text IS NULL OR domain = ${q.domain ?? null})
      AND (${q.tag ?? null}::text IS NULL OR ${q.tag ?? null} = ANY(tags))`;
  if (q.link && !ids.length) throw new ApiError(404, "not_found", "no such link in this workspace");
  return ids.map((r) => Number(r.id));
}

export type Source = "clicks" | "clicks_hourly" | "clicks_daily" | "clicks_hourly_totals" | "clicks_daily_totals";

/** Which table answers: a view when its buckets line up with the query's, else the raw table. */
export function pickSource(interval: Interval, tz: string, from: number, to: number): "clicks" | "clicks_hourly" | "clicks_daily" {
  if (interval === "minute") return "clicks";
  const offsets = offsetsOver(tz, from, to);
  const aligned = (ms: number) => from % ms === 0 && to % ms === 0;
  if (interval === "day" && offsets.every((o) => o === 0) && aligned(INTERVALS.day)) return "clicks_daily";
  if (offsets.every((o) => o % 60 === 0) && aligned(INTERVALS.hour)) return "clicks_hourly";
  return "clicks";
}

interface Bucket {
  t: string;
  clicks: number;
  visitors: number;
}

export async function queryStats(d: StatsDeps, workspaceId: number, q: StatsQuery) {
  if (!d.ch) throw new ApiError(503, "unavailable", "this process has no ClickHouse connection");
  const to = q.to ? Date.parse(q.to) : Math.ceil(Date.now() / INTERVALS.hour) * INTERVALS.hour;
  const from = q.from ? Date.parse(q.from) : to - DEFAULT_RANGE[q.interval];
  if (from >= to) throw new ApiError(400, "invalid_query", "from must be before to", "from");
  if (to - from > MAX_RANGE[q.interval]) throw new ApiError(400, "invalid_query", `at most ${MAX_RANGE[q.interval] / INTERVALS.day} days at interval=${q.interval}`, "from");
  const ids = await workspaceLinkIds(d.sql === d.replica ? d.sql : d.replica, workspaceId, q);
  const view = pickSource(q.interval, q.tz, from, to);
  // No breakdown and no dimension filter: the narrow per-link views answer (few rows a link).
  const source: Source = view !== "clicks" && !q.group_by && DIMENSION_KEYS.every((k) => q[k] === undefined) ? `${view}_totals` : view;
  const base = { from: new Date(from).toISOString(), to: new Date(to).toISOString(), interval: q.interval, tz: q.tz, group_by: q.group_by ?? null, bots: q.bots, source, links: ids.length };
  if (!ids.length) return { ...base, totals: { clicks: 0, visitors: 0 }, series: [] as Bucket[], breakdown: q.group_by ? [] : null };

  const raw = source === "clicks";
  const timeCol = source === "clicks" ? "ts" : source.startsWith("clicks_hourly") ? "hour" : "day";
  const clicks = raw ? "uniqExact(click_id)" : "uniqExactMerge(clicks)";
  const visitors = raw ? "uniqExact(nullIf(visitor_hash, ''))" : "uniqExactMerge(visitors)";
  const params: Record<string, unknown> = { ids, from: chTime(new Date(from)), to: chTime(new Date(to)), tz: q.tz, limit: q.limit };
  const where = [`link_id IN {ids:Array(UInt64)}`, `${timeCol} >= {from:DateTime64(3, 'UTC')}`, `${timeCol} < {to:DateTime64(3, 'UTC')}`];
  if (q.bots === "exclude") where.push("NOT is_bot");
  if (q.bots === "only") where.push("is_bot");
  for (const dim of DIMENSION_KEYS) {
    const v = q[dim];
    if (v === undefined) continue;
    if (dim === "qr") {
      where.push(`qr = {f_qr:Bool}`);
      params.f_qr = v === "true";
    } else {
      where.push(`${DIMENSIONS[dim]} IN {f_${dim}:Array(String)}`);
      params[`f_${dim}`] = v.split(",").map((s) => s.trim());
    }
  }
  const table = `${d.database}.${source}`;
  const cond = where.join(" AND ");
  const bucket = `toUnixTimestamp(toDateTime(${BUCKET_FN[q.interval]}(${timeCol}, {tz:String})))`;
  const run = async <T>(query: string) => {
    const started = performance.now();
    try {
      return await rows<T>(d.ch!, query, params);
    } finally {
      d.observe?.(source, (performance.now() - started) / 1000);
    }
  };
  const num = (x: unknown) => Number(x ?? 0);
  // Per UTC day (the daily views), the totals are the sums of the series, exactly: a click has
  // one timestamp, so one day (a redelivery too), and a visitor hash is salted with the click's
  // UTC day (enrich.ts visitorHash), so no hash is in two days. The () total of GROUPING SETS
  // merged every state of the range a second time, into one large set: in chDB, 150k clicks
  // over 30 days took 19 ms that way and 10 ms without it. Elsewhere (hours: a visitor spans
  // several) the total row stays.
  const daily = timeCol === "day";
  // Totals and series in one pass (GROUPING SETS: one row per bucket, plus the () total row):
  // the uniqExact states are read once, not twice.
  const bucketed = daily
    ? `SELECT ${bucket} AS t, ${clicks} AS clicks, ${visitors} AS visitors, 0 AS is_total FROM ${table} WHERE ${cond} GROUP BY t ORDER BY t`
    : `SELECT ${bucket} AS t, ${clicks} AS clicks, ${visitors} AS visitors, grouping(t) AS is_total
    FROM ${table} WHERE ${cond} GROUP BY GROUPING SETS ((t), ()) ORDER BY is_total, t`;
  const [grouped, breakdown] = await Promise.all([
    run<{ t: number; clicks: number; visitors: number; is_total: number }>(bucketed),
    q.group_by
      ? run<{ value: string; clicks: number; visitors: number }>(
          `SELECT toString(${DIMENSIONS[q.group_by]}) AS value, ${clicks} AS clicks, ${visitors} AS visitors FROM ${table} WHERE ${cond}
           GROUP BY value ORDER BY clicks DESC, value LIMIT {limit:UInt32}`,
        )
      : Promise.resolve(null),
  ]);
  // grouping(t) is 1 on the rows where t is aggregated away, i.e. the total.
  const series = grouped.filter((r) => num(r.is_total) === 0 && num(r.clicks) > 0);
  const totalRow = grouped.find((r) => num(r.is_total) === 1);
  const total = daily
    ? series.reduce((a, r) => ({ clicks: a.clicks + num(r.clicks), visitors: a.visitors + num(r.visitors) }), { clicks: 0, visitors: 0 })
    : { clicks: num(totalRow?.clicks), visitors: num(totalRow?.visitors) };
  return {
    ...base,
    totals: total,
    series: series.map((r) => ({ t: new Date(num(r.t) * 1000).toISOString(), clicks: num(r.clicks), visitors: num(r.visitors) })),
    breakdown: breakdown?.map((r) => ({ value: r.value, clicks: num(r.clicks), visitors: num(r.visitors) })) ?? null,
  };
}

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
const Counts = z.object({ clicks: z.number().int(), visitors: z.number().int() });
const StatsResponse = z
  .object({
    from: z.string(),
    to: z.string(),
    interval: z.string(),
    tz: z.string(),
    group_by: z.string().nullable(),
    bots: z.string(),
    source: z.enum(["clicks", "clicks_hourly", "clicks_daily", "clicks_hourly_totals", "clicks_daily_totals"]).openapi({ description: "the table that answered" }),
    links: z.number().int().openapi({ description: "links of the workspace matched by link/domain/tag" }),
    totals: Counts,
    series: z.array(Counts.extend({ t: z.string().openapi({ description: "bucket start (UTC instant of the local bucket start)" }) })),
    breakdown: z.array(Counts.extend({ value: z.string() })).nullable(),
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
    createRoute({ method: "get", path: "/", operationId: "getStats", summary: "Clicks and visitors over time, with totals and a top-N breakdown", tags: ["stats"], security, request: { query: StatsQuery }, responses: { 200: json(StatsResponse, "time series, totals and top-N breakdown"), ...errorResponses(400, 401, 403, 404, 429, 503) } }),
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
