/**
 * Stats query latency over seeded clicks (10M; `--quick` 200k; `--clicks N` or
 * BENCH_STATS_CLICKS overrides). Run by bench/run.ts as its own process (chDB allows one data
 * folder per process), or alone: `npm run bench:stats -- [--quick | --clicks 50000000]` (then it
 * merges its keys into latest.json, and the run's p95 per shape under `stats_scale.<N>`).
 * `--keep` leaves the seeded data folder and PostgreSQL database in place (their names are
 * printed); `--reuse DIR` times the queries again over such a folder, without seeding (for
 * working on the read path: a 10M seed and its rollups take ~10 minutes), and records them as
 * that size's figures with the seed's own seed and rollup times; `--reuse DIR --serve` checks
 * such a folder and serves it for bench/growth.ts, which times several sizes side by side.
 *
 * The real ingest app (startIngest, PIPELINE_ROLES=maintenance: chDB opened, no Kinesis) over a
 * fresh PostgreSQL database; ClickHouse's raw table seeded by ClickHouse itself (INSERT … SELECT
 * FROM numbers(N)), every hour marked and rolled up by the sealer as the loader's batches would
 * be (docs/ANALYTICS.md), closed months' rollups merged whole as they would be a day later;
 * PostgreSQL with the 10k links of the workspace. Then GET /api/stats over HTTP (autocannon,
 * loopback, one connection, bounded time) in several shapes, each ending at the next full hour
 * as the dashboard asks (the open hour read raw): p50/p95 per shape.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import autocannon from "autocannon";
import type { ClickHouseSettings } from "@clickhouse/client";
import type { Logger } from "pino";
import postgres from "postgres";
import { chTime, memoryExceeded, ROLLUP_TABLES, rows, type ClickHouseClient } from "../ingest/src/analytics/clickhouse.ts";
import { markAllHours, seal } from "../ingest/src/analytics/rollup.ts";
import { copyAllOwners } from "../ingest/src/analytics/link-owners.ts";
import { loadConfig } from "../ingest/src/config.ts";
import { createKey, generateKey } from "../ingest/src/auth/keys.ts";
import { startIngest } from "../ingest/src/server.ts";
import { mib, procStatusKb } from "./proc.ts";
import { DAY, MAIN, quantile, statsShapes, statsUrl } from "./stats-shapes.ts";

const quick = process.argv.includes("--quick");
const keep = process.argv.includes("--keep");
const reuseArg = process.argv.indexOf("--reuse");
const reuseDir = reuseArg > 0 ? process.argv[reuseArg + 1] : undefined;
/** What a kept seed was (in its folder, for --reuse). */
interface Kept {
  db: string;
  clicks: number;
  end: number;
  seedS: number;
  sealS: number;
}
const KEPT_FILE = "bench-stats.json";
const kept = reuseDir ? (JSON.parse(await readFile(join(reuseDir, KEPT_FILE), "utf8")) as Kept) : undefined;
/** `--serve` (with --reuse, as bench/growth.ts's child): checks the seed, then answers until told to stop. */
const serve = process.argv.includes("--serve");
if (serve && (!reuseDir || !process.send)) throw new Error("--serve: a child of bench/growth.ts, with --reuse DIR");
/** What a serving seed tells bench/growth.ts. */
export interface Serving {
  serving: { url: string; key: string; clicks: number; end: number };
}
const clicksArg = process.argv.indexOf("--clicks");
const CLICKS = kept?.clicks ?? Number(clicksArg > 0 ? process.argv[clicksArg + 1] : (process.env.BENCH_STATS_CLICKS ?? (quick ? 200_000 : 10_000_000)));
if (!Number.isSafeInteger(CLICKS) || CLICKS < 1000) throw new Error("--clicks: a whole number of clicks, at least 1000");
const LINKS = 10_000;
const SEED_CHUNK = 250_000;
const DAYS = 90;
const DURATION_S = quick ? 1 : 8;
/** Longest wait for ClickHouse's background merges after the seed. */
const SETTLE_S = quick ? 5 : 120;
const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const DB = "linkflow";

/** Clicks ending at the start of today (UTC), `DAYS` days of them. */
const end = kept?.end ?? Math.floor(Date.now() / DAY) * DAY;
const start = end - DAYS * DAY;

