import { readdir, readFile, stat } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join, relative } from "node:path";
import { gunzipSync } from "node:zlib";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLICK_EVENT_VERSION, clickEventSchema, type ClickEvent } from "../shared/event.ts";
import { createArchiver, hourKey, partitionArchived, s3Uploader, type ArchivedClick } from "../ingest/src/pipeline/archiver.ts";
import { rows } from "../ingest/src/analytics/clickhouse.ts";
import { storeClicks } from "../ingest/src/clicks/store.ts";
import { applyPrivacy } from "../ingest/src/clicks/privacy.ts";
import { dropExpiredPartitions, ensurePartitions, listPartitions } from "../ingest/src/pipeline/partitions.ts";
import { clickEvent, postBeacon, seedLinks } from "./fixtures.ts";
import { eventually, KEYS, startStack, type Stack } from "./helpers.ts";

/** The archiver against the real PostgreSQL server, with chDB reading the archive back. */
let s: Stack;
let dir: string;
const silent = pino({ level: "silent" });
const HOUR = 3_600_000;

beforeAll(async () => {
  // The timer's first run finds nothing; the tests drive archivePending with their own clock.
  s = await startStack({ edge: false, pipeline: true, env: { PIPELINE_ROLES: "forwarder,loader,archiver,maintenance", ARCHIVE_INTERVAL_MS: "3600000" } });
  dir = join(s.dataDir!, "archive");
});
afterAll(() => s?.close());

const archiver = () => s.ingest.pipeline.archiver!;

async function send(events: ClickEvent[]) {
  await seedLinks(s.sql, events); // ingest takes clicks only for the link at their domain/code
  for (let i = 0; i < events.length; i += 50) expect((await postBeacon(s.ingest.url, events.slice(i, i + 50))).status).toBe(202);
}

/**
 * Clicks older than a beacon may carry (shared/event.ts MAX_CLICK_AGE_MS), stored as the beacon
 * route stores them: the privacy step (as the stack is configured), then click and outbox rows
 * in one statement, so the forwarder and loader carry them to ClickHouse.
 */
async function storeOld(events: ClickEvent[]) {
  const privacy = { anonymizeIp: false, respectDnt: true, saltSecret: Buffer.from(KEYS.visitorSalt).toString("hex") };
  await storeClicks(s.sql, events.map((e) => applyPrivacy(e, privacy)));
}

async function archiveFiles(root = dir): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(root, { withFileTypes: true, recursive: true })) if (e.isFile()) out.push(join(e.parentPath, e.name));
  return out.sort();
}

