import type { Logger } from "pino";
import type { Sql, TransactionSql } from "postgres";
import { chSeconds, memoryExceeded, RECENT_READ_MS, rows, sketchMergeState, sketchState, type ClickHouseClient } from "./clickhouse.ts";
import { hasQuarters } from "./time.ts";

/**
 * Rollups of closed hours, computed from the deduplicated raw table (docs/ANALYTICS.md).
 *
 * The loader marks every hour of a batch it loaded (rollup_dirty, in the transaction that
 * checkpoints the batch, so after its rows are in ClickHouse). The sealer takes the marked
 * hours that have closed, counts each group's clicks in the raw table read with FINAL (a click
 * delivered twice counts once), writes them as plain numbers, then deletes the marks it saw; a
 * mark made again meanwhile has a new seq and survives, so its hour is recomputed on the next
 * run. A marked hour is read from the raw table by the stats queries, so a rollup is never read
 * while it is stale, and the open hour is always read raw.
 *
 * A recomputed group replaces its older row by `max`: a group's click count never goes down
 * (clicks are only ever added), so the largest is the latest. Visitors are uniqCombined64(12)
 * sketches (mergeable, ~1.6 % error); their merge is a union, so recomputing is harmless too.
 */
/** Dimension name → its value in the raw table, as text (the only expressions that reach SQL). */
export const ROLLUP_DIMENSIONS = {
  country: "toString(country)",
  region: "region",
  city: "city",
  device: "toString(device)",
  browser: "toString(browser)",
  os: "toString(os)",
  referer_host: "toString(referer_host)",
  utm_source: "utm_source",
  utm_medium: "utm_medium",
  utm_campaign: "utm_campaign",
  qr: "toString(qr)",
  cache_tier: "toString(cache_tier)",
  colo: "toString(colo)",
  // The SRE page's per-colo hit ratios: colo and tier at once.
  colo_tier: "concat(toString(colo), '/', toString(cache_tier))",
} as const;
export type RollupDimension = keyof typeof ROLLUP_DIMENSIONS;

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
export const floorHour = (t: number) => Math.floor(t / HOUR) * HOUR;

/** Marks the hours of loaded clicks (inside the loader's checkpoint transaction). */
export async function markHours(tx: TransactionSql | Sql, hours: Iterable<number>): Promise<void> {
  // ISO text: postgres.js sends an array of Dates as one timestamp.
  const list = [...new Set(hours)].sort().map((h) => new Date(h).toISOString());
  if (!list.length) return;
  await tx`INSERT INTO rollup_dirty (hour) SELECT unnest(${list}::text[]::timestamptz[]) ORDER BY 1
           ON CONFLICT (hour) DO UPDATE SET seq = nextval('rollup_dirty_seq')`;
}

/** The hours of ClickHouse row times ('YYYY-MM-DD hh:mm:ss.mmm', UTC). */
export const hoursOf = (times: Iterable<string>) => new Set([...times].map((t) => floorHour(Date.parse(`${t.replace(" ", "T")}Z`))));

/**
 * Marks every hour the raw table holds clicks of (rollups created over existing data; the bench's
 * direct inserts), or those at the UTC hours of the day `hoursOfDay` (a new rollup_quarter).
 */
export async function markAllHours(sql: Sql, ch: ClickHouseClient, db: string, hoursOfDay?: readonly number[]): Promise<number> {
  const only = hoursOfDay ? " WHERE toHour(ts) IN {hd:Array(UInt8)}" : "";
  const hs = await rows<{ h: number }>(ch, `SELECT DISTINCT toUnixTimestamp(toStartOfHour(ts)) AS h FROM ${db}.clicks${only}`, hoursOfDay ? { hd: [...hoursOfDay] } : {});
  for (let i = 0; i < hs.length; i += 5000) await markHours(sql, hs.slice(i, i + 5000).map((r) => Number(r.h) * 1000));
  return hs.length;
}

