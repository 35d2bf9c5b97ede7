import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { webhookStore } from "../ingest/src/webhooks/store.ts";
import { Webhook } from "standardwebhooks";
import { retryDelay } from "../ingest/src/webhooks/dispatcher.ts";
import { generateSecret, signHeaders } from "../ingest/src/webhooks/signing.ts";
import { clickEvent, postBeacon, seedLinks } from "./fixtures.ts";
import { body, eventually, json, startStack, type Stack } from "./helpers.ts";
import { WebhookReceiver } from "./webhook-receiver.ts";

/**
 * Webhooks end to end on the real stack (PostgreSQL, kinesalite, chDB): endpoints and scopes,
 * link events, click batches from the pipeline, retries, dead letters and replays, all checked
 * by a receiver on loopback that verifies every message with the `standardwebhooks` package.
 */
let s: Stack;
const receiver = new WebhookReceiver();
beforeAll(async () => {
  await receiver.listen();
  s = await startStack({
    edge: false,
    pipeline: true,
    env: {
      PIPELINE_ROLES: "forwarder,loader,maintenance,webhooks",
      ALLOW_PRIVATE_DESTINATIONS: "true",
      WEBHOOK_BATCH_MAX_CLICKS: "50",
      WEBHOOK_POLL_MS: "50",
      WEBHOOK_RETRY_BASE_MS: "50",
      WEBHOOK_RETRY_MAX_MS: "200",
      WEBHOOK_MAX_ATTEMPTS: "4",
    },
  });
});
afterAll(async () => {
  await s?.close();
  await receiver.stop();
});

const api = (path: string, key: string, init: RequestInit = {}) => fetch(`${s.ingest.url}${path}`, { ...init, headers: { ...json(key), ...init.headers } });
const keyWith = async (scopes: string[], adminKey = s.adminKey) =>
  (await body(await api("/api/keys", adminKey, { method: "POST", body: JSON.stringify({ name: scopes.join(" "), scopes }) }))).key as string;
const createEndpoint = async (path: string, events: string[], key = s.adminKey) => {
  const res = await api("/api/webhooks", key, { method: "POST", body: JSON.stringify({ url: receiver.url(path), events }) });
  expect(res.status).toBe(201);
  const ep = await body(res);
  receiver.secrets.set(path, ep.secret);
  return ep as { id: number; secret: string };
};
const deliveries = async (id: number, q = "") => (await body(await api(`/api/webhooks/${id}/deliveries${q}`, s.adminKey))).deliveries as any[];

