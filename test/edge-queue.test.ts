/**
 * The CLICKS_QUEUE path (edge/src/beacon.ts deliver, edge/src/consumer.ts): queue mode, the
 * direct path's fallback to the queue during an ingest outage, and the loss without a queue.
 * Real workerd queues (Miniflare's broker), real ingest and PostgreSQL; the outage is the
 * stack's proxy between worker and ingest dropping every connection.
 *
 * Each stack runs ingest through startStack but starts its own worker (same wiring: the
 * stack's proxy as INGEST_URL), because startStack's worker can neither leave the queue out
 * nor hand its console output to the test; the worker's logs are how a test knows the direct
 * attempts are over before it ends the outage.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEdge, type Edge } from "../edge/miniflare.ts";
import { linkKey, type ClickEvent } from "../shared/event.ts";
import { clickEvent } from "./fixtures.ts";
import { body, EDGE_SECRET, eventually, json, startStack, type Stack } from "./helpers.ts";

const UA = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0 queue-test";

interface QueueStack {
  s: Stack;
  edge: Edge;
  /** The worker's console output, one message per call. */
  logs: string[];
  close: () => Promise<void>;
}

async function start(queues: boolean, vars: Record<string, string>): Promise<QueueStack> {
  const s = await startStack({ edge: false });
  const logs: string[] = [];
  const edge = await startEdge({
    queues,
    onLog: (l) => logs.push(l.message),
    vars: {
      INGEST_URL: s.proxy.url,
      EDGE_SECRET,
      // The link stays in the isolate through the outage (its origin is behind the same proxy).
      ISOLATE_TTL_MS: "600000",
      BEACON_BASE_DELAY_MS: "50",
      BEACON_QUEUE_RETRY_S: "1",
      ...vars,
    },
  });
  return { s, edge, logs, close: async () => (await edge.close(), await s.close()) };
}

async function createLink(s: Stack, url: string) {
  const res = await fetch(`${s.ingest.url}/api/links`, { method: "POST", headers: json(s.adminKey), body: JSON.stringify({ url }) });
  expect(res.status).toBe(201);
  return (await body(res)) as { id: number; code: string };
}

const visit = (q: QueueStack, code: string) => fetch(`${q.edge.url}/${code}`, { redirect: "manual", headers: { "user-agent": UA } });
const rows = (s: Stack, code: string) => s.sql`SELECT click_id, code, link_id, user_agent FROM clicks WHERE code = ${code}`;
const count = async (s: Stack, code: string) => (await rows(s, code)).length;
/** Sum of the counts in the worker's log lines matching `re` (its first group is the count). */
const logged = (q: QueueStack, re: RegExp) => q.logs.reduce((n, l) => n + Number(re.exec(l)?.[1] ?? 0), 0);

/** Warms the isolate with one visit (resolved from the origin) and waits for its click. */
async function warm(q: QueueStack, code: string) {
  expect((await visit(q, code)).status).toBe(302);
  expect(await eventually(async () => (await count(q.s, code)) === 1, 15_000)).toBe(true);
}

describe("BEACON_TRANSPORT=queue", () => {
  let q: QueueStack;
  // One click per message (no in-isolate batching): any batching seen at ingest is the queue's.
  beforeAll(async () => (q = await start(true, { BEACON_TRANSPORT: "queue", BEACON_BATCH_MS: "0" })));
  afterAll(() => q.close());

  it("sends every click through CLICKS_QUEUE; the consumer posts them in batches, each stored once", async () => {
    const N = 40;
    const link = await createLink(q.s, "https://example.com/queued");
    await warm(q, link.code);
    const before = q.s.proxy.count("/v1/clicks");
    const res = await Promise.all(Array.from({ length: N }, () => visit(q, link.code)));
    expect(res.map((r) => r.status)).toEqual(Array(N).fill(302));
    expect(await eventually(async () => (await count(q.s, link.code)) >= N + 1, 20_000)).toBe(true);
    const stored = await rows(q.s, link.code);
    expect(stored).toHaveLength(N + 1);
    expect(new Set(stored.map((r) => r.click_id)).size).toBe(N + 1);
    expect(stored.every((r) => r.user_agent === UA && Number(r.link_id) === link.id)).toBe(true);
    // Direct delivery with BEACON_BATCH_MS=0 would have been one beacon per click.
    // The proxy records a beacon once its answer passed through, which can be after the rows
    // became visible (ingest answers after the commit): wait for the record, not only the rows.
    expect(await eventually(async () => q.s.proxy.count("/v1/clicks") > before, 5_000)).toBe(true);
    const beacons = q.s.proxy.count("/v1/clicks") - before;
    expect(beacons).toBeGreaterThanOrEqual(1);
    expect(beacons).toBeLessThan(N / 4);
    expect(q.s.proxy.hits.filter((h) => h.path.startsWith("/v1/clicks")).every((h) => h.status === 202)).toBe(true);
  });
});

