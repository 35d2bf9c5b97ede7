import { domainError } from "../errors.ts";

/**
 * Time buckets of the analytics views (stats, SRE): the intervals, their ClickHouse bucket
 * functions, the longest and default ranges, and the zone maths that decides whether an hourly
 * or daily view lines up with a query's buckets.
 */
export const INTERVALS = { minute: 60_000, hour: 3_600_000, day: 86_400_000 } as const;
export type Interval = keyof typeof INTERVALS;
export const BUCKET_FN: Record<Interval, string> = { minute: "toStartOfMinute", hour: "toStartOfHour", day: "toStartOfDay" };
/** Longest range per interval (bounded series). */
export const MAX_RANGE: Record<Interval, number> = { minute: 7 * INTERVALS.day, hour: 400 * INTERVALS.day, day: 5 * 366 * INTERVALS.day };
export const DEFAULT_RANGE: Record<Interval, number> = { minute: INTERVALS.hour, hour: 2 * INTERVALS.day, day: 30 * INTERVALS.day };

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
export function offsetsOver(tz: string, from: number, to: number): number[] {
  const out = new Set<number>();
  for (let t = from; t < to; t += 15 * INTERVALS.day) out.add(offsetMinutes(tz, t));
  out.add(offsetMinutes(tz, to));
  return [...out];
}

/**
 * The query's [from, to) in epoch ms: `to` defaults to the next full hour, `from` to the
 * interval's default range before it; refused (invalid_query) when empty or longer than the
 * interval allows.
 */
export function queryRange(interval: Interval, fromIso?: string, toIso?: string): { from: number; to: number } {
  const to = toIso ? Date.parse(toIso) : Math.ceil(Date.now() / INTERVALS.hour) * INTERVALS.hour;
  const from = fromIso ? Date.parse(fromIso) : to - DEFAULT_RANGE[interval];
  if (from >= to) throw domainError("invalid_query", "from must be before to", "from");
  if (to - from > MAX_RANGE[interval]) throw domainError("invalid_query", `at most ${MAX_RANGE[interval] / INTERVALS.day} days at interval=${interval}`, "from");
  return { from, to };
}

/** Which view answers: a rollup when its buckets line up with the query's, else the raw table. */
export function pickSource(interval: Interval, tz: string, from: number, to: number): "clicks" | "clicks_hourly" | "clicks_daily" {
  if (interval === "minute") return "clicks";
  const offsets = offsetsOver(tz, from, to);
  const aligned = (ms: number) => from % ms === 0 && to % ms === 0;
  if (interval === "day" && offsets.every((o) => o === 0) && aligned(INTERVALS.day)) return "clicks_daily";
  if (offsets.every((o) => o % 60 === 0) && aligned(INTERVALS.hour)) return "clicks_hourly";
  return "clicks";
}