const pick = (values: string[], salt: number) => `[${values.map((v) => `'${v}'`).join(", ")}][1 + cityHash64(s, ${salt}) % ${values.length}]`;
/**
 * N clicks from ClickHouse itself. Every column derives from the row's seed `s` by hashing, so
 * inserting the same `s` again is a faithful redelivery (same click_id, same event). Links
 * follow a power law (link 1 gets ~4.6%, the median link a few dozen); ~5% bots, 2% DNT (no
 * visitor hash); a third as many visitors as clicks, the hash salted per day as ingest does.
 */
function seedSql(offset: number, count: number, where = "") {
  return `INSERT INTO ${DB}.clicks (click_id, link_id, domain, code, short_url, original_url, ts, received_at, user_agent, referer, referer_host,
    country, region, city, timezone, colo, asn, redirect_status, cache_tier, qr, browser, os, device, is_bot, utm_source, utm_medium, utm_campaign, visitor_hash)
  SELECT
    reinterpretAsUUID(concat(reinterpretAsFixedString(cityHash64(s, 1)), reinterpretAsFixedString(cityHash64(s, 2)))) AS click_id,
    1 + toUInt64(floor(${LINKS} * pow((cityHash64(s, 3) % 1000000) / 1000000, 3))) AS link_id,
    '' AS domain, concat('b', toString(link_id)) AS code, concat('http://localhost:8787/', code) AS short_url, concat('https://example.com/p/', toString(link_id)) AS original_url,
    fromUnixTimestamp64Milli(toInt64(${start} + cityHash64(s, 4) % ${end - start}), 'UTC') AS ts, ts AS received_at,
    '' AS user_agent,
    ${pick(["", "", "", "google.com", "google.com", "www.google.com", "t.co", "facebook.com", "l.facebook.com", "linkedin.com", "news.ycombinator.com", "reddit.com", "duckduckgo.com", "bing.com", "mail.google.com"], 5)} AS referer_host,
    if(referer_host = '', '', concat('https://', referer_host)) AS referer,
    ${pick(["US", "US", "US", "US", "US", "DE", "DE", "GB", "GB", "IN", "IN", "FR", "BR", "JP", "CA", "NL", "ES", "IT", "AU", "PL", "SE", "MX", "KR", "TR", "ZA"], 6)} AS country,
    concat(country, '-', toString(cityHash64(s, 7) % 8)) AS region, concat(region, '-', toString(cityHash64(s, 7) % 40)) AS city,
    'UTC' AS timezone, ${pick(["FRA", "AMS", "LHR", "CDG", "IAD", "ORD", "SJC", "DFW", "NRT", "BOM", "GRU", "SYD"], 8)} AS colo, 13335 AS asn, 302 AS redirect_status,
    ${pick(["isolate", "isolate", "isolate", "isolate", "isolate", "isolate", "isolate", "kv", "kv", "origin"], 9)} AS cache_tier,
    cityHash64(s, 10) % 100 < 3 AS qr,
    ${pick(["Chrome", "Chrome", "Chrome", "Chrome", "Mobile Safari", "Mobile Safari", "Safari", "Firefox", "Edge", "Samsung Internet"], 11)} AS browser,
    ${pick(["Windows", "Windows", "macOS", "iOS", "iOS", "Android", "Android", "Android", "Linux"], 12)} AS os,
    ${pick(["desktop", "desktop", "mobile", "mobile", "mobile", "tablet"], 13)} AS device,
    cityHash64(s, 14) % 100 < 5 AS is_bot,
    if(cityHash64(s, 15) % 100 < 20, ${pick(["newsletter", "twitter", "linkedin", "google", "partner"], 16)}, '') AS utm_source,
    if(utm_source = '', '', ${pick(["email", "social", "cpc"], 17)}) AS utm_medium,
    if(utm_source = '', '', concat('campaign-', toString(cityHash64(s, 18) % 12))) AS utm_campaign,
    if(cityHash64(s, 19) % 100 < 2, '', lower(hex(MD5(concat(toString(cityHash64(s, 20) % ${Math.max(1, Math.round(CLICKS / 3))}), toString(toDate(ts))))))) AS visitor_hash
  FROM (SELECT toUInt64(number) AS s FROM numbers(${offset}, ${count}) ${where})`;
}

