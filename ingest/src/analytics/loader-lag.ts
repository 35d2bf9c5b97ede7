import { MAX_CLICK_AGE_MS } from "../../../shared/constants.ts";
import { chTime, rows, type ClickHouseClient } from "./clickhouse.ts";

/** PostgreSQL commit → ClickHouse insert of the clicks received since a time (ms). */
export interface LoaderLag {
  clicks: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
}

/**
 * The loader's lag over the clicks received since `since`, from `clicks_recent`: each click's
 * first insert (a redelivered copy is inserted later and does not count). `ts` bounds the read
 * (the table is sorted by hour) to MAX_CLICK_AGE before `since`: a click is received at most that
 * long after it happened. The cost is grouping the clicks asked for: a minmax index on received_at
 * read 10× fewer granules and took as long (24 ms, 5M clicks in those hours).
 */
export async function loaderLag(ch: ClickHouseClient, database: string, since: Date): Promise<LoaderLag> {
  const [r] = await rows<{ clicks: number; p50: number; p99: number; max: number }>(
    ch,
    `SELECT uniqExact(click_id) AS clicks, quantileExact(0.5)(l) AS p50, quantileExact(0.99)(l) AS p99, max(l) AS max
     FROM (SELECT click_id, min(dateDiff('millisecond', received_at, inserted_at)) AS l
           FROM ${database}.clicks_recent
           WHERE ts >= {oldest:DateTime64(3, 'UTC')} AND received_at >= {since:DateTime64(3, 'UTC')} GROUP BY click_id)`,
    { since: chTime(since), oldest: chTime(new Date(since.getTime() - MAX_CLICK_AGE_MS - 60_000)) },
  );
  return { clicks: Number(r?.clicks ?? 0), p50_ms: Number(r?.p50 ?? 0), p99_ms: Number(r?.p99 ?? 0), max_ms: Number(r?.max ?? 0) };
}
