import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEdge, type Edge } from "../../edge/miniflare.ts";
import { EDGE_SECRET, TcpProxy } from "../helpers.ts";
import { createLink, RedirectLoad } from "./load.ts";
import { assertDrained, settleEdgeClicks, waitDrained } from "./probes.ts";
import { IngestProcess } from "./processes.ts";
import { scenario, type Scenario } from "./scenario.ts";
import { sleep } from "./util.ts";
import { verify } from "./verdict.ts";

/**
 * Ingest unreachable from the worker for 60 s (a TCP proxy between worker and ingest drops
 * every connection) under steady redirect load, on two workers side by side with the default
 * settings (5 beacon attempts, 250 ms base, ≈ 7–13 s of retries within a 20 s budget):
 * - without a queue (`startEdge({ queues: false })`): a click whose attempts all fail is lost.
 *   Measured, not asserted to be zero: expected lost are the clicks of the outage's first
 *   ~45–50 s (those of its last ~10–13 s are still retrying when ingest is back). Asserted:
 *   the books balance (stored + lost = redirects served) and nothing is stored twice.
 * - with CLICKS_QUEUE (the default): undelivered clicks go to the queue, whose consumer
 *   redelivers them (BEACON_QUEUE_RETRY_S = 5 s, doubling) once ingest is back: 0 lost.
 * Every redirect is a 302 throughout: the link is served from the isolate cache and KV.
 */
const OUTAGE_MS = 60_000;

let s: Scenario;
let ingest: IngestProcess;
let proxy: TcpProxy;
let direct: Edge;
let queued: Edge;
beforeAll(async () => {
  s = await scenario("Ingest unreachable 60 s from the worker");
  ingest = new IngestProcess(s);
  await ingest.start();
  proxy = await new TcpProxy(s.port).listen();
  const vars = { INGEST_URL: `http://127.0.0.1:${proxy.port}`, EDGE_SECRET };
  direct = await startEdge({ vars, queues: false });
  queued = await startEdge({ vars });
});
afterAll(async () => {
  await direct?.close();
  await queued?.close();
  await proxy?.close();
  await ingest?.kill("SIGKILL").catch(() => {});
  await s?.close();
});

describe("fault: ingest unreachable from the worker", () => {
  it("loses the clicks of a 60 s outage without a queue (measured), none with CLICKS_QUEUE", async () => {
    const links = {
      direct: await createLink(s.url, s, { url: "https://example.com/no-queue", slug: "no-queue" }),
      queued: await createLink(s.url, s, { url: "https://example.com/queue", slug: "with-queue" }),
    };
    const targets = { direct: `${direct.url}/${links.direct.code}`, queued: `${queued.url}/${links.queued.code}` };
    // Warm each worker: the first visit resolves at the origin (through the proxy) and fills KV.
    for (const t of Object.values(targets)) expect((await fetch(t, { redirect: "manual" })).status).toBe(302);

    const loads = {
      direct: new RedirectLoad(targets.direct, { rate: 25, maxInFlight: 12 }).start(),
      queued: new RedirectLoad(targets.queued, { rate: 25, maxInFlight: 12 }).start(),
    };
    await sleep(5_000);
    proxy.down();
    const downAt = Date.now();
    await sleep(OUTAGE_MS);
    proxy.up();
    const upAt = Date.now();
    await sleep(5_000);
    await Promise.all(Object.values(loads).map((l) => l.stop()));

    const served = { direct: loads.direct.served + 1, queued: loads.queued.served + 1 }; // + the warm-up visits
    // Without a queue the count stops once the last retries are over; with it, once all are in.
    const settled = {
      direct: await settleEdgeClicks(s, links.direct.code, served.direct, { quietMs: 25_000, ms: 60_000 }),
      queued: await settleEdgeClicks(s, links.queued.code, served.queued, { quietMs: Infinity, ms: 120_000 }),
    };
    const drain = await waitDrained(s, settled.direct.stored + settled.queued.stored, 120_000);
    const recoveryMs = Date.now() - upAt;
    assertDrained(drain, ingest);

    const during = (l: RedirectLoad) => l.between(downAt, upAt).length;
    const lostDirect = served.direct - settled.direct.stored;
    const v = await verify(s, ingest, new Set(), drain.status, recoveryMs, `redirects ${loads.direct.samples.length + loads.queued.samples.length}, all 302`, [
      {
        code: links.direct.code,
        served: served.direct,
        label: "no queue (measured)",
        notes:
          `${during(loads.direct)} redirects during the outage; ${lostDirect} clicks lost (${((lostDirect / Math.max(1, during(loads.direct))) * 100).toFixed(0)}% of the outage's): ` +
          `their 5 attempts (≈ 7–13 s) all failed and no CLICKS_QUEUE is bound; the outage's last ~10 s were still retrying when ingest came back`,
      },
      {
        code: links.queued.code,
        served: served.queued,
        label: "CLICKS_QUEUE fallback",
        notes: `${during(loads.queued)} redirects during the outage; all clicks stored ${(settled.queued.ms / 1000).toFixed(1)} s after the load stopped (queue redelivery, 5 s doubling)`,
      },
    ]);

    // Availability: every visitor got the redirect, outage or not.
    for (const l of Object.values(loads)) {
      expect(during(l)).toBeGreaterThan(0);
      expect(l.statuses()).toEqual({ 302: l.samples.length });
    }
    const [noQueue, withQueue] = v.edges;
    // Without a queue: the books balance and nothing is counted twice; the loss is the measured figure.
    expect(noQueue!.extra).toBe(0);
    expect(noQueue!.stored + noQueue!.lost).toBe(served.direct);
    expect(noQueue!.lost).toBeLessThanOrEqual(during(loads.direct));
    // With the queue: every click, once.
    expect(settled.queued.complete).toBe(true);
    expect(withQueue).toMatchObject({ served: served.queued, stored: served.queued, lost: 0, extra: 0, missingCh: 0 });
    expect(v.missingCh).toEqual([]);
    expect(v.extraPg).toEqual([]);
    expect(v.extraCh).toEqual([]);
    expect(v.pgDuplicateRows).toBe(0);
    expect(drain.status).toMatchObject({ outbox_backlog: 0, dlq: 0 });
  });
});