const readArchive = async (file: string): Promise<ArchivedClick[]> =>
  gunzipSync(await readFile(file)).toString("utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));

const fromArchive = async () => {
  const [r] = await rows<{ n: number; u: number }>(
    s.ingest.pipeline.ch!,
    `SELECT count() AS n, uniqExact(click_id) AS u FROM file('${dir}/**/*.ndjson.gz', 'JSONEachRow')`,
  );
  return { n: Number(r!.n), u: Number(r!.u) };
};

describe("archive", () => {
  const sent: ClickEvent[] = Array.from({ length: 300 }, (_, i) =>
    clickEvent({ link_id: 1 + (i % 5), code: `arc${i % 5}`, timestamp: new Date(Date.now() - (i % 3) * HOUR).toISOString(), referer: i % 2 ? "https://r.example/" : "" }),
  );

  it("writes every click once, per hour of received_at, as gzip NDJSON with every field", async () => {
    await send(sent);
    await send(sent.slice(0, 40)); // retried beacons: stored once, so archived once
    const hours = await s.sql<{ hour: Date; n: number }[]>`
      SELECT date_trunc('hour', received_at, 'UTC') AS hour, count(*)::int AS n FROM clicks GROUP BY 1 ORDER BY 1`;

    // Nothing is archived while its hour is open...
    expect(await archiver().archivePending(new Date())).toEqual([]);
    // ...and everything once the clock is two hours on (the current hour is then closed).
    const later = new Date(Date.now() + 2 * HOUR);
    const done = await archiver().archivePending(later);
    expect(done.map((h) => [h.hour.toISOString(), h.rows])).toEqual(hours.map((h) => [h.hour.toISOString(), h.n]));
    expect(done.reduce((sum, h) => sum + h.rows, 0)).toBe(sent.length);

    const files = await archiveFiles();
    expect(files.map((f) => relative(dir, f))).toEqual(hours.map((h) => hourKey(h.hour)));
    expect(relative(dir, files[0]!)).toMatch(/^dt=\d{4}-\d{2}-\d{2}\/hour=\d{2}\/clicks\.ndjson\.gz$/);
    const lines = (await Promise.all(files.map(readArchive))).flat();
    expect(lines.length).toBe(sent.length);
    const byId = new Map(sent.map((e) => [e.click_id, e]));
    for (const { received_at, ...event } of lines) {
      // Each line is a complete, valid event (the schema is strict) plus its received_at...
      expect(clickEventSchema.parse(event)).toEqual(event);
      expect(Object.keys(event).sort()).toEqual(Object.keys(clickEventSchema.shape).sort());
      expect(Date.parse(received_at)).not.toBeNaN();
      // ...identical to what the edge sent, as a current-version record (these are version 1
      // events: the later fields at their defaults, docs/EVENTS.md).
      expect(event).toEqual({ qr: false, dnt: false, v: CLICK_EVENT_VERSION, origin_ms: null, isolate_id: null, seq: null, ...byId.get(event.click_id) });
    }
    expect(new Set(lines.map((l) => l.click_id)).size).toBe(sent.length);

    const log = await s.sql`SELECT hour, rows, location FROM archive_log ORDER BY hour`;
    expect(log.map((r) => [(r.hour as Date).toISOString(), r.rows, r.location])).toEqual(done.map((h) => [h.hour.toISOString(), h.rows, join(dir, h.key)]));
  });

  it("writes nothing new on the next run (exactly once)", async () => {
    const before = await Promise.all((await archiveFiles()).map(async (f) => [f, (await stat(f)).mtimeMs]));
    expect(await archiver().archivePending(new Date(Date.now() + 2 * HOUR))).toEqual([]);
    expect(await Promise.all((await archiveFiles()).map(async (f) => [f, (await stat(f)).mtimeMs]))).toEqual(before);
  });

  it("can be queried with ClickHouse's file() (chDB here, clickhouse local the same)", async () => {
    expect(await fromArchive()).toEqual({ n: sent.length, u: sent.length });
    // Hive-style folders become columns.
    const perHour = await rows<{ dt: string; hour: string; n: number }>(
      s.ingest.pipeline.ch!,
      `SELECT dt, hour, count() AS n FROM file('${dir}/**/*.ndjson.gz', 'JSONEachRow') GROUP BY dt, hour ORDER BY dt, hour SETTINGS use_hive_partitioning = 1`,
    );
    const log = await s.sql<{ hour: Date; rows: number }[]>`SELECT hour, rows FROM archive_log ORDER BY hour`;
    expect(perHour.map((r) => [`${r.dt}T${String(r.hour).padStart(2, "0")}`, Number(r.n)])).toEqual(log.map((l) => [l.hour.toISOString().slice(0, 13), l.rows]));
    const [perLink] = await rows<{ n: number }>(
      s.ingest.pipeline.ch!,
      `SELECT count() AS n FROM file('${dir}/**/*.ndjson.gz', 'JSONEachRow') WHERE link_id = 3 AND geo_location.country = 'DE'`,
    );
    expect(Number(perLink!.n)).toBe(sent.filter((e) => e.link_id === 3).length);
  });

  it("drops an expired partition only once it is in ClickHouse and archived", async () => {
    // Two old months (within ClickHouse's 3-year TTL, beyond the 90 days of PostgreSQL): month
    // A is stored as beacons are, with outbox rows (so the loader puts it in ClickHouse); month B
    // is written to PostgreSQL only (never reaches ClickHouse).
    const month = (m: number, day = 1, h = 0, min = 0) => new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth() + m, day, h, min));
    const name = (m: number) => `clicks_y${month(m).getUTCFullYear()}m${String(month(m).getUTCMonth() + 1).padStart(2, "0")}`;
    await ensurePartitions(s.sql, month(-9, 15), 0); // months -10 (A) and -9
    await ensurePartitions(s.sql, month(-6, 15), 0); // months -7 (B) and -6
    const a = Array.from({ length: 30 }, (_, i) => clickEvent({ code: "old1", timestamp: month(-10, 10, i % 4, i).toISOString() }));
    await storeOld(a);
    const b = Array.from({ length: 5 }, (_, i) => clickEvent({ code: "old2", timestamp: month(-7, 10, 8, i).toISOString() }));
    const bRows = b.map(({ timestamp, ...e }) => ({ ...e, ts: timestamp }));
    await s.sql`INSERT INTO clicks ${s.sql(bRows)}`; // no outbox row: never forwarded
    // These clicks were received back then (the archive's hours follow received_at).
    await s.sql`UPDATE clicks SET received_at = ts + interval '1 minute' WHERE code IN ('old1', 'old2')`;
    const total = sent.length + a.length;
    const inCh = async () => Number((await rows<{ n: number }>(s.ingest.pipeline.ch!, `SELECT uniqExact(click_id) AS n FROM linkflow.clicks WHERE code = 'old1'`))[0]!.n);
    expect(await eventually(async () => (await inCh()) === a.length, 20_000, 100)).toBe(true);

    const ch = s.ingest.pipeline.ch!;
    const retain = () => dropExpiredPartitions(s.sql, ch, "linkflow", 90, silent, (p) => partitionArchived(s.sql, p));
    // Not archived yet: A stays (B also lacks ClickHouse); the empty months go.
    expect(await retain()).toEqual([name(-9), name(-6)]);
    expect((await listPartitions(s.sql)).map((p) => p.name)).toEqual(expect.arrayContaining([name(-10), name(-7)]));

    // The old hours come before the already archived current hour: still found and written.
    const done = await archiver().archivePending(new Date());
    expect(done.reduce((sum, h) => sum + h.rows, 0)).toBe(a.length + b.length);
    expect(done.map((h) => h.hour)).toEqual([month(-10, 10, 0), month(-10, 10, 1), month(-10, 10, 2), month(-10, 10, 3), month(-7, 10, 8)]);

    expect(await retain()).toEqual([name(-10)]); // B: archived, but not in ClickHouse
    const [left] = await s.sql`SELECT count(*)::int AS n FROM clicks WHERE code IN ('old1', 'old2')`;
    expect(left!.n).toBe(b.length);
    // The dropped month is still there, in the archive.
    expect(await fromArchive()).toEqual({ n: total + b.length, u: total + b.length });
  });

  it("uploads each hour file to S3 under the same key, and records where", async () => {
    const puts: { path: string; size: number }[] = [];
    const server = createServer((req, res) => {
      let size = 0;
      req.on("data", (c: Buffer) => (size += c.length));
      req.on("end", () => {
        puts.push({ path: decodeURIComponent(req.url!.split("?")[0]!), size: Number(req.headers["x-amz-decoded-content-length"] ?? size) });
        res.writeHead(200, { ETag: '"0"' }).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const s3 = s3Uploader({ bucket: "archive-bucket", prefix: "linkflow/clicks", endpoint }, { region: "eu-central-1", credentials: { accessKeyId: "test", secretAccessKey: "test" } });
    try {
      const events = Array.from({ length: 7 }, () => clickEvent({ link_id: 6, code: "s3" }));
      await send(events);
      const ids = events.map((e) => e.click_id);
      await s.sql`UPDATE clicks SET received_at = '2019-06-01T10:05:00Z' WHERE click_id IN ${s.sql(ids)}`;
      const done = await createArchiver({ sql: s.sql, log: silent, dir, upload: s3.upload }).archivePending(new Date());
      const key = "dt=2019-06-01/hour=10/clicks.ndjson.gz";
      expect(done).toEqual([{ hour: new Date("2019-06-01T10:00:00Z"), rows: 7, key, location: `s3://archive-bucket/linkflow/clicks/${key}` }]);
      expect(puts).toEqual([{ path: `/archive-bucket/linkflow/clicks/${key}`, size: (await stat(join(dir, key))).size }]);
      const [logged] = await s.sql`SELECT location FROM archive_log WHERE hour = '2019-06-01T10:00:00Z'`;
      expect(logged!.location).toBe(`s3://archive-bucket/linkflow/clicks/${key}`);
      expect((await readArchive(join(dir, key))).map((l) => l.click_id).sort()).toEqual([...ids].sort());
    } finally {
      s3.destroy();
      server.close();
    }
  });

  it("after a crash between writing and recording, writes the same file again (no second copy)", async () => {
    const events = Array.from({ length: 3 }, () => clickEvent({ link_id: 7, code: "crash" }));
    await send(events);
    await s.sql`UPDATE clicks SET received_at = '2019-07-01T05:10:00Z' WHERE click_id IN ${s.sql(events.map((e) => e.click_id))}`;
    const key = "dt=2019-07-01/hour=05/clicks.ndjson.gz";
    const failing = createArchiver({ sql: s.sql, log: silent, dir, upload: async () => { throw new Error("upload lost"); } });
    await expect(failing.archivePending(new Date())).rejects.toThrow("upload lost");
    expect((await readArchive(join(dir, key))).length).toBe(3); // written, but not recorded
    expect(await s.sql`SELECT 1 FROM archive_log WHERE hour = '2019-07-01T05:00:00Z'`).toHaveLength(0);

    const [again] = await archiver().archivePending(new Date());
    expect(again).toMatchObject({ key, rows: 3 });
    expect((await readArchive(join(dir, key))).map((l) => l.click_id).sort()).toEqual(events.map((e) => e.click_id).sort());
    expect((await archiveFiles()).filter((f) => !f.endsWith("/clicks.ndjson.gz"))).toEqual([]); // no temporary files left
    // The archive holds exactly what archive_log says (the dropped month included).
    const [{ n }] = (await s.sql`SELECT sum(rows)::int AS n FROM archive_log`) as unknown as [{ n: number }];
    expect(await fromArchive()).toEqual({ n, u: n });
  });
});
