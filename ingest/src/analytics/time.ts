import { LRUCache } from "lru-cache";
import { domainError } from "../errors.ts";

/**
 * Time buckets of the analytics views (stats, SRE): the intervals, their ClickHouse bucket
 * functions, the longest and default ranges, and the zone maths that decides whether an hourly
 * or daily view lines up with a query's buckets.
 */
/** Nominal bucket lengths (weeks start on Monday, months vary: only for ranges and defaults). */
export const INTERVALS = { minute: 60_000, hour: 3_600_000, day: 86_400_000, week: 7 * 86_400_000, month: 30 * 86_400_000 } as const;
export type Interval = keyof typeof INTERVALS;
export const INTERVAL_KEYS = Object.keys(INTERVALS) as [Interval, ...Interval[]];
const DAY = INTERVALS.day;
/** Longest range per interval (bounded series; 3 years and a bit is the retention). */
export const MAX_RANGE: Record<Interval, number> = { minute: 7 * DAY, hour: 400 * DAY, day: 5 * 366 * DAY, week: 5 * 366 * DAY, month: 5 * 366 * DAY };
export const DEFAULT_RANGE: Record<Interval, number> = { minute: INTERVALS.hour, hour: 2 * DAY, day: 30 * DAY, week: 12 * 7 * DAY, month: 365 * DAY };

/** The ClickHouse expression of `col`'s bucket start in {tz:String}, as a DateTime (week: from Monday). */
export function bucketExpr(interval: Interval, col: string): string {
  switch (interval) {
    case "minute":
      return `toStartOfMinute(${col}, {tz:String})`;
    case "hour":
      return `toStartOfHour(${col}, {tz:String})`;
    case "day":
      return `toStartOfDay(${col}, {tz:String})`;
    case "week":
      return `toDateTime(toMonday(${col}, {tz:String}), {tz:String})`;
    case "month":
      return `toDateTime(toStartOfMonth(${col}, {tz:String}), {tz:String})`;
  }
}

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

// One formatter per zone: making one costs ~50 µs, using it ~2 µs, and a 3-year range samples
// the offset 74 times (GET /api/pipeline's count: 4 ms of formatters). Bounded: any spelling of
// a zone's name is valid (Intl ignores case), so the keys are not a closed set.
const formatters = new LRUCache<string, Intl.DateTimeFormat>({ max: 256 });
const formatterOf = (tz: string) => {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", { timeZone: tz, hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric", hour: "numeric", minute: "numeric", second: "numeric" });
    formatters.set(tz, f);
  }
  return f;
};

/** Minutes east of UTC of `tz` at `t`. */
function offsetMinutes(tz: string, t: number): number {
  const parts = formatterOf(tz).formatToParts(new Date(t));
  const n = (type: string) => Number(parts.find((p) => p.type === type)!.value);
  return Math.round((Date.UTC(n("year"), n("month") - 1, n("day"), n("hour"), n("minute"), n("second")) - Math.floor(t / 1000) * 1000) / 60_000);
}
/** The zone's offsets over [from, to] (sampled at both ends and every 15 days between). */
export function offsetsOver(tz: string, from: number, to: number): number[] {
  if (tz === "UTC") return [0]; // the API's default, asked most
  const out = new Set<number>();
  for (let t = from; t < to; t += 15 * INTERVALS.day) out.add(offsetMinutes(tz, t));
  out.add(offsetMinutes(tz, to));
  return [...out];
}

/** Midnight starting the plain date `d` (YYYY-MM-DD) in `tz`, in epoch ms. */
export function localMidnight(d: string, tz: string): number {
  const guess = Date.parse(`${d}T00:00:00Z`);
  // The offset at the guess, then again at the corrected instant (a DST change near midnight).
  let t = guess - offsetMinutes(tz, guess) * 60_000;
  t = guess - offsetMinutes(tz, t) * 60_000;
  return t;
}
const PLAIN_DATE = /^\d{4}-\d{2}-\d{2}$/;

/**
 * The query's [from, to) in epoch ms: `to` defaults to the next full hour, `from` to the
 * interval's default range before it; refused (invalid_query) when empty or longer than the
 * interval allows. A plain date is that day's start in `tz`; as `to` it is inclusive (the
 * range ends when that day does), as a person reading "from 2026-11-01 to 2026-11-30" means.
 */
