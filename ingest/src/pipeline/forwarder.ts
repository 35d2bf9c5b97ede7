import { PutRecordsCommand, type KinesisClient, type PutRecordsResultEntry } from "@aws-sdk/client-kinesis";
import type { Logger } from "pino";
import type { TransactionSql } from "postgres";
import { sleep } from "../../../shared/sleep.ts";
import { backoff } from "./backoff.ts";
import { packRecords, type Packed } from "./aggregate.ts";
import { Breaker, BREAKER_GAUGE, isBreakerOpen } from "./breaker.ts";
import { bump } from "../db/counters.ts";
import type { Sql } from "../db/connect.ts";
import type { Metrics } from "../metrics.ts";
import { tapClicks } from "../webhooks/events.ts";

interface OutboxRow {
  id: string;
  partition_key: string;
  data: Buffer;
  /** Puts of this row that failed or were refused so far (> 0: one may have reached Kinesis after all). */
  attempts: number;
  /** Put back by a dead-letter replay: forwarded (and handed to webhooks) once already. */
  replayed: boolean;
}

export interface ForwarderOptions {
  sql: Sql;
  kinesis: KinesisClient;
  stream: string;
  batch: number;
  idleMs: number;
  breakerFailures: number;
  breakerResetMs: number;
  log: Logger;
  metrics: Metrics;
  /**
   * Largest aggregated record (bytes): the claimed rows go as KPL aggregated records of several
   * clicks each (ingest/src/pipeline/aggregate.ts). 0: one click a record.
   */
  aggregateBytes?: number;
  /** Gzip each aggregated record (ingest/src/pipeline/aggregate.ts): KINESIS_COMPRESSION=gzip. */
  gzip?: boolean;
  /** Batches in flight at once (each claims its own rows through the lease). */
  concurrency?: number;
  /** Most clicks in one link.clicked webhook message (WEBHOOK_BATCH_MAX_CLICKS). */
  webhookBatchMax?: number;
  /** Test hook: send every batch twice (forced duplicate delivery). */
  duplicateDelivery?: boolean;
  /** Rows this forwarder deletes between two vacuums of the outbox (tests lower it). */
  vacuumAfterRows?: number;
}

/** PutRecords rounds per batch for records Kinesis refused (throttling, internal errors). */
const RECORD_ROUNDS = 4;
/** How often the claims' starting id is set again (and the outbox vacuumed when due). */
const SWEEP_MS = 1_000;
/**
 * How far below the oldest row claims start: ids handed out to beacons' transactions
 * not yet committed (a few group commits of up to 2,000 clicks) commit below the oldest visible
 * row, and must still be claimed without waiting for a sweep.
 */
const FLOOR_MARGIN = 10_000;
/**
 * The outbox is a queue: each click's row is inserted and deleted, so it leaves a dead version
 * and its index entry. Autovacuum, when it is on, comes by its thresholds, which a queue
 * outruns; when it is off (these machines), never. Until a vacuum, the sweep walks every dead
 * entry and `GET /api/pipeline`'s backlog count every dead page (with claims that were updates,
 * 14.9 and 88 ms a call after ~140k clicks in a `npm run bench`). So each forwarder
 * vacuums the table itself after this many deletions (SKIP_LOCKED: one vacuum at a time). It
 * leaves the heap's length alone (TRUNCATE false): shortening it takes an exclusive lock that
 * inserts would queue behind, and a queue reuses its freed pages anyway.
 */
const VACUUM_AFTER_ROWS = 20_000;

/**
 * Locks the oldest `batch` rows from `floor` on that no other transaction holds (FOR UPDATE SKIP
 * LOCKED), for the caller's transaction: read in primary key order, so a claim stops after its
 * batch however long the backlog. (The lease it replaced, an update of rows found through a
 * `(claimed_until, id)` index, was planned on an outbox without statistics as a bitmap scan of
 * every unclaimed row, a sort, then the limit: every claim read the whole backlog, claims fell
 * behind and the backlog grew, to a 105 s lag in one bench run.)
 */
export const claimOutbox = (sql: TransactionSql, floor: number, batch: number) =>
  sql<OutboxRow[]>`
    SELECT id, partition_key, data, attempts, replayed FROM outbox
    WHERE id >= ${String(floor)}::bigint ORDER BY id LIMIT ${batch} FOR UPDATE SKIP LOCKED`;

/**
 * Streams the outbox to Kinesis: claims the oldest rows (row locks held by the batch's
 * transaction, FOR UPDATE SKIP LOCKED, so concurrent forwarders never send the same row at
 * once), packs them into KPL
 * aggregated records (KINESIS_AGGREGATE_BYTES), PutRecords them, re-sends only the records
 * Kinesis refused, and deletes rows only after Kinesis accepted the record holding them.
 * Partition key: the short code for a record of one click; for an aggregate, its first outbox
 * id, so aggregates spread over all shards (one viral link is not capped at one shard's 1,000
 * records/s; per-link order is not needed: ClickHouse orders by time). Records are packed once
 * per batch: a re-send puts the same bytes. At-least-once: a crash after the put and before the
 * commit re-sends the batch (its locks go with the connection); ClickHouse collapses the
 * duplicates. Such a re-send is not counted in `kinesisResent` (nothing was written before the
 * put), a re-send after a failure or refusal this forwarder saw is.
 */
