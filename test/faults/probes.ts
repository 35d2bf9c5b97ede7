/**
 * What the fault scenarios read while and after they run: ingest's own figures (/api/pipeline,
 * /metrics), waiting for the pipeline or the worker's clicks to settle, click ids in PostgreSQL,
 * and the Kinesis stream read back.
 */
import { GetRecordsCommand, GetShardIteratorCommand, ListShardsCommand, type _Record } from "@aws-sdk/client-kinesis";
import type { PipelineStatus } from "../../ingest/src/pipeline/index.ts";
import type { IngestProcess } from "./processes.ts";
import { scenarioKinesis, type Scenario } from "./scenario.ts";
import { sleep } from "./util.ts";

/** What GET /api/pipeline answers (the type ingest itself declares). */
export type { PipelineStatus };

export async function pipelineStatus(s: Scenario): Promise<PipelineStatus> {
  const res = await fetch(`${s.url}/api/pipeline`, { headers: { Authorization: `Bearer ${s.adminKey}` }, signal: AbortSignal.timeout(10_000) });
  if (res.status !== 200) throw new Error(`/api/pipeline answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as PipelineStatus;
}

export async function metricsText(s: Scenario): Promise<string> {
  return (await fetch(`${s.url}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
}

export interface Drain {
  drained: boolean;
  status: PipelineStatus;
  ms: number;
}

/**
 * Waits until the pipeline has drained: outbox empty, and ClickHouse (uniqExact) and PostgreSQL
 * both at `expected`. Returns the last status and how long it took (or null status on timeout).
 */
export async function waitDrained(s: Scenario, expected: number, ms: number): Promise<Drain> {
  const t0 = Date.now();
  let status: PipelineStatus | undefined;
  for (;;) {
    try {
      status = await pipelineStatus(s);
      if (status.outbox_backlog === 0 && status.clickhouse_clicks === expected && status.postgres_clicks === expected)
        return { drained: true, status, ms: Date.now() - t0 };
    } catch {
      // ingest busy or restarting: poll again
    }
    if (Date.now() - t0 > ms) return { drained: false, status: status!, ms: Date.now() - t0 };
    await sleep(250);
  }
}

/** Fails the scenario when the pipeline did not drain, with ingest's last output. `expected`: what it should have reached, for the message. */
export function assertDrained(drain: Drain, ingest: IngestProcess, expected?: string) {
  if (!drain.drained)
    throw new Error(`pipeline did not drain${expected ? ` to ${expected}` : ""}: ${JSON.stringify(drain.status)}\n--- ingest output ---\n${ingest.output()}`);
}

/** Click ids in PostgreSQL (the scenario's database), with how many rows each has. */
export async function postgresIds(s: Scenario): Promise<Map<string, number>> {
  const rows = await s.pg<{ id: string; n: number }[]>`SELECT click_id::text AS id, count(*)::int AS n FROM clicks GROUP BY 1`;
  return new Map(rows.map((r) => [r.id, r.n]));
}

/** The distinct click ids PostgreSQL holds for one link code (clicks from the worker). */
export async function edgeClickIds(s: Scenario, code: string): Promise<string[]> {
  const rows = await s.pg<{ id: string }[]>`SELECT DISTINCT click_id::text AS id FROM clicks WHERE code = ${code}`;
  return rows.map((r) => r.id);
}

/**
 * Waits until the worker's beacons have settled: the link's clicks in PostgreSQL reach `served`,
 * or stop changing for `quietMs` (longer than the worker's largest retry gap plus an attempt's
 * timeout), bounded by `ms`. Returns the count and how long it took.
 */
export async function settleEdgeClicks(s: Scenario, code: string, served: number, { quietMs = 20_000, ms = 90_000 } = {}) {
  const t0 = Date.now();
  let last = -1;
  let changedAt = Date.now();
  for (;;) {
    const n = (await edgeClickIds(s, code)).length;
    if (n !== last) (last = n), (changedAt = Date.now());
    if (n >= served || Date.now() - changedAt > quietMs || Date.now() - t0 > ms) return { stored: n, ms: Date.now() - t0, complete: n >= served };
    await sleep(250);
  }
}

/** Every record of the scenario's stream, per shard, read back from each shard's start. */
export async function streamRecords(s: Scenario): Promise<Map<string, _Record[]>> {
  const k = scenarioKinesis(s);
  const out = new Map<string, _Record[]>();
  try {
    const { Shards } = await k.send(new ListShardsCommand({ StreamName: s.stream }));
    for (const sh of Shards ?? []) {
      const records: _Record[] = [];
      let it = (await k.send(new GetShardIteratorCommand({ StreamName: s.stream, ShardId: sh.ShardId!, ShardIteratorType: "TRIM_HORIZON" }))).ShardIterator;
      while (it) {
        const r = await k.send(new GetRecordsCommand({ ShardIterator: it, Limit: 10_000 }));
        if (!r.Records?.length) break;
        records.push(...r.Records);
        it = r.NextShardIterator;
      }
      out.set(sh.ShardId!, records);
    }
  } finally {
    k.destroy();
  }
  return out;
}
