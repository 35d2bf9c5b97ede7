import {
  GetRecordsCommand,
  GetShardIteratorCommand,
  ListShardsCommand,
  type KinesisClient,
  type _Record,
} from "@aws-sdk/client-kinesis";
import type { Logger } from "pino";
import { z } from "zod";
import { clickEventSchema } from "../../../shared/event.ts";
import { unpackRecord } from "./aggregate.ts";
import { Breaker, BREAKER_GAUGE, isBreakerOpen } from "./breaker.ts";
import { chTimeOfIso, LOADER_INSERT_SETTINGS, type ClickHouseClient } from "../analytics/clickhouse.ts";
import { hoursOf, markHours } from "../analytics/rollup.ts";
import { linkOwners } from "../analytics/link-owners.ts";
import { bump } from "../db/counters.ts";
import { enrich } from "../analytics/enrich.ts";
import type { Sql } from "../db/connect.ts";
import { sleep } from "../../../shared/sleep.ts";
import { backoff } from "./backoff.ts";
import type { Metrics } from "../metrics.ts";

/**
 * A Kinesis record as the forwarder writes it: the click event (after the privacy step) plus its
 * PostgreSQL commit time and the visitor hash computed at beacon time (absent in records written
 * before it existed: those count as no visitor).
 */
export const recordSchema = clickEventSchema.extend({
  received_at: z.iso.datetime({ offset: true }),
  visitor_hash: z.string().max(64).optional(),
});
export type ClickRecord = z.infer<typeof recordSchema>;
const compiledRecordSchema = z.compile(recordSchema);

export interface LoaderOptions {
  sql: Sql;
  kinesis: KinesisClient;
  ch: ClickHouseClient;
  database: string;
  stream: string;
  batchRows: number;
  batchMs: number;
  maxAttempts: number;
  breakerFailures: number;
  breakerResetMs: number;
  log: Logger;
  metrics: Metrics;
  /** This loader's name in the shard leases. */
  owner: string;
  /** What a valid record is (tests swap in a newer schema to show a DLQ replay after a fix). */
  schema?: z.ZodType<ClickRecord>;
  /** Lease length (s), renewal and ListShards periods (ms); tests shorten them. */
  leaseS?: number;
  renewMs?: number;
  listShardsMs?: number;
  /** Wraps the ClickHouse insert (tests: a slow, failing or unavailable ClickHouse). */
  insert?: (insert: InsertClicks) => InsertClicks;
}

const DEFAULT_LEASE_S = 15;
const DEFAULT_RENEW_MS = 5_000;
const DEFAULT_LIST_SHARDS_MS = 10_000;
const IDLE_POLL_MS = 200;

// ClickHouse error codes that mean "this data is wrong", not "ClickHouse is unavailable".
const DATA_ERRORS = new Set(["6", "26", "27", "38", "41", "53", "69", "70", "72", "117", "130", "131", "190", "349", "472"]);
const isDataError = (err: unknown) => DATA_ERRORS.has(String((err as { code?: unknown }).code ?? ""));

/**
 * The ClickHouse row for one click (no IP address: analytics never needs the raw IP), with the
 * enrichment done once here (ingest/src/analytics/enrich.ts): browser, OS, device, bot flag, referer
 * host, UTM of the destination. A re-delivered record gives the same row.
 */