describe("the CLICKS_QUEUE consumer", () => {
  let q: QueueStack;
  beforeAll(async () => (q = await start(true, { BEACON_TRANSPORT: "queue" })));
  afterAll(() => q.close());

  it("stores the good clicks of a batch; one ingest refuses as invalid goes to the dead-letter queue, whose consumer hands it to ingest's dead letters", async () => {
    const link = await createLink(q.s, "https://example.com/mixed");
    const good = clickEvent({ code: link.code, link_id: link.id, user_agent: UA });
    const bad = clickEvent({ code: link.code, link_id: link.id, ip_address: "not-an-ip" });
    // Two messages in the format of an older worker (one bare click each): still read.
    const queue = await q.edge.mf.getQueueProducer<ClickEvent>("CLICKS_QUEUE");
    await queue.sendBatch([good, bad].map((body) => ({ body, contentType: "json" as const })));
    expect(await eventually(async () => logged(q, /^CLICKS_QUEUE: (\d+) click\(s\) refused/) === 1, 15_000)).toBe(true);
    expect((await rows(q.s, link.code)).map((r) => r.click_id)).toEqual([good.click_id]);
    // Ingest said 400 to the bad click alone (the batch was split), and the consumer did not ask for it again …
    const beacons = () => q.s.proxy.hits.filter((h) => h.path === "/v1/clicks").map((h) => h.status);
    expect(beacons().slice(0, 3).sort()).toEqual([202, 400, 400]);
    expect(q.logs.some((l) => l.includes("not taken"))).toBe(false);
    // … the dead-letter queue's consumer replayed it once (400 again) and handed it to ingest's dead letters.
    const dead = async () => (await q.s.sql`SELECT partition_key, error FROM dead_letters WHERE source = 'edge_queue' AND replayed_at IS NULL`) as unknown as { partition_key: string; error: string }[];
    expect(await eventually(async () => (await dead()).length === 1, 20_000)).toBe(true);
    expect((await dead())[0]).toMatchObject({ partition_key: bad.click_id, error: expect.stringMatching(/ip_address/) });
    expect(beacons()).toEqual(expect.arrayContaining([202, 400, 400, 400]));
    expect(beacons()).toHaveLength(4);
    const status = (await body(await fetch(`${q.s.ingest.url}/api/pipeline`, { headers: json(q.s.adminKey) }))) as { dlq: number; edge_dead_letters: number };
    expect(status).toMatchObject({ dlq: 1, edge_dead_letters: 1 });
    // An operator's replay checks it again: still invalid, so it stays (nothing stored).
    const replay = await fetch(`${q.s.ingest.url}/api/pipeline/dlq/replay`, { method: "POST", headers: json(q.s.adminKey) });
    expect(await body(replay)).toEqual({ replayed: 0 });
    expect(await count(q.s, link.code)).toBe(1);
  });

  it("replays what reaches the dead-letter queue to ingest, idempotently (a click already stored is not stored twice)", async () => {
    const link = await createLink(q.s, "https://example.com/dlq-replay");
    const clicks = Array.from({ length: 30 }, () => clickEvent({ code: link.code, link_id: link.id, user_agent: UA }));
    const dlq = await q.edge.mf.getQueueProducer<unknown>("CLICKS_DLQ");
    // One parcel of 30 (as the consumer moves clicks past their attempts), and 5 of them again.
    await dlq.sendBatch([{ body: { clicks, tries: 101 }, contentType: "json" }, { body: { clicks: clicks.slice(0, 5) }, contentType: "json" }]);
    expect(await eventually(async () => logged(q, /^CLICKS_DLQ: (\d+) click\(s\) replayed/) === 35, 20_000)).toBe(true);
    const stored = await rows(q.s, link.code);
    expect(stored).toHaveLength(30);
    expect(new Set(stored.map((r) => r.click_id))).toEqual(new Set(clicks.map((c) => c.click_id)));
  });
});