/** Hours read raw because their rollups are stale, within [from, to). */
export async function dirtyHours(sql: Sql, from: number, to: number): Promise<number[]> {
  const r = await sql<{ hour: Date }[]>`SELECT hour FROM rollup_dirty WHERE hour >= ${new Date(from)} AND hour < ${new Date(to)}`;
  return r.map((x) => x.hour.getTime());
}

export interface SealOptions {
  sql: Sql;
  ch: ClickHouseClient;
  database: string;
  log?: Logger;
  /** Hours rolled up per ClickHouse pass (bounds its memory). */
  chunkHours?: number;
  now?: () => number;
  /** Wait for another sealer's run to end instead of leaving the work to it (tests, the bench). */
  wait?: boolean;
}

/**
 * One run of the sealer: rolls up the marked hours that have closed (and their UTC days).
 * Returns the hours it rolled up. Several processes may run it: a PostgreSQL advisory lock
 * lets one at a time work (the work is idempotent anyway).
 */
export async function seal(o: SealOptions): Promise<number> {
  const { sql, ch, database: db } = o;
  const open = floorHour((o.now ?? Date.now)());
  let done = 0;
  let chunk = o.chunkHours ?? 24;
  for (;;) {
    let n: number;
    try {
      n = await sql.begin(async (tx) => {
        if (o.wait) await tx`SELECT pg_advisory_xact_lock(hashtext('linkflow.rollup_sealer'))`;
        else {
          const [lock] = await tx<{ ok: boolean }[]>`SELECT pg_try_advisory_xact_lock(hashtext('linkflow.rollup_sealer')) AS ok`;
          if (!lock?.ok) return 0;
        }
        const marks = await tx<{ hour: Date; seq: string }[]>`
          SELECT hour, seq FROM rollup_dirty WHERE hour < ${new Date(open)} ORDER BY hour LIMIT ${chunk}`;
        if (!marks.length) return 0;
        const hours = marks.map((m) => m.hour.getTime());
        await rollUpHours(tx, ch, db, hours, open, o.log);
        // Only the marks as they were read: one made again since (a new seq) stays.
        await tx`DELETE FROM rollup_dirty d USING (SELECT unnest(${marks.map((m) => m.hour.toISOString())}::text[]::timestamptz[]) AS hour, unnest(${marks.map((m) => m.seq)}::bigint[]) AS seq) s
                 WHERE d.hour = s.hour AND d.seq = s.seq`;
        return hours.length;
      });
    } catch (err) {
      // Too many clicks for one pass within the memory bound (a backlog of busy hours): the
      // marks are still there (the transaction rolled back), so take fewer hours at a time.
      // Rows a failed pass already wrote are right for their groups; its hours read raw until done.
      if (!memoryExceeded(err) || chunk === 1) throw err;
      chunk = Math.max(1, Math.floor(chunk / 2));
      o.log?.warn({ hours_per_pass: chunk, err: String(err).slice(0, 300) }, "rollup pass over its memory bound; fewer hours a pass");
      continue;
    }
    done += n;
    if (!n) return done;
  }
}

/**
 * The sealer's queries: inserts through Distributed tables wait for the shards; memory is
 * bounded (a large GROUP BY spills to disk), so a backlog of hours never takes the process down.
 * The bound is half of embedded chDB's default (CHDB_MAX_MEMORY_MB): sealing is background work,
 * and a pass that took the whole of it would leave the loader's inserts and the stats queries
 * refused; and the process's resident set peaks at what a statement reached plus 500–800 MiB
 * ClickHouse does not count (ANALYTICS.md), so this bound is what keeps the process under 1.5 GiB.
 * An INSERT … SELECT gathers its rows into blocks of up to 256 MiB before it sorts and writes
 * each as a part: at 50M clicks a day's dense-link rows took the statement over 768 MiB that way
 * whatever the pass's length; in 32 MiB blocks (more parts, merged later) and slices of the links
 * (inSlices) it fits.
 */