async function seedClickHouse(ch: ClickHouseClient) {
  const settings: ClickHouseSettings = { max_insert_threads: "1", max_threads: 2 };
  // In chunks: one insert's blocks are sorted in memory before they are written. An insert that
  // meets chDB's memory bound (CHDB_MAX_MEMORY_MB) beside the merges of earlier chunks is taken
  // again once they are done: whatever part of it was written is the same clicks (same seeds),
  // collapsed like any redelivery.
  const insert = async (query: string) => {
    for (let attempt = 1; ; attempt++)
      try {
        return await ch.command({ query, clickhouse_settings: settings });
      } catch (err) {
        if (!memoryExceeded(err) || attempt === 5) throw err;
        console.log(`  seed: an insert met the memory bound; again after merges (attempt ${attempt + 1})`);
        await settle(ch);
      }
  };
  for (let offset = 0; offset < CLICKS; offset += SEED_CHUNK) await insert(seedSql(offset, Math.min(SEED_CHUNK, CLICKS - offset)));
  // Redelivery: 1% of the clicks again, in later inserts (their own parts, like a loader retry).
  for (let offset = 0; offset < CLICKS; offset += SEED_CHUNK * 20) await insert(seedSql(offset, Math.min(SEED_CHUNK * 20, CLICKS - offset), "WHERE number % 100 = 0"));
  await settle(ch);
  return activeParts(ch);
}

/** Waits (bounded) for background merges to end, as on tables that are not being bulk-loaded; returns the seconds waited. */
async function settle(ch: ClickHouseClient): Promise<number> {
  const t0 = Date.now();
  for (const until = Date.now() + SETTLE_S * 1000; Date.now() < until; await new Promise((r) => setTimeout(r, 500))) {
    const [m] = await rows<{ n: number }>(ch, `SELECT count() AS n FROM system.merges WHERE database = '${DB}'`);
    if (!Number(m?.n)) break;
  }
  return (Date.now() - t0) / 1000;
}

/**
 * The seed wrote 90 days of rollups minutes ago; in a live system each closed month was merged
 * into one part a day after its last rows (ROLLUP_PART_SETTINGS' force merge), so it is done here,
 * as that day would have. The open month keeps its parts. Returns the seconds it took.
 */
async function compactClosedMonths(ch: ClickHouseClient): Promise<number> {
  const t0 = Date.now();
  const month = new Date().toISOString().slice(0, 7).replace("-", "");
  const parts = await rows<{ table: string; id: string }>(
    ch,
    `SELECT table, partition_id AS id FROM system.parts WHERE active AND database = '${DB}' AND table IN {tables:Array(String)} AND partition_id < {month:String}
     GROUP BY table, partition_id HAVING count() > 1`,
    { tables: [...ROLLUP_TABLES], month },
  );
  for (const p of parts) {
    if (!/^\d{6}$/.test(p.id)) continue; // a month (toYYYYMM), as ClickHouse names it
    // Over chDB's memory bound (a large month at 50M): left in parts, as a live merge would wait.
    await ch.command({ query: `OPTIMIZE TABLE ${DB}.${p.table} PARTITION ID '${p.id}' FINAL` }).catch((err) => {
      if (!memoryExceeded(err)) throw err;
      console.log(`  ${p.table} ${p.id}: not merged whole within the memory bound`);
    });
  }
  return (Date.now() - t0) / 1000;
}

/**
 * uniqExact(click_id) over the raw table for [from, to), asked a UTC day at a time and summed:
 * every copy of a click has its timestamp, so no click is in two days, and one day's set of
 * click ids is what the process holds at once (the whole table's set at 50M clicks is ~2 GiB).
 */
async function uniqExactByDay(ch: ClickHouseClient, cond: string, from: number, to: number): Promise<number> {
  let n = 0;
  for (let d = Math.floor(from / DAY) * DAY; d < to; d += DAY) {
    const [r] = await rows<{ n: number }>(
      ch,
      `SELECT uniqExact(click_id) AS n FROM ${DB}.clicks WHERE ${cond} AND ts >= {a:DateTime64(3, 'UTC')} AND ts < {b:DateTime64(3, 'UTC')}`,
      { a: chTime(new Date(Math.max(d, from))), b: chTime(new Date(Math.min(d + DAY, to))) },
    );
    n += Number(r!.n);
  }
  return n;
}

