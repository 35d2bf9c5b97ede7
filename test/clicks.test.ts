import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clickEvent, postBeacon, seedLinks } from "./fixtures.ts";
import { sign, SIGNATURE_HEADER } from "../shared/signing.ts";
import { body, KEYS, startStack, type Stack } from "./helpers.ts";

let s: Stack;
beforeAll(async () => {
  s = await startStack({ edge: false });
  // The link that clickEvent()'s clicks name (ingest takes clicks only for the link at domain/code).
  await seedLinks(s.sql, [clickEvent()]);
});
afterAll(() => s.close());

const count = async () => Number((await s.sql`SELECT count(*) AS n FROM clicks`)[0]!.n);

describe("POST /v1/clicks", () => {
  it("stores one signed click with every field, and answers 202 after the commit", async () => {
    const e = clickEvent();
    const res = await postBeacon(s.ingest.url, e);
    expect(res.status).toBe(202);
    expect(await body(res)).toEqual({ accepted: 1, duplicates: 0 });
    const [row] = await s.sql`SELECT * FROM clicks WHERE click_id = ${e.click_id}`;
    expect(row).toMatchObject({
      short_url: e.short_url,
      original_url: e.original_url,
      user_agent: e.user_agent,
      ip_address: e.ip_address,
      referer: e.referer,
      geo_location: e.geo_location,
      cache_tier: "kv",
      code: "abc1234",
      link_id: "1",
      redirect_status: 302,
    });
    expect((row!.ts as Date).toISOString()).toBe(e.timestamp);
  });

  it("is idempotent on click_id: a retried beacon is not a second click", async () => {
    const e = clickEvent();
    expect((await postBeacon(s.ingest.url, e)).status).toBe(202);
    const again = await postBeacon(s.ingest.url, e);
    expect(again.status).toBe(202);
    expect(await body(again)).toEqual({ accepted: 1, duplicates: 1 });
    expect((await s.sql`SELECT count(*)::int AS n FROM clicks WHERE click_id = ${e.click_id}`)[0]!.n).toBe(1);
  });

  it("accepts a batch in the same endpoint, all or nothing", async () => {
    const batch = Array.from({ length: 50 }, () => clickEvent());
    const before = await count();
    const res = await postBeacon(s.ingest.url, batch);
    expect(res.status).toBe(202);
    expect(await count()).toBe(before + 50);
    // One bad event refuses the whole batch: nothing of it is written.
    const bad = [clickEvent(), { ...clickEvent(), click_id: "nope" }];
    const refused = await postBeacon(s.ingest.url, bad);
    expect(refused.status).toBe(400);
    expect((await body(refused)).error.field).toBe("1.click_id");
    expect(await count()).toBe(before + 50);
  });

  it("refuses bad signatures, expired ones, missing fields, junk; none writes a row", async () => {
    const before = await count();
    const e = clickEvent();

    const wrongKey = await postBeacon(s.ingest.url, e, { secret: "not-the-edge-secret-xx" });
    expect(wrongKey.status).toBe(401);
    expect(await body(wrongKey)).toMatchObject({ error: { status: 401, code: "bad_signature" } });

    const unsigned = await fetch(`${s.ingest.url}/v1/clicks`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(e) });
    expect(unsigned.status).toBe(401);

    const replayed = await postBeacon(s.ingest.url, e, { t: Math.floor(Date.now() / 1000) - 301 });
    expect(replayed.status).toBe(401);
    expect((await body(replayed)).error.message).toMatch(/expired/);

    // Signed one body, sent another.
    const { SIGNATURE_HEADER, sign } = await import("../shared/signing.ts");
    const tampered = await fetch(`${s.ingest.url}/v1/clicks`, {
      method: "POST",
      headers: { "content-type": "application/json", [SIGNATURE_HEADER]: await sign(KEYS.beacon, JSON.stringify(e)) },
      body: JSON.stringify({ ...e, original_url: "https://evil.example/" }),
    });
    expect(tampered.status).toBe(401);

    const { click_id: _, ...missing } = e;
    const noField = await postBeacon(s.ingest.url, missing);
    expect(noField.status).toBe(400);
    expect(await body(noField)).toMatchObject({ error: { status: 400, code: "invalid_body", field: "click_id" } });

    const badGeo = await postBeacon(s.ingest.url, { ...e, geo_location: { latitude: 500 } });
    expect((await body(badGeo)).error.field).toBe("geo_location.latitude");

    const extra = await postBeacon(s.ingest.url, { ...e, admin: true });
    expect(extra.status).toBe(400);

    const junk = await postBeacon(s.ingest.url, "{not json");
    expect(junk.status).toBe(400);
    expect((await body(junk)).error.code).toBe("invalid_json");

    const big = await postBeacon(s.ingest.url, { ...e, user_agent: "x".repeat(70_000) });
    expect(big.status).toBe(413);

    const text = await postBeacon(s.ingest.url, e, { headers: { "content-type": "text/plain" } });
    expect(text.status).toBe(415);

    expect(await count()).toBe(before);
  });

  // ingest/src/http/request-id.ts reads and sets the id on Node's own objects under @hono/node-server:
  // over real HTTP, on a 202, on an error answer, and on a route outside /v1/clicks.
  it("answers every request with an X-Request-Id: the caller's when valid, a UUID otherwise", async () => {
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    const ok = await postBeacon(s.ingest.url, clickEvent(), { headers: { "x-request-id": "trace-abc_123=" } });
    expect(ok.status).toBe(202);
    expect(ok.headers.get("x-request-id")).toBe("trace-abc_123=");
    const bad = await postBeacon(s.ingest.url, "{not json", { headers: { "x-request-id": "no spaces allowed" } });
    expect(bad.status).toBe(400);
    expect(bad.headers.get("x-request-id")).toMatch(uuid);
    const tooLong = await fetch(`${s.ingest.url}/healthz`, { headers: { "x-request-id": "a".repeat(256) } });
    expect(tooLong.headers.get("x-request-id")).toMatch(uuid);
    const [a, b] = await Promise.all([fetch(`${s.ingest.url}/healthz`), fetch(`${s.ingest.url}/healthz`)]);
    expect(a.status).toBe(200);
    expect(a.headers.get("x-request-id")).toMatch(uuid);
    expect(a.headers.get("x-request-id")).not.toBe(b.headers.get("x-request-id"));
    expect(a.headers.get("x-request-id")!.split(",")).toHaveLength(1); // set once, not once per layer
  });
});