const SEAL_SETTINGS = {
  insert_distributed_sync: 1,
  max_threads: 2,
  max_memory_usage: String(512 << 20),
  max_bytes_before_external_group_by: String(256 << 20),
  min_insert_block_size_bytes: String(32 << 20),
  do_not_merge_across_partitions_select_final: 1,
} as const;

/**
 * A link's day gets per-dimension rows only from this many clicks (bots included) on: below it,
 * its rows would be about as many as its clicks (one per dimension and click), and reading its
 * few raw clicks costs less than storing them fourteen times.
 */
export const DENSE_LINK_DAY = 32;

/**
 * The dimensions rollup_quarter holds (and '', the totals): those of few values. A split hour's
 * quarter rows answer a series, and a series comes from a dimension's rows only for a breakdown by
 * one of few values (stats-query.ts SMALL_DIMENSIONS), the SRE page's tiers, or a filter on one
 * dimension; a filter on any other reads the split hours raw. Cities, regions, referrers and UTM
 * values would be about a row per click there (at 10M clicks: 8.5M quarter rows, 807 MB, with
 * every dimension).
 */
export const QUARTER_DIMS: readonly string[] = ["", "country", "device", "browser", "os", "qr", "cache_tier", "colo", "colo_tier"];

const ALL_DIMS = (only?: readonly string[]) =>
  `[${[["", "''"], ...Object.entries(ROLLUP_DIMENSIONS)].filter(([d]) => !only || only.includes(d!)).map(([d, e]) => `('${d}', ${e})`).join(", ")}]`;

/**
 * Recomputes the rollups of `hours` (closed hours, UTC starts), then of the days they complete.
 * Hourly, all from the hours' raw clicks: each link's total; each workspace's total and
 * dimensions (its links' clicks together), its links ranked (dim 'link'); all workspaces'.
 * Daily (a UTC day whose 24 hours have closed, once no other hour of it is marked): the same
 * summed from the hours, plus per-dimension rows of the links with at least DENSE_LINK_DAY
 * clicks that day (from the raw table). Raw rows are read with FINAL: a
 * redelivered copy has the same sorting key (link, time, click_id), so each click counts once.
 */
