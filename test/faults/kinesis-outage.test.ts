import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BeaconLoad, loadLinks } from "./load.ts";
import { assertDrained, metricsText, pipelineStatus, waitDrained } from "./probes.ts";
import { IngestProcess } from "./processes.ts";
import { scenario, type Scenario } from "./scenario.ts";
import { sleep } from "./util.ts";
import { expectEachClickOnce, verify } from "./verdict.ts";

/**
 * Kinesis unreachable for 30 s under steady beacon load (the TCP proxy between ingest and
 * kinesalite drops every connection): beacons keep getting 202 (PostgreSQL + outbox), the
 * Kinesis breaker opens, and after the endpoint is back the outbox drains into ClickHouse.
 */
const OUTAGE_MS = 30_000;
const OPEN = /^linkflow_breaker_state\{breaker="kinesis"\} 2$/m;

let s: Scenario;
let ingest: IngestProcess;
beforeAll(async () => {
  s = await scenario("Kinesis down 30 s");
  ingest = new IngestProcess(s);
  await ingest.start();
});
afterAll(async () => {
  await ingest?.kill("SIGKILL").catch(() => {});
  await s?.close();
});

describe("fault: Kinesis outage", () => {
  it("acknowledges every beacon during a 30 s outage and drains afterwards", async () => {
    const load = new BeaconLoad(s.url, { rate: 150, maxInFlight: 48, links: await loadLinks(s) }).start();
    await sleep(5_000);
    s.kinesisProxy.down();
    const downAt = Date.now();
    let openAfterMs: number | null = null;
    let peakBacklog = 0;
    let lastStatusAt = 0;
    while (Date.now() - downAt < OUTAGE_MS) {
      if (openAfterMs === null && OPEN.test(await metricsText(s))) openAfterMs = Date.now() - downAt;
      if (Date.now() - lastStatusAt > 2_000) {
        lastStatusAt = Date.now();
        peakBacklog = Math.max(peakBacklog, (await pipelineStatus(s)).outbox_backlog);
      }
      await sleep(100);
    }
    const during = await pipelineStatus(s);
    s.kinesisProxy.up();
    const upAt = Date.now();
    await sleep(5_000); // load goes on after the endpoint is back
    const stats = await load.stop(30_000);

    const drain = await waitDrained(s, stats.acked.size, 120_000);
    const recoveryMs = Date.now() - upAt;
    const v = await verify(
      s,
      ingest,
      stats.acked,
      drain.status,
      recoveryMs,
      `breaker open after ${((openAfterMs ?? NaN) / 1000).toFixed(1)} s; outbox backlog peak ${Math.max(peakBacklog, during.outbox_backlog)}; ` +
        `${stats.generated} beacons, ${stats.failedAttempts} failed attempts; load kept on 5 s after up(); breakers after: ${JSON.stringify(drain.status.breakers)}`,
    );
    expect(openAfterMs, "kinesis breaker never showed open (2) in /metrics during the outage").not.toBeNull();
    expect(during.breakers.kinesis).not.toBe("closed");
    expect(peakBacklog).toBeGreaterThan(0);
    expect(stats.failedAttempts).toBe(0); // every beacon got 202 at the first attempt, outage or not
    expect(stats.refused).toEqual([]);
    expect(stats.unacked).toEqual([]);
    assertDrained(drain, ingest);
    expect(drain.status.breakers.kinesis).toBe("closed");
    expectEachClickOnce(v, drain.status, stats.acked.size);
  });
});
