import { chTime, rows, type ClickHouseClient } from "./clickhouse.ts";

export interface OriginLatencyQuery {
  ch: ClickHouseClient;
  /** The analytics database (pipeline.analytics.database). */
  database: string;
  /** Click time range, [from, to). */
  from: Date;
  to: Date;
  /** Only these links' clicks (a workspace's view); unset: every link (an operator's). */
  linkIds?: readonly number[];
}

/** Origin resolve latency of a set of clicks: how many were measured, and their p50/p99 (ms, 0.1 ms). */
export interface OriginLatency {
  samples: number;
  p50_ms: number | null;
  p99_ms: number | null;
}

export interface OriginLatencyByColo extends OriginLatency {
  /** Per colo, most samples first ("": request.cf had no colo). */
  by_colo: (OriginLatency & { colo: string })[];
}

interface Row {
  colo?: string;
  samples: number | string;
  q: (number | null)[];
}

const ms = (v: number | null | undefined) => (v === null || v === undefined || !Number.isFinite(v) ? null : Math.round(v * 10) / 10);
const latency = (r: Row | undefined): OriginLatency => ({ samples: Number(r?.samples ?? 0), p50_ms: ms(r?.q[0]), p99_ms: ms(r?.q[1]) });

/**
 * How long the worker's resolve at the origin took (clicks' `origin_ms`, click event version 2:
 * docs/EVENTS.md), p50 and p99 overall and per colo, for the SRE edge view. Only origin-tier
 * clicks are measured; older clicks and other tiers have NULL and are not samples. A click
 * delivered twice (not merged away yet) counts once. `quantiles` is exact up to 8,192 samples
 * per group and a reservoir sample beyond.
 */
export async function originLatencyByColo({ ch, database, from, to, linkIds }: OriginLatencyQuery): Promise<OriginLatencyByColo> {
  if (linkIds && !linkIds.length) return { ...latency(undefined), by_colo: [] };
  const measured = `
    SELECT click_id, any(colo) AS at, any(origin_ms) AS took FROM ${database}.clicks
    WHERE cache_tier = 'origin' AND origin_ms IS NOT NULL
      AND ts >= {from:DateTime64(3, 'UTC')} AND ts < {to:DateTime64(3, 'UTC')}
      ${linkIds ? "AND link_id IN {ids:Array(UInt64)}" : ""}
    GROUP BY click_id`;
  const params = { from: chTime(from), to: chTime(to), ids: linkIds ?? [] };
  const [all, colos] = await Promise.all([
    rows<Row>(ch, `SELECT count() AS samples, quantiles(0.5, 0.99)(took) AS q FROM (${measured})`, params),
    rows<Row>(ch, `SELECT at AS colo, count() AS samples, quantiles(0.5, 0.99)(took) AS q FROM (${measured}) GROUP BY colo ORDER BY samples DESC, colo`, params),
  ]);
  return { ...latency(all[0]), by_colo: colos.map((r) => ({ colo: r.colo ?? "", ...latency(r) })) };
}
