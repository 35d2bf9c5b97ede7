import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BeaconLoad, loadLinks } from "./load.ts";
import { assertDrained, metricsText, pipelineStatus, waitDrained } from "./probes.ts";
import { IngestProcess } from "./processes.ts";
import { scenario, type Scenario } from "./scenario.ts";
import { sleep } from "./util.ts";
import { expectEachClickOnce, verify } from "./verdict.ts";

/**
 * ClickHouse refusing every insert for 30 s under steady beacon load. ClickHouse is chDB inside
 * the ingest child process, so the fault is switched on from inside: ingest runs through
 * test/faults/ingest-with-faults.ts, whose insert wrapper (the loader's `insert` option) fails each
 * insert while the flag file exists. Beacons keep getting 202 (PostgreSQL + outbox → Kinesis go on), the ClickHouse
 * breaker opens, the loader holds its place in Kinesis (no checkpoint past rows not inserted),
 * and once the file is gone the backlog drains: ClickHouse ends with exactly the acknowledged ids.
 */
const OUTAGE_MS = 30_000;
const OPEN = /^linkflow_breaker_state\{breaker="clickhouse"\} 2$/m;

let s: Scenario;
let ingest: IngestProcess;
let flag: string;
beforeAll(async () => {
  s = await scenario("ClickHouse down 30 s");
  flag = join(s.dataDir, "clickhouse-down");
  ingest = new IngestProcess(s, { clickhouseFaultFile: flag });
  await ingest.start();
});
afterAll(async () => {
  await ingest?.kill("SIGKILL").catch(() => {});
  await s?.close();
});

describe("fault: ClickHouse outage", () => {
  it("acknowledges every beacon while ClickHouse refuses inserts for 30 s, then loads each click exactly once", async () => {
    const load = new BeaconLoad(s.url, { rate: 150, maxInFlight: 48, links: await loadLinks(s) }).start();
    await sleep(5_000);
    await writeFile(flag, "down\n");
    const downAt = Date.now();
    let openAfterMs: number | null = null;
    let chAtStart: number | null = null;
    while (Date.now() - downAt < OUTAGE_MS) {
      if (openAfterMs === null && OPEN.test(await metricsText(s))) openAfterMs = Date.now() - downAt;
      // A batch already inside chDB when the flag appeared may still land: take the baseline 2 s in.
      if (chAtStart === null && Date.now() - downAt > 2_000) chAtStart = (await pipelineStatus(s)).clickhouse_clicks;
      await sleep(100);
    }
    const during = await pipelineStatus(s);
    await rm(flag);
    const upAt = Date.now();
    await sleep(5_000); // load goes on after ClickHouse is back
    const stats = await load.stop(30_000);

    const drain = await waitDrained(s, stats.acked.size, 120_000);
    const recoveryMs = Date.now() - upAt;
    const v = await verify(
      s,
      ingest,
      stats.acked,
      drain.status,
      recoveryMs,
      `clickhouse breaker open after ${((openAfterMs ?? NaN) / 1000).toFixed(1)} s; during the outage ClickHouse stayed at ${chAtStart} → ${during.clickhouse_clicks} ` +
        `while PostgreSQL reached ${during.postgres_clicks}; ${stats.generated} beacons, ${stats.failedAttempts} failed attempts; load kept on 5 s after recovery`,
    );
    expect(openAfterMs, "clickhouse breaker never showed open (2) in /metrics during the outage").not.toBeNull();
    expect(during.breakers.clickhouse).not.toBe("closed");
    // The fault was real: nothing reached ClickHouse while PostgreSQL kept committing.
    expect(during.clickhouse_clicks).toBe(chAtStart);
    expect(during.postgres_clicks!).toBeGreaterThan(chAtStart!);
    expect(during.dlq).toBe(0); // unavailability is never poison
    expect(stats.failedAttempts).toBe(0); // every beacon got 202 at the first attempt, outage or not
    expect(stats.refused).toEqual([]);
    expect(stats.unacked).toEqual([]);
    assertDrained(drain, ingest);
    expect(drain.status.breakers.clickhouse).toBe("closed");
    expectEachClickOnce(v, drain.status, stats.acked.size);
    expect(v.ch.distinct).toBe(stats.acked.size);
  });
});
