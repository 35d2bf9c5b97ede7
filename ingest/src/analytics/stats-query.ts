import { chTime, rows, type ClickHouseClient } from "./clickhouse.ts";
import type { Sql } from "../db/connect.ts";
import { domainError } from "../errors.ts";
import { BUCKET_FN, pickSource, queryRange, type Interval } from "./time.ts";

/**
 * Stats queries: ClickHouse, the hourly/daily views when the query allows, the raw table
 * otherwise. Every count is uniqExact(click_id) (or the merge of its states), so duplicate
 * deliveries never count twice. Workspace isolation: the caller's link ids come from PostgreSQL
 * and ClickHouse is only ever asked about those (link_id IN {ids}).
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
export const DIMENSION_KEYS = Object.keys(DIMENSIONS) as [Dimension, ...Dimension[]];

/** A stats question, as the API validated it (http/routes/stats.ts). */
export type StatsParams = {
  link?: number;
  domain?: string;
  tag?: string;
  from?: string;
  to?: string;
  interval: Interval;
  tz: string;
  group_by?: Dimension;
  bots: "exclude" | "include" | "only";
  limit: number;
} & Partial<Record<Dimension, string>>;

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
  if (q.link && !ids.length) throw domainError("not_found", "no such link in this workspace");
  return ids.map((r) => Number(r.id));
}

export type Source = "clicks" | "clicks_hourly" | "clicks_daily" | "clicks_hourly_totals" | "clicks_daily_totals";

interface Bucket {
  t: string;
  clicks: number;
  visitors: number;
}

export async function queryStats(d: StatsDeps, workspaceId: number, q: StatsParams) {
  if (!d.ch) throw domainError("unavailable", "this process has no ClickHouse connection");
  const { from, to } = queryRange(q.interval, q.from, q.to);
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