export function createForwarder(o: ForwarderOptions) {
  const put = new Breaker(
    "kinesis",
    async (records: Packed<OutboxRow>[]) => {
      const out = await o.kinesis.send(
        new PutRecordsCommand({
          StreamName: o.stream,
          Records: records.map(({ PartitionKey, ExplicitHashKey, Data }) => ({ PartitionKey, ExplicitHashKey, Data })),
        }),
      );
      return out.Records ?? [];
    },
    { failures: o.breakerFailures, resetMs: o.breakerResetMs },
  );
  const setGauge = () => o.metrics.breakerState.set({ breaker: "kinesis" }, BREAKER_GAUGE[put.state]);
  put.onChange(setGauge);
  put.onChange((st) => (st === "open" ? o.log.warn("kinesis breaker open: backlog accumulates in the outbox") : st === "closed" && o.log.info("kinesis breaker closed: draining the outbox")));
  setGauge();

  /**
   * Claims read rows from `floor` on, in id order, so they stop after a batch: from the front of
   * the primary key they would walk every forwarded row's dead entry since the last vacuum. A
   * sweep, once a second, sets `floor` below the oldest row; a row that committed below `floor`
   * after all is claimed after the next sweep.
   */
  let floor = 0;
  let swept = 0;
  let deletedSinceVacuum = 0;
  async function sweep(): Promise<void> {
    swept = Date.now();
    if (deletedSinceVacuum >= (o.vacuumAfterRows ?? VACUUM_AFTER_ROWS)) {
      deletedSinceVacuum = 0;
      await o.sql.unsafe("VACUUM (SKIP_LOCKED, TRUNCATE false) outbox").catch((err: unknown) => o.log.warn({ err: String(err) }, "outbox vacuum failed"));
    }
    const [r] = await o.sql<{ min: string | null }[]>`SELECT min(id) AS min FROM outbox`;
    if (r?.min != null) floor = Math.max(0, Number(r.min) - FLOOR_MARGIN);
  }

  /**
   * One batch, in one transaction: returns how many clicks Kinesis accepted (0 when the outbox
   * is empty). The claim's row locks are the lease: held while the records are put, released
   * at commit (or by the server when this process dies: the rows are claimed again).
   */
  async function forwardOnce(): Promise<number> {
    if (Date.now() - swept >= SWEEP_MS) await sweep();
    let failure: unknown = null;
    const n = await o.sql.begin(async (tx) => {
      const claimed = await claimOutbox(tx, floor, o.batch);
      if (!claimed.length) return 0;

      const sent: OutboxRow[] = [];
      let pending = packRecords(claimed, o.aggregateBytes ?? 0, o.gzip ?? false);
      const rows = (records: Packed<OutboxRow>[]) => records.reduce((n, r) => n + r.rows.length, 0);
      // Re-sends, counted before the put (a put that fails after reaching Kinesis still duplicates).
      o.metrics.kinesisResent.inc(claimed.filter((r) => r.attempts > 0).length);
      try {
        for (let round = 0; pending.length && round < RECORD_ROUNDS; round++) {
          if (round > 0) {
            await sleep(backoff(round));
            o.metrics.kinesisResent.inc(rows(pending));
          }
          const results: PutRecordsResultEntry[] = await put.fire(pending);
          if (o.duplicateDelivery) {
            o.metrics.kinesisResent.inc(rows(pending));
            await put.fire(pending);
          }
          const refused = pending.filter((_, i) => results[i]?.ErrorCode || !results[i]?.SequenceNumber);
          for (const [i, p] of pending.entries()) if (!results[i]?.ErrorCode && results[i]?.SequenceNumber) for (const r of p.rows) sent.push(r);
          o.metrics.kinesisFailed.inc(rows(refused));
          pending = refused;
        }
      } catch (err) {
        failure = err; // after the commit below: what Kinesis accepted must still leave the outbox
      }
      // What Kinesis accepted leaves the outbox; the rest stays, unlocked at commit for a retry
      // now (the loop backs off after a failure), its attempt counted (it may have reached
      // Kinesis: sending it again is a counted re-send) unless the open breaker never sent it.
      if (sent.length) {
        // Webhooks get the clicks in the same transaction: nothing between the two to lose.
        await tapClicks(tx, sent.filter((r) => !r.replayed), o.webhookBatchMax);
        await tx`DELETE FROM outbox WHERE id = ANY(${sent.map((r) => r.id)}::bigint[])`;
        await bump(tx, "kinesis_sent", sent.length);
      }
      if (pending.length && !isBreakerOpen(failure)) await tx`UPDATE outbox SET attempts = attempts + 1 WHERE id = ANY(${pending.flatMap((p) => p.rows.map((r) => r.id))}::bigint[])`;
      return sent.length;
    });
    o.metrics.kinesisSent.inc(n);
    deletedSinceVacuum += n;
    if (failure) throw failure;
    return n;
  }

  let running = false;
  let loops: Promise<void>[] = [];
  async function run() {
    let failures = 0;
    while (running) {
      try {
        const n = await forwardOnce();
        failures = 0;
        if (n === 0) await sleep(o.idleMs);
      } catch (err) {
        failures++;
        if (!isBreakerOpen(err)) o.log.warn({ err: String(err) }, "forwarder batch failed; will retry");
        o.metrics.kinesisFailed.inc();
        await sleep(Math.max(50, backoff(failures, 100, o.breakerResetMs)));
      }
    }
  }

  return {
    breaker: put,
    forwardOnce,
    start() {
      running = true;
      loops = Array.from({ length: Math.max(1, o.concurrency ?? 1) }, () => run());
    },
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}
export type Forwarder = ReturnType<typeof createForwarder>;
