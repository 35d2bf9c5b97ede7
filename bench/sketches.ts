/**
 * Visitor sketch precision, side by side (`npm run bench:sketches`, ~1 min; writes no results).
 * For uniqCombined64 at precisions 12, 13 and 14 in embedded chDB: a busy link's 30 days of hourly
 * rollup rows (720, in a table shaped like rollup_hourly) merged into local days in
 * Europe/Berlin, as its hours fill from 300 to 7,000 visitors: the bytes a row's sketch takes, the
 * query's median and p95 (ms), and the merged total's error. Then, per precision, up to how many
 * values a sketch is still exact. The cost of a shape grows with its sketches until they are full
 * (docs/ANALYTICS.md, Limits); this is what chose precision 12.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { clickhouseClient } from "../ingest/src/analytics/clickhouse.ts";

const dir = mkdtempSync(join(tmpdir(), "linkflow-bench-sketches-"));
const ch = clickhouseClient({ path: dir, maxMemoryBytes: 1 << 30 });
const q = async <T>(query: string) => (await (await ch.query({ query, format: "JSONEachRow" })).json()) as T[];
const HOURS = 720;
const ROUNDS = 15;

try {
  console.log("precision  visitors/hour  sketch B  median ms  p95 ms  total error");
  for (const p of [14, 13, 12]) {
    for (const perHour of [300, 1_500, 7_000]) {
      const t = `r_${p}_${perHour}`;
      await ch.command({
        query: `CREATE TABLE ${t} (level UInt8, id UInt64, t DateTime('UTC'), value String, clicks SimpleAggregateFunction(max, UInt64),
          visitors AggregateFunction(uniqCombined64(${p}), Nullable(String)))
          ENGINE = AggregatingMergeTree ORDER BY (level, id, t, value) SETTINGS index_granularity = 256, min_bytes_for_wide_part = 0`,
      });
      // Two links' hours, interleaved as the real table's key puts them (the query reads one).
      await ch.command({
        query: `INSERT INTO ${t} SELECT 1, id, toDateTime('2026-10-01 00:00:00', 'UTC') + h * 3600, '', count(), uniqCombined64State(${p})(toNullable(toString(v)))
          FROM (SELECT number % 2 AS id, intDiv(number, 2) % ${HOURS} AS h, cityHash64(number) AS v FROM numbers(${2 * HOURS * perHour})) GROUP BY id, h`,
      });
      await ch.command({ query: `OPTIMIZE TABLE ${t} FINAL` });
      const [size] = await q<{ b: number }>(`SELECT avg(length(CAST(visitors, 'String'))) AS b FROM ${t}`);
      const ms: number[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        const s = performance.now();
        await q(`SELECT toStartOfDay(t, 'Europe/Berlin') AS d, sum(clicks) AS c, uniqCombined64Merge(${p})(visitors) AS v
          FROM ${t} FINAL WHERE level = 1 AND id = 1 GROUP BY d ORDER BY d`);
        ms.push(performance.now() - s);
      }
      ms.sort((a, b) => a - b);
      const [total] = await q<{ v: number }>(`SELECT uniqCombined64Merge(${p})(visitors) AS v FROM ${t} WHERE id = 1`);
      const err = (Number(total!.v) / (HOURS * perHour) - 1) * 100;
      console.log(
        `${String(p).padStart(9)}  ${String(perHour).padStart(13)}  ${Math.round(size!.b).toString().padStart(8)}  ${ms[ROUNDS >> 1]!.toFixed(1).padStart(9)}  ${ms[ROUNDS - 1]!.toFixed(1).padStart(6)}  ${err.toFixed(2).padStart(9)} %`,
      );
    }
  }
  console.log("\nexact up to (20 sets of each size, different hashes)");
  for (const p of [14, 13, 12]) {
    let exact = 0;
    for (let n = 16; n <= 2_048; n += 16) {
      const [r] = await q<{ err: number }>(`SELECT max(abs(e - ${n})) AS err FROM (SELECT s, uniqCombined64(${p})(toNullable(toString(cityHash64(x, s)))) AS e
        FROM (SELECT number % ${n} AS x, intDiv(number, ${n}) AS s FROM numbers(${n * 20})) GROUP BY s)`);
      if (Number(r!.err) > 0) break;
      exact = n;
    }
    console.log(`  precision ${p}: every set of up to ${exact} values counted exactly (checked in steps of 16)`);
  }
} finally {
  await ch.close();
  rmSync(dir, { recursive: true, force: true });
}