describe("webhook endpoints", () => {
  it("CRUD with the webhooks scopes; the secret is shown on creation and rotation only", async () => {
    const ep = await createEndpoint("/crud", ["link.created"]);
    expect(ep.secret).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
    const list = await body(await api("/api/webhooks", s.adminKey));
    expect(list.items.find((e: any) => e.id === ep.id)).toMatchObject({ url: receiver.url("/crud"), events: ["link.created"], enabled: true });
    expect(JSON.stringify(list)).not.toContain(ep.secret);
    const patched = await body(await api(`/api/webhooks/${ep.id}`, s.adminKey, { method: "PATCH", body: JSON.stringify({ description: "crm", events: ["link.created", "link.deleted"] }) }));
    expect(patched).toMatchObject({ description: "crm", events: ["link.created", "link.deleted"] });
    const rotated = await body(await api(`/api/webhooks/${ep.id}/rotate-secret`, s.adminKey, { method: "POST" }));
    expect(rotated.secret).toMatch(/^whsec_/);
    expect(rotated.secret).not.toBe(ep.secret);
    expect((await api(`/api/webhooks/${ep.id}`, s.adminKey, { method: "DELETE" })).status).toBe(200);
    expect((await api(`/api/webhooks/${ep.id}`, s.adminKey)).status).toBe(404);
  });

  it("scopes: webhooks:read lists, webhooks:write changes, links scopes do neither", async () => {
    const reader = await keyWith(["webhooks:read"]);
    const writer = await keyWith(["webhooks:write"]);
    const linksOnly = await keyWith(["links:read", "links:write"]);
    expect((await api("/api/webhooks", reader)).status).toBe(200);
    expect((await api("/api/webhooks", reader, { method: "POST", body: JSON.stringify({ url: receiver.url("/x"), events: ["link.created"] }) })).status).toBe(403);
    expect((await api("/api/webhooks", linksOnly)).status).toBe(403);
    const res = await api("/api/webhooks", writer, { method: "POST", body: JSON.stringify({ url: receiver.url("/w"), events: ["link.created"] }) });
    expect(res.status).toBe(201);
    await api(`/api/webhooks/${(await body(res)).id}`, writer, { method: "DELETE" });
  });

  it("another workspace's endpoints are not found; bad input is refused", async () => {
    const ep = await createEndpoint("/iso", ["link.created"]);
    const other = (await body(await api("/api/workspaces", s.adminKey, { method: "POST", body: JSON.stringify({ name: "other-ws" }) }))).admin_key.key as string;
    expect((await api(`/api/webhooks/${ep.id}`, other)).status).toBe(404);
    expect((await api(`/api/webhooks/${ep.id}/deliveries`, other)).status).toBe(404);
    expect((await api(`/api/webhooks/${ep.id}`, other, { method: "DELETE" })).status).toBe(404);
    expect((await body(await api("/api/webhooks", other))).items).toEqual([]);
    const bad = await api("/api/webhooks", s.adminKey, { method: "POST", body: JSON.stringify({ url: receiver.url("/b"), events: ["link.exploded"] }) });
    expect(bad.status).toBe(400);
    const ftp = await api("/api/webhooks", s.adminKey, { method: "POST", body: JSON.stringify({ url: "ftp://example.com/x", events: ["link.created"] }) });
    expect((await body(ftp)).error).toMatchObject({ status: 400, code: "unsafe_url", field: "url" });
    await api(`/api/webhooks/${ep.id}`, s.adminKey, { method: "DELETE" });
  });

  it("destination safety: a private address is refused unless ALLOW_PRIVATE_DESTINATIONS", async () => {
    const strict = webhookStore({ sql: s.ingest.sql, allowPrivate: false });
    for (const url of ["http://127.0.0.1:9/hook", "http://10.1.2.3/hook", "http://[::1]/hook", "http://169.254.169.254/latest", "http://localhost/hook"])
      await expect(strict.create(1, { url, events: ["link.created"] })).rejects.toMatchObject({ code: "unsafe_url" });
    const ok = await strict.create(1, { url: "https://hooks.example.com/x", events: ["link.created"] });
    await strict.remove(1, ok.id);
  });

  it("retries back off exponentially, capped, with jitter", () => {
    expect([1, 2, 3, 4, 20].map((a) => retryDelay(a, 5_000, 3_600_000, 1))).toEqual([5_000, 10_000, 20_000, 40_000, 3_600_000]);
    expect(retryDelay(3, 5_000, 3_600_000, 0)).toBe(10_000);
  });
});

