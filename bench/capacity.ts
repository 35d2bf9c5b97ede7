/**
 * Capacity figures for docs/SCALING.md (`npm run bench:capacity`, bounded: a few minutes).
 *
 * (a) ClickHouse: the real schema (ensureSchema) in a chDB folder of its own; 1,000,000 realistic
 *     clicks (CAPACITY_CLICKS). The first 100,000 (CAPACITY_LOADER_SAMPLE) are made into Kinesis
 *     records exactly as ingest does (applyPrivacy, then the event + received_at as JSON) and into
 *     rows as the loader does (parse, validate, toClickHouseRow), inserted in the loader's batch
 *     size: the record size and one loader's rows/s. The rest are made by ClickHouse with the same
 *     distributions (JS at ~100 µs per click on this shared machine would not fit the time bound).
 *     Then OPTIMIZE … FINAL and system.parts (active parts) per table, the views' target tables
 *     included → bytes per click.
 * (b) PostgreSQL: a database of its own on the server (created, dropped), the migrations, 200,000
 *     clicks (CAPACITY_PG_CLICKS) written as ingest writes them (the clicks row and the outbox row
 *     with the Kinesis record, in one transaction); then the size of the clicks partitions with
 *     their indexes, and the outbox's.
 *
 * Prints a table and writes bench/results/capacity.json.
 */
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import postgres from "postgres";
import type { ClickEvent } from "../shared/event.ts";
import { clickhouseClient, ensureSchema, rows } from "../ingest/src/analytics/clickhouse.ts";
import { connect, type Sql } from "../ingest/src/db/connect.ts";
import { agentClass, hostOf, parseAgent, refererOrigin, utmOf } from "../ingest/src/analytics/enrich.ts";
import { applyPrivacy } from "../ingest/src/clicks/privacy.ts";
import { clickInsert, recordSchema, toClickHouseRow } from "../ingest/src/pipeline/loader.ts";
import { migrate } from "../ingest/src/db/migrate.ts";
import { markAllHours, seal } from "../ingest/src/analytics/rollup.ts";
import { copyAllOwners } from "../ingest/src/analytics/link-owners.ts";
import { ensurePartitions } from "../ingest/src/pipeline/partitions.ts";

const CH_CLICKS = Number(process.env.CAPACITY_CLICKS ?? 1_000_000);
const PG_CLICKS = Number(process.env.CAPACITY_PG_CLICKS ?? 200_000);
/** Clicks that take the real record → loader path (the rest are made by ClickHouse, same distributions). */
const LOADER_SAMPLE = Number(process.env.CAPACITY_LOADER_SAMPLE ?? 100_000);
/** The loader's default flush size (LOADER_BATCH_ROWS). */
const LOADER_BATCH = 10_000;
/** A beacon group's size in the PostgreSQL part (group commit joins concurrent beacons). */
const PG_BATCH = 500;
const LINKS = 100_000;
const DAYS = 30;
const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const DB = "linkflow";
const DAY = 86_400_000;
/** The decision record's load: ~1B clicks a year, 3-year retention in ClickHouse. */
const CLICKS_PER_YEAR = 1e9;
const PER_MONTH = CLICKS_PER_YEAR / 12;

// ---------------------------------------------------------------------------------------------
// Realistic clicks (deterministic PRNG: the same run gives the same distributions).

