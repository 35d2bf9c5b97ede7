import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, open, rename, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { PutObjectCommand, S3Client, type S3ClientConfig } from "@aws-sdk/client-s3";
import type { TransactionSql } from "postgres";
import type { Logger } from "pino";
import { CLICK_EVENT_VERSION, type ClickEvent } from "../../../shared/event.ts";
import type { Sql } from "../db/connect.ts";
import type { Partition } from "./partitions.ts";

/**
 * The archive (retention requirement R-1; Firehose → S3 in the architecture decision): every
 * click, once, as gzip NDJSON in one file per hour of received_at:
 *
 *   <ARCHIVE_DIR>/dt=YYYY-MM-DD/hour=HH/clicks.ndjson.gz   (and the same key in S3, if set)
 *
 * Why exactly once: a click's received_at never changes, so it belongs to exactly one hour;
 * an hour is read only once it is closed (plus a grace period, because received_at is the
 * start of the inserting transaction, which may commit a little later); its file is written
 * under a temporary name and renamed, then the hour is recorded in archive_log in the same
 * transaction that read it. A crash before that commit leaves the hour unrecorded, so the
 * next run writes the same name again: an overwrite, never a second copy.
 */

const HOUR = 3_600_000;
// Any constant: archivers in several processes take turns, so an hour is written by one.
const ARCHIVE_LOCK = 7_000_002;
const CURSOR_ROWS = 2_000;

/** Each line: the Kinesis record's fields (the shared event plus received_at). */
export type ArchivedClick = ClickEvent & { received_at: string };

export interface ArchivedHour {
  hour: Date;
  rows: number;
  /** The object key under ARCHIVE_DIR (and the S3 prefix). */
  key: string;
  /** Where it went: the S3 URL when uploaded, else the local file. */
  location: string;
}

/** Uploads a finished hour file; returns where it went (recorded in archive_log). */
export type Upload = (key: string, file: string) => Promise<string>;

export interface ArchiverOptions {
  sql: Sql;
  log: Logger;
  /** Local archive root (ARCHIVE_DIR). */
  dir: string;
  /** S3 (or anything else) after the local file is complete; unset: local files only. */
  upload?: Upload;
  /** How long after an hour ends it is still considered open (late-committing transactions). */
  graceMs?: number;
}

/** The hour's object key: Hive-style partitions, so query engines can prune by dt/hour. */
export function hourKey(hour: Date): string {
  const iso = hour.toISOString();
  return `dt=${iso.slice(0, 10)}/hour=${iso.slice(11, 13)}/clicks.ndjson.gz`;
}

interface ClickRow {
  click_id: string;
  short_url: string;
  original_url: string;
  ts: Date;
  user_agent: string;
  ip_address: string;
  referer: string;
  geo_location: ClickEvent["geo_location"];
  domain: string;
  code: string;
  link_id: string | number;
  redirect_status: ClickEvent["redirect_status"];
  cache_tier: ClickEvent["cache_tier"];
  qr: boolean;
  dnt: boolean;
  origin_ms: number | null;
  isolate_id: string | null;
  /** bigint arrives as text */
  seq: string | number | null;
  received_at: Date;
}

const toEvent = (r: ClickRow): ArchivedClick => ({
  click_id: r.click_id,
  short_url: r.short_url,
  original_url: r.original_url,
  timestamp: r.ts.toISOString(),
  user_agent: r.user_agent,
  ip_address: r.ip_address,
  referer: r.referer,
  geo_location: r.geo_location,
  domain: r.domain,
  code: r.code,
  link_id: Number(r.link_id), // bigint arrives as text
  redirect_status: r.redirect_status,
  cache_tier: r.cache_tier,
  qr: r.qr,
  dnt: r.dnt,
  // Written from PostgreSQL's columns, so every line is the current version (docs/EVENTS.md).
  v: CLICK_EVENT_VERSION,
  origin_ms: r.origin_ms,
  isolate_id: r.isolate_id,
  seq: r.seq === null ? null : Number(r.seq),
  received_at: r.received_at.toISOString(),
});

/**
 * The oldest closed hour that has clicks and is not in archive_log, or null. Walks from the
 * oldest click, jumping over runs of archived hours (index lookups on received_at, never a
 * scan of empty hours or of every archived row).
 */
async function nextHour(tx: TransactionSql, closedBefore: Date): Promise<Date | null> {
  let from = new Date(0);
  for (;;) {
    const [first] = await tx<{ hour: Date | null }[]>`
      SELECT date_trunc('hour', min(received_at), 'UTC') AS hour FROM clicks
      WHERE received_at >= ${from} AND received_at < ${closedBefore}`;
    const hour = first?.hour;
    if (!hour) return null;
    // The end of the run of consecutive archived hours starting at `hour` (null: not archived).
    const [run] = await tx<{ next: Date | null }[]>`
      SELECT min(a.hour) + interval '1 hour' AS next FROM archive_log a
      WHERE a.hour >= ${hour}
        AND EXISTS (SELECT 1 FROM archive_log s WHERE s.hour = ${hour})
        AND NOT EXISTS (SELECT 1 FROM archive_log b WHERE b.hour = a.hour + interval '1 hour')`;
    if (!run?.next) return hour;
    from = run.next;
  }
}

