/**
 * The stats shapes the benches time (bench/stats.ts for one seeded size, bench/growth.ts for
 * several side by side): GET /api/stats queries as the dashboard asks them.
 */
export const DAY = 86_400_000;

export interface Shape {
  name: string;
  what: string;
  query: Record<string, string | number>;
}
/** The link page: the main figure. */
export const MAIN = "link_daily_30d";
/** The shapes with targets; the others are timed for comparison. */
export const TARGET_SHAPES = ["link_daily_30d", "link_top_referers_30d", "link_berlin_30d", "workspace_by_country_30d", "workspace_top_links_30d", "workspace_weekly_90d"];

const iso = (t: number) => new Date(t).toISOString();
/**
 * The shapes over a seed whose clicks end at `end` (the start of the day it was seeded). Their
 * ranges end at the next full hour, as the dashboard's do, so the open hour is read raw: build
 * them when they are asked, not once at start (a range that ended at the hour the bench began
 * would end in the past by the time it is timed, and leave the open hour out).
 */
export const statsShapes = (end: number): Shape[] => {
  const upTo = iso(Math.ceil(Date.now() / 3_600_000) * 3_600_000);
  return [
    // The main query: a link's page in the dashboard (the busiest link: ~4.6% of all clicks).
    { name: "link_daily_30d", what: "one link, 30 days per day (UTC)", query: { link: 1, interval: "day", from: iso(end - 30 * DAY), to: upTo } },
    { name: "link_top_referers_30d", what: "one link, 30 days per day, top 10 referer hosts", query: { link: 1, interval: "day", group_by: "referer_host", limit: 10, from: iso(end - 30 * DAY), to: upTo } },
    { name: "link_berlin_30d", what: "one link, 30 days per day in Europe/Berlin (hourly rollups)", query: { link: 1, interval: "day", tz: "Europe/Berlin", from: iso(end - 30 * DAY), to: upTo } },
    { name: "workspace_by_country_30d", what: "all 10k links, per day, group_by country", query: { interval: "day", group_by: "country", from: iso(end - 30 * DAY), to: upTo } },
    { name: "workspace_top_links_30d", what: "all 10k links, per day, top 10 links", query: { interval: "day", group_by: "link", limit: 10, from: iso(end - 30 * DAY), to: upTo } },
    { name: "workspace_weekly_90d", what: "all 10k links, 90 days per week", query: { interval: "week", from: iso(end - 90 * DAY), to: upTo } },
    // Not a target shape: a +05:30 zone cannot use hourly buckets, so the raw table answers (cost grows with clicks).
    { name: "workspace_kolkata_30d", what: "all 10k links, 30 days per day in Asia/Kolkata (+05:30: the split hours by quarter hour), group_by country", query: { interval: "day", tz: "Asia/Kolkata", group_by: "country", from: iso(end - 30 * DAY), to: upTo } },
    { name: "link_raw_kolkata_30d", what: "one link, 30 days per day in Asia/Kolkata (+05:30: raw table), by device", query: { link: 1, interval: "day", tz: "Asia/Kolkata", group_by: "device", from: iso(end - 30 * DAY), to: upTo } },
  ];
};

/** GET /api/stats with a shape's query. */
export const statsUrl = (base: string, q: Record<string, string | number>) => `${base}/api/stats?${new URLSearchParams(Object.entries(q).map(([k, v]) => [k, String(v)]))}`;

/** The q-quantile of sorted latencies (nearest rank), as both benches report p50/p95/p99. */
export const quantile = (sorted: number[], q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]! : NaN);