describe("a worker whose EDGE_SECRET ingest does not accept", () => {
  let q: QueueStack;
  beforeAll(async () => (q = await start(true, { EDGE_SECRET: "not-the-edge-secret-0123456789-abcdefgh", BEACON_ATTEMPTS: "2" })));
  afterAll(() => q.close());

  it("keeps the refused clicks on the queue (retried) instead of dropping them", async () => {
    // The link is served from KV: resolving it from the origin needs the secret too.
    const code = "wrong-secret";
    await (await q.edge.mf.getKVNamespace("LINKS")).put(linkKey("", code), JSON.stringify({ id: 1, domain: "", code, url: "https://example.com/s", status: 302 }));
    for (let i = 0; i < 3; i++) expect((await visit(q, code)).status).toBe(302);
    expect(await eventually(async () => logged(q, /^(\d+) click\(s\) handed to CLICKS_QUEUE/) === 3, 15_000)).toBe(true);
    expect(await eventually(async () => logged(q, /^CLICKS_QUEUE: (\d+) click\(s\) not taken/) >= 3, 15_000)).toBe(true);
    expect(q.s.proxy.hits.filter((h) => h.path.startsWith("/v1/clicks")).every((h) => h.status === 401)).toBe(true);
    expect(q.logs.some((l) => /refused by ingest as invalid|lost/.test(l))).toBe(false);
    expect(await count(q.s, code)).toBe(0);
  });
});

describe("direct mode during an ingest outage", () => {
  let q: QueueStack;
  beforeAll(async () => (q = await start(true, { BEACON_ATTEMPTS: "2" })));
  afterAll(() => q.close());

  it("hands undelivered clicks to CLICKS_QUEUE; the consumer delivers each once when ingest is back", async () => {
    const N = 20;
    const link = await createLink(q.s, "https://example.com/outage");
    await warm(q, link.code);
    q.s.proxy.down = true;
    for (let i = 0; i < N; i++) expect((await visit(q, link.code)).status).toBe(302);
    // The direct attempts are over and every click is on the queue …
    expect(await eventually(async () => logged(q, /^(\d+) click\(s\) handed to CLICKS_QUEUE/) === N, 20_000)).toBe(true);
    // … whose consumer found ingest unreachable too, and will try again.
    expect(await eventually(async () => logged(q, /^CLICKS_QUEUE: (\d+) click\(s\) not taken/) >= 1, 20_000)).toBe(true);
    expect(await count(q.s, link.code)).toBe(1);
    expect(q.logs.some((l) => l.includes("lost"))).toBe(false);

    q.s.proxy.down = false;
    expect(await eventually(async () => (await count(q.s, link.code)) >= N + 1, 30_000)).toBe(true);
    const stored = await rows(q.s, link.code);
    expect(stored).toHaveLength(N + 1);
    expect(new Set(stored.map((r) => r.click_id)).size).toBe(N + 1);
  });
});

describe("direct mode during an ingest outage, no queue bound", () => {
  let q: QueueStack;
  beforeAll(async () => (q = await start(false, { BEACON_ATTEMPTS: "2" })));
  afterAll(() => q.close());

  it("loses the clicks whose attempts all failed, and logs how many (no visitor data)", async () => {
    const N = 20;
    const link = await createLink(q.s, "https://example.com/lost");
    await warm(q, link.code);
    q.s.proxy.down = true;
    for (let i = 0; i < N; i++) expect((await visit(q, link.code)).status).toBe(302);
    expect(await eventually(async () => logged(q, /^(\d+) click\(s\) lost/) === N, 20_000)).toBe(true);
    const lines = q.logs.filter((l) => l.includes("lost"));
    expect(lines.join("\n")).toMatch(/no CLICKS_QUEUE is bound/);
    expect(lines.join("\n")).not.toMatch(/127\.0\.0\.1|Firefox|queue-test|example\.com/);

    // Ingest is back: a new click arrives, the lost ones never do (nothing holds them).
    q.s.proxy.down = false;
    expect((await visit(q, link.code)).status).toBe(302);
    expect(await eventually(async () => (await count(q.s, link.code)) === 2, 15_000)).toBe(true);
    expect(await count(q.s, link.code)).toBe(2);
  });
});
