import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clickEvent, postBeacon, seedLinks } from "./fixtures.ts";
import { body, DATABASE_URL, eventually, json, startStack, TcpProxy, type Stack } from "./helpers.ts";

/**
 * PostgreSQL unreachable (a TCP proxy between ingest and the server drops every connection):
 * ingest answers 503 with Retry-After at once instead of letting each request wait for a
 * connection that cannot be made, and serves again as soon as PostgreSQL is back.
 */
let s: Stack;
let pgProxy: TcpProxy;
beforeAll(async () => {
  const u = new URL(DATABASE_URL);
  pgProxy = await new TcpProxy(Number(u.port || 5432)).listen();
  u.host = `127.0.0.1:${pgProxy.port}`;
  s = await startStack({ edge: false, env: { DATABASE_URL: u.toString() } });
  await seedLinks(s.sql, [clickEvent()]);
});
afterAll(async () => {
  pgProxy.up();
  await s?.close();
  await pgProxy?.close();
});

const timed = async (p: Promise<Response>) => {
  const t0 = Date.now();
  const res = await p;
  return { res, ms: Date.now() - t0, json: await body(res) };
};

describe("PostgreSQL outage", () => {
  it("answers 503 at once while PostgreSQL is down, and 202 again once it is back", async () => {
    const before = clickEvent();
    expect((await postBeacon(s.ingest.url, before)).status).toBe(202);

    pgProxy.down();
    // The first request finds out (it waits at most for one failed connection attempt) ...
    const first = await timed(postBeacon(s.ingest.url, clickEvent()));
    expect(first.res.status).toBe(503);
    expect(first.json.error.code).toBe("unavailable");
    // ... after which nothing waits on PostgreSQL: beacons and the API get 503 straight away.
    // (A bound far below connect_timeout's 5 s tells "refused by the gate" from "waited for a connection".)
    await eventually(async () => (await timed(postBeacon(s.ingest.url, clickEvent()))).ms < 1000, 10_000, 100);
    const during = await Promise.all([
      ...Array.from({ length: 20 }, () => timed(postBeacon(s.ingest.url, clickEvent()))),
      timed(fetch(`${s.ingest.url}/api/links`, { headers: json(s.adminKey) })),
    ]);
    for (const r of during) {
      expect(r.res.status).toBe(503);
      expect(r.res.headers.get("retry-after")).toBe("1");
      expect(r.json.error).toMatchObject({ status: 503, code: "unavailable" });
      expect(r.ms).toBeLessThan(1000);
    }

    pgProxy.up();
    const after = clickEvent();
    await eventually(async () => (await postBeacon(s.ingest.url, after)).status === 202, 15_000, 200);
    const rows = await s.sql<{ id: string }[]>`SELECT click_id::text AS id FROM clicks`;
    // Only what got 202 is stored: nothing refused with 503 was half-written.
    expect(rows.map((r) => r.id).sort()).toEqual([before.click_id, after.click_id].sort());
    expect((await fetch(`${s.ingest.url}/api/links`, { headers: json(s.adminKey) })).status).toBe(200);
  }, 60_000);
});
