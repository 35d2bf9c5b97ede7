import { chSeconds, chTime, RECENT_READ_MS, rows, sketchMerge, sketchState, type ClickHouseClient } from "./clickhouse.ts";
import type { Sql } from "../db/connect.ts";
import { domainError } from "../errors.ts";
import { DENSE_LINK_DAY, dirtyHours, floorHour, QUARTER_DIMS, ROLLUP_DIMENSIONS, weekOf, type RollupDimension } from "./rollup.ts";
import { bucketExpr, hasQuarters, onQuarters, queryRange, rollupGrain, type Interval } from "./time.ts";

/**
 * Stats queries (docs/ANALYTICS.md). A range is answered in up to five disjoint parts:
 * weekly rollup rows for whole UTC weeks (a workspace's, or all workspaces'), daily rollup rows
 * for other whole UTC days, hourly rollup rows for other closed hours, quarter-hour rows for the
 * hours a half-hour zone's bucket boundaries split (a workspace's), and the raw table for the
 * rest (the open hour, hours whose rollup is stale, minute buckets, odd zones, filters a rollup
 * cannot answer). Rollup rows hold each group's distinct clicks, so sums over
 * them are exact; the raw part counts uniqExact(click_id). Visitors are uniqCombined64(12)
 * sketches, merged across the parts (approximate, ~1.6 %; exact up to 127).
 * Workspace isolation: a workspace's rows are its own (rolled up by its links' ids from
 * PostgreSQL), and the raw part only ever asks about the caller's link ids.
 * SQL safety: every value is a query parameter; the only identifiers or expressions put into SQL
 * come from the fixed maps, chosen by validated enum keys.
 */

/** group_by / filter name → the raw table's column. */
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
/** What a breakdown can be by: a dimension, or the links themselves (top links). */
export type GroupBy = Dimension | "link";
export const GROUP_BY_KEYS = [...DIMENSION_KEYS, "link"] as [GroupBy, ...GroupBy[]];

