/**
 * Reads a stopped ingest's chDB folder (argv[2]) and prints one line:
 * `RESULT {"rows":…,"distinct":…,"ids":[…]}` — the raw row count of linkflow.clicks, its
 * uniqExact(click_id), and the distinct click ids. Run as its own process by the fault suite
 * (chDB allows one process per folder, and ingest has exited by then).
 */
import { clickhouseClient, rows } from "../../ingest/src/analytics/clickhouse.ts";

const path = process.argv[2];
if (!path) throw new Error("usage: chdb-dump.ts <chdb folder>");
const ch = clickhouseClient({ path });
const [totals] = await rows<{ rows: number | string; distinct: number | string }>(
  ch,
  "SELECT count() AS rows, uniqExact(click_id) AS distinct FROM linkflow.clicks",
);
const ids = await rows<{ id: string }>(ch, "SELECT DISTINCT toString(click_id) AS id FROM linkflow.clicks");
console.log("RESULT " + JSON.stringify({ rows: Number(totals?.rows ?? 0), distinct: Number(totals?.distinct ?? 0), ids: ids.map((r) => r.id) }));
await ch.close();
