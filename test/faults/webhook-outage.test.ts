import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebhookReceiver } from "../webhook-receiver.ts";
import { BeaconLoad, loadLinks } from "./load.ts";
import { assertDrained, metricsText, waitDrained } from "./probes.ts";
import { IngestProcess } from "./processes.ts";
import { printReport } from "./report.ts";
import { scenario, type Scenario } from "./scenario.ts";
import { sleep } from "./util.ts";

/**
 * The webhook receiver down 60 s under steady click load. A loopback receiver verifies every
 * message with the `standardwebhooks` package; it is taken off the network (connections refused)
 * for 60 s while beacons go on. The schedule is compressed (base 200 ms, cap 15 s instead of an
 * hour; 18 attempts: at least ~88 s of retries, so nothing is dead-lettered by a 60 s outage,
 * as hours are not by one of production's). After it comes back every acknowledged click must
 * arrive in a verified link.clicked message, at least once; and no message may be dead-lettered.
 */
const OUTAGE_MS = 60_000;
const PATH = "/hook";

let s: Scenario;
let ingest: IngestProcess;
const receiver = new WebhookReceiver();
beforeAll(async () => {
  s = await scenario("Webhook receiver down 60 s");
  await receiver.listen();
  ingest = new IngestProcess(s, {
    env: {
      PIPELINE_ROLES: "forwarder,loader,maintenance,webhooks",
      ALLOW_PRIVATE_DESTINATIONS: "true",
      WEBHOOK_RETRY_BASE_MS: "200",
      WEBHOOK_RETRY_MAX_MS: "15000",
      WEBHOOK_POLL_MS: "100",
    },
  });
  await ingest.start();
});
afterAll(async () => {
  await ingest?.kill("SIGKILL").catch(() => {});
  await receiver.stop();
  await s?.close();
});

describe("fault: webhook receiver outage", () => {
  it("delivers every acknowledged click to the receiver after a 60 s outage, in verified batches, none lost", async () => {
    const res = await fetch(`${s.url}/api/webhooks`, {
      method: "POST",
      headers: { Authorization: `Bearer ${s.adminKey}`, "content-type": "application/json" },
      body: JSON.stringify({ url: receiver.url(PATH), events: ["link.clicked"] }),
    });
    expect(res.status).toBe(201);
    const endpoint = (await res.json()) as { id: number; secret: string };
    receiver.secrets.set(PATH, endpoint.secret);

    const load = new BeaconLoad(s.url, { rate: 100, maxInFlight: 48, links: await loadLinks(s) }).start();
    await sleep(10_000);
    const beforeOutage = receiver.clickIds(PATH).size;
    await receiver.stop();
    const downAt = Date.now();
    await sleep(OUTAGE_MS);
    const requestsDuring = receiver.requests;
    const [pendingAtPeak] = await s.pg<{ n: number }[]>`SELECT count(*)::int AS n FROM webhook_deliveries WHERE status = 'pending'`;
    const retriesDuring = Number(/^linkflow_webhook_deliveries_total\{outcome="retry"\} (\d+)/m.exec(await metricsText(s))?.[1] ?? 0);
    await receiver.listen();
    const upAt = Date.now();
    await sleep(5_000); // load goes on after the receiver is back
    const stats = await load.stop(30_000);
    const drain = await waitDrained(s, stats.acked.size, 120_000);

    // Every acknowledged click reaches the receiver (bounded wait, not a timing assertion).
    const until = Date.now() + 180_000;
    while (Date.now() < until && [...stats.acked].some((id) => !receiver.clickIds(PATH).has(id))) await sleep(250);
    const recoveryMs = Date.now() - upAt;
    // The sender records each outcome after the receiver's answer: let the last ones land.
    for (const end = Date.now() + 30_000; Date.now() < end; await sleep(100)) {
      const [p] = await s.pg<{ n: number }[]>`SELECT count(*)::int AS n FROM webhook_deliveries WHERE endpoint_id = ${endpoint.id} AND status = 'pending'`;
      if (p!.n === 0) break;
    }
    const got = receiver.clickIds(PATH);
    const lost = [...stats.acked].filter((id) => !got.has(id));
    const messages = receiver.received.filter((m) => m.path === PATH);
    const clicksReceived = messages.reduce((n, m) => n + m.payload.data.clicks.length, 0);
    const distinctMessages = new Set(messages.map((m) => m.webhookId)).size;
    const [log] = await s.pg<{ failed: number; pending: number; delivered: number; max_attempts: number }[]>`
      SELECT count(*) FILTER (WHERE status = 'failed')::int AS failed, count(*) FILTER (WHERE status = 'pending')::int AS pending,
             count(*) FILTER (WHERE status = 'delivered')::int AS delivered, coalesce(max(attempts), 0)::int AS max_attempts
      FROM webhook_deliveries WHERE endpoint_id = ${endpoint.id}`;
    const [extra] = await s.pg<{ n: number }[]>`
      SELECT coalesce(sum(jsonb_array_length(payload->'data'->'clicks')), 0)::int AS n FROM webhook_deliveries WHERE endpoint_id = ${endpoint.id}`;

    printReport({
      scenario: "Webhook receiver down 60 s (link.clicked)",
      acked: stats.acked.size,
      lost: lost.length,
      duplicated: clicksReceived - got.size,
      recoveryS: recoveryMs / 1000,
      notes:
        `${beforeOutage} clicks received before the outage; receiver off the network ${((upAt - downAt) / 1000).toFixed(0)} s (${requestsDuring} requests reached it before); ` +
        `${pendingAtPeak!.n} messages pending and ${retriesDuring} failed attempts at the end of the outage; ${log!.delivered} messages (${distinctMessages} distinct webhook-ids received, ` +
        `${messages.length} deliveries, every one verified with standardwebhooks, ${receiver.unverified} unverified), at most ${log!.max_attempts} attempts, ${log!.failed} dead-lettered; ` +
        `${clicksReceived} clicks received for ${got.size} distinct (counted in the duplicated column: at-least-once, deduplicable by webhook-id)`,
    });
    assertDrained(drain, ingest, `${stats.acked.size} clicks`);
    expect(stats.refused).toEqual([]);
    expect(stats.unacked).toEqual([]);
    expect(retriesDuring).toBeGreaterThan(0); // the outage was real: attempts failed
    // The endpoint was held while down: fewer failed attempts in 60 s than messages waiting (each
    // message on its own schedule made ~8 times as many as there were messages).
    expect(retriesDuring).toBeLessThan(pendingAtPeak!.n);
    expect(receiver.unverified).toBe(0);
    expect(lost).toEqual([]);
    // Nothing but acknowledged clicks, each queued once for the endpoint.
    expect([...got].filter((id) => !stats.acked.has(id))).toEqual([]);
    expect(extra!.n).toBe(stats.acked.size);
    expect(log!.failed).toBe(0);
    expect(log!.pending).toBe(0);
  });
});
