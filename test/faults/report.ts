/**
 * The fault suite's table: the row each scenario prints, and the combined table of a whole run
 * (printed by the global teardown, test/faults/report-setup.ts).
 */
import { appendFileSync } from "node:fs";

export interface Report {
  scenario: string;
  /** Clicks ingest acknowledged (202) to the direct beacon load. */
  acked: number;
  /** Scenarios with the worker: redirects served (302) under load, each one click to count. */
  redirects?: number;
  lost: number;
  duplicated: number;
  recoveryS: number;
  /** What the completeness check (GET /api/pipeline clicks_missing) reported at the end; absent: not read. */
  missing?: number;
  notes: string;
}

const TABLE_HEAD = [
  "| scenario | clicks acknowledged | redirects served | lost | duplicated in stats | recovery time (fault end → drained) | completeness check (clicks_missing) |",
  "|---|---:|---:|---:|---:|---:|---:|",
];
const tableLine = (r: Report) =>
  `| ${r.scenario} | ${r.acked} | ${r.redirects ?? "–"} | ${r.lost} | ${r.duplicated} | ${r.recoveryS.toFixed(1)} s | ${r.missing ?? "–"} |`;

/** The combined table of a whole `npm run test:faults` run (printed by its global teardown). */
export function reportTable(rows: Report[]): string {
  return [...TABLE_HEAD, ...rows.map(tableLine), "", ...rows.filter((r) => r.notes).map((r) => `- ${r.scenario}: ${r.notes}`)].join("\n");
}

/**
 * Prints the scenario's row, and appends it to the run's report file (set by the suite's global
 * setup, test/faults/report-setup.ts) so the whole table is printed once at the end.
 */
export function printReport(r: Report) {
  console.log(["", ...TABLE_HEAD, tableLine(r), r.notes ? `  ${r.notes}` : "", ""].join("\n"));
  if (process.env.LINKFLOW_FAULTS_REPORT) appendFileSync(process.env.LINKFLOW_FAULTS_REPORT, JSON.stringify(r) + "\n");
}
