import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLICK_EVENT_VERSION, type ClickEvent } from "../shared/event.ts";
import { ensureSchema, rows } from "../ingest/src/analytics/clickhouse.ts";
import { originLatencyByColo } from "../ingest/src/analytics/edge-latency.ts";
import { clickEvent, postBeacon, seedLinks } from "./fixtures.ts";
import { body, eventually, json, startStack, type Stack } from "./helpers.ts";

/**
 * Click event versions end to end (docs/EVENTS.md): PostgreSQL server, kinesalite, chDB and the
 * worker in workerd, all real. Ingest takes the previous version (today's shape without `v`) and
 * the current one after the migrations; both reach PostgreSQL and ClickHouse, the old one with
 * the new fields at their defaults.
 */
let s: Stack;
let db: string;
beforeAll(async () => {
  // The archiver's timer finds nothing in its first run; the archive test drives it with its own clock.
  s = await startStack({ pipeline: true, env: { PIPELINE_ROLES: "forwarder,loader,archiver,maintenance", ARCHIVE_INTERVAL_MS: "3600000" } });
  db = s.ingest.pipeline.analytics.database;
});
afterAll(() => s?.close());

const ch = () => s.ingest.pipeline.ch!;
const HOUR = 3_600_000;

/** A current-version event (what the worker sends now). */
const v2 = (over: Partial<ClickEvent> = {}): ClickEvent => ({ ...clickEvent(over), v: CLICK_EVENT_VERSION, ...over });

const inPostgres = async (ids: string[]) =>
  new Map((await s.sql<{ click_id: string; origin_ms: number | null; cache_tier: string }[]>`
    SELECT click_id, origin_ms, cache_tier FROM clicks WHERE click_id = ANY(${ids}::uuid[])`).map((r) => [r.click_id, r]));

/** The clicks' ClickHouse rows, once all of them are there. */
async function inClickHouse(ids: string[]) {
  const read = () => rows<{ click_id: string; origin_ms: number | null; cache_tier: string; colo: string }>(ch(), `SELECT click_id, origin_ms, cache_tier, colo FROM ${db}.clicks FINAL WHERE click_id IN {ids:Array(UUID)}`, { ids });
  const got = await eventually(async () => ((await read()).length === ids.length ? read() : null), 60_000, 100);
  expect(got?.length, "every click reached ClickHouse").toBe(ids.length);
  return new Map(got!.map((r) => [r.click_id, r]));
}