export function queryRange(interval: Interval, fromIso?: string, toIso?: string, tz = "UTC"): { from: number; to: number } {
  const at = (s: string, end: boolean) => (PLAIN_DATE.test(s) ? localMidnight(end ? nextDay(s) : s, tz) : Date.parse(s));
  const to = toIso ? at(toIso, true) : Math.ceil(Date.now() / INTERVALS.hour) * INTERVALS.hour;
  const from = fromIso ? at(fromIso, false) : to - DEFAULT_RANGE[interval];
  if (from >= to) throw domainError("invalid_query", "from must be before to", "from");
  if (to - from > MAX_RANGE[interval]) throw domainError("invalid_query", `at most ${MAX_RANGE[interval] / INTERVALS.day} days at interval=${interval}`, "from");
  return { from, to };
}

const nextDay = (d: string) => new Date(Date.parse(`${d}T00:00:00Z`) + DAY).toISOString().slice(0, 10);

/** Most hours a plan reads raw because a bucket boundary splits them (see rollupGrain). */
export const MAX_SPLIT_HOURS = 400;

/** The plain date (YYYY-MM-DD) in `tz` at `t`. */
function localDate(t: number, tz: string): string {
  const parts = formatterOf(tz).formatToParts(new Date(t));
  const n = (type: string) => parts.find((p) => p.type === type)!.value.padStart(2, "0");
  return `${n("year")}-${n("month")}-${n("day")}`;
}

/**
 * The UTC hours in [from, to) that a boundary of `interval`'s buckets in `tz` falls inside
 * (local midnights; of Mondays for weeks, of the 1st for months), in epoch ms; null past `max`.
 */
export function splitHours(interval: "day" | "week" | "month", tz: string, from: number, to: number, max = MAX_SPLIT_HOURS): number[] | null {
  const out: number[] = [];
  for (let d = localDate(from, tz); ; d = nextDay(d)) {
    const at = localMidnight(d, tz);
    if (at >= to) return out;
    const starts = interval === "day" || (interval === "week" ? new Date(`${d}T00:00:00Z`).getUTCDay() === 1 : d.endsWith("-01"));
    if (!starts || at <= from || at % INTERVALS.hour === 0) continue;
    if (out.length === max) return null;
    out.push(at - (at % INTERVALS.hour));
  }
}

/**
 * The UTC hours of the day that a local midnight of some zone splits, in the zones a fraction of
 * an hour off UTC (tzdata 2025): St John's (02:30, 03:30), the Marquesas (09:30), Chatham (10:15,
 * 11:15), Adelaide, Broken Hill, Darwin and Lord Howe (13:30, 14:30), Eucla (15:15), Yangon and
 * Cocos (17:30), India, Sri Lanka and Nepal (18:30, 18:15), Kabul (19:30), Tehran (20:30). The
 * sealer rolls these hours up by quarter hour as well (rollup_quarter, workspace and all-workspace
 * levels), so a day's, week's or month's boundary there falls between rows; a zone added to the
 * list later needs its hours sealed again (markAllHours with the new hours). time.test.ts checks
 * it against the runtime's zones.
 */
export const QUARTER_HOURS: readonly number[] = [2, 3, 9, 10, 11, 13, 14, 15, 17, 18, 19, 20];
const quarterHours = new Set(QUARTER_HOURS);
/** Whether rollup_quarter holds the UTC hour starting at `h` (epoch ms). */
export const hasQuarters = (h: number) => quarterHours.has(new Date(h).getUTCHours());
/** Whether every boundary of `tz`'s buckets over [from, to] lies on a quarter hour (tzdata: all zones today). */
export const onQuarters = (tz: string, from: number, to: number) => offsetsOver(tz, from, to).every((o) => o % 15 === 0);

/**
 * Which rollups can answer buckets of `interval` in `tz`: hourly rows when every bucket is a
 * union of whole UTC hours (the zone's offsets are whole hours), daily rows when every bucket is
 * a union of whole UTC days (the zone is UTC over the range); minute buckets never. In a zone a
 * fraction of an hour off UTC (Kolkata +05:30, Kathmandu +05:45) the hours a day's, week's or
 * month's boundary splits (`split`: one a bucket) may be read raw and the other hours from the
 * hourly rows: a workspace's 30 days then cost 30 raw hours, not 720 (plan() keeps a few links'
 * ranges raw); hour buckets there are all split, so raw.
 */
export function rollupGrain(interval: Interval, tz: string, from: number, to: number): { hourly: boolean; daily: boolean; split: number[] } {
  if (interval === "minute") return { hourly: false, daily: false, split: [] };
  const offsets = offsetsOver(tz, from, to);
  if (offsets.every((o) => o % 60 === 0)) return { hourly: true, daily: interval !== "hour" && offsets.every((o) => o === 0), split: [] };
  const split = interval === "hour" ? null : splitHours(interval, tz, from, to);
  return split ? { hourly: true, daily: false, split } : { hourly: false, daily: false, split: [] };
}
