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
  /** Claims of this row so far, this one included (> 1: an earlier attempt may have reached Kinesis). */
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
  /** Batches in flight at once (each claims its own rows through the lease). */
  concurrency?: number;
  /** Most clicks in one link.clicked webhook message (WEBHOOK_BATCH_MAX_CLICKS). */
  webhookBatchMax?: number;
  /** Test hook: send every batch twice (forced duplicate delivery). */
  duplicateDelivery?: boolean;
  /** Rows this forwarder deletes between two vacuums of the outbox (tests lower it). */
  vacuumAfterRows?: number;
}

/** How long a claimed row is ours before another forwarder may take it (crash recovery). */
const LEASE_S = 30;
/** PutRecords rounds per batch for records Kinesis refused (throttling, internal errors). */
const RECORD_ROUNDS = 4;
/** How often expired leases are released and the claims' starting id is set again. */
const SWEEP_MS = 1_000;
/**
 * How far below the oldest unclaimed row claims start: ids handed out to beacons' transactions
 * not yet committed (a few group commits of up to 2,000 clicks) commit below the oldest visible
 * row, and must still be claimed without waiting for a sweep.
 */
const FLOOR_MARGIN = 10_000;
/**
 * The outbox is a queue: each click's row is inserted, claimed (a new version) and deleted, so
 * it leaves two dead versions and their index entries. Autovacuum, when it is on, comes by its
 * thresholds, which a queue outruns; when it is off (these machines), never. Until a vacuum, a
 * sweep walks every dead claim and `GET /api/pipeline`'s backlog count every dead page: 14.9 and
 * 88 ms a call after ~140k clicks in a `npm run bench` (pg_stat_statements). So each forwarder
 * vacuums the table itself after this many deletions (SKIP_LOCKED: one vacuum at a time). It
 * leaves the heap's length alone (TRUNCATE false): shortening it takes an exclusive lock that
 * inserts would queue behind, and a queue reuses its freed pages anyway.
 */
const VACUUM_AFTER_ROWS = 20_000;


/**
 * Leases the oldest `batch` unclaimed rows from `floor` on. The statement is a function
 * (migration 015) whose plan reads about a batch of rows however long the backlog: planned
 * here, on an outbox without statistics, it could read the whole backlog for every batch.
 */
export const claimOutbox = (sql: Sql | TransactionSql, floor: number, batch: number) =>
  sql<OutboxRow[]>`SELECT id, partition_key, data, attempts, replayed FROM outbox_claim(${LEASE_S}, ${String(floor)}::bigint, ${batch})`;

/**
 * Streams the outbox to Kinesis: claims the oldest unclaimed rows (a lease, FOR UPDATE SKIP
 * LOCKED, so concurrent forwarders never send the same row at once), packs them into KPL
 * aggregated records (KINESIS_AGGREGATE_BYTES), PutRecords them, re-sends only the records
 * Kinesis refused, and deletes rows only after Kinesis accepted the record holding them.
 * Partition key: the short code for a record of one click; for an aggregate, its first outbox
 * id, so aggregates spread over all shards (one viral link is not capped at one shard's 1,000
 * records/s; per-link order is not needed: ClickHouse orders by time). Records are packed once
 * per batch: a re-send puts the same bytes. At-least-once: a crash after the put and before the
 * delete re-sends the batch when the lease runs out; ClickHouse collapses the duplicates.
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
   * Claims read unclaimed rows (`-infinity`) from `floor` on, in id order, so they stop after a
   * batch. From the front of the index they would walk every claimed row's dead unclaimed entry
   * since the last vacuum, and an idle poll most of all: 7.7 ms a claim, 295 µs a forwarded
   * click, in a full `npm run bench` (pg_stat_statements). A sweep, once a second, hands expired
   * leases back (a crashed forwarder's rows) and sets `floor` below the oldest unclaimed row;
   * a row that committed below `floor` after all is claimed after the next sweep.
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
    await o.sql`UPDATE outbox SET claimed_until = '-infinity' WHERE claimed_until > '-infinity' AND claimed_until < now()`;
    const [r] = await o.sql<{ min: string | null }[]>`SELECT min(id) AS min FROM outbox WHERE claimed_until = '-infinity'`;
    if (r?.min != null) floor = Math.max(0, Number(r.min) - FLOOR_MARGIN);
  }

  /** One batch: returns how many clicks Kinesis accepted (0 when the outbox is empty). */
  async function forwardOnce(): Promise<number> {
    if (Date.now() - swept >= SWEEP_MS) await sweep();
    const claimed = await claimOutbox(o.sql, floor, o.batch);
    if (!claimed.length) return 0;
    claimed.sort((a, b) => Number(a.id) - Number(b.id));

    const sent: OutboxRow[] = [];
    let pending = packRecords(claimed, o.aggregateBytes ?? 0);
    const rows = (records: Packed<OutboxRow>[]) => records.reduce((n, r) => n + r.rows.length, 0);
    // Re-sends, counted before the put (a put that fails after reaching Kinesis still duplicates).
    o.metrics.kinesisResent.inc(claimed.filter((r) => r.attempts > 1).length);
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
    } finally {
      // Whatever happened, what Kinesis accepted leaves the outbox, and the rest is released
      // for a retry now (not after the whole lease; the loop backs off after a failure).
      await o.sql.begin(async (tx) => {
        if (sent.length) {
          // Webhooks get the clicks in the same transaction: nothing between the two to lose.
          await tapClicks(tx, sent.filter((r) => !r.replayed), o.webhookBatchMax);
          await tx`DELETE FROM outbox WHERE id = ANY(${sent.map((r) => r.id)}::bigint[])`;
          await bump(tx, "kinesis_sent", sent.length);
        }
        if (pending.length) await tx`UPDATE outbox SET claimed_until = '-infinity' WHERE id = ANY(${pending.flatMap((p) => p.rows.map((r) => r.id))}::bigint[])`;
      });
      o.metrics.kinesisSent.inc(sent.length);
      deletedSinceVacuum += sent.length;
    }
    return sent.length;
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
