/**
 * Ingest as ingest/src/main.ts starts it, with faults the fault suite switches on from outside
 * the child process (chDB lives inside it and cannot be taken away otherwise):
 * `--clickhouse-fault-file <path>`: while that file exists, every ClickHouse insert fails as an
 * unavailable ClickHouse would (not a data error: the breaker counts it, nothing is dead-lettered).
 */
import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { loadConfig } from "../../ingest/src/config.ts";
import type { InsertClicks } from "../../ingest/src/pipeline/loader.ts";
import { startIngest } from "../../ingest/src/server.ts";

const { values } = parseArgs({ options: { "clickhouse-fault-file": { type: "string" } } });
const faultFile = values["clickhouse-fault-file"];

const insert = (real: InsertClicks): InsertClicks =>
  faultFile
    ? async (rows) => {
        if (existsSync(faultFile)) throw new Error("ClickHouse unavailable (test fault injected)");
        await real(rows);
      }
    : real;

const ingest = await startIngest(loadConfig(), { pipeline: { insert } });
console.log(`ingest listening on ${ingest.url}`);
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => void ingest.close().finally(() => process.exit(0)));