describe("click event versions through the whole pipeline", () => {
  it("migrates PostgreSQL and an older ClickHouse data folder additively: stored clicks keep their data, the new column reads NULL", async () => {
    const [migrated] = await s.sql`SELECT count(*)::int AS n FROM schema_migrations WHERE version LIKE '009%'`;
    expect(migrated!.n).toBe(1);
    const [col] = await s.sql`SELECT data_type, is_nullable, column_default FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'clicks' AND column_name = 'origin_ms'`;
    expect(col).toEqual({ data_type: "integer", is_nullable: "YES", column_default: null });

    // A ClickHouse data folder from before version 2 (no click has been sent yet, so the loader
    // inserts nothing meanwhile): without the column (and without clicks_recent, which came
    // later and copies every column), holding a click; then ingest's start-up DDL.
    await ch().command({ query: `DROP VIEW ${db}.clicks_recent_mv` });
    await ch().command({ query: `DROP TABLE ${db}.clicks_recent` });
    await ch().command({ query: `ALTER TABLE ${db}.clicks DROP COLUMN origin_ms` });
    const old = crypto.randomUUID();
    await ch().command({ query: `INSERT INTO ${db}.clicks (click_id, link_id, code, ts, received_at, cache_tier, colo) VALUES ('${old}', 1, 'old', now64(3), now64(3), 'origin', 'FRA')` });
    await ensureSchema(ch(), db);
    const [row] = await rows<{ code: string; origin_ms: number | null; type: string }>(
      ch(),
      `SELECT code, origin_ms, toTypeName(origin_ms) AS type FROM ${db}.clicks WHERE click_id = {id:UUID}`,
      { id: old },
    );
    expect(row).toEqual({ code: "old", origin_ms: null, type: "Nullable(UInt32)" });
    // The new clicks_recent was filled with the recent clicks already there, the column included.
    const [recent] = await rows<{ code: string; type: string }>(ch(), `SELECT code, toTypeName(origin_ms) AS type FROM ${db}.clicks_recent WHERE click_id = {id:UUID}`, { id: old });
    expect(recent).toEqual({ code: "old", type: "Nullable(UInt32)" });
    await ch().command({ query: `DELETE FROM ${db}.clicks WHERE click_id = '${old}'` });
    await ch().command({ query: `DELETE FROM ${db}.clicks_recent WHERE click_id = '${old}'` });
  });

  it("stores a previous-version event (no `v`) and current-version ones in PostgreSQL and ClickHouse", async () => {
    const ts = new Date(Date.now() - HOUR / 2).toISOString();
    const previous = clickEvent({ link_id: 11, code: "ver1", cache_tier: "origin", timestamp: ts });
    expect(previous).not.toHaveProperty("v");
    const origin = v2({ link_id: 12, code: "ver2", cache_tier: "origin", origin_ms: 37, timestamp: ts });
    const cached = v2({ link_id: 12, code: "ver2", cache_tier: "kv", timestamp: ts });
    await seedLinks(s.sql, [previous, origin]);
    expect((await postBeacon(s.ingest.url, previous)).status).toBe(202);
    // Both versions in one beacon too.
    const mixed = [origin, cached, clickEvent({ link_id: 11, code: "ver1", timestamp: ts })];
    expect(await body(await postBeacon(s.ingest.url, mixed))).toEqual({ accepted: 3, duplicates: 0 });

    const ids = [previous, ...mixed].map((e) => e.click_id);
    const pg = await inPostgres(ids);
    expect(pg.size).toBe(4);
    expect(pg.get(previous.click_id)).toMatchObject({ cache_tier: "origin", origin_ms: null });
    expect(pg.get(origin.click_id)).toMatchObject({ cache_tier: "origin", origin_ms: 37 });
    expect(pg.get(cached.click_id)).toMatchObject({ cache_tier: "kv", origin_ms: null });

    const chRows = await inClickHouse(ids);
    expect(chRows.get(previous.click_id)).toMatchObject({ cache_tier: "origin", origin_ms: null, colo: "FRA" });
    expect(chRows.get(origin.click_id)).toMatchObject({ cache_tier: "origin", origin_ms: 37, colo: "FRA" });
    expect(chRows.get(cached.click_id)).toMatchObject({ cache_tier: "kv", origin_ms: null });
    expect(await body(await fetch(`${s.ingest.url}/api/pipeline`, { headers: json(s.adminKey) }))).toMatchObject({ dlq: 0 });
  }, 90_000);

  it("refuses a version newer than it knows (400 unsupported_event_version) and a field the event's version lacks, storing nothing", async () => {
    const before = Number((await s.sql`SELECT count(*) AS n FROM clicks`)[0]!.n);
    const future = { ...v2({ link_id: 12, code: "ver2" }), v: CLICK_EVENT_VERSION + 1, a_field_from_the_future: true };
    const res = await postBeacon(s.ingest.url, [v2({ link_id: 12, code: "ver2" }), future]);
    expect(res.status).toBe(400);
    expect((await body(res)).error).toMatchObject({ status: 400, code: "unsupported_event_version", field: "v" });

    const mixedUp = await postBeacon(s.ingest.url, { ...clickEvent({ link_id: 11, code: "ver1" }), origin_ms: 5 });
    expect(mixedUp.status).toBe(400);
    expect((await body(mixedUp)).error).toMatchObject({ code: "invalid_body", field: "origin_ms" });
    expect(Number((await s.sql`SELECT count(*) AS n FROM clicks`)[0]!.n)).toBe(before);
  });

  it("the worker sends the current version, with origin_ms on origin-tier clicks only", async () => {
    // Behind the API's back: neither KV nor the isolate has it, so the first visit asks the origin.
    const [link] = await s.sql`INSERT INTO links (workspace_id, code, url) VALUES ((SELECT min(id) FROM workspaces), 'ver-edge', 'https://example.com/v') RETURNING id`;
    const visit = () => fetch(`${s.edge!.url}/ver-edge`, { redirect: "manual", headers: { "user-agent": "Mozilla/5.0 (versions)" } });
    const first = await visit();
    expect(first.headers.get("x-cache-tier")).toBe("origin");
    const second = await visit();
    expect(second.headers.get("x-cache-tier")).toBe("isolate");

    const stored = await eventually(async () => {
      const r = await s.sql<{ click_id: string; cache_tier: string; origin_ms: number | null }[]>`SELECT click_id, cache_tier, origin_ms FROM clicks WHERE link_id = ${link!.id}`;
      return r.length === 2 ? r : null;
    }, 10_000);
    const byTier = new Map(stored!.map((r) => [r.cache_tier, r]));
    expect(byTier.get("origin")!.origin_ms).toBeGreaterThanOrEqual(0);
    expect(byTier.get("isolate")!.origin_ms).toBeNull();

    const chRows = await inClickHouse(stored!.map((r) => r.click_id));
    expect(chRows.get(byTier.get("origin")!.click_id)).toMatchObject({ origin_ms: byTier.get("origin")!.origin_ms, colo: "DEV" });
    expect(chRows.get(byTier.get("isolate")!.click_id)).toMatchObject({ origin_ms: null });
  }, 90_000);
});

