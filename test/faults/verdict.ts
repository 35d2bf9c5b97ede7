/**
 * The end of every scenario: what was acknowledged (and, with the worker, served) against what
 * PostgreSQL and ClickHouse hold; the scenario's table row(s) come from it.
 */
import { expect } from "vitest";
import { clickhouseIds, type IngestProcess } from "./processes.ts";
import { edgeClickIds, pipelineStatus, postgresIds, type PipelineStatus } from "./probes.ts";
import { sleep } from "./util.ts";
import { printReport, type Report } from "./report.ts";
import type { Scenario } from "./scenario.ts";

export interface Verdict {
  report: Report;
  /** Acknowledged ids missing from PostgreSQL / ClickHouse; ids there that were never acknowledged. */
  missingPg: string[];
  missingCh: string[];
  extraPg: string[];
  extraCh: string[];
  /** PostgreSQL click_ids with more than one row. */
  pgDuplicateRows: number;
  ch: { rows: number; distinct: number };
  /** Per `edge` link: its distinct clicks in PostgreSQL vs the redirects served. */
  edges: EdgeVerdict[];
  /** The first (usually only) entry of `edges`. */
  edge?: EdgeVerdict;
}

/**
 * Scenarios with the worker: `served` redirects of link `code` were answered 302. Their click
 * ids are not known to the client, so the link's rows in PostgreSQL stand for them (expected:
 * exactly `served`); each must then be in ClickHouse exactly once, like an acknowledged click.
 * With a `label`, the link gets its own row in the table ("<scenario>: <label>").
 */
export interface EdgeCheck {
  code: string;
  served: number;
  label?: string;
  notes?: string;
}
export interface EdgeVerdict {
  code: string;
  served: number;
  stored: number;
  /** Redirects without a stored click, and stored clicks beyond the redirects. */
  lost: number;
  extra: number;
  /** Of the link's stored clicks, those ClickHouse does not have. */
  missingCh: number;
}

/**
 * Compares the acknowledged ids with PostgreSQL (queried directly) and, after a graceful ingest
 * stop, with ClickHouse (chDB folder read by a separate process); prints the scenario's table
 * row(s).
 */
export async function verify(
  s: Scenario,
  ingest: IngestProcess,
  acked: Set<string>,
  status: PipelineStatus,
  recoveryMs: number,
  notes: string,
  edge?: EdgeCheck | EdgeCheck[],
): Promise<Verdict> {
  const checks = edge === undefined ? [] : Array.isArray(edge) ? edge : [edge];
  // The completeness check once its window (CLICKS_MISSING_WINDOW_MS: 2 s in the suite) has passed.
  await sleep(2_500);
  const missing = (await pipelineStatus(s).catch(() => undefined))?.clicks_missing;
  const pg = await postgresIds(s);
  const edgeIds = await Promise.all(checks.map((c) => edgeClickIds(s, c.code)));
  await ingest.kill("SIGTERM");
  const ch = await clickhouseIds(s);
  const expected = new Set([...acked, ...edgeIds.flat()]);
  const missingPg = [...acked].filter((id) => !pg.has(id));
  const missingCh = [...expected].filter((id) => !ch.ids.has(id));
  const extraPg = [...pg.keys()].filter((id) => !expected.has(id));
  const extraCh = [...ch.ids].filter((id) => !expected.has(id));
  const pgDuplicateRows = [...pg.values()].reduce((n, c) => n + c - 1, 0);
  const edges: EdgeVerdict[] = checks.map((c, i) => ({
    code: c.code,
    served: c.served,
    stored: edgeIds[i]!.length,
    lost: Math.max(0, c.served - edgeIds[i]!.length),
    extra: Math.max(0, edgeIds[i]!.length - c.served),
    missingCh: edgeIds[i]!.filter((id) => !ch.ids.has(id)).length,
  }));
  const over = (n: number | null) => Math.max(0, (n ?? 0) - expected.size);
  // Counted twice anywhere: in PostgreSQL or ClickHouse beyond the expected ids, a repeated row.
  const duplicatedAnywhere = over(status.postgres_clicks) + over(status.clickhouse_clicks) + pgDuplicateRows + extraCh.length;
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const where =
    `PostgreSQL rows ${sum([...pg.values()])} (ids ${pg.size}); ClickHouse rows ${ch.rows}, ` +
    `uniqExact ${ch.distinct} (${ch.rows - ch.distinct} redelivered rows collapsed); /api/pipeline ${JSON.stringify({ ...status, shards: undefined })}`;
  const reports: Report[] = checks.some((c) => c.label)
    ? edges.map((e, i) => ({
        scenario: `${s.name}: ${checks[i]!.label ?? checks[i]!.code}`,
        acked: i === 0 ? acked.size : 0,
        redirects: e.served,
        lost: e.lost + e.missingCh + (i === 0 ? missingPg.length + missingCh.length - sum(edges.map((x) => x.missingCh)) : 0),
        duplicated: e.extra + (i === 0 ? duplicatedAnywhere : 0),
        recoveryS: recoveryMs / 1000,
        missing: i === 0 ? missing : undefined,
        notes: [checks[i]!.notes, i === 0 ? `${notes}; ${where}` : ""].filter(Boolean).join("; "),
      }))
    : [
        {
          scenario: s.name,
          acked: acked.size,
          redirects: checks.length ? sum(checks.map((c) => c.served)) : undefined,
          lost: new Set([...missingPg, ...missingCh]).size + sum(edges.map((e) => e.lost)),
          duplicated: duplicatedAnywhere + sum(edges.map((e) => e.extra)),
          recoveryS: recoveryMs / 1000,
          missing,
          notes: `${notes}; ${where}`,
        },
      ];
  for (const r of reports) printReport(r);
  return { report: reports[0]!, missingPg, missingCh, extraPg, extraCh, pgDuplicateRows, ch: { rows: ch.rows, distinct: ch.distinct }, edges, edge: edges[0] };
}

/**
 * Every one of `clicks` expected clicks is in PostgreSQL and ClickHouse exactly once, nothing
 * else is, and the pipeline has nothing left to do (drained `status`).
 */
export function expectEachClickOnce(v: Verdict, status: PipelineStatus, clicks: number) {
  expect(v.missingPg).toEqual([]);
  expect(v.extraPg).toEqual([]);
  expect(v.pgDuplicateRows).toBe(0);
  expect(v.missingCh).toEqual([]);
  expect(v.extraCh).toEqual([]);
  expect(status).toMatchObject({ postgres_clicks: clicks, clickhouse_clicks: clicks, outbox_backlog: 0, dlq: 0 });
}