async function rollUpHours(sql: TransactionSql | Sql, ch: ClickHouseClient, db: string, hours: number[], open: number, log?: Logger): Promise<void> {
  const hs = hours.map(chSeconds);
  const lo = chSeconds(Math.min(...hours));
  const hi = chSeconds(Math.max(...hours) + HOUR);
  const cmd = (query: string, query_params: Record<string, unknown>) => ch.command({ query, query_params, clickhouse_settings: SEAL_SETTINGS });
  const inHours = `ts >= {lo:DateTime} AND ts < {hi:DateTime} AND toStartOfHour(ts) IN {hs:Array(DateTime)}`;
  // Recent hours from clicks_recent (sorted by hour: reads just them), older ones from clicks.
  const recentFrom = open - RECENT_READ_MS;
  const raw = Math.min(...hours) >= recentFrom ? `${db}.clicks_recent` : `${db}.clicks`;
  // The workspaces of the hours' links (PostgreSQL owns the mapping; a link never changes workspace).
  const linkIds = (await rows<{ id: string }>(ch, `SELECT DISTINCT link_id AS id FROM ${raw} WHERE ${inHours}`, { lo, hi, hs })).map((r) => String(r.id));
  const owners = linkIds.length ? await sql<{ id: string; ws: string }[]>`SELECT id::text, workspace_id::text AS ws FROM links WHERE id = ANY(${linkIds}::bigint[])` : [];
  const map = { l: owners.map((r) => Number(r.id)), w: owners.map((r) => Number(r.ws)) };
  const ws = (col: string) => `transform(${col}, {l:Array(UInt64)}, {w:Array(UInt64)}, toUInt64(0))`;
  const cols = "(level, id, dim, t, is_bot, value, clicks, visitors)";
  // Every row of the hours is counted from the hours' raw clicks, never from earlier rollup
  // rows: reading those by hour would mean scanning every link's or workspace's history (the
  // sorting key starts with level and id), a cost that grows with the table, once per pass.
  // Links' totals, and each workspace's links ranked (dim 'link'): the same groups.
  await cmd(
    `INSERT INTO ${db}.rollup_hourly ${cols}
     SELECT x.1 AS level, x.2 AS id, x.3 AS dim, toStartOfHour(ts) AS h, is_bot, x.4 AS value, count(), ${sketchState("nullIf(visitor_hash, '')")}
     FROM ${raw} FINAL ARRAY JOIN [('link', link_id, '', ''), ('workspace', ${ws("link_id")}, 'link', toString(link_id))] AS x
     WHERE ${inHours} GROUP BY level, id, dim, h, is_bot, value`,
    { lo, hi, hs, ...map },
  );
  // Workspaces' totals and dimensions, and all workspaces' (the operator's view).
  const byLevel = async (table: string, slot: string, where: string, params: Record<string, unknown>, dims?: readonly string[]) => {
    for (const level of ["workspace", "all"] as const)
      await cmd(
        `INSERT INTO ${db}.${table} ${cols}
         SELECT '${level}', ${level === "workspace" ? ws("link_id") : "toUInt64(0)"} AS w, d.1 AS dim, ${slot} AS h, is_bot, d.2 AS value, count(), ${sketchState("nullIf(visitor_hash, '')")}
         FROM ${raw} FINAL ARRAY JOIN ${ALL_DIMS(dims)} AS d WHERE ${where} GROUP BY w, dim, h, is_bot, value`,
        params,
      );
  };
  await byLevel("rollup_hourly", "toStartOfHour(ts)", inHours, { lo, hi, hs, ...map });
  // The hours a zone's midnight splits (QUARTER_HOURS), by quarter hour as well, at the levels
  // whose questions read many links (a workspace's, all workspaces'): a day, week or month in
  // such a zone then reads these rows for the hour its boundary splits instead of every link's raw
  // clicks. A link's own question reads its few raw clicks (plan()). No `link` rows: the top
  // links are a breakdown, which has no buckets to split.
  const qs = hours.filter(hasQuarters).map(chSeconds);
  if (qs.length) {
    const inQuarters = `ts >= {lo:DateTime} AND ts < {hi:DateTime} AND toStartOfHour(ts) IN {qs:Array(DateTime)}`;
    await byLevel("rollup_quarter", "toStartOfFifteenMinutes(ts)", inQuarters, { lo, hi, qs, ...map }, QUARTER_DIMS);
  }
  // Days: those whose last hour has closed are rolled up now, unless other hours of the day are
  // still marked (a later pass takes them, then the day: a backlog in short passes would
  // otherwise recount a day once per pass). An open day gets its last hour marked, so the sealer
  // comes back when the day is over (even if that hour has no clicks).
  const days = [...new Set(hours.map((h) => Math.floor(h / DAY) * DAY))];
  await markHours(sql, days.filter((d) => d + DAY > open).map((d) => d + DAY - HOUR));
  const pending = new Set(
    (
      await sql<{ day: Date }[]>`SELECT DISTINCT date_trunc('day', hour, 'UTC') AS day FROM rollup_dirty
        WHERE hour >= ${new Date(Math.min(...days))} AND hour < ${new Date(Math.max(...days) + DAY)}
          AND NOT (hour = ANY(${hours.map((h) => new Date(h).toISOString())}::timestamptz[]))`
    ).map((r) => r.day.getTime()),
  );
  const closed = days.filter((d) => d + DAY <= open && !pending.has(d));
  if (!closed.length) return;
  const ds = closed.map(chSeconds);
  // The days' bounds too: the monthly partitions outside them are not read.
  const [dlo, dhi] = [chSeconds(Math.min(...closed)), chSeconds(Math.max(...closed) + DAY)];
  await cmd(
    `INSERT INTO ${db}.rollup_daily ${cols}
     SELECT level, id, dim, day, is_bot, value, sum(c), ${sketchMergeState("v")}
     FROM (SELECT level, id, dim, toStartOfDay(t) AS day, t, is_bot, value, max(clicks) AS c, ${sketchMergeState("visitors")} AS v
           FROM ${db}.rollup_hourly WHERE t >= {dlo:DateTime} AND t < {dhi:DateTime} AND toStartOfDay(t) IN {ds:Array(DateTime)} GROUP BY level, id, dim, t, is_bot, value)
     GROUP BY level, id, dim, day, is_bot, value`,
    { ds, dlo, dhi },
  );
  await rollUpWeeks(sql, ch, db, closed, hours, open);
  // Dense links' days: their dimensions, from the raw table. Its memory grows with the days'
  // clicks, not with the pass's hours (a day is computed by one pass), so when ClickHouse refuses
  // it, it runs again in slices of the links: a link's groups all lie in one slice.
  await inSlices((slices, slice) =>
    cmd(
      `INSERT INTO ${db}.rollup_daily ${cols}
     SELECT 'link', link_id, d.1 AS dim, toStartOfDay(ts) AS day, is_bot, d.2 AS value, count(), ${sketchState("nullIf(visitor_hash, '')")}
     FROM ${Math.min(...closed) >= recentFrom ? `${db}.clicks_recent` : `${db}.clicks`} FINAL ARRAY JOIN ${ALL_DIMS()} AS d
     WHERE d.1 <> '' AND toStartOfDay(ts) IN {ds:Array(DateTime)} AND ts >= {dlo:DateTime} AND ts < {dhi:DateTime}
       AND cityHash64(link_id) % {slices:UInt32} = {slice:UInt32}
       AND (link_id, toStartOfDay(ts)) IN (
         SELECT id, t FROM (SELECT id, t, is_bot, max(clicks) AS c FROM ${db}.rollup_daily
                            WHERE level = 'link' AND dim = '' AND t >= {dlo:DateTime} AND t < {dhi:DateTime} AND t IN {ds:Array(DateTime)} GROUP BY id, t, is_bot)
         GROUP BY id, t HAVING sum(c) >= ${DENSE_LINK_DAY})
     GROUP BY link_id, dim, day, is_bot, value`,
      { ds, dlo, dhi, slices, slice },
    ),
    log,
  );
}

