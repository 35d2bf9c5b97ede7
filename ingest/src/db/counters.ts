import { randomInt } from "node:crypto";
import type { Sql, TransactionSql } from "postgres";

export type Counter = "postgres_clicks" | "kinesis_sent" | "clickhouse_rows";

/** Adds `n` to a running total inside the caller's transaction (a random slot: no hot row). */
export async function bump(tx: TransactionSql | Sql, name: Counter, n: number): Promise<void> {
  if (n > 0) await tx`UPDATE pipeline_counters SET value = value + ${n} WHERE name = ${name} AND slot = ${randomInt(16)}`;
}

export async function readCounters(sql: Sql): Promise<Record<Counter, number>> {
  const rows = await sql<{ name: Counter; total: string }[]>`SELECT name, sum(value) AS total FROM pipeline_counters GROUP BY name`;
  const out = { postgres_clicks: 0, kinesis_sent: 0, clickhouse_rows: 0 };
  for (const r of rows) out[r.name] = Number(r.total);
  return out;
}
