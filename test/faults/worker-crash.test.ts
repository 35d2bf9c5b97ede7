import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEdge, type Edge } from "../../edge/miniflare.ts";
import { EDGE_SECRET } from "../helpers.ts";
import { createLink, RedirectLoad } from "./load.ts";
import { assertDrained, settleEdgeClicks, waitDrained } from "./probes.ts";
import { IngestProcess } from "./processes.ts";
import { scenario, type Scenario } from "./scenario.ts";
import { sleep } from "./util.ts";
import { verify } from "./verdict.ts";

/**
 * The worker killed under load (issue 18, item 4): workerd gets SIGKILL while visitors follow a
 * link, as a crashed or evicted isolate would. The clicks still batching in the isolate (those
 * of the last BEACON_BATCH_MS) and the beacons in flight die with it: the one loss the design
 * accepts (README, Guarantees). Measured here, not asserted zero: for the default window (20 ms)
 * and a wider one (250 ms), KILLS kills each, the clicks lost per 1,000 redirects served.
 * Asserted: nothing counted twice, the loss is bounded by the redirects of the window plus those
 * in flight, and every redirect answered before the kill was a 302.
 */
const KILLS = 3;
const RATE = 150;
const WINDOWS = [20, 250];

/** workerd processes Miniflare started from this process. */
function workerdPids(): number[] {
  const out = execFileSync("ps", ["-o", "pid=,args=", "--ppid", String(process.pid)], { encoding: "utf8" });
  return out
    .split("\n")
    .filter((l) => /workerd/.test(l))
    .map((l) => Number(l.trim().split(/\s+/)[0]));
}

let s: Scenario;
let ingest: IngestProcess;
beforeAll(async () => {
  s = await scenario("Worker (workerd) killed with SIGKILL under load");
  ingest = new IngestProcess(s);
  await ingest.start();
});
afterAll(async () => {
  await ingest?.kill("SIGKILL").catch(() => {});
  await s?.close();
});

describe("fault: the worker killed under load", () => {
  it("loses at most the clicks of the batching window and those in flight (measured per 1,000 redirects)", async () => {
    const totals: { window: number; code: string; served: number }[] = [];
    for (const window of WINDOWS) {
      const link = await createLink(s.url, s, { url: `https://example.com/crash-${window}`, slug: `crash-${window}` });
      let served = 0;
      for (let k = 0; k < KILLS; k++) {
        const before = new Set(workerdPids());
        const edge: Edge = await startEdge({ vars: { INGEST_URL: ingest.url, EDGE_SECRET, BEACON_BATCH_MS: String(window) } });
        const pids = workerdPids().filter((p) => !before.has(p));
        expect(pids.length).toBeGreaterThan(0);
        const target = `${edge.url}/${link.code}`;
        expect((await fetch(target, { redirect: "manual" })).status).toBe(302);
        served++;
        const load = new RedirectLoad(target, { rate: RATE, maxInFlight: 16, timeoutMs: 5_000 }).start();
        await sleep(4_000 + Math.random() * 2_000);
        const killedAt = Date.now();
        for (const pid of pids) process.kill(pid, "SIGKILL");
        await load.stop();
        await edge.close().catch(() => {});
        // A redirect counts when its 302 arrived; those cut by the kill never reached a visitor.
        served += load.served;
        expect(load.samples.filter((r) => r.at + r.ms < killedAt - 1_000).every((r) => r.status === 302)).toBe(true);
      }
      totals.push({ window, code: link.code, served });
    }
    // Nothing more can arrive (the killed isolates held the rest): wait until the counts are quiet.
    const stored = await Promise.all(totals.map((t) => settleEdgeClicks(s, t.code, t.served, { quietMs: 10_000, ms: 60_000 })));
    const drain = await waitDrained(s, stored.reduce((n, x) => n + x.stored, 0), 120_000);
    assertDrained(drain, ingest);
    const v = await verify(
      s,
      ingest,
      new Set(),
      drain.status,
      0,
      `${KILLS} kills per window, ${RATE} redirects/s, each kill 4–6 s into the load`,
      totals.map((t, i) => {
        const lost = t.served - stored[i]!.stored;
        return {
          code: t.code,
          served: t.served,
          label: `BEACON_BATCH_MS ${t.window}`,
          notes: `${lost} clicks lost in ${KILLS} kills (${(lost / KILLS).toFixed(1)} a kill), ${((lost / t.served) * 1000).toFixed(1)} per 1,000 redirects served`,
        };
      }),
    );
    for (const [i, t] of totals.entries()) {
      const e = v.edges[i]!;
      expect(e.extra).toBe(0);
      // At most the window's clicks plus the beacons in flight (≤ maxInFlight redirects) per kill, with a margin.
      expect(e.lost).toBeLessThanOrEqual(KILLS * (Math.ceil((RATE * t.window) / 1000) + 16 + 50));
    }
    expect(v.pgDuplicateRows).toBe(0);
    expect(v.extraCh).toEqual([]);
  }, 600_000);
});
