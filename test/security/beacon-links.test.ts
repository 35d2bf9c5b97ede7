import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEdge, type Edge } from "../../edge/miniflare.ts";
import { linkKey, MAX_CLICK_AGE_MS } from "../../shared/event.ts";
import { clickEvent, postBeacon } from "../fixtures.ts";
import { body, EDGE_SECRET, eventually, json, startStack, type Stack } from "../helpers.ts";

/**
 * A signed beacon is trusted only as far as it is consistent (issue 15): a click whose link_id
 * is not the link at its domain/code (another workspace's link, a confused or forged record)
 * and a click stamped in the future or older than the queue could have held it are refused:
 * 400 for a direct beacon (nothing of it stored), the dead-letter queue for a queued one.
 */
let s: Stack;
let mine: { id: number; code: string };
let theirs: { id: number; code: string; max_clicks: number };
beforeAll(async () => {
  s = await startStack({ edge: false });
  const ws = await body(await fetch(`${s.ingest.url}/api/workspaces`, { method: "POST", headers: json(s.adminKey), body: JSON.stringify({ name: "victim" }) }));
  const theirKey: string = ws.admin_key.key;
  mine = await body(await fetch(`${s.ingest.url}/api/links`, { method: "POST", headers: json(s.adminKey), body: JSON.stringify({ url: "https://example.com/mine", slug: "mine" }) }));
  theirs = await body(await fetch(`${s.ingest.url}/api/links`, { method: "POST", headers: json(theirKey), body: JSON.stringify({ url: "https://example.com/theirs", slug: "theirs", max_clicks: 5 }) }));
});
afterAll(() => s.close());

const stored = async (linkId: number) => Number((await s.sql`SELECT count(*) AS n FROM clicks WHERE link_id = ${linkId}`)[0]!.n);
const mineClick = (over = {}) => clickEvent({ link_id: mine.id, code: "mine", original_url: "https://example.com/mine", ...over });

describe("link ownership", () => {
  it("a click naming another link's id under this code is refused whole, nothing stored", async () => {
    const forged = clickEvent({ link_id: theirs.id, code: "mine" });
    const res = await postBeacon(s.ingest.url, forged);
    expect(res.status).toBe(400);
    expect((await body(res)).error).toMatchObject({ status: 400, code: "link_mismatch", field: "link_id" });
    // In a batch, one such click refuses the batch (the worker splits it until the click is alone).
    const batch = await postBeacon(s.ingest.url, [mineClick(), forged]);
    expect(batch.status).toBe(400);
    // A code that has no link at all, and a domain the code is not on.
    expect((await postBeacon(s.ingest.url, clickEvent({ link_id: mine.id, code: "nothere" }))).status).toBe(400);
    expect((await postBeacon(s.ingest.url, mineClick({ domain: "go.example" }))).status).toBe(400);
    expect(await stored(theirs.id)).toBe(0);
    expect(await stored(mine.id)).toBe(0);
  });

  it("40 forged clicks cannot exhaust another workspace's max_clicks", async () => {
    const forged = Array.from({ length: 40 }, () => clickEvent({ link_id: theirs.id, code: "mine" }));
    expect((await postBeacon(s.ingest.url, forged)).status).toBe(400);
    expect(await stored(theirs.id)).toBe(0);
  });

  it("a consistent click is taken; a code deleted and taken by another link is checked again, not served from the cache", async () => {
    expect((await postBeacon(s.ingest.url, mineClick())).status).toBe(202);
    expect(await stored(mine.id)).toBe(1);
    await fetch(`${s.ingest.url}/api/links/${mine.id}`, { method: "DELETE", headers: json(s.adminKey) });
    const again = await body(await fetch(`${s.ingest.url}/api/links`, { method: "POST", headers: json(s.adminKey), body: JSON.stringify({ url: "https://example.com/again", slug: "mine" }) }));
    expect(again.id).not.toBe(mine.id);
    expect((await postBeacon(s.ingest.url, mineClick({ link_id: again.id }))).status).toBe(202);
    expect((await postBeacon(s.ingest.url, mineClick())).status).toBe(400); // the deleted link's id
    mine = again;
  });
});

describe("timestamps", () => {
  it("more than 5 minutes ahead, or older than the queue's longest redelivery: 400, nothing stored", async () => {
    const before = await stored(mine.id);
    for (const ms of [6 * 60_000, 86_400_000, -MAX_CLICK_AGE_MS - 60_000, -400 * 86_400_000]) {
      const res = await postBeacon(s.ingest.url, mineClick({ timestamp: new Date(Date.now() + ms).toISOString() }));
      expect(res.status, String(ms)).toBe(400);
      expect((await body(res)).error).toMatchObject({ code: "timestamp_out_of_range", field: "timestamp" });
    }
    expect(await stored(mine.id)).toBe(before);
    // Within the window: a little clock skew ahead, and a click the queue held for hours.
    for (const ms of [4 * 60_000, -MAX_CLICK_AGE_MS + 3_600_000]) expect((await postBeacon(s.ingest.url, mineClick({ timestamp: new Date(Date.now() + ms).toISOString() }))).status).toBe(202);
    expect(await stored(mine.id)).toBe(before + 2);
  });
});

describe("a queued click ingest refuses", () => {
  let edge: Edge;
  beforeAll(async () => {
    // The worker's own dead-letter consumer hands what ingest refuses to POST /v1/clicks/dead-letters.
    edge = await startEdge({ vars: { INGEST_URL: s.ingest.url, EDGE_SECRET, BEACON_TRANSPORT: "queue", BEACON_BATCH_MS: "0" } });
  });
  afterAll(() => edge?.close());

  it("goes to the dead-letter queue at once, is recorded by ingest as an edge dead letter, and is not stored", async () => {
    // A KV record whose id is not the link at its code (a confused or forged record).
    await (await edge.mf.getKVNamespace("LINKS")).put(linkKey("", "mine"), JSON.stringify({ id: theirs.id, domain: "", code: "mine", url: "https://example.com/x", status: 302 }));
    const res = await edge.mf.dispatchFetch("http://localhost/mine", { redirect: "manual" });
    expect(res.status).toBe(302);
    const dead = await eventually(async () => {
      const r = await s.sql<{ payload: Buffer; error: string }[]>`SELECT payload, error FROM dead_letters WHERE source = 'edge_queue'`;
      return r.length ? r : null;
    }, 30_000, 100);
    expect(dead).toHaveLength(1);
    expect(JSON.parse(dead![0]!.payload.toString("utf8"))).toMatchObject({ link_id: theirs.id, code: "mine" });
    expect(dead![0]!.error).toMatch(/link/);
    expect(await stored(theirs.id)).toBe(0);
  });
});
