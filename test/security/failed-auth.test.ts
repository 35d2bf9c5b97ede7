import { createHash } from "node:crypto";
import { request, type IncomingHttpHeaders } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateKey } from "../../ingest/src/auth/keys.ts";
import { startStack, type Stack } from "../helpers.ts";

/**
 * Failed API-key authentication: throttled per client address (AUTH_FAILURES_PER_MINUTE, 20 by
 * default: then 429 for the rest of the minute, a correct key's request too), and an unknown key
 * is remembered for 30 s, so retrying it costs no database lookup. Each case connects from its
 * own loopback address (127.0.0.x), so the throttle of one does not touch the others.
 */
let s: Stack;
beforeAll(async () => {
  s = await startStack({ edge: false });
});
afterAll(() => s.close());

/** GET `path` with `key`, from the local address `from`. */
function get(from: string, path: string, key: string): Promise<{ status: number; headers: IncomingHttpHeaders; body: { error?: { code: string; status: number } } }> {
  const u = new URL(s.ingest.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, localAddress: from, headers: { authorization: `Bearer ${key}` } }, (res) => {
      let text = "";
      res.setEncoding("utf8").on("data", (d) => (text += d)).on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: JSON.parse(text) }));
    });
    req.on("error", reject).end();
  });
}

describe("failed authentication", () => {
  it("after 20 failures a minute from one address: 429 rate_limited with Retry-After, a correct key too; other addresses unaffected", async () => {
    const statuses: number[] = [];
    let last!: Awaited<ReturnType<typeof get>>;
    for (let i = 0; i < 25; i++) statuses.push((last = await get("127.0.0.2", "/api/domains", generateKey())).status);
    expect(statuses.slice(0, 20)).toEqual(Array(20).fill(401));
    expect(statuses.slice(20)).toEqual(Array(5).fill(429));
    expect(last.body.error).toMatchObject({ status: 429, code: "rate_limited" });
    const wait = Number(last.headers["retry-after"]);
    expect(wait).toBeGreaterThanOrEqual(1);
    expect(wait).toBeLessThanOrEqual(60);
    // The documented choice: the address is refused outright until its minute ends (telling a
    // correct key from a wrong one would be the lookup the throttle saves).
    expect((await get("127.0.0.2", "/api/domains", s.adminKey)).status).toBe(429);
    // Another address is not throttled.
    expect((await get("127.0.0.3", "/api/domains", s.adminKey)).status).toBe(200);
    expect((await get("127.0.0.3", "/api/domains", generateKey())).status).toBe(401);
  });

  it("remembers an unknown key: inserted afterwards, it is still refused within the cache window (no lookup)", async () => {
    const [tried, fresh] = [generateKey(), generateKey()];
    expect((await get("127.0.0.4", "/api/domains", tried)).status).toBe(401);
    // Both keys become valid, behind the API's back (never through it).
    for (const [i, key] of [tried, fresh].entries()) {
      await s.sql`
        INSERT INTO api_keys (workspace_id, name, prefix, key_hash, scopes)
        VALUES ((SELECT min(id) FROM workspaces), ${`direct-${i}`}, ${key.split("_")[1]!}, ${createHash("sha256").update(key).digest()}, '{links:read}')`;
    }
    // The never-tried one is looked up and admitted; the tried one is answered from the cache.
    expect((await get("127.0.0.4", "/api/domains", fresh)).status).toBe(200);
    const again = await get("127.0.0.4", "/api/domains", tried);
    expect(again.status).toBe(401);
    expect(again.body.error).toMatchObject({ code: "unauthorized" });
  });
});
