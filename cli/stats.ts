import { InvalidArgumentError } from "commander";
import type { Assert, Exactly, Stats, StatsQuery } from "./api.ts";
import { table } from "./format.ts";

export type Dimension = NonNullable<StatsQuery["group_by"]>;
/** What /api/stats can group by: the spec's group_by enum (a type), kept here as a runtime list for --by. */
export const DIMENSIONS = ["country", "region", "city", "device", "browser", "os", "referer_host", "utm_source", "utm_medium", "utm_campaign", "qr", "cache_tier", "colo", "link"] as const satisfies readonly Dimension[];
// A dimension added to or removed from the spec fails tsc here until the list follows.
export type DimensionsMatchSpec = Assert<Exactly<Dimension, typeof DIMENSIONS>>;
const ALIASES: Record<string, Dimension> = { referrer: "referer_host", referer: "referer_host" };
const isDimension = (v: string): v is Dimension => (DIMENSIONS as readonly string[]).includes(v);

const UNIT_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };
const HOUR = UNIT_MS.h!;

/** "24h", "7d", "90m", "2w" → milliseconds (commander option parser). */
export function parsePeriod(v: string): number {
  const m = /^(\d{1,5})([mhdw])$/.exec(v);
  if (!m || Number(m[1]) === 0) throw new InvalidArgumentError("a span like 60m, 24h, 7d or 4w");
  return Number(m[1]) * UNIT_MS[m[2]!]!;
}

export function parseDimension(v: string): Dimension {
  const d = ALIASES[v] ?? v;
  if (!isDimension(d)) throw new InvalidArgumentError(`one of ${DIMENSIONS.join(", ")} (or referrer)`);
  return d;
}

export interface StatsOptions {
  period: number;
  from?: string;
  to?: string;
  interval?: StatsQuery["interval"];
  tz?: string;
  by?: Dimension;
  limit?: number;
  bots?: StatsQuery["bots"];
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