export function toClickHouseRow(r: ClickRecord) {
  const g = r.geo_location;
  const x = enrich(r);
  return {
    click_id: r.click_id,
    link_id: r.link_id,
    domain: r.domain,
    code: r.code,
    short_url: r.short_url,
    original_url: r.original_url,
    ts: chTimeOfIso(r.timestamp),
    received_at: chTimeOfIso(r.received_at),
    user_agent: r.user_agent,
    referer: r.referer,
    referer_host: x.referer_host,
    country: g.country ?? "",
    region: g.region ?? "",
    city: g.city ?? "",
    latitude: g.latitude ?? null,
    longitude: g.longitude ?? null,
    timezone: g.timezone ?? "",
    colo: g.colo ?? "",
    asn: g.asn ?? 0,
    redirect_status: r.redirect_status,
    cache_tier: r.cache_tier,
    qr: r.qr ?? false,
    browser: x.browser,
    os: x.os,
    device: x.device,
    is_bot: x.is_bot,
    utm_source: x.utm_source,
    utm_medium: x.utm_medium,
    utm_campaign: x.utm_campaign,
    utm_term: x.utm_term,
    utm_content: x.utm_content,
    visitor_hash: r.visitor_hash ?? "",
    // Version 2 (docs/EVENTS.md); NULL when not measured (not an origin-tier click, or a version 1 record).
    origin_ms: r.origin_ms ?? null,
  };
}
type Row = ReturnType<typeof toClickHouseRow>;
/** A row's columns in toClickHouseRow's order (a test holds the two together). */
export const CLICK_COLUMNS = [
  "click_id", "link_id", "domain", "code", "short_url", "original_url", "ts", "received_at", "user_agent", "referer", "referer_host",
  "country", "region", "city", "latitude", "longitude", "timezone", "colo", "asn", "redirect_status", "cache_tier", "qr",
  "browser", "os", "device", "is_bot", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "visitor_hash", "origin_ms",
] as const satisfies readonly (keyof Row)[];
/**
 * The insert of rows into `table`: each row as a JSON array of its values under one column list
 * (JSONCompactEachRow), not an object repeating the 33 names: ~40 % fewer bytes to write and for
 * ClickHouse to parse (a typical row 512 against 868), and chDB took ~23 µs of CPU a row this way
 * against ~33 as JSONEachRow (medians of 12 alternating inserts of 2,500 rows).
 */
export const clickInsert = (table: string, rows: Row[]) => ({
  table,
  values: rows.map((r) => Object.values(r)),
  columns: CLICK_COLUMNS as unknown as [string, ...string[]],
  format: "JSONCompactEachRow" as const,
  clickhouse_settings: LOADER_INSERT_SETTINGS,
});
/** One insert of rows into the clicks table. */
export type InsertClicks = (rows: Row[]) => Promise<void>;

interface Shard {
  id: string;
  iterator?: string;
  /** Last sequence number read (in memory) and last one checkpointed (in PostgreSQL). */
  fetched?: string;
  closed: boolean;
}

interface Pending {
  row: Row;
  /** The click as read (the record, or its part of an aggregate), kept for the dead-letter table (replay sends it again). */
  payload: Buffer;
  receivedAt: number;
  shard: string;
  /** Where the click was read: the record's sequence number, plus ":<index>" in an aggregate. */
  seq: string;
}

/** How far a flush takes a shard's checkpoint: the last sequence number read, and whether the shard was read to its end then. */
interface Position {
  seq: string | null;
  closed: boolean;
}

/** One flush's work: rows to insert, then the shard positions to checkpoint. */
interface Batch {
  rows: Pending[];
  upTo: Map<string, Position>;
  firstAt: number;
}


/**
 * Kinesis → ClickHouse. Reads every shard it holds a lease on, batches rows (by count and by
 * time), inserts them, and only then checkpoints each shard's last sequence number in
 * PostgreSQL. A crash re-reads from the checkpoint: duplicates, collapsed by ClickHouse.
 * Records that do not parse or validate go to the dead-letter table and the shard moves on.
 *
 * Reading goes on while a batch is being inserted (one insert at a time, so checkpoints only
 * move forward): a slow insert does not hold back the reading of the next batch, so a click's
 * lag is its batch window plus one insert, not the insert before its own as well.
 */
