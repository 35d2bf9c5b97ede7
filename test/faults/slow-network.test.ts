import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEdge, type Edge } from "../../edge/miniflare.ts";
import { EDGE_SECRET, TcpProxy } from "../helpers.ts";
import { createLink, RedirectLoad } from "./load.ts";
import { assertDrained, settleEdgeClicks, waitDrained } from "./probes.ts";
import { IngestProcess } from "./processes.ts";
import { scenario, type Scenario } from "./scenario.ts";
import { percentile, sleep } from "./util.ts";
import { expectEachClickOnce, verify } from "./verdict.ts";

/**
 * A slow network between worker and ingest: a TCP proxy holds every chunk back DELAY_MS in each
 * direction (so a beacon's round trip costs at least 2 × DELAY_MS). Redirect load runs first on
 * a clean link, then with the delay, in the same run; the worker's default settings. Checks that
 * every redirect is a 302 and that no redirect waits for its beacon (the click is sent after the
 * response, in waitUntil): with the delay, every redirect is answered in less than one beacon
 * round trip would take (a bound, not a performance target). Then every click arrives, once.
 */
const DELAY_MS = 500;
const PHASE_MS = 15_000;

let s: Scenario;
let ingest: IngestProcess;
let proxy: TcpProxy;
let edge: Edge;
beforeAll(async () => {
  s = await scenario(`Slow network worker ↔ ingest (+${DELAY_MS} ms each way)`);
  ingest = new IngestProcess(s);
  await ingest.start();
  proxy = await new TcpProxy(s.port, { delayMs: 0 }).listen();
  edge = await startEdge({ vars: { INGEST_URL: `http://127.0.0.1:${proxy.port}`, EDGE_SECRET } });
});
afterAll(async () => {
  await edge?.close();
  await proxy?.close();
  await ingest?.kill("SIGKILL").catch(() => {});
  await s?.close();
});

describe("fault: slow network between worker and ingest", () => {
  it("answers redirects without waiting for the beacon, and every click still arrives once", async () => {
    const link = await createLink(s.url, s, { url: "https://example.com/slow", slug: "slow-net" });
    const target = `${edge.url}/${link.code}`;
    expect((await fetch(target, { redirect: "manual" })).status).toBe(302); // warm: origin → KV

    const fast = new RedirectLoad(target, { rate: 30, maxInFlight: 16 }).start();
    await sleep(PHASE_MS);
    await fast.stop();
    proxy.delayMs = DELAY_MS;
    const slowAt = Date.now();
    const slow = new RedirectLoad(target, { rate: 30, maxInFlight: 16 }).start();
    await sleep(PHASE_MS);
    await slow.stop();
    const endAt = Date.now();

    // The fault was real: a request through the proxy now takes at least one delayed round trip.
    const probeAt = Date.now();
    expect((await fetch(`http://127.0.0.1:${proxy.port}/healthz`, { signal: AbortSignal.timeout(10_000) })).status).toBe(200);
    const roundTripMs = Date.now() - probeAt;
    expect(roundTripMs).toBeGreaterThanOrEqual(2 * DELAY_MS);

    const served = fast.served + slow.served + 1; // + the warm-up visit
    const settled = await settleEdgeClicks(s, link.code, served, { quietMs: 25_000, ms: 60_000 });
    proxy.delayMs = 0;
    const drain = await waitDrained(s, settled.stored, 120_000);
    const recoveryMs = Date.now() - endAt;
    assertDrained(drain, ingest);

    const ms = (l: RedirectLoad) => l.samples.map((r) => r.ms);
    const figures = (l: RedirectLoad) => `p50 ${percentile(ms(l), 50)} ms, p99 ${percentile(ms(l), 99)} ms, max ${Math.max(...ms(l))} ms`;
    const v = await verify(
      s,
      ingest,
      new Set(),
      drain.status,
      recoveryMs,
      `GET /healthz through the slowed proxy: ${roundTripMs} ms; redirect latency without delay (${fast.samples.length}): ${figures(fast)}; with +${DELAY_MS} ms each way (${slow.samples.length}): ${figures(slow)}; ` +
        `clicks all stored ${(settled.ms / 1000).toFixed(1)} s after the load stopped (recovery = load end → drained)`,
      { code: link.code, served },
    );

    for (const l of [fast, slow]) expect(l.statuses()).toEqual({ 302: l.samples.length });
    expect(slow.samples.every((r) => r.at >= slowAt)).toBe(true);
    // No redirect waited on its beacon: that would take at least one round trip, 2 × DELAY_MS.
    expect(Math.max(...ms(slow))).toBeLessThan(2 * DELAY_MS);
    expect(percentile(ms(slow), 50)).toBeLessThan(DELAY_MS);
    expect(settled.complete).toBe(true);
    expect(v.edge).toMatchObject({ served, stored: served, lost: 0, extra: 0, missingCh: 0 });
    expectEachClickOnce(v, drain.status, served);
  });
});