/**
 * Where the process's memory is while it seeds and seals (the 1.5 GiB target): every 20 s, the
 * resident set, Node's heap, what chDB's tracker counts (its bound's measure), its merges' share,
 * its caches and primary keys; the highest resident set is kept per phase.
 */
function memoryTrace(ch: ClickHouseClient) {
  let phase = "start";
  const peaks = new Map<string, number>();
  const sample = async (print: boolean) => {
    const rss = mib(await procStatusKb("self", "VmRSS")) ?? 0;
    peaks.set(phase, Math.max(peaks.get(phase) ?? 0, rss));
    if (!print) return;
    const [m] = await rows<{ tracked: number; merges: number; merging: number; caches: number; keys: number }>(
      ch,
      `SELECT (SELECT value FROM system.metrics WHERE metric = 'MemoryTracking') AS tracked, (SELECT count() FROM system.merges) AS merges,
         (SELECT sum(memory_usage) FROM system.merges) AS merging, (SELECT sum(value) FROM system.metrics WHERE metric LIKE '%CacheBytes') AS caches,
         (SELECT sum(primary_key_bytes_in_memory_allocated) FROM system.parts WHERE active) AS keys`,
    ).catch(() => [undefined]);
    const node = process.memoryUsage();
    console.log(`  memory (${phase}): rss ${rss} MiB, Node heap ${mib((node.heapTotal + node.external) / 1024)} MiB, chDB tracked ${mib(Number(m?.tracked ?? NaN) / 1024)} MiB, merges ${m?.merges ?? "?"} holding ${mib(Number(m?.merging ?? NaN) / 1024)} MiB, caches ${mib(Number(m?.caches ?? NaN) / 1024)} MiB, primary keys ${mib(Number(m?.keys ?? NaN) / 1024)} MiB`);
  };
  let n = 0;
  const timer = setInterval(() => void sample(n++ % 20 === 0).catch(() => {}), 1000);
  timer.unref();
  return {
    phase: (p: string) => void (phase = p),
    stop: () => (clearInterval(timer), Object.fromEntries(peaks)),
  };
}

const activeParts = (ch: ClickHouseClient) =>
  rows<{ table: string; rows: number; parts: number }>(ch, `SELECT table, sum(rows) AS rows, count() AS parts FROM system.parts WHERE database = '${DB}' AND active GROUP BY table ORDER BY table`);

const shapes = () => statsShapes(end);

interface ShapeResult {
  name: string;
  what: string;
  source: string;
  requests: number;
  non2xx: number;
  rps: number;
  p50: number;
  p95: number;
  p99: number;
}
const round1 = (x: number) => Math.round(x * 10) / 10;

const dbName = kept?.db ?? `linkflow_bench_stats_${process.pid}`;
const admin = postgres(DATABASE_URL, { max: 1, onnotice: () => {} });
if (!kept) await admin`CREATE DATABASE ${admin(dbName)}`;
const dataDir = reuseDir ?? (await mkdtemp(join(tmpdir(), "linkflow-bench-stats-")));
let ingest: Awaited<ReturnType<typeof startIngest>> | undefined;
let cleaned: Promise<void> | undefined;
const cleanup = () =>
  (cleaned ??= (async () => {
    await ingest?.close().catch(() => {});
    if (!keep && !kept) {
      await rm(dataDir, { recursive: true, force: true });
      await admin`DROP DATABASE IF EXISTS ${admin(dbName)} WITH (FORCE)`;
    } else console.log(`kept: ${dataDir} and PostgreSQL database ${dbName} (again: npm run bench:stats -- --reuse ${dataDir})`);
    await admin.end();
  })());