describe("the archive across versions", () => {
  it("writes current-version lines (v, defaults for what version 1 lacked); files of both versions read together in union mode", async () => {
    await eventually(async () => Number((await s.sql`SELECT count(*) AS n FROM clicks`)[0]!.n) > 0);
    const done = await s.ingest.pipeline.archiver!.archivePending(new Date(Date.now() + 2 * HOUR));
    expect(done.length).toBeGreaterThan(0);
    const dir = join(s.dataDir!, "archive");
    // An hour archived before version 2: version 1 lines (no v, no origin_ms).
    const old = { ...clickEvent({ cache_tier: "origin" }), qr: false, dnt: false, received_at: "2026-01-01T10:00:00.000Z" };
    await mkdir(join(dir, "dt=2026-01-01/hour=10"), { recursive: true });
    await writeFile(join(dir, "dt=2026-01-01/hour=10/clicks.ndjson.gz"), gzipSync(JSON.stringify(old) + "\n"));

    const read = (settings: string) =>
      rows<{ version: number; n: number; measured: number }>(
        ch(),
        `SELECT ifNull(v, 1) AS version, count() AS n, count(origin_ms) AS measured FROM file('${dir}/**/*.ndjson.gz', 'JSONEachRow') GROUP BY version ORDER BY version ${settings}`,
      );
    const [pg] = await s.sql`SELECT count(*)::int AS n, count(origin_ms)::int AS measured FROM clicks`;
    expect((await read("SETTINGS schema_inference_mode = 'union'")).map((r) => ({ ...r, n: Number(r.n), measured: Number(r.measured) }))).toEqual([
      { version: 1, n: 1, measured: 0 },
      { version: CLICK_EVENT_VERSION, n: pg!.n, measured: pg!.measured },
    ]);
  });
});

describe("originLatencyByColo (ingest/src/analytics/edge-latency.ts)", () => {
  it("gives p50/p99 of origin resolves per colo from version 2 clicks: other tiers, version 1 clicks, other links and other times are no samples", async () => {
    const ts = new Date(Date.now() - 2 * HOUR).toISOString();
    const at = (colo: string, origin_ms: number, over: Partial<ClickEvent> = {}) =>
      v2({ link_id: 21, code: "lat", cache_tier: "origin", origin_ms, timestamp: ts, geo_location: { country: "DE", colo }, ...over });
    const fra = [5, 10, 20, 40, 80, 100, 120, 150, 200, 900].map((ms) => at("FRA", ms));
    const ams = [30, 50].map((ms) => at("AMS", ms));
    const noise = [
      v2({ link_id: 21, code: "lat", cache_tier: "kv", timestamp: ts, geo_location: { colo: "FRA" } }), // not an origin resolve
      clickEvent({ link_id: 21, code: "lat", cache_tier: "origin", timestamp: ts, geo_location: { colo: "FRA" } }), // version 1: not measured
      at("FRA", 99_999, { link_id: 22, code: "lat-other" }), // another link
      at("FRA", 99_999, { timestamp: new Date(Date.now() - 5 * HOUR).toISOString() }), // outside the range
    ];
    const events = [...fra, ...ams, ...noise];
    await seedLinks(s.sql, events);
    expect((await postBeacon(s.ingest.url, events)).status).toBe(202);
    // A retried beacon: stored once, so no second sample.
    expect(await body(await postBeacon(s.ingest.url, fra.slice(0, 3)))).toEqual({ accepted: 3, duplicates: 3 });
    await inClickHouse(events.map((e) => e.click_id));

    const from = new Date(Date.now() - 3 * HOUR);
    const to = new Date(Date.now() - HOUR);
    const scoped = await originLatencyByColo({ ch: ch(), database: db, from, to, linkIds: [21] });
    // ClickHouse's quantiles interpolate linearly between the sorted samples (exact up to 8,192 of them).
    expect(scoped).toEqual({
      samples: 12,
      p50_ms: 65,
      p99_ms: 823,
      by_colo: [
        { colo: "FRA", samples: 10, p50_ms: 90, p99_ms: 837 },
        { colo: "AMS", samples: 2, p50_ms: 40, p99_ms: 49.8 },
      ],
    });
    // Every link (an operator): link 22's resolve is a FRA sample too.
    const all = await originLatencyByColo({ ch: ch(), database: db, from, to });
    expect(all.by_colo.find((c) => c.colo === "FRA")).toEqual({ colo: "FRA", samples: 11, p50_ms: 100, p99_ms: 90_089.1 });
    // The SRE edge view answers with the same figures (the operator's key: every link).
    const sre = await body(await fetch(`${s.ingest.url}/api/sre/edge?interval=hour&from=${from.toISOString()}&to=${to.toISOString()}`, { headers: json(s.adminKey) }));
    expect(sre.origin_resolve_latency_ms).toEqual({ ...all, by_colo: all.by_colo });
    // A workspace with no links, and a range with no measured clicks.
    expect(await originLatencyByColo({ ch: ch(), database: db, from, to, linkIds: [] })).toEqual({ samples: 0, p50_ms: null, p99_ms: null, by_colo: [] });
    expect(await originLatencyByColo({ ch: ch(), database: db, from: new Date(Date.now() - 30 * HOUR), to: new Date(Date.now() - 20 * HOUR) })).toEqual({ samples: 0, p50_ms: null, p99_ms: null, by_colo: [] });
  }, 90_000);
});