/** A stats question, as the API validated it (http/routes/stats.ts). */
export type StatsParams = {
  link?: number;
  domain?: string;
  tag?: string;
  from?: string;
  to?: string;
  interval: Interval;
  tz: string;
  group_by?: GroupBy;
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

/** The caller's link ids matching link/domain/tag; not_found when `link` is not theirs. */
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

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** Whose clicks: some links, a whole workspace, or every workspace (the operator's SRE view). */
export type Scope = { level: "link"; ids: number[] } | { level: "workspace"; id: number } | { level: "all" };

/** One question about a scope and range, in the terms of the rollups. */
export interface Question {
  scope: Scope;
  from: number;
  to: number;
  interval: Interval;
  tz: string;
  bots: "exclude" | "include" | "only";
  /** The rollup dimension whose rows answer ('' = totals). */
  dim: RollupDimension | "link" | "";
  /** Values of `dim` to keep (a filter on the same dimension). */
  values?: string[];
  /** Filters the rollups cannot answer: the whole range is read raw. */
  rawFilters?: Partial<Record<Dimension, string[]>>;
}

/** The parts of a range: UTC days and hours answered by the rollups, the rest raw. */
export interface Plan {
  /** Weeks read from rollup_weekly (Mondays, UTC: seven such days each; workspace and all-workspace questions only). */
  weeks: number[];
  /** Days read from rollup_daily (whole, closed, unmarked UTC days, when buckets are unions of UTC days). */
  days: number[];
  /** Whole, closed, unmarked UTC days in the range, whatever the buckets (a breakdown has none). */
  wholeDays: number[];
  /** Hourly rows: [lo, hi) minus `stale`, `split`, `quarters` and `days`. */
  lo: number;
  hi: number;
  /** Marked hours (rolled up again soon): read raw. */
  stale: number[];
  /** Hours a bucket boundary falls inside (a zone a fraction of an hour off UTC: rollupGrain) that rollup_quarter does not answer: read raw. */
  split: number[];
  /** Such hours read from rollup_quarter instead (a workspace's or all workspaces', unmarked, QUARTER_HOURS). */
  quarters: number[];
  /** Raw besides the stale and split hours: the range's edges outside [lo, hi), or all of it. */
  raw: boolean;
  /** The hourly rows are left out: PostgreSQL holds no click of the links in their hours (skipQuiet). */
  quietHours?: boolean;
  /** Per-link dimension questions: the (link, UTC day) rows to read from rollup_daily, as 'id/YYYY-MM-DD'; the rest is raw. */
  dense?: string[];
  source: string;
}

export async function plan(sql: Sql, q: Pick<Question, "from" | "to" | "interval" | "tz" | "rawFilters"> & { scope?: Pick<Scope, "level"> }, now = Date.now()): Promise<Plan> {
  const grain = rollupGrain(q.interval, q.tz, q.from, q.to);
  const lo = Math.ceil(q.from / HOUR) * HOUR;
  const hi = Math.min(floorHour(q.to), floorHour(now));
  const none = { weeks: [], days: [], wholeDays: [], lo: 0, hi: 0, stale: [], split: [], quarters: [], raw: true, source: "clicks" };
  if (hi <= lo || (q.rawFilters && Object.keys(q.rawFilters).length)) return none;
  const stale = await dirtyHours(sql, lo, hi);
  const staleDays = new Set(stale.map((h) => Math.floor(h / DAY) * DAY));
  const wholeDays: number[] = [];
  for (let d = Math.ceil(lo / DAY) * DAY; d + DAY <= hi; d += DAY) if (!staleDays.has(d)) wholeDays.push(d);
  // Split hours for many links only: a few links' rows are adjacent in `clicks` (by link, then
  // time) and their raw range costs what their clicks do; at 8,192 rows a granule, a busy link's
  // split hours lie in nearly every granule of it, so reading them alone saves nothing (link 1
  // at 10M, 30 days in Kolkata: raw 62 ms, split 83), where a workspace's raw range is every
  // link's clicks (by country: 698 → 297 ms).
  if (!grain.hourly || (grain.split.length && q.scope?.level === "link")) return { ...none, wholeDays };
  // A workspace's split hours from its quarter-hour rows where the sealer wrote them (QUARTER_HOURS)
  // and the zone's boundaries lie on quarter hours; a marked hour stays raw.
  const inRange = grain.split.filter((h) => h >= lo && h < hi);
  const sliced = inRange.length && onQuarters(q.tz, q.from, q.to) ? new Set(inRange.filter((h) => hasQuarters(h) && !stale.includes(h))) : new Set<number>();
  const [split, quarters] = [inRange.filter((h) => !sliced.has(h)), [...sliced]];
  const p = { weeks: [], days: grain.daily ? wholeDays : [], wholeDays, lo, hi, stale, split, quarters, raw: q.from < lo || q.to > hi || stale.length > 0 };
  return { ...p, source: sourceOf(p) };
}

/**
 * The plan for a question on `dim`'s rows: rollup_quarter holds the split hours of a few
 * dimensions only (QUARTER_DIMS); for any other they are read raw.
 */
export function quartersFor(p: Plan, dim: Question["dim"]): Plan {
  if (!p.quarters.length || QUARTER_DIMS.includes(dim)) return p;
  const next = { ...p, split: [...p.split, ...p.quarters].sort((a, b) => a - b), quarters: [] };
  return { ...next, source: sourceOf(next) };
}

/** The seven days of each week (Mondays, UTC). */
const daysOf = (weeks: number[]) => weeks.flatMap((w) => [0, 1, 2, 3, 4, 5, 6].map((i) => w + i * DAY));

/** Whether a plan reads the raw table. */
const readsRaw = (p: Pick<Plan, "raw" | "split">) => p.raw || p.split.length > 0;

/** The tables a plan reads, joined by '+'; none when it reads nothing. */
function sourceOf(p: Omit<Plan, "source">): string {
  const hoursLeft = hourlyRanges(p).length > 0;
  const daily = p.days.length > 0 || (p.dense?.length ?? 0) > 0;
  return [p.weeks.length ? "rollup_weekly" : "", daily ? "rollup_daily" : "", hoursLeft ? "rollup_hourly" : "", p.quarters.length ? "rollup_quarter" : "", readsRaw(p) ? "clicks" : ""].filter(Boolean).join("+") || "none";
}

/**
 * A workspace's (or every workspace's) plan with whole weeks read from rollup_weekly: seven
 * daily rows a group become one. `buckets`: the series' interval, whose buckets must each hold
 * whole weeks (week, or month when the week lies in one month; the days are UTC days only when
 * the zone is UTC+0 over the range); null for a breakdown, which has no buckets and may take any
 * whole closed day (rollup_daily) and week.
 */
export function withWeeks(p: Plan, buckets: Interval | null): Plan {
  if (p.hi <= p.lo || (buckets !== null && buckets !== "week" && buckets !== "month")) return p;
  const days = buckets === null ? p.wholeDays : p.days;
  const have = new Set(days);
  const sameMonth = (a: number, b: number) => new Date(a).getUTCMonth() === new Date(b).getUTCMonth();
  const weeks = days.filter((d) => weekOf(d) === d && daysOf([d]).every((x) => have.has(x)) && (buckets !== "month" || sameMonth(d, d + 6 * DAY)));
  const inWeeks = new Set(daysOf(weeks));
  // A breakdown has no buckets to keep apart: no hour is split, and whole days cover theirs.
  const next = { ...p, weeks, days: days.filter((d) => !inWeeks.has(d)), ...(buckets === null ? { split: [], quarters: [] } : {}) };
  return { ...next, source: sourceOf(next) };
}

/**
 * A link's dimensions are rolled up per UTC day, and only on days with DENSE_LINK_DAY clicks
 * or more (rollup.ts): the plan of a per-link dimension question reads those (link, day) rows
 * and the raw table for everything else. `bucketed`: the answer has time buckets, so the days
 * must be the buckets' (UTC, day or longer); a breakdown has none and may use any whole day.
 */
export async function denseLinkPlan(ch: ClickHouseClient, db: string, ids: number[], p: Plan, bucketed: boolean, range: { from: number; to: number }): Promise<Plan> {
  const days = bucketed ? p.days : p.wholeDays;
  const dense = days.length
    ? await rows<{ id: number; t: string }>(
        ch,
        `SELECT id, toString(toDate(t)) AS t FROM (SELECT id, t, is_bot, max(clicks) AS c FROM ${db}.rollup_daily
           WHERE level = 'link' AND id IN {ids:Array(UInt64)} AND dim = '' AND t IN {days:Array(DateTime)} GROUP BY id, t, is_bot)
         GROUP BY id, t HAVING sum(c) >= ${DENSE_LINK_DAY}`,
        { ids, days: days.map(chSeconds) },
      )
    : [];
  // Raw is needed unless every link's every day of the range is dense.
  const covered = dense.length === ids.length * days.length && days.length * DAY === range.to - range.from && days[0] === range.from;
  const next = { ...p, weeks: [], days: [], lo: 0, hi: 0, stale: [], split: [], quarters: [], raw: !covered, dense: dense.map((r) => `${r.id}/${r.t}`) };
  return { ...next, source: sourceOf(next) };
}

/**
 * What a union yields: `clicks` (t, val, c: distinct clicks), `visitors` (t, val, v: a visitor
 * sketch) or `both`. A group's rollup row may have several versions until a merge (an hour
 * recomputed): clicks must take the latest (FINAL: versions merged in key order, by max), while
 * sketches may be merged as they are (each version is a set of the group's visitors; their union
 * is the answer). FINAL's merge of sketch columns costs several times the reading: a question
 * of sketches alone (a breakdown's visitors) reads without it.
 */
type Yield = "clicks" | "visitors" | "both";

/**
 * The union of the plan's parts as rows (t: bucket or hour start, val, then c and/or v as
 * `what` asks), for the caller to group. Parameters go into `params`.
 */
function unionQuery(db: string, q: Question, plan: Plan, params: Record<string, unknown>, what: Yield): string {
  const p = quartersFor(plan, q.dim);
  const botCond = (col: string) => (q.bots === "exclude" ? ` AND NOT ${col}` : q.bots === "only" ? ` AND ${col}` : "");
  const parts: string[] = [];
  const clicks = what !== "visitors";
  const visitors = what !== "clicks";
  const final = clicks ? " FINAL" : "";
  const byLink = q.dim === "link" && q.scope.level === "link";
  params.level = q.scope.level;
  params.rids = q.scope.level === "link" ? q.scope.ids : q.scope.level === "workspace" ? [q.scope.id] : [0];
  params.dim = byLink ? "" : q.dim;
  const val = byLink ? "toString(id)" : "value";
  const valueCond = q.values ? ` AND ${val} IN {values:Array(String)}` : "";
  if (q.values) params.values = q.values;
  const cv = (count: string, state: string) => [clicks ? `, ${count} AS c` : "", visitors ? `, ${state} AS v` : ""].join("");
  const rollup = (table: string, timeCond: string) =>
    `SELECT toDateTime(t, 'UTC') AS t, ${val} AS val${cv("clicks", "visitors")}
     FROM ${db}.${table}${final} WHERE level = {level:String} AND id IN {rids:Array(UInt64)} AND dim = {dim:String}${botCond("is_bot")}${valueCond} AND ${timeCond}`;
  if (p.dense?.length) {
    params.dense = p.dense;
    parts.push(rollup("rollup_daily", "concat(toString(id), '/', toString(toDate(t))) IN {dense:Array(String)}"));
  }
  // Weekly rows are a workspace's and all workspaces' only: a link's weeks are read as their days.
  const weekDays = q.scope.level === "link" ? daysOf(p.weeks) : [];
  if (p.weeks.length && !weekDays.length) {
    params.weeks = p.weeks.map(chSeconds);
    parts.push(rollup("rollup_weekly", "t IN {weeks:Array(DateTime)}"));
  }
  if (p.days.length || weekDays.length) {
    params.days = [...p.days, ...weekDays].map(chSeconds);
    parts.push(rollup("rollup_daily", "t IN {days:Array(DateTime)}"));
  }
  // Hourly rows: [lo, hi) minus the daily days and the stale and split hours (timeCondition).
  const hourly = hourlyRanges(p);
  if (hourly.length) {
    parts.push(rollup("rollup_hourly", timeCondition(hourly, params, "h", { col: "t", hour: "t", type: "DateTime", value: chSeconds, few: 4 })));
  }
  // Split hours by quarter hour: each quarter lies in one bucket, which the caller's bucketExpr of t finds.
  if (p.quarters.length) {
    parts.push(rollup("rollup_quarter", timeCondition(hoursAt(p.quarters), params, "q", { col: "t", hour: "toStartOfHour(t)", type: "DateTime", value: chSeconds, few: 4 })));
  }
  if (readsRaw(p)) {
    // The raw part's time as explicit ranges ([from, to) minus what the rollups answer): the
    // sorting key (link_id, ts) then reads only those (past eight, their span: timeCondition),
    // where "in the range but not a rolled-up hour" would read the whole range and filter.
    const ranges = rawRanges(q.from, q.to, p, q.scope.level === "link" ? q.scope.ids.length : 1);
    const where: string[] = [];
    if (q.scope.level === "link") {
      params.ids = q.scope.ids;
      where.push("link_id IN {ids:Array(UInt64)}");
    } else if (q.scope.level === "workspace") params.ws = q.scope.id;
    const owned = `(SELECT link_id FROM ${db}.link_workspaces WHERE workspace_id = {ws:UInt64})`;
    // Several links, some dense on a day and some not: the rows of the dense ones' days are theirs.
    if (p.dense?.length && q.scope.level === "link" && q.scope.ids.length > 1) where.push(`concat(toString(link_id), '/', toString(toDate(ts))) NOT IN {dense:Array(String)}`);
    const rawVal = q.dim === "link" ? "toString(link_id)" : q.dim ? ROLLUP_DIMENSIONS[q.dim] : "''";
    if (q.values) where.push(`${rawVal} IN {values:Array(String)}`);
    for (const [dim, vs] of Object.entries(q.rawFilters ?? {})) {
      params[`f_${dim}`] = vs;
      where.push(`${ROLLUP_DIMENSIONS[dim as Dimension]} IN {f_${dim}:Array(String)}`);
    }
    // A link's rows are adjacent in `clicks` (sorted by link, then time). Many links' recent
    // hours are not: those are read from `clicks_recent` (sorted by hour), older ones from `clicks`.
    const recentFrom = q.scope.level === "link" ? Infinity : floorHour(Date.now()) - RECENT_READ_MS;
    const split = { recent: [] as [number, number][], old: [] as [number, number][] };
    for (const [a, b] of ranges) {
      if (a >= recentFrom) split.recent.push([a, b]);
      else if (b <= recentFrom) split.old.push([a, b]);
      else split.old.push([a, recentFrom]), split.recent.push([recentFrom, b]);
    }
    let n = 0;
    for (const [table, rs] of [["clicks", split.old], ["clicks_recent", split.recent]] as const) {
      if (!rs.length) continue;
      // A workspace's links: in `clicks` (sorted by link) a set the key prunes by; in
      // `clicks_recent` (sorted by hour) a semi join, since building the set for the key costs
      // more than the few recent rows it would skip (10k links: 18 → 9 ms for an empty hour).
      const from = q.scope.level !== "workspace" ? `${db}.${table}` : table === "clicks" ? `${db}.clicks` : `${db}.clicks_recent SEMI LEFT JOIN ${owned} AS o USING (link_id)`;
      const cond = q.scope.level === "workspace" && table === "clicks" ? [`link_id IN ${owned}`] : [];
      const time = timeCondition(rs, params, `r${n++}_`, { col: "ts", hour: "toStartOfHour(ts)", type: "DateTime64(3, 'UTC')", value: (t) => chTime(new Date(t)), few: 8 });
      parts.push(
        `SELECT toDateTime(${bucketExpr(q.interval, "ts")}, 'UTC') AS t, ${rawVal} AS val${cv("uniqExact(click_id)", sketchState("nullIf(visitor_hash, '')"))}
         FROM ${from} WHERE ${[...cond, ...where, time].join(" AND ")}${botCond("is_bot")} GROUP BY t, val`,
      );
    }
  }
  params.tz = q.tz;
  return parts.join("\nUNION ALL\n") || emptyPart(clicks, visitors);
}

/** Most hours in a time condition's set (timeCondition). */
const MAX_HOUR_SET = 5_000;

/**
 * A condition on a time column for disjoint, sorted ranges (epoch ms), its parameters named
 * after `name` in `params`. Up to `c.few`: each range OR'd, for the sorting key to prune by.
 * More (a half-hour zone's split hours, one a day): the span they cover, and the hours they hold
 * (or those between them, whichever are fewer) as a set, as every OR'd range is evaluated on
 * every row read. chDB at 10M: a link's 30 days in Kolkata, 31 hourly ranges (FINAL) 94 ms, as a
 * set 14, its 32 raw ranges 57 ms, 23; scattered raw hours of every link, 8 of them OR'd 236 ms,
 * as a set 292, 12 to 24 about even. Only the first range may start, and the last end, inside an hour.
 */
function timeCondition(
  ranges: [number, number][],
  params: Record<string, unknown>,
  name: string,
  c: { col: string; hour: string; type: string; value: (t: number) => string; few: number },
): string {
  const hoursIn = (rs: [number, number][]) => rs.flatMap(([a, b]) => Array.from({ length: Math.ceil((b - floorHour(a)) / HOUR) }, (_, i) => floorHour(a) + i * HOUR));
  const inner = ranges.every(([a, b], i) => (i === 0 || a % HOUR === 0) && (i === ranges.length - 1 || b % HOUR === 0));
  const [lo, hi] = [ranges[0]?.[0] ?? 0, ranges.at(-1)?.[1] ?? 0];
  const held = ranges.length > c.few && inner ? hoursIn(ranges) : [];
  const between = held.length ? hoursIn(subtractRanges(lo, hi, ranges)) : [];
  const [op, set] = held.length <= between.length ? ["IN", held] : ["NOT IN", between];
  if (set.length && set.length <= MAX_HOUR_SET) {
    Object.assign(params, { [`${name}lo`]: c.value(lo), [`${name}hi`]: c.value(hi), [`${name}set`]: set.map(chSeconds) });
    return `(${c.col} >= {${name}lo:${c.type}} AND ${c.col} < {${name}hi:${c.type}} AND ${c.hour} ${op} {${name}set:Array(DateTime)})`;
  }
  return `(${ranges
    .map(([a, b], i) => {
      Object.assign(params, { [`${name}${i}a`]: c.value(a), [`${name}${i}b`]: c.value(b) });
      return `(${c.col} >= {${name}${i}a:${c.type}} AND ${c.col} < {${name}${i}b:${c.type}})`;
    })
    .join(" OR ")})`;
}

/**
 * A group's rows are all in one partition (the month of its hour or day): FINAL need not merge
 * across them. And the rollup parts' conditions are all on sorting-key columns (level, id, dim,
 * t, is_bot, value), which every version of a group shares: they may filter rows before FINAL
 * merges them (ClickHouse moves only sorting-key conditions to PREWHERE under FINAL), so the
 * other rows of the granules read (other days, values, bot flags) are not merged, sketches
 * included (a link's 30 days: 33 → 21 ms; a workspace's: 62 → 33 ms, chDB at 10M clicks).
 */
const FINAL_SETTINGS = " SETTINGS do_not_merge_across_partitions_select_final = 1, optimize_move_to_prewhere_if_final = 1";

/** A union part with no rows, of the parts' types (a plan with nothing to read). */
const emptyPart = (clicks: boolean, visitors: boolean) =>
  `SELECT toDateTime(0, 'UTC') AS t, '' AS val${clicks ? ", toUInt64(0) AS c" : ""}${visitors ? `, ${sketchState("CAST(NULL, 'Nullable(String)')")} AS v` : ""} WHERE 0`;

/**
 * [from, to) minus `holes` (ranges in epoch ms, in any order, overlapping or not), as sorted,
 * disjoint ranges with adjacent ones joined. By ranges, not hour by hour: a 3-year range is
 * 26k hours (GET /api/pipeline's count spent 4 ms walking them).
 */
export function subtractRanges(from: number, to: number, holes: [number, number][]): [number, number][] {
  const out: [number, number][] = [];
  let at = from;
  for (const [a, b] of [...holes].sort((x, y) => x[0] - y[0])) {
    if (b <= a || b <= at || a >= to) continue;
    if (a > at) out.push([at, Math.min(a, to)]);
    at = Math.max(at, b);
  }
  if (at < to) out.push([at, to]);
  return out;
}
const hoursAt = (hs: number[]) => hs.map((h) => [h, h + HOUR] as [number, number]);
const daysAt = (ds: number[]) => ds.map((d) => [d, d + DAY] as [number, number]);

/** The hourly rollups' part of a plan: [lo, hi) minus its daily days, stale, split and quarter-hour hours. */
export function hourlyRanges(p: Omit<Plan, "source">): [number, number][] {
  if (p.hi <= p.lo || p.quietHours) return [];
  return subtractRanges(p.lo, p.hi, [...hoursAt(p.stale), ...hoursAt(p.split), ...hoursAt(p.quarters), ...daysAt(p.days), ...daysAt(daysOf(p.weeks))]);
}

/**
 * [from, to) minus the plan's rollup part, as disjoint ranges in epoch ms: outside [lo, hi),
 * the stale and split hours inside it; for a per-link dimension plan over `links` links, the days not dense
 * for all of them (a day dense for some only stays, and the query leaves out the dense ones' rows).
 */
export function rawRanges(from: number, to: number, p: Plan, links = 1): [number, number][] {
  let covered: [number, number][] = [];
  if (p.dense) {
    const perDay = new Map<string, number>();
    for (const k of p.dense) {
      const day = k.slice(k.indexOf("/") + 1);
      perDay.set(day, (perDay.get(day) ?? 0) + 1);
    }
    covered = daysAt([...perDay].filter(([, n]) => n === links).map(([d]) => Date.parse(`${d}T00:00:00Z`)));
  } else if (p.hi > p.lo) covered = subtractRanges(p.lo, p.hi, [...hoursAt(p.stale), ...hoursAt(p.split)]);
  return subtractRanges(from, to, covered);
}

/** Most links a plan may be checked for in PostgreSQL (an index probe each). */
const QUIET_CHECK_LINKS = 100;

/**
 * The plan without its raw part, or its hourly part, or both, when PostgreSQL holds no click of
 * these links in that part's ranges: ClickHouse holds only clicks PostgreSQL committed first, so
 * it has none there either, and a table read (~5–7 ms in chDB, whatever it finds) is saved. Most
 * links' open hour, and most of their closed hours today, are empty (1B clicks a year over 100M
 * links). A part is left out whole, and only when all of it is recent (inside RECENT_READ_MS, far
 * inside PostgreSQL's retention, PG_RETENTION_DAYS ≥ 2) and the links are few; one probe asks for
 * both parts, of the primary, which a click reaches before ClickHouse, never of a replica, which
 * may lag behind ClickHouse.
 */
export async function skipQuiet(sql: Sql, ids: number[], q: { from: number; to: number }, p: Plan, now = Date.now()): Promise<Plan> {
  if (!ids.length || ids.length > QUIET_CHECK_LINKS) return p;
  const recentFrom = floorHour(now) - RECENT_READ_MS;
  const recent = (rs: [number, number][]) => (rs.length > 0 && rs[0]![0] >= recentFrom ? rs : []);
  const raw = recent(readsRaw(p) ? rawRanges(q.from, q.to, p, ids.length) : []);
  const hourly = recent(hourlyRanges(p));
  const ranges = [...raw, ...hourly];
  if (!ranges.length) return p;
  const [r] = await sql<{ any: boolean }[]>`
    SELECT EXISTS (
      SELECT 1 FROM unnest(${ranges.map(([a]) => new Date(a).toISOString())}::timestamptz[], ${ranges.map(([, b]) => new Date(b).toISOString())}::timestamptz[]) AS r(a, b)
      JOIN clicks c ON c.link_id = ANY(${ids}::bigint[]) AND c.ts >= r.a AND c.ts < r.b) AS any`;
  if (r?.any) return p;
  const next = { ...p, ...(raw.length ? { raw: false, split: [] } : {}), quietHours: p.quietHours || hourly.length > 0 };
  return { ...next, source: sourceOf(next) };
}

export interface Counts {
  clicks: number;
  visitors: number;
}
const num = (x: unknown) => Number(x ?? 0);

/** A series row as the queries return it: the bucket (epoch seconds), its clicks and visitors. */
type BucketRow = { b: number; clicks: number; visitors: number };
const countsOf = (x: { clicks: unknown; visitors: unknown }): Counts => ({ clicks: num(x.clicks), visitors: num(x.visitors) });
/** A breakdown's order: clicks, most first, then value. */
const byClicks = (x: { value: string; clicks: number }, y: { value: string; clicks: number }) =>
  y.clicks - x.clicks || (x.value < y.value ? -1 : x.value > y.value ? 1 : 0);
/** The series' rows (buckets with clicks, in time order) as the API gives them. */
const seriesOf = (r: BucketRow[]) =>
  r
    .filter((x) => num(x.clicks) > 0)
    .sort((x, y) => num(x.b) - num(y.b))
    .map((x) => ({ t: new Date(num(x.b) * 1000).toISOString(), ...countsOf(x) }));

/**
 * A union's placeholders under a prefix of their own (`{level:String}` → `{s_level:String}`),
 * with their values added to `params`: two unions in one statement each ask their own plan.
 */
function namespaced(prefix: string, params: Record<string, unknown>, build: (own: Record<string, unknown>) => string): string {
  const own: Record<string, unknown> = {};
  const query = build(own);
  for (const [k, v] of Object.entries(own)) params[prefix + k] = v;
  return query.replace(/\{(\w+):/g, `{${prefix}$1:`);
}

/** The series query: a row per bucket (is_total 0) and the totals row (is_total 1). */
function seriesQuery(db: string, q: Question, p: Plan, params: Record<string, unknown>): string {
  const b = `toUnixTimestamp(${bucketExpr(q.interval, "t")})`;
  return `SELECT ${b} AS b, sum(c) AS clicks, ${sketchMerge("v")} AS visitors, grouping(b) AS is_total
     FROM (${unionQuery(db, q, p, params, "both")}) GROUP BY GROUPING SETS ((b), ())`;
}

/**
 * A series (one row per bucket with clicks) and the totals of a question. One query with
 * FINAL over clicks and sketches: asking them apart (FINAL over clicks only, sketches without)
 * measured slower here, two queries costing more than merging a series' few sketches.
 */
export async function series(ch: ClickHouseClient, db: string, q: Question, p: Plan): Promise<{ totals: Counts; series: (Counts & { t: string })[] }> {
  const params: Record<string, unknown> = {};
  const r = await rows<BucketRow & { is_total: number }>(ch, `${seriesQuery(db, q, p, params)}${FINAL_SETTINGS}`, params);
  const total = r.find((x) => num(x.is_total) === 1);
  return { totals: total ? countsOf(total) : { clicks: 0, visitors: 0 }, series: seriesOf(r.filter((x) => num(x.is_total) === 0)) };
}

/** The ranking query: the top `limit` values of `q.dim` by clicks (clicks alone: no sketch read). */
function rankingQuery(db: string, q: Question, p: Plan, limit: number, params: Record<string, unknown>): string {
  params.limit = limit;
  return `SELECT val AS value, sum(c) AS clicks FROM (${unionQuery(db, q, p, params, "clicks")})
     GROUP BY value HAVING clicks > 0 ORDER BY clicks DESC, value LIMIT {limit:UInt32}`;
}

/**
 * The top `limit` values of `q.dim` by clicks: ranked on clicks alone, then the visitor
 * sketches merged for those values only (merging every value's sketches costs far more than
 * counting, with thousands of values such as a workspace's links).
 */
export async function breakdown(ch: ClickHouseClient, db: string, q: Question, p: Plan, limit: number, linksPlan?: (ids: number[]) => Promise<Plan>): Promise<(Counts & { value: string })[]> {
  const params: Record<string, unknown> = {};
  const top = await rows<{ value: string; clicks: number }>(ch, `${rankingQuery(db, q, p, limit, params)}${FINAL_SETTINGS}`, params);
  return withVisitors(ch, db, q, p, top, linksPlan);
}

/** Ranked values with their visitors, from their sketches alone (read without FINAL). */
async function withVisitors(ch: ClickHouseClient, db: string, q: Question, p: Plan, top: { value: string; clicks: number }[], linksPlan?: (ids: number[]) => Promise<Plan>): Promise<(Counts & { value: string })[]> {
  if (!top.length) return [];
  const vParams: Record<string, unknown> = {};
  const values = top.map((r) => String(r.value));
  // A workspace's top links: their visitors from their own rows (link level, adjacent per link),
  // not from the workspace's `link` rows, where a link's days lie among every other link's.
  // `linksPlan`: their plan, which may leave out their quiet recent hours (skipQuiet).
  const topLinks = q.dim === "link" && q.scope.level === "workspace";
  const vq: Question = topLinks ? { ...q, scope: { level: "link", ids: values.map(Number) }, values } : { ...q, values };
  const vp = topLinks && linksPlan ? await linksPlan(values.map(Number)) : p;
  const vis = await rows<{ value: string; visitors: number }>(
    ch,
    `SELECT val AS value, ${sketchMerge("v")} AS visitors FROM (${unionQuery(db, vq, vp, vParams, "visitors")}) GROUP BY value`,
    vParams,
  );
  const byValue = new Map(vis.map((r) => [String(r.value), num(r.visitors)]));
  return top.map((x) => ({ value: String(x.value), clicks: num(x.clicks), visitors: byValue.get(String(x.value)) ?? 0 }));
}

/**
 * A series and a breakdown's ranking in one statement, the two selects of a UNION ALL, each over
 * its own plan (a workspace's top links: the series from the totals rows by day, the ranking
 * from the `link` rows by week where it can). One statement fewer in chDB's chain, which runs
 * them one at a time: a few ms of a request's ~60 (docs/ANALYTICS.md). Then the top values'
 * visitors, as breakdown() does.
 */
export async function seriesAndRanked(
  ch: ClickHouseClient,
  db: string,
  s: { q: Question; p: Plan },
  b: { q: Question; p: Plan; limit: number; linksPlan?: (ids: number[]) => Promise<Plan> },
): Promise<{ totals: Counts; series: (Counts & { t: string })[]; breakdown: (Counts & { value: string })[] }> {
  const params: Record<string, unknown> = {};
  const sq = namespaced("s_", params, (own) => seriesQuery(db, s.q, s.p, own));
  const rq = namespaced("r_", params, (own) => rankingQuery(db, b.q, b.p, b.limit, own));
  const r = await rows<BucketRow & { part: number; value: string; is_total: number }>(
    ch,
    `SELECT 0 AS part, b, '' AS value, clicks, visitors, is_total FROM (${sq})
     UNION ALL
     SELECT 1 AS part, 0 AS b, value, clicks, 0 AS visitors, 0 AS is_total FROM (${rq})${FINAL_SETTINGS}`,
    params,
  );
  const part = (n: number) => r.filter((x) => num(x.part) === n);
  const total = part(0).find((x) => num(x.is_total) === 1);
  const top = part(1)
    .map((x) => ({ value: String(x.value), clicks: num(x.clicks) }))
    .sort(byClicks);
  return {
    totals: total ? countsOf(total) : { clicks: 0, visitors: 0 },
    series: seriesOf(part(0).filter((x) => num(x.is_total) === 0)),
    breakdown: await withVisitors(ch, db, b.q, b.p, top, b.linksPlan),
  };
}

/**
 * Dimensions of few values, and how many at most: country codes, device classes, ua-parser's
 * browser and OS names, QR or not, cache tiers, Cloudflare's colos (~330). A breakdown by one of
 * them is answered with its series in one query (seriesAndBreakdown) while the rollup rows that
 * may read, values × the plan's weeks, days, hours and dense link-days, stay under
 * SMALL_BREAKDOWN_ROWS.
 */
const SMALL_DIMENSIONS: Partial<Record<Question["dim"], number>> = { country: 256, device: 4, browser: 256, os: 128, qr: 2, cache_tier: 4, colo: 512 };
/**
 * Merging the sketches of every (bucket, value) costs ~0.8 µs a row read (chDB, 10M clicks: 8,000
 * cities × 31 days, 240 ms); series, ranking and visitors as three statements cost ~30 ms more
 * (a workspace's 30 days by country: 66 → 36 ms median). Past ~36k rows one query would be the slower.
 */
const SMALL_BREAKDOWN_ROWS = 30_000;
function answersSeriesToo(q: Question, p: Plan): boolean {
  const values = SMALL_DIMENSIONS[q.dim];
  if (!values) return false;
  const hours = hourlyRanges(p).reduce((n, [a, b]) => n + (b - a) / HOUR, 0);
  return (p.weeks.length + p.days.length + (p.dense?.length ?? 0) + hours + 4 * p.quarters.length) * Math.min(values, q.values?.length ?? values) <= SMALL_BREAKDOWN_ROWS;
}

/**
 * A series and a breakdown at once, from the breakdown dimension's rows alone: each click is in
 * exactly one value's row of its bucket, so a bucket's clicks are the sum over the values, and its
 * visitors the union of their sketches (the same registers as the totals row's). For a dimension
 * of few values (answersSeriesToo) one query costs less than seriesAndRanked() and its visitors
 * (each statement opens the tables and reads the raw part again).
 */
export async function seriesAndBreakdown(
  ch: ClickHouseClient,
  db: string,
  q: Question,
  p: Plan,
  limit: number,
): Promise<{ totals: Counts; series: (Counts & { t: string })[]; breakdown: (Counts & { value: string })[] }> {
  const params: Record<string, unknown> = {};
  const union = unionQuery(db, q, p, params, "both");
  const b = `toUnixTimestamp(${bucketExpr(q.interval, "t")})`;
  const r = await rows<{ b: number; value: string; clicks: number; visitors: number; by_b: number; by_value: number }>(
    ch,
    `SELECT ${b} AS b, val AS value, sum(c) AS clicks, ${sketchMerge("v")} AS visitors, 1 - grouping(b) AS by_b, 1 - grouping(value) AS by_value
     FROM (${union}) GROUP BY GROUPING SETS ((b), (value), ())${FINAL_SETTINGS}`,
    params,
  );
  const total = r.find((x) => !num(x.by_b) && !num(x.by_value));
  return {
    totals: total ? countsOf(total) : { clicks: 0, visitors: 0 },
    series: seriesOf(r.filter((x) => num(x.by_b))),
    breakdown: r
      .filter((x) => num(x.by_value) && num(x.clicks) > 0)
      .map((x) => ({ value: String(x.value), ...countsOf(x) }))
      .sort(byClicks)
      .slice(0, limit),
  };
}

/** Clicks of a scope and range per value of `q.dim` and bucket (the SRE page's tiers over time). */
export async function seriesByValue(ch: ClickHouseClient, db: string, q: Question, p: Plan): Promise<{ b: number; value: string; clicks: number }[]> {
  const params: Record<string, unknown> = {};
  const union = unionQuery(db, q, p, params, "clicks");
  const b = `toUnixTimestamp(${bucketExpr(q.interval, "t")})`;
  const r = await rows<{ b: number; value: string; clicks: number }>(ch, `SELECT ${b} AS b, val AS value, sum(c) AS clicks FROM (${union}) GROUP BY b, value ORDER BY b${FINAL_SETTINGS}`, params);
  return r.map((x) => ({ b: num(x.b), value: String(x.value), clicks: num(x.clicks) }));
}

export interface LinkLabel {
  id: number;
  domain: string;
  code: string;
  url: string;
  title: string | null;
}
/** Links named by a top-links breakdown (labels for the dashboard), from PostgreSQL. */
async function linkLabels(replica: Sql, workspaceId: number, ids: string[]) {
  if (!ids.length) return new Map<string, LinkLabel>();
  const r = await replica<{ id: string; domain: string; code: string; url: string; title: string | null }[]>`
    SELECT id::text, domain, code, url, title FROM links WHERE workspace_id = ${workspaceId} AND id = ANY(${ids}::bigint[])`;
  return new Map(r.map((x) => [x.id, { ...x, id: Number(x.id) }]));
}

const ORDER = ["rollup_weekly", "rollup_daily", "rollup_hourly", "rollup_quarter", "clicks"];

export async function queryStats(d: StatsDeps, workspaceId: number, q: StatsParams) {
  if (!d.ch) throw domainError("unavailable", "this process has no ClickHouse connection");
  const { from, to } = queryRange(q.interval, q.from, q.to, q.tz);
  const replica = d.sql === d.replica ? d.sql : d.replica;
  const whole = !q.link && q.domain === undefined && q.tag === undefined;
  const filters = Object.fromEntries(DIMENSION_KEYS.filter((k) => q[k] !== undefined).map((k) => [k, q[k]!.split(",").map((s) => s.trim())])) as Partial<Record<Dimension, string[]>>;
  const filtered = Object.keys(filters) as Dimension[];
  // A rollup row has one dimension: a filter on the breakdown's own dimension (or, without one,
  // on a single dimension) is a choice of rows; any other filter needs the raw table.
  const dim: Question["dim"] = q.group_by ?? (filtered.length === 1 ? filtered[0]! : "");
  const rollupAnswers = filtered.length === 0 || (filtered.length === 1 && filtered[0] === dim);
  const range = { from, to, interval: q.interval, tz: q.tz, ...(rollupAnswers ? {} : { rawFilters: filters }) };
  // The whole workspace is asked in ClickHouse's own terms (its rows, its links' owner copies):
  // PostgreSQL only counts its links. The plan (which hours are stale) is read meanwhile.
  const [ids, linkCount, p] = await Promise.all([
    whole ? [] : workspaceLinkIds(replica, workspaceId, q),
    whole ? replica<{ n: string }[]>`SELECT count(*) AS n FROM links WHERE workspace_id = ${workspaceId}`.then((r) => Number(r[0]!.n)) : null,
    plan(replica, { ...range, scope: { level: whole ? "workspace" : "link" } }),
  ]).then(([ids, n, p]) => [ids, n ?? ids.length, p] as const);
  const scope: Scope = whole ? { level: "workspace", id: workspaceId } : { level: "link", ids };
  const base = { from: new Date(from).toISOString(), to: new Date(to).toISOString(), interval: q.interval, tz: q.tz, group_by: q.group_by ?? null, bots: q.bots, links: linkCount };
  if (!linkCount) return { ...base, source: "none", totals: { clicks: 0, visitors: 0 }, series: [], breakdown: q.group_by ? [] : null };

  const common = { scope, bots: q.bots, ...range };
  const timed = async <T>(what: Promise<T>) => {
    const started = performance.now();
    try {
      return await what;
    } finally {
      d.observe?.(p.source, (performance.now() - started) / 1000);
    }
  };
  const values = rollupAnswers && filtered.length ? filters[filtered[0]!] : undefined;
  // The series from the totals rows when nothing is filtered (fewest rows), else from the filtered dimension's.
  const seriesQ: Question = { ...common, dim: values ? dim : "", ...(values ? { values } : {}) };
  const breakdownQ: Question | null = q.group_by ? { ...common, dim: q.group_by, ...(values ? { values } : {}) } : null;
  // A link's own dimensions are daily rows of its dense days (rollup.ts DENSE_LINK_DAY).
  const linkDims = (x: Question) => scope.level === "link" && x.dim !== "" && x.dim !== "link" && !x.rawFilters;
  // Weeks for a workspace's breakdown only: its rows are values × buckets spanned, and weeks cut
  // the buckets. A series reads a row a day (~90 for a quarter), where one more table and its
  // parts cost more than they save (bench:stats at 10M: by week 47.5 → 78 ms p95 with weeks).
  // A link's plan without its quiet recent parts (skipQuiet): asked once, whoever needs it first.
  let linkPlan: Promise<Plan> | undefined;
  const planFor = async (x: Question, bucketed: boolean) => {
    if (linkDims(x)) return skipQuiet(d.sql, ids, { from, to }, await denseLinkPlan(d.ch!, d.database, ids, p, bucketed, { from, to }));
    if (scope.level === "link") return (linkPlan ??= skipQuiet(d.sql, ids, { from, to }, p));
    return bucketed ? quartersFor(p, x.dim) : withWeeks(p, null);
  };
  // A breakdown by a dimension of few values answers its series too, in one query: a
  // workspace's from its rows (whole weeks from the weekly rows when the buckets are weeks or
  // months); links' from their dense days' rows and the raw table for the rest, when the buckets
  // are UTC days or longer (the plan has daily days only then: a link's dimensions have no hourly
  // rows, and buckets of other days would read the range raw).
  const small = breakdownQ && SMALL_DIMENSIONS[breakdownQ.dim] ? breakdownQ : null;
  const linkBoth = small && linkDims(small) && p.days.length > 0 ? await planFor(small, true) : null;
  const both = small && scope.level === "workspace" ? withWeeks(p, q.interval) : linkBoth;
  if (small && both && answersSeriesToo(small, both)) {
    const r = await timed(seriesAndBreakdown(d.ch, d.database, small, both, q.limit));
    return { ...base, source: both.source, totals: r.totals, series: r.series, breakdown: r.breakdown };
  }
  // Both plans first (a link's breakdown asks which days are dense; with its days the buckets'
  // that plan was asked above), then the series and the ranking in one statement.
  const [sp, bp] = await Promise.all([planFor(seriesQ, true), breakdownQ ? (linkBoth ?? planFor(breakdownQ, false)) : p]);
  const r = breakdownQ
    ? await timed(seriesAndRanked(d.ch, d.database, { q: seriesQ, p: sp }, { q: breakdownQ, p: bp, limit: q.limit, linksPlan: (top) => skipQuiet(d.sql, top, { from, to }, bp) }))
    : { ...(await timed(series(d.ch, d.database, seriesQ, sp))), breakdown: null };
  const labels = q.group_by === "link" && r.breakdown ? await linkLabels(replica, workspaceId, r.breakdown.map((x) => x.value)) : null;
  const ranked = labels ? r.breakdown!.map((x) => ({ ...x, ...(labels.get(x.value) ? { link: labels.get(x.value) } : {}) })) : r.breakdown;
  const source = [...new Set([...sp.source.split("+"), ...(breakdownQ ? bp.source.split("+") : [])])].filter((x) => x !== "none").sort((a, b) => ORDER.indexOf(a) - ORDER.indexOf(b)).join("+") || "none";
  return { ...base, source, totals: r.totals, series: r.series, breakdown: ranked };
}

/** Distinct clicks in ClickHouse, all workspaces and all time, bots included (GET /api/pipeline): no full scan. */
export async function countClicks(d: { sql: Sql; ch: ClickHouseClient; database: string }): Promise<number> {
  const now = Date.now();
  // The retention period (3 years) and a bit: nothing older is kept.
  const q: Question = { scope: { level: "all" }, from: floorHour(now) - 3 * 366 * DAY, to: floorHour(now) + HOUR, interval: "month", tz: "UTC", bots: "include", dim: "" };
  const p = await plan(d.sql, q, now);
  const params: Record<string, unknown> = {};
  const [r] = await rows<{ n: number }>(d.ch, `SELECT sum(c) AS n FROM (${unionQuery(d.database, q, p, params, "clicks")})${FINAL_SETTINGS}`, params);
  return num(r?.n);
}
