import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BeaconLoad, loadLinks } from "./load.ts";
import { assertDrained, waitDrained } from "./probes.ts";
import { IngestProcess } from "./processes.ts";
import { scenario, type Scenario } from "./scenario.ts";
import { rand, sleep } from "./util.ts";
import { expectEachClickOnce, verify } from "./verdict.ts";

/**
 * Ingest SIGKILLed 10 times at random moments under steady beacon load, restarted each time on
 * the same port, data folder (chDB) and database. Beacons that fail while it is down are retried
 * with the same click_id, as the edge does. Afterwards every acknowledged click is in PostgreSQL
 * and in ClickHouse exactly once.
 */
const KILLS = 10;

let s: Scenario;
let ingest: IngestProcess;
beforeAll(async () => {
  s = await scenario(`ingest SIGKILL x${KILLS}`);
  ingest = new IngestProcess(s);
  await ingest.start();
});
afterAll(async () => {
  await ingest?.kill("SIGKILL").catch(() => {});
  await s?.close();
});

describe("fault: ingest SIGKILL", () => {
  it(`loses and double-counts nothing across ${KILLS} SIGKILLs under load`, async () => {
    const load = new BeaconLoad(s.url, { rate: 150, maxInFlight: 48, links: await loadLinks(s) }).start();
    const cycles: { upMs: number; downMs: number; startMs: number }[] = [];
    for (let i = 0; i < KILLS; i++) {
      const up = rand(1_000, 6_000);
      await sleep(up);
      const killedAt = Date.now();
      await ingest.kill("SIGKILL");
      await sleep(rand(0, 500));
      const startMs = await ingest.start();
      cycles.push({ upMs: Math.round(up), downMs: Date.now() - killedAt, startMs });
    }
    const faultEnd = Date.now();
    const stats = await load.stop(60_000);

    const drain = await waitDrained(s, stats.acked.size, 150_000);
    const recoveryMs = Date.now() - faultEnd;
    const v = await verify(
      s,
      ingest,
      stats.acked,
      drain.status,
      recoveryMs,
      `${ingest.starts} starts; down ${cycles.map((c) => (c.downMs / 1000).toFixed(1)).join("/")} s; ` +
        `${stats.generated} beacons, ${stats.failedAttempts} failed attempts retried (${stats.retriedIds} ids), ` +
        `${stats.duplicateAcks} retries answered "duplicate" (commit survived, answer lost), ${stats.skipped} load slots skipped while down`,
    );
    expect(stats.refused).toEqual([]);
    expect(stats.unacked).toEqual([]);
    assertDrained(drain, ingest);
    expectEachClickOnce(v, drain.status, stats.acked.size);
    expect(v.ch.distinct).toBe(stats.acked.size);
  });
});
