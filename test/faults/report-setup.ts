/**
 * Global setup of `npm run test:faults`: each scenario appends its row (printReport in
 * report.ts) to one file per run; the teardown prints them as one table, so the run ends with
 * every scenario's figures together instead of scattered through the test output.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { reportTable, type Report } from "./report.ts";

export default function setup() {
  const file = join(tmpdir(), `linkflow-faults-${process.pid}-${Date.now()}.jsonl`);
  writeFileSync(file, "");
  // The test workers are forked after this and inherit the environment.
  process.env.LINKFLOW_FAULTS_REPORT = file;
  return () => {
    const rows = existsSync(file)
      ? readFileSync(file, "utf8")
          .split("\n")
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Report)
      : [];
    rmSync(file, { force: true });
    console.log(`\nFault suite: ${rows.length} scenario(s)\n\n${reportTable(rows)}\n`);
  };
}