/** Most slices a statement is split into before its refusal stands (each slice reads the days' raw rows again). */
export const MAX_SLICES = 16;

/**
 * Runs a statement over all links (`run(1, 0)`), or when ClickHouse refuses it for its memory
 * bound, in 2, 4, … MAX_SLICES slices of them. Rows a refused attempt wrote are right for their
 * groups (each group is computed whole in one statement; a second copy merges as a version).
 */
async function inSlices(run: (slices: number, slice: number) => Promise<unknown>, log?: Logger): Promise<void> {
  for (let slices = 1; ; slices *= 2)
    try {
      for (let slice = 0; slice < slices; slice++) await run(slices, slice);
      return;
    } catch (err) {
      if (!memoryExceeded(err) || slices >= MAX_SLICES) throw err;
      log?.warn({ slices: slices * 2, err: String(err).slice(0, 300) }, "dense-link day rollup over its memory bound; in slices of the links");
    }
}

const WEEK = 7 * DAY;
/** Monday 00:00 UTC of the week of `t` (1970-01-01 was a Thursday). */
export const weekOf = (t: number) => Math.floor((t + 3 * DAY) / WEEK) * WEEK - 3 * DAY;

/**
 * Weekly rows (Monday-to-Sunday UTC weeks) of workspaces and of all workspaces: sums of the
 * week's daily rows, so a workspace's breakdown over 30 days reads 3–4 weekly rows a value and
 * the days around them, not 30 (series keep reading days: stats-query.ts). Written as the
 * days are: after `days` got their rows, each of their weeks that has ended and has no other
 * marked hour is summed again (a late click's day, then its week); a week not
 * yet over gets its last hour marked, so the sealer comes back when it is. Per-link rows have no
 * weeks: read by week they would be the dense links' days summed again, their sealing cost
 * doubled for the link page's few rows. The week's days lie in at most two monthly partitions;
 * the sorting key starts with level, so only the workspace and all-workspace rows are read.
 */
