import type { Logger } from "pino";
import { chTime, rows, type ClickHouseClient } from "../analytics/clickhouse.ts";
import type { Sql } from "../db/connect.ts";

const monthStart = (d: Date, add = 0) => new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + add, 1));
const partitionName = (from: Date) => `clicks_y${from.getUTCFullYear()}m${String(from.getUTCMonth() + 1).padStart(2, "0")}`;

/** Creates the monthly click partitions from last month to `ahead` months ahead (idempotent). */
export async function ensurePartitions(sql: Sql, now = new Date(), ahead = 2): Promise<string[]> {
  const made: string[] = [];
  for (let m = -1; m <= ahead; m++) {
    const from = monthStart(now, m);
    const to = monthStart(now, m + 1);
    const name = partitionName(from);
    const [exists] = await sql`SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relname = ${name} AND n.nspname = current_schema()`;
    if (exists) continue;
    // DDL takes no parameters; the name and bounds are built from the calendar, never input.
    await sql.unsafe(`CREATE TABLE IF NOT EXISTS "${name}" PARTITION OF clicks
      FOR VALUES FROM ('${from.toISOString()}') TO ('${to.toISOString()}')`);
    made.push(name);
  }
  return made;
}

export interface Partition {
  name: string;
  from: Date;
  to: Date;
}

/** The monthly partitions of clicks with their bounds (the DEFAULT partition excluded). */
export async function listPartitions(sql: Sql): Promise<Partition[]> {
  const parts = await sql<{ name: string; bound: string }[]>`
    SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
    JOIN pg_namespace n ON n.oid = p.relnamespace
    WHERE p.relname = 'clicks' AND n.nspname = current_schema()`;
  const out: Partition[] = [];
  for (const p of parts) {
    const m = /FROM \('([^']+)'\) TO \('([^']+)'\)/.exec(p.bound);
    if (m) out.push({ name: p.name, from: new Date(m[1]!), to: new Date(m[2]!) });
  }
  return out.sort((a, b) => a.from.getTime() - b.from.getTime());
}

/**
 * Drops monthly partitions that ended more than `retentionDays` ago, but only those whose
 * every click is in ClickHouse (distinct click_ids in the month ≥ the partition's rows) and,
 * when `archived` says so, in the archive. Returns the dropped partitions.
 */
export async function dropExpiredPartitions(
  sql: Sql,
  ch: ClickHouseClient,
  database: string,
  retentionDays: number,
  log: Logger,
  archived: (p: Partition) => Promise<boolean> = async () => true,
  now = new Date(),
): Promise<string[]> {
  const cutoff = now.getTime() - retentionDays * 86_400_000;
  const dropped: string[] = [];
  for (const p of await listPartitions(sql)) {
    if (p.to.getTime() > cutoff) continue;
    const [{ n }] = (await sql`SELECT count(*)::bigint AS n FROM ${sql(p.name)}`) as unknown as [{ n: string }];
    const [inCh] = await rows<{ n: number | string }>(
      ch,
      `SELECT uniqExact(click_id) AS n FROM ${database}.clicks WHERE ts >= {from:DateTime64(3, 'UTC')} AND ts < {to:DateTime64(3, 'UTC')}`,
      { from: chTime(p.from), to: chTime(p.to) },
    );
    if (Number(inCh?.n ?? 0) < Number(n)) {
      log.warn({ partition: p.name, postgres: Number(n), clickhouse: Number(inCh?.n ?? 0) }, "retention: partition not fully in ClickHouse; kept");
      continue;
    }
    if (!(await archived(p))) {
      log.warn({ partition: p.name }, "retention: partition not archived yet; kept");
      continue;
    }
    await sql`DROP TABLE ${sql(p.name)}`;
    dropped.push(p.name);
    log.info({ partition: p.name, rows: Number(n) }, "retention: partition dropped");
  }
  return dropped;
}