describe("webhook events", () => {
  it("link.created, link.updated and link.deleted, each signed, with the link", async () => {
    const ep = await createEndpoint("/links", ["link.created", "link.updated", "link.deleted"]);
    const link = await body(await api("/api/links", s.adminKey, { method: "POST", body: JSON.stringify({ url: "https://example.com/a", slug: "wh-link" }) }));
    await api(`/api/links/${link.id}`, s.adminKey, { method: "PATCH", body: JSON.stringify({ title: "new title" }) });
    await api(`/api/links/${link.id}`, s.adminKey, { method: "DELETE" });
    const got = await eventually(async () => receiver.received.filter((m) => m.path === "/links").length >= 3 && receiver.received.filter((m) => m.path === "/links"), 15_000);
    expect(got).not.toBe(false);
    const msgs = receiver.received.filter((m) => m.path === "/links");
    expect(msgs.map((m) => m.payload.type).sort()).toEqual(["link.created", "link.deleted", "link.updated"]);
    expect(msgs.find((m) => m.payload.type === "link.updated")!.payload.data).toMatchObject({ id: link.id, code: "wh-link", title: "new title" });
    expect(new Set(msgs.map((m) => m.webhookId)).size).toBe(3);
    // The status is recorded after the receiver's answer: wait for it.
    await eventually(async () => (await deliveries(ep.id)).every((d) => d.status === "delivered"), 10_000);
    const log = await deliveries(ep.id);
    expect(log.map((d) => d.status)).toEqual(["delivered", "delivered", "delivered"]);
    expect(log[0]).toMatchObject({ attempts: 1, last_status_code: 200, next_attempt_at: null, clicks: null });
    await api(`/api/webhooks/${ep.id}`, s.adminKey, { method: "DELETE" });
  });

  it("after a rotation both secrets sign for a while: a receiver still on the old one verifies", async () => {
    const [a, b, c] = [generateSecret(), generateSecret(), generateSecret()];
    const raw = JSON.stringify({ type: "link.created", timestamp: new Date().toISOString(), data: {} });
    const headers = signHeaders(b, "msg_rotation", raw, new Date(), a);
    expect(new Webhook(a).verify(raw, { ...headers })).toBeTruthy();
    expect(new Webhook(b).verify(raw, { ...headers })).toBeTruthy();
    expect(() => new Webhook(c).verify(raw, { ...headers })).toThrow();
    // End to end: rotate, keep the receiver on the old secret, and the next message still verifies.
    const ep = await createEndpoint("/rotate", ["link.created"]);
    const rotated = await body(await api(`/api/webhooks/${ep.id}/rotate-secret`, s.adminKey, { method: "POST" }));
    expect(rotated.secret).not.toBe(ep.secret);
    const unverified = receiver.unverified;
    await api("/api/links", s.adminKey, { method: "POST", body: JSON.stringify({ url: "https://example.com/rot", slug: "wh-rotate" }) });
    await eventually(async () => receiver.received.some((m) => m.path === "/rotate"), 10_000);
    expect(receiver.received.filter((m) => m.path === "/rotate").length).toBe(1);
    expect(receiver.unverified).toBe(unverified);
    await api(`/api/webhooks/${ep.id}`, s.adminKey, { method: "DELETE" });
  });

  it("a failed link change sends nothing (the message commits with the change)", async () => {
    const ep = await createEndpoint("/atomic", ["link.created"]);
    await api("/api/links", s.adminKey, { method: "POST", body: JSON.stringify({ url: "https://example.com/b", slug: "wh-taken" }) });
    const clash = await api("/api/links", s.adminKey, { method: "POST", body: JSON.stringify({ url: "https://example.com/c", slug: "wh-taken" }) });
    expect(clash.status).toBe(409);
    await eventually(async () => (await deliveries(ep.id)).every((d) => d.status === "delivered") && (await deliveries(ep.id)).length === 1, 10_000);
    expect((await deliveries(ep.id)).length).toBe(1);
    await api(`/api/webhooks/${ep.id}`, s.adminKey, { method: "DELETE" });
  });

  it("link.clicked: every durable click in signed batches, only to its workspace's subscribers; retried through an outage, dead letters replayed, none lost", async () => {
    const ep = await createEndpoint("/clicks", ["link.clicked"]);
    const other = (await body(await api("/api/workspaces", s.adminKey, { method: "POST", body: JSON.stringify({ name: "clicks-other" }) }))).admin_key.key as string;
    const foreign = await createEndpoint("/foreign", ["link.clicked"], other);
    const linksOnly = await createEndpoint("/no-clicks", ["link.created"]);
    const events = Array.from({ length: 300 }, (_, i) => clickEvent({ link_id: 9001 + (i % 3), code: `whc${i % 3}`, domain: "" }));
    await seedLinks(s.sql, events);
    const send = async (batch: typeof events) => {
      for (let i = 0; i < batch.length; i += 20) await Promise.all(batch.slice(i, i + 20).map((e) => postBeacon(s.ingest.url, e)));
    };
    // 1. Healthy receiver; each message's first two attempts fail: retried, then delivered.
    receiver.failFirst = 2;
    await send(events.slice(0, 100));
    await eventually(async () => receiver.clickIds("/clicks").size >= 100, 30_000);
    receiver.failFirst = 0;
    // 2. Outage: 503 for everything; with 4 attempts the messages are dead-lettered.
    receiver.mode = "503";
    await send(events.slice(100));
    // Settled: all 300 clicks handed to the endpoint's messages, no message pending any more.
    const settled = async () => {
      const [q] = await s.sql`SELECT coalesce(sum(jsonb_array_length(payload->'data'->'clicks')), 0)::int AS n FROM webhook_deliveries WHERE endpoint_id = ${ep.id}`;
      return q!.n === 300 && (await deliveries(ep.id, "?status=pending")).length === 0;
    };
    expect(await eventually(settled, 30_000)).toBe(true);
    const failed = await deliveries(ep.id, "?status=failed&limit=200");
    expect(failed.length).toBeGreaterThan(0);
    expect(failed[0]).toMatchObject({ attempts: 4, last_status_code: 503, last_error: "HTTP 503" });
    // The endpoint is known to be down: its messages were held between rounds, and /metrics says so.
    const health = async () => (await s.sql<{ failures: number; failing_since: Date | null }[]>`SELECT failures, failing_since FROM webhook_endpoints WHERE id = ${ep.id}`)[0]!;
    expect(await health()).toMatchObject({ failures: expect.any(Number), failing_since: expect.any(Date) });
    expect((await health()).failures).toBeGreaterThan(0);
    expect(await eventually(async () => /^linkflow_webhook_endpoints_down 1$/m.test(await (await fetch(`${s.ingest.url}/metrics`)).text()), 15_000)).toBe(true);
    // 3. Recovery and replay: every click arrives.
    receiver.mode = "ok";
    const replay = await body(await api(`/api/webhooks/${ep.id}/replay`, s.adminKey, { method: "POST" }));
    expect(replay.replayed).toBe(failed.length);
    expect(await eventually(async () => receiver.clickIds("/clicks").size >= 300, 30_000)).toBe(true);
    // Back up with the first delivery (its status is written after the receiver answered: waited for).
    expect(await eventually(async () => (await health()).failures === 0, 10_000)).toBe(true);
    expect(await health()).toEqual({ failures: 0, failing_since: null });
    expect(receiver.clickIds("/clicks")).toEqual(new Set(events.map((e) => e.click_id)));
    expect(receiver.unverified).toBe(0);
    // Batches: at most WEBHOOK_BATCH_MAX_CLICKS, no click in two messages (one id per message), no IP.
    const msgs = receiver.received.filter((m) => m.path === "/clicks");
    const byId = new Map(msgs.map((m) => [m.webhookId, m]));
    const clicksInMessages = [...byId.values()].flatMap((m) => m.payload.data.clicks.map((c: any) => c.click_id));
    expect(clicksInMessages.length).toBe(300);
    for (const m of byId.values()) expect(m.payload.data.clicks.length).toBeLessThanOrEqual(50);
    expect(JSON.stringify(msgs[0]!.payload.data.clicks[0])).not.toContain("ip_address");
    expect(msgs[0]!.payload.data.clicks[0]).toMatchObject({ link_id: expect.any(Number), short_url: expect.any(String), received_at: expect.any(String) });
    // Another workspace's subscriber and a subscriber of link events only got no click.
    expect(receiver.clickIds("/foreign").size).toBe(0);
    expect(receiver.clickIds("/no-clicks").size).toBe(0);
    expect((await body(await api(`/api/webhooks/${foreign.id}/deliveries`, other))).deliveries).toEqual([]);
    // The log after recovery: every message delivered; one replayed by id goes again with the same webhook-id.
    await eventually(async () => (await deliveries(ep.id, "?limit=200")).every((d) => d.status === "delivered"), 10_000);
    const log = await deliveries(ep.id, "?limit=200");
    expect(log.every((d) => d.status === "delivered")).toBe(true);
    const one = log[0];
    const again = await body(await api(`/api/webhooks/${ep.id}/deliveries/${one.id}/replay`, s.adminKey, { method: "POST" }));
    expect(again).toMatchObject({ id: one.id, status: "pending", attempts: 0 });
    await eventually(async () => receiver.received.filter((m) => m.webhookId === one.webhook_id).length >= 2, 10_000);
    expect(receiver.received.filter((m) => m.webhookId === one.webhook_id).length).toBe(2);
    // Clicks the loader dead-lettered, replayed into the outbox, go through the pipeline again but make no new message.
    const messagesBefore = (await deliveries(ep.id, "?limit=200")).length;
    // (Five clicks from any messages: one message holds a forwarder batch, which may be smaller.)
    for (const [i, c] of [...byId.values()].flatMap((m) => m.payload.data.clicks).slice(0, 5).entries())
      await s.sql`INSERT INTO dead_letters (source, shard_id, sequence_number, partition_key, payload, error)
                  VALUES ('loader', 'shardId-webhooks-test', ${String(i)}, ${c.code}, ${Buffer.from(JSON.stringify({ ...c, ip_address: "203.0.113.7" }))}, 'test')`;
    const replayed = await body(await fetch(`${s.ingest.url}/api/pipeline/dlq/replay`, { method: "POST", headers: json(s.adminKey), body: "{}" }));
    expect(replayed.replayed).toBeGreaterThanOrEqual(5);
    expect(await eventually(async () => Number((await s.sql`SELECT count(*)::int AS n FROM outbox`)[0]!.n) === 0, 15_000)).toBe(true);
    expect((await s.sql`SELECT count(*)::int AS n FROM dead_letters WHERE shard_id = 'shardId-webhooks-test' AND replayed_at IS NOT NULL`)[0]!.n).toBe(5);
    expect((await deliveries(ep.id, "?limit=200")).length).toBe(messagesBefore);
    // Metrics.
    const metrics = await (await fetch(`${s.ingest.url}/metrics`)).text();
    expect(metrics).toMatch(/linkflow_webhook_deliveries_total\{outcome="delivered"\} [1-9]/);
    expect(metrics).toMatch(/linkflow_webhook_deliveries_total\{outcome="failed"\} [1-9]/);
    expect(metrics).toContain("linkflow_webhook_backlog");
    for (const id of [ep.id, linksOnly.id]) await api(`/api/webhooks/${id}`, s.adminKey, { method: "DELETE" });
  });
});