export function createLoader(o: LoaderOptions) {
  // Compiled (zod's generated parser; its runtime, with the same errors, when that one fails).
  const schema = o.schema ?? compiledRecordSchema;
  const LEASE_S = o.leaseS ?? DEFAULT_LEASE_S;
  const RENEW_MS = o.renewMs ?? DEFAULT_RENEW_MS;
  const LIST_SHARDS_MS = o.listShardsMs ?? DEFAULT_LIST_SHARDS_MS;
  const shards = new Map<string, Shard>();
  /** Rows read since the last flush began. */
  let buffer: Pending[] = [];
  /** Positions read per shard since the last flush began (incl. dead-lettered records). */
  let upTo = new Map<string, Position>();
  /** Each listed shard's parents (a split's one, a merge's two), from ListShards. */
  const parents = new Map<string, string[]>();
  let firstAt = 0;
  let attempts = 0;
  /** Consecutive failed steps (backoff); reset by a step that succeeds with no insert in flight, or by a flush that succeeds. */
  let failures = 0;
  /** The flush in flight, and the error of the last one when it failed (its rows are back in the buffer). */
  let flushing: Promise<void> | undefined;
  let flushError: unknown;
  let lastRenew = 0;
  let lastList = 0;

  const owners = linkOwners(o.sql, o.ch, o.database);
  const chInsert: InsertClicks = async (rows) => {
    // Each link's owner first: no click is in ClickHouse without it (workspace questions read the raw table through it).
    await owners.ensure(rows.map((r) => r.link_id));
    await o.ch.insert(clickInsert(`${o.database}.clicks`, rows));
  };
  const insertRows = o.insert ? o.insert(chInsert) : chInsert;
  const insert = new Breaker("clickhouse", insertRows, {
    failures: o.breakerFailures,
    resetMs: o.breakerResetMs,
    isFailure: (err) => !isDataError(err),
  });
  const setGauge = () => o.metrics.breakerState.set({ breaker: "clickhouse" }, BREAKER_GAUGE[insert.state]);
  insert.onChange(setGauge);
  insert.onChange((st) => st === "open" && o.log.warn("clickhouse breaker open: the loader holds its position in Kinesis"));
  setGauge();

  async function deadLetter(shard: string | null, seq: string | null, partitionKey: string, payload: Buffer, error: string) {
    await o.sql`
      INSERT INTO dead_letters (source, shard_id, sequence_number, partition_key, payload, error)
      VALUES ('loader', ${shard}, ${seq}, ${partitionKey.replaceAll("\0", "")}, ${payload}, ${error.replaceAll("\0", "\\0").slice(0, 2000)})
      ON CONFLICT DO NOTHING`;
    o.metrics.deadLetters.inc({ source: "loader" });
  }

  /** Lists shards, registers new ones, and takes or renews leases (one loader per shard). */
  async function refreshLeases(now: number) {
    if (now - lastList >= LIST_SHARDS_MS) {
      lastList = now;
      const ids: string[] = [];
      let token: string | undefined;
      do {
        const out = await o.kinesis.send(new ListShardsCommand(token ? { NextToken: token } : { StreamName: o.stream }));
        for (const s of out.Shards ?? []) {
          ids.push(s.ShardId!);
          parents.set(s.ShardId!, [s.ParentShardId, s.AdjacentParentShardId].filter((p): p is string => !!p));
        }
        token = out.NextToken;
      } while (token);
      if (ids.length)
        await o.sql`INSERT INTO loader_checkpoints ${o.sql(ids.map((shard_id) => ({ stream: o.stream, shard_id })))} ON CONFLICT DO NOTHING`;
    }
    if (now - lastRenew < RENEW_MS) return;
    lastRenew = now;
    type Lease = { shard_id: string; sequence_number: string | null };
    const lease = () => o.sql`now() + make_interval(secs => ${LEASE_S})`;
    const renewed = await o.sql<Lease[]>`
      UPDATE loader_checkpoints SET lease_until = ${lease()}
      WHERE stream = ${o.stream} AND NOT finished AND owner = ${o.owner}
      RETURNING shard_id, sequence_number`;
    // Balance (like the Kinesis Client Library): aim at an equal share of the open shards among
    // the live loaders (those holding an unexpired lease, and this one).
    // A resharded stream: a child shard waits until its parents are read to their end (finished),
    // so a key's records are loaded in order across the split or merge. A parent the stream
    // does not list any more (past retention) blocks nothing.
    const finished = new Set(
      (await o.sql<{ shard_id: string }[]>`SELECT shard_id FROM loader_checkpoints WHERE stream = ${o.stream} AND finished`).map((r) => r.shard_id),
    );
    const blocked = [...parents].filter(([, ps]) => ps.some((p) => parents.has(p) && !finished.has(p))).map(([id]) => id);
    const [counts] = await o.sql<{ others: number; total: number }[]>`
      SELECT count(DISTINCT owner) FILTER (WHERE owner <> ${o.owner} AND lease_until >= now())::int AS others, count(*)::int AS total
      FROM loader_checkpoints WHERE stream = ${o.stream} AND NOT finished AND shard_id <> ALL(${blocked}::text[])`;
    const target = Math.ceil(counts!.total / (counts!.others + 1));
    // Expired (or released) leases first: a dead loader's shards resume from their checkpoints.
    const taken =
      renewed.length < target
        ? await o.sql<Lease[]>`
            UPDATE loader_checkpoints SET owner = ${o.owner}, lease_until = ${lease()}
            WHERE (stream, shard_id) IN (
              SELECT stream, shard_id FROM loader_checkpoints
              WHERE stream = ${o.stream} AND NOT finished AND lease_until < now() AND shard_id <> ALL(${blocked}::text[])
              ORDER BY shard_id LIMIT ${target - renewed.length} FOR UPDATE SKIP LOCKED)
            RETURNING shard_id, sequence_number`
        : [];
    // Still short of a share and nothing free: take one shard from the busiest loader when it
    // holds at least two more than this one (so shares converge and never swap back and forth).
    // Its rows read but not yet checkpointed are read again here: duplicates, never gaps (its
    // checkpoint update requires ownership).
    const mine = renewed.length + taken.length;
    const stolen =
      mine < target && !taken.length
        ? await o.sql<Lease[]>`
            UPDATE loader_checkpoints SET owner = ${o.owner}, lease_until = ${lease()}
            WHERE (stream, shard_id) IN (
              SELECT c.stream, c.shard_id FROM loader_checkpoints c
              JOIN (SELECT owner, count(*) AS n FROM loader_checkpoints
                    WHERE stream = ${o.stream} AND NOT finished AND lease_until >= now() AND owner <> ${o.owner}
                    GROUP BY owner ORDER BY n DESC, owner LIMIT 1) busiest ON busiest.owner = c.owner
              WHERE c.stream = ${o.stream} AND NOT c.finished AND busiest.n >= ${mine + 2}
              ORDER BY c.shard_id DESC LIMIT 1 FOR UPDATE OF c SKIP LOCKED)
            RETURNING shard_id, sequence_number`
        : [];
    const held = [...renewed, ...taken, ...stolen];
    const ids = new Set(held.map((h) => h.shard_id));
    for (const id of shards.keys()) if (!ids.has(id)) shards.delete(id); // lease lost
    for (const h of held) if (!shards.has(h.shard_id)) shards.set(h.shard_id, { id: h.shard_id, fetched: h.sequence_number ?? undefined, closed: false });
  }

  async function iteratorFor(s: Shard): Promise<string | undefined> {
    const out = await o.kinesis.send(
      new GetShardIteratorCommand(
        s.fetched
          ? { StreamName: o.stream, ShardId: s.id, ShardIteratorType: "AFTER_SEQUENCE_NUMBER", StartingSequenceNumber: s.fetched }
          : { StreamName: o.stream, ShardId: s.id, ShardIteratorType: "TRIM_HORIZON" },
      ),
    );
    return out.ShardIterator;
  }

  /**
   * Handles one record (one click, or a KPL aggregate of them, or one in the format before it:
   * ingest/src/pipeline/aggregate.ts); the shard's position moves past it only once each of its
   * clicks is buffered or dead-lettered. A bad click of an aggregate is dead-lettered alone,
   * under "<sequence number>:<index>" and its own partition key; a bad aggregate (its MD5 does
   * not match, say) as a whole.
   */
  async function take(s: Shard, rec: _Record) {
    const payload = Buffer.from(rec.Data ?? new Uint8Array());
    const seq = rec.SequenceNumber!;
    const unpacked = unpackRecord(payload, rec.PartitionKey ?? "");
    if ("error" in unpacked) await deadLetter(s.id, seq, rec.PartitionKey ?? "", payload, unpacked.error);
    else
      for (const [i, click] of unpacked.clicks.entries()) {
        const at = unpacked.aggregated ? `${seq}:${i}` : seq;
        // Synchronous for a good click (the hot path); only a dead letter waits for PostgreSQL.
        const error = takeClick(s.id, at, click.data);
        if (error) await deadLetter(s.id, at, click.partitionKey, click.data, error);
      }
    s.fetched = seq;
    upTo.set(s.id, { seq, closed: false });
  }

  /** Buffers a click's row; returns why it is not one instead. */
  function takeClick(shard: string, seq: string, payload: Buffer): string | undefined {
    let parsed: ReturnType<typeof schema.safeParse>;
    try {
      parsed = schema.safeParse(JSON.parse(payload.toString("utf8")));
    } catch (err) {
      return `invalid JSON: ${String(err)}`;
    }
    if (!parsed.success) return `invalid record: ${parsed.error.issues[0]!.path.join(".")}: ${parsed.error.issues[0]!.message}`;
    if (!buffer.length) firstAt = Date.now();
    buffer.push({ row: toClickHouseRow(parsed.data), payload, receivedAt: Date.parse(parsed.data.received_at), shard, seq });
  }

  /** Clicks per record in the last page read (aggregates hold many; dead letters count as none). */
  let clicksPerRecord = 1;
  /** Reads one GetRecords page from each shard; returns how many records arrived. */
  async function poll(): Promise<number> {
    let n = 0;
    for (const s of shards.values()) {
      if (s.closed || buffer.length >= o.batchRows) continue;
      try {
        s.iterator ??= await iteratorFor(s);
        if (!s.iterator) continue;
        // Records, not clicks: an aggregate holds many, so ask for about what fills the batch.
        const limit = Math.max(1, Math.min(10_000, Math.floor((o.batchRows - buffer.length) / clicksPerRecord)));
        const out = await o.kinesis.send(new GetRecordsCommand({ ShardIterator: s.iterator, Limit: limit }));
        const before = buffer.length;
        for (const rec of out.Records ?? []) await take(s, rec);
        if (out.Records?.length) clicksPerRecord = Math.max(1, (buffer.length - before) / out.Records.length);
        n += out.Records?.length ?? 0;
        o.metrics.shardBehind.set({ shard: s.id }, (out.MillisBehindLatest ?? 0) / 1000);
        s.iterator = out.NextShardIterator;
        if (!s.iterator) {
          s.closed = true; // a resharded (closed) shard, read to its end: checkpointed as finished
          upTo.set(s.id, { seq: s.fetched ?? null, closed: true });
        }
      } catch (err) {
        s.iterator = undefined; // expired or broken iterator: start again after what we read
        throw err;
      }
    }
    return n;
  }

  /** Inserts a batch, then checkpoints. Data errors: split the batch, dead-letter the bad rows. */
  async function flush(b: Batch): Promise<void> {
    if (b.rows.length) {
      try {
        await insert.fire(b.rows.map((p) => p.row));
      } catch (err) {
        if (!isDataError(err) || ++attempts < o.maxAttempts) throw err;
        o.log.warn({ err: String(err) }, "batch refused by ClickHouse; inserting row by row to find the poison");
        for (const p of b.rows) {
          try {
            await insertRows([p.row]);
          } catch (rowErr) {
            if (!isDataError(rowErr)) throw rowErr;
            await deadLetter(p.shard, p.seq, p.row.code, p.payload, `clickhouse refused: ${String(rowErr)}`);
          }
        }
      }
      const now = Date.now();
      for (const p of b.rows) o.metrics.loaderLag.observe((now - p.receivedAt) / 1000);
      o.metrics.loaderRows.inc(b.rows.length);
    }
    await o.sql.begin(async (tx) => {
      // `closed` as it was when these rows were read: a shard read to its end after this batch
      // began must not be checkpointed as finished before its last rows are inserted.
      for (const [shard, p] of b.upTo)
        await tx`UPDATE loader_checkpoints SET sequence_number = ${p.seq}, finished = ${p.closed}, updated_at = now()
                 WHERE stream = ${o.stream} AND shard_id = ${shard} AND owner = ${o.owner}`;
      await bump(tx, "clickhouse_rows", b.rows.length);
      // Their hours' rollups are stale from now on (read raw until the sealer redoes them).
      await markHours(tx, hoursOf(b.rows.map((p) => p.row.ts)));
    });
    attempts = 0;
  }

  /**
   * Hands what was read to a flush that runs while the loop reads on. If it fails, its rows go
   * back in front of the buffer and its positions under those read since (which are further
   * on, and are checkpointed only after the retried rows are inserted); the loop backs off.
   */
  function startFlush() {
    const b: Batch = { rows: buffer, upTo, firstAt };
    buffer = [];
    upTo = new Map();
    flushing = flush(b).then(
      () => {
        failures = 0;
      },
      (err: unknown) => {
        if (b.rows.length) firstAt = b.firstAt;
        buffer = b.rows.concat(buffer);
        for (const [shard, p] of b.upTo) if (!upTo.has(shard)) upTo.set(shard, p);
        flushError = err;
      },
    );
    void flushing.finally(() => (flushing = undefined));
  }

  let running = false;
  let loop: Promise<void> | undefined;
  async function run() {
    while (running) {
      try {
        if (flushError !== undefined) {
          const err = flushError;
          flushError = undefined;
          throw err;
        }
        await refreshLeases(Date.now());
        const n = await poll();
        const due = buffer.length >= o.batchRows || (upTo.size > 0 && (Date.now() - firstAt >= o.batchMs || !buffer.length));
        if (due) {
          // One insert at a time, in order. A failed one put its rows back: throw to back off.
          await flushing;
          if (flushError !== undefined) continue;
          startFlush();
        }
        if (!flushing) failures = 0;
        if (n === 0) await sleep(buffer.length ? Math.min(IDLE_POLL_MS, Math.max(10, o.batchMs - (Date.now() - firstAt))) : IDLE_POLL_MS);
      } catch (err) {
        failures++;
        if (!isBreakerOpen(err)) o.log.warn({ err: String(err) }, "loader step failed; will retry");
        await sleep(Math.max(50, backoff(failures, 100, o.breakerResetMs)));
      }
    }
    // Stopping: the insert in flight completes and checkpoints (or fails, and is read again later).
    await flushing;
  }

  return {
    breaker: insert,
    start() {
      running = true;
      loop = run();
    },
    /** Test hook: stops reading without releasing the leases, as a crash would (they expire). */
    async crash() {
      running = false;
      await loop;
    },
    async stop() {
      running = false;
      await loop;
      // Hand the shards over at once (a crashed loader's leases just time out instead).
      await o.sql`UPDATE loader_checkpoints SET owner = NULL, lease_until = '-infinity'
                  WHERE stream = ${o.stream} AND owner = ${o.owner}`.catch(() => {});
    },
  };
}
export type Loader = ReturnType<typeof createLoader>;