/** What the worker's dead-letter queue hands over (edge/src/dead-letters.ts): clicks ingest refused as invalid. */
describe("POST /v1/clicks/dead-letters", () => {
  const post = async (items: unknown, opts: { secret?: string } = {}) => {
    const raw = JSON.stringify(items);
    return fetch(`${s.ingest.url}/v1/clicks/dead-letters`, {
      method: "POST",
      headers: { "content-type": "application/json", [SIGNATURE_HEADER]: await sign(opts.secret ?? KEYS.beacon, raw) },
      body: raw,
    });
  };
  const open = () => s.sql`SELECT partition_key, error FROM dead_letters WHERE source = 'edge_queue' AND replayed_at IS NULL ORDER BY id`;

  it("stores a click that is valid now, records the others once each with ingest's reason, and counts them in /api/pipeline", async () => {
    const good = clickEvent();
    const bad = { ...clickEvent(), ip_address: "not-an-ip" };
    const old = clickEvent({ timestamp: new Date(Date.now() - 30 * 3600_000).toISOString() });
    const res = await post([good, bad, old]);
    expect(res.status).toBe(202);
    expect(await body(res)).toEqual({ stored: 1, duplicates: 0, dead_letters: 2, recorded: 2 });
    expect((await s.sql`SELECT count(*)::int AS n FROM clicks WHERE click_id = ${good.click_id}`)[0]!.n).toBe(1);
    // Handed over again (a redelivered message): nothing new, nothing twice.
    expect(await body(await post([good, bad, old]))).toEqual({ stored: 0, duplicates: 1, dead_letters: 2, recorded: 0 });
    const rows = await open();
    expect(rows.map((r) => r.partition_key)).toEqual([bad.click_id, old.click_id]);
    expect(rows[0]!.error).toMatch(/ip_address/);
    expect(rows[1]!.error).toMatch(/older than/);
    const status = await body(await fetch(`${s.ingest.url}/api/pipeline`, { headers: { Authorization: `Bearer ${s.adminKey}` } }));
    expect(status).toMatchObject({ edge_dead_letters: 2 });
    expect(status.dlq).toBeGreaterThanOrEqual(2);
  });

  it("replays them on the operator's request once the cause is fixed: stored then, once, and no longer counted", async () => {
    const orphan = clickEvent({ link_id: 987_654, code: "later1" });
    expect(await body(await post([orphan]))).toMatchObject({ stored: 0, dead_letters: 1, recorded: 1 });
    const replay = () => fetch(`${s.ingest.url}/api/pipeline/dlq/replay`, { method: "POST", headers: { Authorization: `Bearer ${s.adminKey}` } });
    expect(await body(await replay())).toEqual({ replayed: 0 }); // still no such link
    await seedLinks(s.sql, [orphan]);
    expect(await body(await replay())).toEqual({ replayed: 1 });
    expect((await s.sql`SELECT count(*)::int AS n FROM clicks WHERE click_id = ${orphan.click_id}`)[0]!.n).toBe(1);
    expect((await open()).map((r) => r.partition_key)).not.toContain(orphan.click_id);
    expect(await body(await replay())).toEqual({ replayed: 0 });
  });

  it("takes only signed requests with an array of clicks", async () => {
    expect((await post([clickEvent()], { secret: "not-the-edge-secret-xx" })).status).toBe(401);
    expect((await post([])).status).toBe(400);
    expect((await post({ click_id: "x" })).status).toBe(400);
  });
});