async function rollUpWeeks(sql: TransactionSql | Sql, ch: ClickHouseClient, db: string, days: number[], hours: number[], open: number): Promise<void> {
  const weeks = [...new Set(days.map(weekOf))];
  await markHours(sql, weeks.filter((w) => w + WEEK > open).map((w) => w + WEEK - HOUR));
  const ended = weeks.filter((w) => w + WEEK <= open);
  if (!ended.length) return;
  const pending = new Set(
    (
      await sql<{ hour: Date }[]>`SELECT hour FROM rollup_dirty
        WHERE hour >= ${new Date(Math.min(...ended))} AND hour < ${new Date(Math.max(...ended) + WEEK)}
          AND NOT (hour = ANY(${hours.map((h) => new Date(h).toISOString())}::timestamptz[]))`
    ).map((r) => weekOf(r.hour.getTime())),
  );
  const ready = ended.filter((w) => !pending.has(w));
  if (ready.length) await sumWeeks(ch, db, ready);
}

/** The weeks' rows summed from their days' rows (at most the latest version of each: FINAL). */
async function sumWeeks(ch: ClickHouseClient, db: string, weeks: number[]): Promise<void> {
  await ch.command({
    query: `INSERT INTO ${db}.rollup_weekly (level, id, dim, t, is_bot, value, clicks, visitors)
     SELECT level, id, dim, toDateTime(toMonday(t), 'UTC') AS w, is_bot, value, sum(clicks), ${sketchMergeState("visitors")}
     FROM ${db}.rollup_daily FINAL
     WHERE level IN ('workspace', 'all') AND t >= {lo:DateTime} AND t < {hi:DateTime} AND toDateTime(toMonday(t), 'UTC') IN {ws:Array(DateTime)}
     GROUP BY level, id, dim, w, is_bot, value`,
    query_params: { ws: weeks.map(chSeconds), lo: chSeconds(Math.min(...weeks)), hi: chSeconds(Math.max(...weeks) + WEEK) },
    clickhouse_settings: SEAL_SETTINGS,
  });
}

/**
 * A new rollup_weekly beside rollups that already hold days (an upgrade): every ended week
 * summed from them, once. Weeks with a marked hour are summed again by the sealer when it takes
 * that hour, and are read by day until then.
 */
export async function backfillWeeks(ch: ClickHouseClient, db: string, now = Date.now()): Promise<number> {
  const ws = (await rows<{ w: number }>(ch, `SELECT DISTINCT toUnixTimestamp(toDateTime(toMonday(t), 'UTC')) AS w FROM ${db}.rollup_daily WHERE level = 'all'`))
    .map((r) => Number(r.w) * 1000)
    .filter((w) => w + WEEK <= floorHour(now))
    .sort((a, b) => a - b);
  // A few weeks at a time: each statement's GROUP BY stays within the sealer's memory bound.
  for (let i = 0; i < ws.length; i += 4) await sumWeeks(ch, db, ws.slice(i, i + 4));
  return ws.length;
}

/** Runs the sealer every `intervalMs` until stopped. */
export function startSealer(o: SealOptions & { intervalMs: number; onSealed?: (hours: number) => void }) {
  let stopped = false;
  let running: Promise<void> | undefined;
  const tick = async () => {
    try {
      const n = await seal(o);
      if (n) o.onSealed?.(n);
    } catch (err) {
      o.log?.warn({ err: String(err) }, "rollup sealer failed; those hours stay read raw until the next run");
    }
  };
  const timer = setInterval(() => {
    if (!stopped && !running) running = tick().finally(() => (running = undefined));
  }, o.intervalMs);
  timer.unref();
  return {
    /** Runs once now (tests, the bench). */
    runOnce: () => seal(o),
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