// bench/run.ts bounds this process: a SIGTERM still removes the folder and the database.
process.once("SIGTERM", () => void cleanup().finally(() => process.exit(143)));
try {
  const benchDbUrl = Object.assign(new URL(DATABASE_URL), { pathname: `/${dbName}` }).toString();
  const config = loadConfig({
    DATABASE_URL: benchDbUrl,
    HOST: "127.0.0.1",
    PORT: "0",
    DATA_DIR: dataDir,
    ADMIN_API_KEY: generateKey(),
    // Required (no default); nothing here is signed.
    EDGE_SECRET: "bench-edge-secret-0123456789-abcdef",
    EDGE_ADMIN_URL: "",
    LOG_LEVEL: "warn",
    // Opens chDB (in DATA_DIR/chdb) without Kinesis; the click-limit check stays out of the way.
    PIPELINE_ROLES: "maintenance",
    CLICK_LIMIT_INTERVAL_MS: "3600000",
  });
  ingest = await startIngest(config);
  const ch = ingest.pipeline.ch!;
  const sql = ingest.sql;

  const [ws] = await sql<{ id: string }[]>`SELECT min(id) AS id FROM workspaces`;
  const workspaceId = Number(ws!.id);
  const { key } = await createKey(sql, workspaceId, "bench stats", ["stats:read"], 10_000_000);
  const memory = memoryTrace(ch);
  let seedS = kept?.seedS ?? NaN;
  let sealS = kept?.sealS ?? NaN;
  if (!kept) {
    await sql`INSERT INTO links (id, workspace_id, code, url)
              SELECT g, ${workspaceId}, 'b' || g, 'https://example.com/p/' || g FROM generate_series(1, ${LINKS}::int) g`;
    let t = performance.now();
    console.log(`stats: seeding ${CLICKS.toLocaleString("en")} clicks (+1% redelivered) over ${DAYS} days, ${LINKS.toLocaleString("en")} links …`);
    memory.phase("seed");
    const tables = await seedClickHouse(ch);
    seedS = (performance.now() - t) / 1000;
    // As the loader would have: every hour marked, then rolled up by the sealer.
    t = performance.now();
    memory.phase("seal");
    await copyAllOwners(sql, ch, DB);
    const hours = await markAllHours(sql, ch, DB);
    // A week of hours a pass (a backfill; the live sealer takes what has closed, an hour or so).
    const log = { warn: (o: object, m: string) => console.log(`  sealer: ${m} ${JSON.stringify(o)}`) } as unknown as Logger;
    // A pass refused even at one hour (the seed's merges hold chDB's memory bound for minutes):
    // after the merges, again from where it stopped, as the live sealer does on its next run.
    for (let attempt = 1; ; attempt++)
      try {
        await seal({ sql, ch, database: DB, wait: true, chunkHours: 168, log });
        break;
      } catch (err) {
        if (!memoryExceeded(err) || attempt === 20) throw err;
        console.log(`  sealer: refused at one hour a pass (merges hold the memory bound); again after merges (attempt ${attempt + 1})`);
        await settle(ch);
        await new Promise((r) => setTimeout(r, 10_000));
      }
    // (Marks of hours not closed yet, such as the open week's last hour, are not the seed's.)
    const [left] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM rollup_dirty WHERE hour < date_trunc('hour', now())`;
    const sealed = hours - left!.n;
    sealS = (performance.now() - t) / 1000;
    memory.phase("settle");
    const settled = await settle(ch);
    const compacted = await compactClosedMonths(ch);
    console.log(`  merges settled in ${settled.toFixed(0)} s, closed months' rollups merged whole in ${compacted.toFixed(0)} s: ${(await activeParts(ch)).map((r) => `${r.table} ${Number(r.rows).toLocaleString("en")} rows / ${r.parts} parts`).join(", ")}`);
    console.log(`  rolled up ${sealed.toLocaleString("en")} of ${hours.toLocaleString("en")} hours in ${sealS.toFixed(1)} s (${((sealS / Math.max(1, sealed)) * 1000).toFixed(0)} ms an hour); peak RSS so far ${mib(await procStatusKb("self", "VmHWM"))} MiB`);
    console.log(`  seeded in ${seedS.toFixed(1)} s: ${tables.map((r) => `${r.table} ${Number(r.rows).toLocaleString("en")} rows / ${r.parts} parts`).join(", ")}; peak RSS so far ${mib(await procStatusKb("self", "VmHWM"))} MiB`);
    if (keep) await writeFile(join(dataDir, KEPT_FILE), JSON.stringify({ db: dbName, clicks: CLICKS, end, seedS, sealS } satisfies Kept));
  } else {
    console.log(`stats: reusing ${CLICKS.toLocaleString("en")} clicks seeded in ${dataDir} (no seed, no sealing)`);
    // Merges run only while a process has the folder open: those left by the run that sealed it.
    const settled = await settle(ch);
    console.log(`  merges settled in ${settled.toFixed(0)} s: ${(await activeParts(ch)).map((r) => `${r.table} ${Number(r.rows).toLocaleString("en")} rows / ${r.parts} parts`).join(", ")}`);
  }

  memory.phase("queries");
  const url = (q: Record<string, string | number>) => statsUrl(ingest!.url, q);
  const headers = { authorization: `Bearer ${key}` };

  // Exact under redelivery: the API's totals, for a link and for the workspace, equal uniqExact over the raw table.
  for (const [name, query, cond] of [
    ["link 1", shapes().find((s) => s.name === MAIN)!.query, "link_id = 1"],
    ["the workspace", shapes().find((s) => s.name === "workspace_by_country_30d")!.query, "1"],
  ] as const) {
    const check = (await (await fetch(url(query), { headers })).json()) as { totals: { clicks: number }; source: string };
    const truth = await uniqExactByDay(ch, `${cond} AND NOT is_bot`, Date.parse(String(query.from)), Date.parse(String(query.to)));
    if (check.totals.clicks !== truth) throw new Error(`stats total of ${name} ${check.totals.clicks} ≠ uniqExact over the raw table ${truth}`);
    console.log(`  check: ${name}, 30 days: ${check.totals.clicks.toLocaleString("en")} clicks from ${check.source} = uniqExact over the raw table`);
  }
  // GET /api/pipeline (its ClickHouse count from the rollups, no full scan): equal to the raw
  // table's count, and its answer time over HTTP (median of 10, after one warm-up).
  const { key: operatorKey } = await createKey(sql, workspaceId, "bench operator", ["operator"], 10_000_000);
  const pipelineTimes: number[] = [];
  let counted = 0;
  for (let i = 0; i < 11; i++) {
    const t0 = performance.now();
    const res = await fetch(`${ingest!.url}/api/pipeline`, { headers: { authorization: `Bearer ${operatorKey}` } });
    counted = ((await res.json()) as { clickhouse_clicks: number }).clickhouse_clicks;
    if (i) pipelineTimes.push(performance.now() - t0);
  }
  const pipelineMs = pipelineTimes.sort((a, b) => a - b)[5]!;
  const all = await uniqExactByDay(ch, "1", start, Date.now() + DAY);
  if (counted !== all) throw new Error(`pipeline count ${counted} ≠ uniqExact over the raw table ${all}`);
  console.log(`  check: GET /api/pipeline's clickhouse_clicks ${counted.toLocaleString("en")} = uniqExact over the raw table; answered in ${pipelineMs.toFixed(1)} ms (median of 10)`);

  if (serve) {
    // bench/growth.ts times the shapes here beside other sizes, then says stop.
    process.send!({ serving: { url: ingest.url, key, clicks: CLICKS, end } } satisfies Serving);
    await new Promise<void>((resolve) => {
      process.once("message", () => resolve());
      process.once("disconnect", () => resolve());
    });
    await cleanup();
    process.exit(0);
  }

  const results: ShapeResult[] = [];
  for (const name of shapes().map((s) => s.name)) {
    const shape = shapes().find((s) => s.name === name)!;
    const target = url(shape.query);
    // Warm-up, and the request count that fits in DURATION_S at the warm latency: autocannon
    // then waits for every response (stopping at a deadline would leave a query running).
    let source = "";
    let warm = Infinity;
    for (let i = 0; i < 2; i++) {
      const t0 = performance.now();
      const res = await fetch(target, { headers });
      if (res.status !== 200) throw new Error(`${shape.name}: HTTP ${res.status} ${await res.text()}`);
      ({ source } = (await res.json()) as { source: string });
      warm = Math.min(warm, performance.now() - t0);
    }
    const amount = Math.max(3, Math.min(5_000, Math.floor((DURATION_S * 1000) / warm)));
    const latencies: number[] = [];
    const t0 = performance.now();
    const r = await new Promise<autocannon.Result>((resolve, reject) => {
      const inst = autocannon({ url: target, headers, connections: 1, amount, timeout: 30 }, (err, res) => (err ? reject(err) : resolve(res)));
      inst.on("response", (_client, status, _bytes, ms) => void (status === 200 && latencies.push(ms)));
    });
    const elapsedS = (performance.now() - t0) / 1000;
    latencies.sort((a, b) => a - b);
    results.push({
      name: shape.name,
      what: shape.what,
      source,
      requests: r.requests.total,
      non2xx: r.non2xx,
      rps: round1(r.requests.total / elapsedS),
      p50: round1(quantile(latencies, 0.5)),
      p95: round1(quantile(latencies, 0.95)),
      p99: round1(quantile(latencies, 0.99)),
    });
  }

  console.log(`\nGET /api/stats over ${CLICKS.toLocaleString("en")} clicks (real ingest app over HTTP, 1 connection, ~${DURATION_S}s per shape, autocannon on loopback):`);
  console.log(`${"shape".padEnd(26)} ${"source".padEnd(34)} ${"req".padStart(5)} ${"p50 ms".padStart(8)} ${"p95 ms".padStart(8)} ${"p99 ms".padStart(8)} ${"non-2xx".padStart(8)}`);
  for (const r of results)
    console.log(`${r.name.padEnd(26)} ${r.source.padEnd(34)} ${String(r.requests).padStart(5)} ${String(r.p50).padStart(8)} ${String(r.p95).padStart(8)} ${String(r.p99).padStart(8)} ${String(r.non2xx).padStart(8)}`);
  for (const r of results) console.log(`  ${r.name}: ${r.what}`);
  const rssByPhase = memory.stop();
  console.log(`  peak RSS of this process (ingest app + chDB): ${mib(await procStatusKb("self", "VmHWM"))} MiB; sampled by phase: ${JSON.stringify(rssByPhase)}`);
  if (results.some((r) => r.non2xx > 0)) throw new Error("stats requests answered with non-2xx");

  const m = results.find((r) => r.name === MAIN)!;
  const out: Record<string, unknown> = {
    stats_clicks: CLICKS,
    stats_seed_s: round1(seedS),
    stats_rollup_s: round1(sealS),
    stats_pipeline_count_ms: round1(pipelineMs),
    stats_p50_ms: m.p50,
    stats_p95_ms: m.p95,
    ...Object.fromEntries(results.flatMap((r) => [[`stats_${r.name}_p50_ms`, r.p50], [`stats_${r.name}_p95_ms`, r.p95]])),
    stats_rss_mib: mib(await procStatusKb("self", "VmHWM")),
  };
  if (process.send) process.send(out);
  else {
    const file = new URL("results/latest.json", import.meta.url);
    const prev = JSON.parse(await readFile(file, "utf8").catch(() => "{}")) as Record<string, unknown>;
    // The growth table (docs/BENCHMARKS.md): p95 per shape at each seeded size.
    // A re-timing (--reuse) replaces the timings and keeps what the seeding run measured (its memory, seed and sealing).
    const prevScale = (prev.stats_scale as Record<string, Record<string, unknown>>) ?? {};
    const seeded = reuseDir ? {} : { rss_mib: out.stats_rss_mib, rss_mib_by_phase: rssByPhase, seed_s: out.stats_seed_s, rollup_s: out.stats_rollup_s };
    const scale = { ...prevScale, [CLICKS]: { ...(reuseDir ? prevScale[CLICKS] : {}), ...Object.fromEntries(results.map((r) => [r.name, r.p95])), ...seeded, pipeline_count_ms: out.stats_pipeline_count_ms } };
    // The flat keys are the full run's (npm run bench: 10M, seeded): not a size asked for, nor a re-timing.
    await writeFile(file, JSON.stringify({ ...prev, ...(clicksArg > 0 || reuseDir ? {} : out), stats_scale: scale }, null, 2) + "\n");
    console.log("\nmerged into: bench/results/latest.json");
  }
} finally {
  await cleanup();
}
// chDB and pino may keep handles open: this process is done.
process.exit(0);
