import { InvalidArgumentError } from "commander";
import type { Stats, StatsQuery } from "./api.ts";
import { table } from "./format.ts";

/** What /api/stats can group by (ingest/src/stats.ts DIMENSIONS); the server validates too. */
export const DIMENSIONS = ["country", "region", "city", "device", "browser", "os", "referer_host", "utm_source", "utm_medium", "utm_campaign", "qr", "cache_tier", "colo"];
const ALIASES: Record<string, string> = { referrer: "referer_host", referer: "referer_host" };

const UNIT_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };
const HOUR = UNIT_MS.h!;

/** "24h", "7d", "90m", "2w" → milliseconds (commander option parser). */
export function parsePeriod(v: string): number {
  const m = /^(\d{1,5})([mhdw])$/.exec(v);
  if (!m || Number(m[1]) === 0) throw new InvalidArgumentError("a span like 60m, 24h, 7d or 4w");
  return Number(m[1]) * UNIT_MS[m[2]!]!;
}

export function parseDimension(v: string): string {
  const d = ALIASES[v] ?? v;
  if (!DIMENSIONS.includes(d)) throw new InvalidArgumentError(`one of ${DIMENSIONS.join(", ")} (or referrer)`);
  return d;
}

export interface StatsOptions {
  period: number;
  from?: string;
  to?: string;
  interval?: string;
  tz?: string;
  by?: string;
  limit?: number;
  bots?: string;
  tag?: string;
  domain?: string;
}

/**
 * The query for `--period`: up to the next full hour (as the server's default, so hour and day
 * buckets line up with its views), buckets sized to the span unless `--interval` says.
 */
export function statsQuery(link: number | undefined, o: StatsOptions): StatsQuery {
  const to = o.to ? Date.parse(o.to) : Math.ceil(Date.now() / HOUR) * HOUR;
  const from = o.from ? Date.parse(o.from) : to - o.period;
  const span = to - from;
  const interval = o.interval ?? (span <= 6 * HOUR ? "minute" : span <= 3 * 24 * HOUR ? "hour" : "day");
  return {
    link,
    domain: o.domain,
    tag: o.tag,
    from: o.from ?? new Date(from).toISOString(),
    to: o.to ?? new Date(to).toISOString(),
    interval,
    tz: o.tz,
    group_by: o.by,
    bots: o.bots,
    limit: o.limit,
  };
}

/** A totals line, then the breakdown (with --by) or the series (buckets with clicks). */
export function printStats(s: Stats): void {
  console.log(`${s.totals.clicks} clicks, ${s.totals.visitors} visitors  (${s.from} to ${s.to}, per ${s.interval}, ${s.tz})`);
  if (s.breakdown) table(s.breakdown, ["value", "clicks", "visitors"]);
  else table(s.series, ["t", "clicks", "visitors"]);
}