/** Streams one hour of clicks (a cursor, so memory stays flat) into gzip NDJSON at `file`. */
async function writeHour(tx: TransactionSql, hour: Date, file: string): Promise<number> {
  await mkdir(dirname(file), { recursive: true });
  // Not *.ndjson.gz: a half-written file never matches the archive's glob.
  const tmp = `${file}.${process.pid}.tmp`;
  const end = new Date(hour.getTime() + HOUR);
  let n = 0;
  async function* lines() {
    const cursor = tx<ClickRow[]>`
      SELECT click_id, short_url, original_url, ts, user_agent, ip_address, referer, geo_location,
             domain, code, link_id, redirect_status, cache_tier, qr, dnt, origin_ms, isolate_id, seq, received_at
      FROM clicks WHERE received_at >= ${hour} AND received_at < ${end}
      ORDER BY received_at, click_id`.cursor(CURSOR_ROWS);
    for await (const batch of cursor) {
      n += batch.length;
      yield Buffer.from(batch.map((r) => JSON.stringify(toEvent(r)) + "\n").join(""));
    }
  }
  try {
    await pipeline(Readable.from(lines()), createGzip(), createWriteStream(tmp));
    // On disk before archive_log says so.
    const fh = await open(tmp, "r+");
    await fh.sync().finally(() => fh.close());
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await syncDir(dirname(file));
  return n;
}

/** Makes the rename durable (best effort: not every platform can fsync a directory). */
async function syncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, "r");
    await fh.sync().finally(() => fh.close());
  } catch {
    /* the file itself is synced; a lost rename only means the hour is written again */
  }
}

export function createArchiver(o: ArchiverOptions) {
  const graceMs = o.graceMs ?? 120_000;
  let running: Promise<unknown> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  /** Archives the oldest pending closed hour; null when there is none. */
  async function archiveOnce(now = new Date()): Promise<ArchivedHour | null> {
    const closedBefore = new Date(Math.floor((now.getTime() - graceMs) / HOUR) * HOUR);
    return o.sql.begin(async (tx) => {
      // Waits for another process's archiver, then sees the hours it recorded.
      await tx`SELECT pg_advisory_xact_lock(${ARCHIVE_LOCK})`;
      const hour = await nextHour(tx, closedBefore);
      if (!hour) return null;
      const key = hourKey(hour);
      const file = join(o.dir, key);
      const rows = await writeHour(tx, hour, file);
      const location = o.upload ? await o.upload(key, file) : file;
      await tx`INSERT INTO archive_log (hour, rows, location) VALUES (${hour}, ${rows}, ${location})`;
      o.log.info({ hour, rows, location }, "archive: hour written");
      return { hour, rows, key, location };
    });
  }

  /** Archives every pending closed hour, oldest first (runs in this process never overlap). */
  function archivePending(now = new Date()): Promise<ArchivedHour[]> {
    const run = running.catch(() => {}).then(async () => {
      const done: ArchivedHour[] = [];
      for (let h = await archiveOnce(now); h; h = stopped ? null : await archiveOnce(now)) done.push(h);
      return done;
    });
    running = run;
    return run;
  }

  return {
    archiveOnce,
    archivePending,
    start(intervalMs: number) {
      const tick = () =>
        void archivePending().catch((err) => o.log.warn({ err: String(err) }, "archive failed; retrying next interval"));
      tick();
      timer = setInterval(tick, intervalMs);
    },
    async stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      await running.catch(() => {});
    },
  };
}
export type Archiver = ReturnType<typeof createArchiver>;

/**
 * Whether every click in the partition is archived: no row whose received_at hour is missing
 * from archive_log. (Retention asks this before dropping a partition.)
 */
export async function partitionArchived(sql: Sql, p: Partition): Promise<boolean> {
  const [r] = await sql<{ ok: boolean }[]>`
    SELECT NOT EXISTS (
      SELECT 1 FROM ${sql(p.name)} c
      WHERE NOT EXISTS (SELECT 1 FROM archive_log a WHERE a.hour = date_trunc('hour', c.received_at, 'UTC'))
    ) AS ok`;
  return r?.ok === true;
}

export interface S3Target {
  bucket: string;
  /** Key prefix ("" or e.g. "linkflow/clicks"); a missing trailing slash is added. */
  prefix?: string;
  /** Unset: AWS_REGION or the standard chain. */
  region?: string;
  /** S3-compatible stores (MinIO, …): their endpoint, with path-style addressing. */
  endpoint?: string;
}

/**
 * Uploads hour files to S3 under the same key as on disk. One PutObject per hour (up to 5 GB
 * per object); credentials come from the standard AWS chain. `client` overrides are for tests.
 */
export function s3Uploader(t: S3Target, client: S3ClientConfig = {}): { upload: Upload; destroy: () => void } {
  const s3 = new S3Client({
    ...(t.region ? { region: t.region } : {}),
    ...(t.endpoint ? { endpoint: t.endpoint, forcePathStyle: true } : {}),
    ...client,
  });
  const prefix = t.prefix && !t.prefix.endsWith("/") ? `${t.prefix}/` : (t.prefix ?? "");
  return {
    async upload(key, file) {
      const Key = prefix + key;
      const { size } = await stat(file);
      await s3.send(
        new PutObjectCommand({ Bucket: t.bucket, Key, Body: createReadStream(file), ContentLength: size, ContentType: "application/gzip" }),
      );
      return `s3://${t.bucket}/${Key}`;
    },
    destroy: () => s3.destroy(),
  };
}
