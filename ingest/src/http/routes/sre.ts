import { apiRouter, bearerSecurity } from "../openapi.ts";
import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses, json } from "../api-router.ts";
import { requireScope } from "../auth.ts";
import { chTime, rows, type ClickHouseClient } from "../../analytics/clickhouse.ts";
import type { Sql } from "../../db/connect.ts";
import { ApiError } from "../errors.ts";
import { originLatencyByColo } from "../../analytics/edge-latency.ts";
import { INTERVAL_KEYS, queryRange, validTimeZone } from "../../analytics/time.ts";
import { breakdown, plan, seriesByValue } from "../../analytics/stats-query.ts";


const EdgeQuery = z.object({
  from: z.union([z.iso.datetime({ offset: true }), z.iso.date()]).optional(),
  to: z.union([z.iso.datetime({ offset: true }), z.iso.date()]).optional(),
  interval: z.enum(INTERVAL_KEYS).default("hour"),
  tz: z.string().max(64).default("UTC").refine(validTimeZone, "unknown time zone (IANA name, e.g. Europe/Berlin)"),
});
const Tiers = z.object({ isolate: z.number().int(), kv: z.number().int(), origin: z.number().int(), total: z.number().int(), hit_ratio: z.number().nullable() });
const Latency = z.object({ samples: z.number().int(), p50_ms: z.number().nullable(), p99_ms: z.number().nullable() });
const EdgeResponse = z
  .object({
    from: z.string(),
    to: z.string(),
    interval: z.string(),
    source: z.string(),
    scope: z.enum(["all", "workspace"]),
    totals: Tiers,
    series: z.array(Tiers.extend({ t: z.string() })),
    by_colo: z.array(Tiers.extend({ colo: z.string() })),
    origin_resolve_latency_ms: Latency.extend({ by_colo: z.array(Latency.extend({ colo: z.string() })) }).openapi({
      description: "how long the worker's origin resolves took (clicks answered by the origin tier, click event version 2), p50/p99 overall and per colo",
    }),
    notes: z.array(z.string()),
  })
  .openapi("EdgeStats");

interface TierRow {
  k: string | number;
  cache_tier: string;
  clicks: number | string;
}

/** Folds (key, tier, clicks) rows into per-key tier counts with hit ratio = (isolate + kv) / total. */
function fold(rs: TierRow[]) {
  const by = new Map<string, { isolate: number; kv: number; origin: number }>();
  for (const r of rs) {
    const e = by.get(String(r.k)) ?? { isolate: 0, kv: 0, origin: 0 };
    if (r.cache_tier === "isolate" || r.cache_tier === "kv" || r.cache_tier === "origin") e[r.cache_tier] += Number(r.clicks);
    by.set(String(r.k), e);
  }
  return [...by].map(([k, e]) => {
    const total = e.isolate + e.kv + e.origin;
    return { k, ...e, total, hit_ratio: total ? Math.round(((e.isolate + e.kv) / total) * 10_000) / 10_000 : null };
  });
}

/**
 * GET /api/sre/edge (admin or stats:read): which cache tier answered the redirects — isolate,
 * KV, origin — over time and per colo, from ClickHouse (cache_tier, colo of every click; bots
 * included: they load the edge too). An operator key sees every link; any other key (a workspace
 * admin too) its own workspace's links.
 */
export function sreRoutes({ sql, replica, ch, database }: { sql: Sql; replica: Sql; ch: ClickHouseClient | undefined; database: string }) {
  const app = apiRouter();
  app.use(requireScope(sql, "stats:read"));
  app.openapi(
    createRoute({ method: "get", path: "/edge", operationId: "getSreEdge", summary: "Which cache tier answered the redirects (isolate, KV, origin), over time and per colo", tags: ["sre"], security: bearerSecurity, request: { query: EdgeQuery }, responses: { 200: json(EdgeResponse, "edge cache hit ratios"), ...errorResponses(400, 401, 403, 429, 503) } }),
    async (c) => {
      if (!ch) throw new ApiError(503, "unavailable", "this process has no ClickHouse connection");
      const q = c.req.valid("query");
      const p = c.var.principal;
      const { from, to } = queryRange(q.interval, q.from, q.to, q.tz);
      const all = p.scopes.includes("operator");
      const ids = all ? [] : (await replica<{ id: string }[]>`SELECT id FROM links WHERE workspace_id = ${p.workspaceId}`).map((r) => Number(r.id));
      // Redirects, bots included (a bot's redirect is served like any other).
      const base = { scope: all ? ({ level: "all" } as const) : ({ level: "workspace", id: p.workspaceId } as const), from, to, interval: q.interval, tz: q.tz, bots: "include" as const };
      const plan_ = await plan(replica, base);
      const source = plan_.source;
      const empty = !all && !ids.length;
      const [byTier, colos, latency] = empty
        ? [[], [], await originLatencyByColo({ ch, database, from: new Date(from), to: new Date(to), linkIds: [] })]
        : await Promise.all([
            seriesByValue(ch, database, { ...base, dim: "cache_tier" }, plan_),
            breakdown(ch, database, { ...base, dim: "colo_tier" }, plan_, 100_000),
            originLatencyByColo({ ch, database, from: new Date(from), to: new Date(to), ...(all ? {} : { linkIds: ids }) }),
          ]);
      const series: TierRow[] = byTier.map((r) => ({ k: r.b, cache_tier: r.value, clicks: r.clicks }));
      const totals: TierRow[] = byTier.map((r) => ({ k: "", cache_tier: r.value, clicks: r.clicks }));
      const byColo: TierRow[] = colos.map((r) => {
        const cut = r.value.lastIndexOf("/");
        return { k: r.value.slice(0, cut), cache_tier: r.value.slice(cut + 1), clicks: r.clicks };
      });
      const [t] = fold(totals);
      return c.json(
        {
          from: new Date(from).toISOString(),
          to: new Date(to).toISOString(),
          interval: q.interval,
          source,
          scope: all ? ("all" as const) : ("workspace" as const),
          totals: { isolate: t?.isolate ?? 0, kv: t?.kv ?? 0, origin: t?.origin ?? 0, total: t?.total ?? 0, hit_ratio: t?.hit_ratio ?? null },
          series: fold(series).map(({ k, ...r }) => ({ t: new Date(Number(k) * 1000).toISOString(), ...r })),
          by_colo: fold(byColo).map(({ k, ...r }) => ({ colo: k, ...r })).sort((x, y) => y.total - x.total),
          origin_resolve_latency_ms: latency,
          notes: [
            "hit_ratio = (isolate + kv) / total: the share of redirects answered without asking the origin.",
            "Counts are redirects, bots included (the stats pages leave bots out by default).",
            "origin_resolve_latency_ms: how long the worker waited for ingest's /v1/resolve on a cache miss (origin-tier clicks only; clicks from workers older than event version 2 are not samples).",
          ],
        },
        200,
      );
    },
  );
  return app;
}