let seed = 0x5eed;
const rnd = () => {
  // mulberry32
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
const B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const codeOf = (id: number) => {
  let x = (id * 2654435761) % 3521614606208; // 62^7: a 7-character code, as generated codes are
  let s = "";
  for (let i = 0; i < 7; i++, x = Math.floor(x / 62)) s += B62[x % 62];
  return s;
};

const UAS = [
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 355.0.0.22.107",
  "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.39 Mobile Safari/537.36",
  "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
  "Mozilla/5.0 (Linux; Android 13; SM-A536B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.6723.107 Mobile Safari/537.36",
  "Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.7 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
  "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
  "Twitterbot/1.0",
  "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/490.0.0.40.68;]",
  "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
] as const;
const REFERERS = [
  "", "", "", "", "",
  "https://www.google.com/", "https://www.google.com/", "https://t.co/", "https://www.facebook.com/", "https://l.facebook.com/",
  "https://www.linkedin.com/", "https://news.ycombinator.com/", "https://www.reddit.com/r/programming/comments/", "https://duckduckgo.com/",
  "https://www.bing.com/", "https://mail.google.com/", "https://www.instagram.com/", "https://android-app://com.slack/",
] as const;
const PLACES = [
  { country: "US", region: "California", region_code: "CA", city: "San Francisco", postal_code: "94107", continent: "NA", latitude: 37.78, longitude: -122.39, timezone: "America/Los_Angeles", colo: "SJC" },
  { country: "US", region: "New York", region_code: "NY", city: "New York", postal_code: "10001", continent: "NA", latitude: 40.75, longitude: -73.99, timezone: "America/New_York", colo: "EWR" },
  { country: "US", region: "Texas", region_code: "TX", city: "Austin", postal_code: "78701", continent: "NA", latitude: 30.27, longitude: -97.74, timezone: "America/Chicago", colo: "DFW" },
  { country: "DE", region: "Berlin", region_code: "BE", city: "Berlin", postal_code: "10115", continent: "EU", latitude: 52.52, longitude: 13.4, timezone: "Europe/Berlin", colo: "FRA" },
  { country: "GB", region: "England", region_code: "ENG", city: "London", postal_code: "EC1A", continent: "EU", latitude: 51.51, longitude: -0.13, timezone: "Europe/London", colo: "LHR" },
  { country: "FR", region: "Île-de-France", region_code: "IDF", city: "Paris", postal_code: "75001", continent: "EU", latitude: 48.86, longitude: 2.35, timezone: "Europe/Paris", colo: "CDG" },
  { country: "IN", region: "Maharashtra", region_code: "MH", city: "Mumbai", postal_code: "400001", continent: "AS", latitude: 19.08, longitude: 72.88, timezone: "Asia/Kolkata", colo: "BOM" },
  { country: "BR", region: "São Paulo", region_code: "SP", city: "São Paulo", postal_code: "01000", continent: "SA", latitude: -23.55, longitude: -46.63, timezone: "America/Sao_Paulo", colo: "GRU" },
  { country: "JP", region: "Tokyo", region_code: "13", city: "Tokyo", postal_code: "100-0001", continent: "AS", latitude: 35.68, longitude: 139.69, timezone: "Asia/Tokyo", colo: "NRT" },
  { country: "AU", region: "New South Wales", region_code: "NSW", city: "Sydney", postal_code: "2000", continent: "OC", latitude: -33.87, longitude: 151.21, timezone: "Australia/Sydney", colo: "SYD" },
  { country: "NL", region: "North Holland", region_code: "NH", city: "Amsterdam", postal_code: "1011", continent: "EU", latitude: 52.37, longitude: 4.9, timezone: "Europe/Amsterdam", colo: "AMS" },
  { country: "CA", region: "Ontario", region_code: "ON", city: "Toronto", postal_code: "M5H", continent: "NA", latitude: 43.65, longitude: -79.38, timezone: "America/Toronto", colo: "YYZ" },
] as const;
const UTM = ["", "", "", "", "?utm_source=newsletter&utm_medium=email&utm_campaign=black-friday", "?utm_source=twitter&utm_medium=social&utm_campaign=launch"];

const now = Date.now();
/** One click as the worker reports it: power-law links, real UAs, referers, places, 30 days. */
function clickEventAt(ts: number): ClickEvent {
  const linkId = 1 + Math.floor(LINKS * rnd() ** 3);
  const code = codeOf(linkId);
  const place = pick(PLACES);
  const referer = pick(REFERERS);
  return {
    click_id: crypto.randomUUID(),
    short_url: `https://lnk.example.com/${code}`,
    original_url: `https://www.example-shop.com/products/${linkId % 5000}/item-${linkId}${UTM[linkId % UTM.length]}`,
    timestamp: new Date(ts).toISOString(),
    user_agent: pick(UAS),
    ip_address: `${1 + Math.floor(rnd() * 223)}.${Math.floor(rnd() * 256)}.${Math.floor(rnd() * 256)}.${Math.floor(rnd() * 256)}`,
    referer: referer && referer.endsWith("/comments/") ? `${referer}${Math.floor(rnd() * 1e6).toString(36)}/` : referer,
    geo_location: { ...place, asn: pick([13335, 7922, 3320, 15169, 16509, 4134]) },
    domain: "",
    code,
    link_id: linkId,
    redirect_status: 302,
    cache_tier: rnd() < 0.7 ? "isolate" : rnd() < 0.8 ? "kv" : "origin",
    qr: rnd() < 0.03,
    ...(rnd() < 0.02 ? { dnt: true } : {}),
  };
}
const privacy = { anonymizeIp: true, respectDnt: true, saltSecret: "capacity-bench-secret-0123456789" };

// ---------------------------------------------------------------------------------------------

const fmt = (n: number, d = 0) => n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
const GB = 1e9;

/** SQL literal of a JS string, number or boolean (our own constants only). */
const lit = (v: string | number | boolean) => (typeof v === "string" ? `'${v.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'` : String(v));
const arr = (xs: readonly (string | number | boolean)[]) => `[${xs.map(lit).join(", ")}]`;

/**
 * The same clicks made by ClickHouse itself (INSERT … SELECT FROM numbers()), for the bulk of
 * the sample: the same link power law, user agents, referers, places, tiers, QR and DNT shares as
 * clickEventAt, and the derived columns (browser, OS, device, bot, referer host, UTM) exactly as
 * the loader computes them (ingest/src/analytics/enrich.ts run here on every distinct input). Random
 * UUIDs and 128-bit visitor hashes, as in production, so compression is not flattered.
 */
function bulkSql(count: number) {
  const agents = UAS.map((ua) => parseAgent(ua));
  const classes = UAS.map((ua) => agentClass(ua));
  const hosts = REFERERS.map((r) => hostOf(r));
  const origins = REFERERS.map((r) => refererOrigin(r));
  const utms = UTM.map((u) => utmOf(`https://x.example/${u}`));
  const P = <K extends keyof (typeof PLACES)[number]>(k: K) => arr(PLACES.map((p) => p[k]));
  const r = (k: number) => `(rand(${k}) / 4294967296)`;
  return `INSERT INTO ${DB}.clicks (click_id, link_id, domain, code, short_url, original_url, ts, received_at, user_agent, referer, referer_host,
      country, region, city, latitude, longitude, timezone, colo, asn, redirect_status, cache_tier, qr, browser, os, device, is_bot,
      utm_source, utm_medium, utm_campaign, utm_term, utm_content, visitor_hash)
    SELECT click_id, link_id, domain, code, short_url, original_url, ts, received_at, user_agent, referer, referer_host,
      country, region, city, latitude, longitude, timezone, colo, asn, redirect_status, cache_tier, qr, browser, os, device, is_bot,
      utm_source, utm_medium, utm_campaign, utm_term, utm_content, visitor_hash
    FROM (SELECT
      generateUUIDv4(number) AS click_id,
      1 + toUInt64(floor(${LINKS} * pow(${r(1)}, 3))) AS link_id,
      '' AS domain,
      substring(base58Encode(reinterpretAsString(cityHash64(link_id))), 1, 7) AS code,
      concat('https://lnk.example.com/', code) AS short_url,
      1 + link_id % ${UTM.length} AS u,
      concat('https://www.example-shop.com/products/', toString(link_id % 5000), '/item-', toString(link_id), ${arr(UTM)}[u]) AS original_url,
      fromUnixTimestamp64Milli(toInt64(${now} - ${DAYS * DAY} * ${r(2)}), 'UTC') AS ts,
      ts + toIntervalMillisecond(50 + rand(3) % 200) AS received_at,
      rand(4) % 100 < 2 AS dnt,
      1 + rand(5) % ${UAS.length} AS a,
      1 + rand(6) % ${REFERERS.length} AS f,
      1 + rand(7) % ${PLACES.length} AS p,
      if(dnt, ${arr(classes)}[a], ${arr(UAS)}[a]) AS user_agent,
      if(dnt, ${arr(origins)}[f], if(endsWith(${arr(REFERERS)}[f], '/comments/'), concat(${arr(REFERERS)}[f], lower(hex(rand(8) % 1000000)), '/'), ${arr(REFERERS)}[f])) AS referer,
      ${arr(hosts)}[f] AS referer_host,
      ${P("country")}[p] AS country, ${P("region")}[p] AS region, if(dnt, '', ${P("city")}[p]) AS city,
      if(dnt, NULL, ${P("latitude")}[p]) AS latitude, if(dnt, NULL, ${P("longitude")}[p]) AS longitude,
      ${P("timezone")}[p] AS timezone, ${P("colo")}[p] AS colo,
      [13335, 7922, 3320, 15169, 16509, 4134][1 + rand(9) % 6] AS asn,
      302 AS redirect_status,
      multiIf(${r(10)} < 0.7, 'isolate', ${r(11)} < 0.8, 'kv', 'origin') AS cache_tier,
      rand(12) % 100 < 3 AS qr,
      if(dnt, '', ${arr(agents.map((x) => x.browser))}[a]) AS browser,
      if(dnt, '', ${arr(agents.map((x) => x.os))}[a]) AS os,
      ${arr(agents.map((x) => x.device))}[a] AS device,
      ${arr(agents.map((x) => x.is_bot))}[a] AS is_bot,
      ${arr(utms.map((x) => x.utm_source))}[u] AS utm_source, ${arr(utms.map((x) => x.utm_medium))}[u] AS utm_medium,
      ${arr(utms.map((x) => x.utm_campaign))}[u] AS utm_campaign, '' AS utm_term, '' AS utm_content,
      if(dnt, '', lower(hex(substring(MD5(concat(toString(rand(13) % ${Math.max(1, Math.round(CH_CLICKS / 3))}), toString(toDate(ts)))), 1, 16)))) AS visitor_hash
    FROM numbers(${count}))`;
}

async function clickhouse() {
  const dir = await mkdtemp(join(tmpdir(), "linkflow-capacity-chdb-"));
  const ch = clickhouseClient({ path: dir });
  try {
    await ensureSchema(ch, DB);
    // 1. Through the real path (records as ingest writes them, rows as the loader makes them, the
    //    loader's batch size): the Kinesis record size and one loader's throughput.
    let recordBytes = 0;
    let archiveBytes = 0;
    let insertMs = 0;
    let prepareMs = 0;
    const sample = Math.min(LOADER_SAMPLE, CH_CLICKS);
    for (let done = 0; done < sample; ) {
      const n = Math.min(LOADER_BATCH, sample - done);
      const records: Buffer[] = [];
      for (let i = 0; i < n; i++) {
        const ts = now - DAYS * DAY * rnd();
        const e = applyPrivacy(clickEventAt(ts), privacy);
        // The outbox row / Kinesis record, byte for byte as clicks.ts writes it.
        const data = Buffer.from(JSON.stringify({ ...e, received_at: new Date(ts + 50 + rnd() * 200).toISOString() }));
        recordBytes += data.length;
        records.push(data);
      }
      // The archive's lines are these records without the visitor hash, gzip'ed (archiver.ts:
      // default level); a 10k-line chunk compresses as an hour file does (32 KiB window).
      archiveBytes += gzipSync(
        records.map((d) => {
          const { visitor_hash: _, ...line } = JSON.parse(d.toString("utf8")) as Record<string, unknown>;
          return JSON.stringify(line) + "\n";
        }).join(""),
      ).length;
      // What the loader does per record: parse, validate, enrich into the row.
      const p0 = performance.now();
      const batch = records.map((d) => toClickHouseRow(recordSchema.parse(JSON.parse(d.toString("utf8")))));
      const i0 = performance.now();
      prepareMs += i0 - p0;
      await ch.insert(clickInsert(`${DB}.clicks`, batch));
      insertMs += performance.now() - i0;
      done += n;
    }
    console.log(`  clickhouse: ${fmt(sample)} clicks through the loader's path`);
    // 2. The rest made by ClickHouse, in chunks.
    const b0 = Date.now();
    for (let done = sample; done < CH_CLICKS; ) {
      const n = Math.min(250_000, CH_CLICKS - done);
      await ch.command({ query: bulkSql(n), clickhouse_settings: { max_threads: 2, max_insert_threads: "2" } });
      done += n;
      console.log(`  clickhouse: ${fmt(done)} clicks (${((Date.now() - b0) / 1000).toFixed(0)} s)`);
    }
    // 3. The rollups, as the sealer builds them from the loaded hours (it needs PostgreSQL: the
    //    hour marks and the links' workspaces).
    const pgName = `linkflow_capacity_rollup_${process.pid}`;
    const admin = postgres(DATABASE_URL, { max: 1, onnotice: () => {} });
    await admin.unsafe(`CREATE DATABASE ${pgName}`);
    const pgUrl = Object.assign(new URL(DATABASE_URL), { pathname: `/${pgName}` }).toString();
    const pg = connect(pgUrl, { max: 2 });
    let sealMs = 0;
    let sealedHours = 0;
    try {
      await migrate(pg);
      await pg`INSERT INTO links (id, workspace_id, code, url) SELECT g, (SELECT min(id) FROM workspaces), 'c' || g, 'https://example.com/' FROM generate_series(1, ${LINKS}::int) g`;
      await copyAllOwners(pg, ch, DB);
      await markAllHours(pg, ch, DB);
      const s0 = performance.now();
      sealedHours = await seal({ sql: pg, ch, database: DB });
      sealMs = performance.now() - s0;
      console.log(`  clickhouse: rolled up ${fmt(sealedHours)} hours in ${(sealMs / 1000).toFixed(1)} s`);
    } finally {
      await pg.end();
      await admin.unsafe(`DROP DATABASE IF EXISTS ${pgName} WITH (FORCE)`);
      await admin.end();
    }
    const tables = await rows<{ name: string }>(ch, `SELECT name FROM system.tables WHERE database = {db:String} AND engine LIKE '%MergeTree' ORDER BY name`, { db: DB });
    const o0 = Date.now();
    for (const t of tables) await ch.command({ query: `OPTIMIZE TABLE ${DB}.${t.name} FINAL` });
    const optimizeMs = Date.now() - o0;
    const parts = await rows<{ table: string; parts: number; rows: number; compressed: number; uncompressed: number; on_disk: number }>(
      ch,
      `SELECT table, count() AS parts, sum(rows) AS rows, sum(data_compressed_bytes) AS compressed,
              sum(data_uncompressed_bytes) AS uncompressed, sum(bytes_on_disk) AS on_disk
       FROM system.parts WHERE database = {db:String} AND active GROUP BY table ORDER BY on_disk DESC`,
      { db: DB },
    );
    const columns = await rows<{ name: string; compressed: number; uncompressed: number }>(
      ch,
      `SELECT name, data_compressed_bytes AS compressed, data_uncompressed_bytes AS uncompressed
       FROM system.columns WHERE database = {db:String} AND table = 'clicks' ORDER BY compressed DESC LIMIT 8`,
      { db: DB },
    );
    const [check] = await rows<{ n: number; links: number }>(ch, `SELECT uniqExact(click_id) AS n, uniqExact(link_id) AS links FROM ${DB}.clicks`);
    if (Number(check?.n) !== CH_CLICKS) throw new Error(`ClickHouse holds ${check?.n} distinct clicks, expected ${CH_CLICKS}`);
    const num = (x: unknown) => Number(x);
    const perTable = parts.map((p) => ({
      table: p.table,
      parts: num(p.parts),
      rows: num(p.rows),
      compressed_bytes: num(p.compressed),
      uncompressed_bytes: num(p.uncompressed),
      bytes_on_disk: num(p.on_disk),
      on_disk_per_click: num(p.on_disk) / CH_CLICKS,
    }));
    const sum = (k: "compressed_bytes" | "uncompressed_bytes" | "bytes_on_disk") => perTable.reduce((a, p) => a + p[k], 0);
    return {
      clicks: CH_CLICKS,
      loader_path_clicks: sample,
      links_clicked: num(check?.links),
      days: DAYS,
      record_bytes_avg: recordBytes / sample,
      archive_gzip_bytes_per_click: archiveBytes / sample,
      loader_insert_rows_per_s: sample / (insertMs / 1000),
      loader_prepare_rows_per_s: sample / (prepareMs / 1000),
      loader_rows_per_s: sample / ((insertMs + prepareMs) / 1000),
      optimize_final_s: optimizeMs / 1000,
      rollup_s: sealMs / 1000,
      rollup_hours: sealedHours,
      rollup_us_per_click: (sealMs * 1000) / CH_CLICKS,
      tables: perTable,
      clicks_columns: columns.map((c) => ({ name: c.name, compressed_per_click: num(c.compressed) / CH_CLICKS, uncompressed_per_click: num(c.uncompressed) / CH_CLICKS })),
      compressed_per_click: sum("compressed_bytes") / CH_CLICKS,
      uncompressed_per_click: sum("uncompressed_bytes") / CH_CLICKS,
      on_disk_per_click: sum("bytes_on_disk") / CH_CLICKS,
      raw_table_on_disk_per_click: (perTable.find((p) => p.table === "clicks")?.bytes_on_disk ?? 0) / CH_CLICKS,
      three_years_on_disk_gb: ((sum("bytes_on_disk") / CH_CLICKS) * CLICKS_PER_YEAR * 3) / GB,
    };
  } finally {
    await ch.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The rows ingest's storeClicks writes (same columns, same outbox bytes), as one multi-row
 * insert each in one transaction. Not storeClicks itself: its statement shape is being tuned for
 * speed, and what is measured here is the size of the rows, which the shape does not change.
 * The write rate printed is this loop's, not ingest's (bench/ingest.ts measures that).
 */
async function storeRows(sql: Sql, events: ReturnType<typeof applyPrivacy>[]) {
  await sql.begin(async (tx) => {
    const inserted = await tx<{ click_id: string; received_at: Date }[]>`
      INSERT INTO clicks ${tx(
        events.map((e) => ({
          click_id: e.click_id, link_id: e.link_id, domain: e.domain, code: e.code, short_url: e.short_url, original_url: e.original_url,
          ts: e.timestamp, user_agent: e.user_agent, ip_address: e.ip_address, referer: e.referer, geo_location: e.geo_location,
          redirect_status: e.redirect_status, cache_tier: e.cache_tier, qr: e.qr ?? false, dnt: e.dnt ?? false,
        })),
      )} ON CONFLICT DO NOTHING RETURNING click_id, received_at`;
    const byId = new Map(events.map((e) => [e.click_id, e]));
    await tx`INSERT INTO outbox ${tx(
      inserted.map((r) => {
        const e = byId.get(r.click_id)!;
        return { partition_key: e.code, data: Buffer.from(JSON.stringify({ ...e, received_at: r.received_at.toISOString() })) };
      }),
    )}`;
  });
}

async function postgresql() {
  const dbName = `linkflow_capacity_${process.pid}`;
  const admin = postgres(DATABASE_URL, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${dbName}`);
  const u = new URL(DATABASE_URL);
  u.pathname = `/${dbName}`;
  const sql = connect(u.toString(), { max: 4 });
  try {
    await migrate(sql);
    await ensurePartitions(sql);
    // Clicks of the last hour: all in this month's partition (or, in a month's first hour, the last).
    const events = () => Array.from({ length: PG_BATCH }, () => applyPrivacy(clickEventAt(now - 3_600_000 * rnd()), privacy));
    const t0 = Date.now();
    // Two transactions in flight, as two group-commit groups would be.
    let next = 0;
    const worker = async () => {
      while (next < PG_CLICKS) {
        next += PG_BATCH;
        await storeRows(sql, events());
      }
    };
    await Promise.all([worker(), worker()]);
    const writeS = (Date.now() - t0) / 1000;
    const [{ n }] = (await sql`SELECT count(*)::int AS n FROM clicks`) as unknown as [{ n: number }];
    await sql`VACUUM ANALYZE clicks`;
    await sql`VACUUM ANALYZE outbox`;
    const [c] = (await sql`
      SELECT sum(pg_total_relation_size(i.inhrelid))::bigint AS total, sum(pg_table_size(i.inhrelid))::bigint AS heap,
             sum(pg_indexes_size(i.inhrelid))::bigint AS indexes
      FROM pg_inherits i WHERE i.inhparent = 'clicks'::regclass`) as unknown as [{ total: string; heap: string; indexes: string }];
    const [o] = (await sql`SELECT count(*)::int AS n, pg_total_relation_size('outbox')::bigint AS total FROM outbox`) as unknown as [{ n: number; total: string }];
    // The forwarder deletes what Kinesis accepted: once drained and vacuumed, the outbox keeps
    // its pages for reuse (a table that is written and emptied all day stays at its high-water mark).
    await sql`DELETE FROM outbox`;
    await sql`VACUUM outbox`;
    const [d] = (await sql`SELECT pg_total_relation_size('outbox')::bigint AS total`) as unknown as [{ total: string }];
    const perClick = Number(c.total) / n;
    const perMonthGb = (perClick * PER_MONTH) / GB;
    return {
      clicks: n,
      write_clicks_per_s: n / writeS,
      write_batch: PG_BATCH,
      clicks_total_bytes: Number(c.total),
      clicks_per_click_bytes: perClick,
      clicks_heap_per_click_bytes: Number(c.heap) / n,
      clicks_indexes_per_click_bytes: Number(c.indexes) / n,
      per_month_gb: perMonthGb,
      outbox_rows: o.n,
      outbox_per_row_bytes: Number(o.total) / o.n,
      outbox_after_drain_bytes: Number(d.total),
      // Months of clicks that fit a disk at 80% use (WAL, bloat and one partition being written need the rest).
      months_fit_1tb: Math.floor((0.8 * 1e12) / (perMonthGb * GB)),
      months_fit_4tb: Math.floor((0.8 * 4e12) / (perMonthGb * GB)),
    };
  } finally {
    await sql.end({ timeout: 5 });
    await admin.unsafe(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end({ timeout: 5 });
  }
}

const started = Date.now();
console.log(`capacity: ${fmt(CH_CLICKS)} clicks into chDB, ${fmt(PG_CLICKS)} into PostgreSQL`);
const chr = await clickhouse();
const pgr = await postgresql();
const result = {
  measured_at: new Date().toISOString(),
  machine: `${cpus().length} × ${cpus()[0]?.model.trim()}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`,
  command: "npm run bench:capacity",
  duration_s: Math.round((Date.now() - started) / 1000),
  clickhouse: chr,
  postgresql: pgr,
};

console.log(`\nClickHouse (chDB, ${fmt(chr.clicks)} clicks over ${chr.days} days, ${fmt(chr.links_clicked)} links clicked; after OPTIMIZE FINAL, active parts)`);
console.log("| table | rows | compressed | uncompressed | on disk | on disk per click |\n|---|---:|---:|---:|---:|---:|");
for (const t of chr.tables)
  console.log(`| ${t.table} | ${fmt(t.rows)} | ${fmt(t.compressed_bytes / 1e6, 1)} MB | ${fmt(t.uncompressed_bytes / 1e6, 1)} MB | ${fmt(t.bytes_on_disk / 1e6, 1)} MB | ${fmt(t.on_disk_per_click, 1)} B |`);
console.log(
  `| **all** | | ${fmt(chr.compressed_per_click, 1)} B/click | ${fmt(chr.uncompressed_per_click, 1)} B/click | **${fmt(chr.on_disk_per_click, 1)} B/click** | 3 years × 1B: ${fmt(chr.three_years_on_disk_gb)} GB |`,
);
console.log(
  `Kinesis record (JSON event + received_at + visitor_hash): ${fmt(chr.record_bytes_avg, 0)} B average; archive (gzip NDJSON): ${fmt(chr.archive_gzip_bytes_per_click, 0)} B/click; ` +
    `loader (${fmt(chr.loader_path_clicks)} records): ${fmt(chr.loader_rows_per_s)} rows/s (parse + enrich ${fmt(chr.loader_prepare_rows_per_s)} rows/s, chDB insert ${fmt(chr.loader_insert_rows_per_s)} rows/s); ` +
    `sealer: ${fmt(chr.rollup_hours)} hours rolled up in ${fmt(chr.rollup_s, 1)} s (${fmt(chr.rollup_us_per_click, 1)} µs of sealing a click)`,
);
console.log(`\nPostgreSQL (${fmt(pgr.clicks)} clicks + outbox rows, ${pgr.write_batch}-click transactions, 2 in flight: ${fmt(pgr.write_clicks_per_s)} clicks/s from this loop)`);
console.log("| what | per click | at 1B/year (83.3M/month) |\n|---|---:|---:|");
console.log(`| clicks partition (heap + TOAST) | ${fmt(pgr.clicks_heap_per_click_bytes)} B | |`);
console.log(`| its indexes (pkey, link+ts, received_at) | ${fmt(pgr.clicks_indexes_per_click_bytes)} B | |`);
console.log(`| **total** | **${fmt(pgr.clicks_per_click_bytes)} B** | **${fmt(pgr.per_month_gb, 1)} GB/month** |`);
console.log(`| outbox row while pending | ${fmt(pgr.outbox_per_row_bytes)} B | (after draining + VACUUM: ${fmt(pgr.outbox_after_drain_bytes / 1e6, 1)} MB kept for reuse) |`);
console.log(`Months of clicks that fit at 80% of the disk: 1 TB → ${pgr.months_fit_1tb}, 4 TB → ${pgr.months_fit_4tb}`);

await mkdir(new URL("./results/", import.meta.url), { recursive: true });
await writeFile(new URL("./results/capacity.json", import.meta.url), JSON.stringify(result, null, 2) + "\n");
console.log(`\nwritten bench/results/capacity.json (${result.duration_s} s)`);
