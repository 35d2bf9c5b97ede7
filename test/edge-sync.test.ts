import { createServer, connect, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { linkKey, type EdgeLink } from "../shared/event.ts";
import { body, eventually, json, startStack, type Stack } from "./helpers.ts";

/**
 * KV write-through retries: when the worker is unreachable, a link update or delete is made in
 * PostgreSQL and its key recorded in edge_sync_pending; KV copies never expire, so without the
 * retry loop the edge would keep the old destination (or a deleted link) for good.
 */

// ingest → worker admin route through a switchable TCP proxy (the worker's port is known only
// once the stack runs).
let target = 0;
let down = false;
const sockets = new Set<Socket>();
const proxy = createServer((client) => {
  if (down || !target) return void client.destroy();
  const upstream = connect(target, "127.0.0.1");
  sockets.add(client).add(upstream);
  const close = () => {
    client.destroy();
    upstream.destroy();
    sockets.delete(client);
    sockets.delete(upstream);
  };
  client.on("error", close).on("close", close).pipe(upstream);
  upstream.on("error", close).on("close", close).pipe(client);
});

let s: Stack;
beforeAll(async () => {
  await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
  const adminUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  s = await startStack({ env: { EDGE_ADMIN_URL: adminUrl, EDGE_SYNC_RETRY_MS: "200" } });
  target = Number(new URL(s.edge!.url).port);
});
afterAll(async () => {
  await s?.close();
  for (const c of sockets) c.destroy();
  await new Promise((r) => proxy.close(r));
});

const visit = (code: string) => fetch(`${s.edge!.url}/${code}`, { redirect: "manual" });
const kvRecord = async (code: string) => (await (await s.edge!.mf.getKVNamespace("LINKS")).get(linkKey("", code), "json")) as EdgeLink | null;
const api = async (path: string, method: string, payload?: object) =>
  fetch(`${s.ingest.url}${path}`, { method, headers: json(s.adminKey), body: payload ? JSON.stringify(payload) : undefined });

describe("KV write-through retries", () => {
  it("an update and a delete made while the worker is unreachable reach KV once it is back", async () => {
    const a = await body(await api("/api/links", "POST", { url: "https://example.com/one" }));
    const b = await body(await api("/api/links", "POST", { url: "https://example.com/gone-soon" }));
    expect((await kvRecord(a.code))?.url).toBe("https://example.com/one");
    expect((await visit(b.code)).status).toBe(302);

    down = true;
    for (const c of sockets) c.destroy();
    expect((await api(`/api/links/${a.id}`, "PATCH", { url: "https://example.com/two" })).status).toBe(200);
    expect((await api(`/api/links/${b.id}`, "DELETE")).status).toBeLessThan(300);
    const pending = await s.sql<{ code: string; attempts: number }[]>`SELECT code, attempts FROM edge_sync_pending ORDER BY code`;
    expect(pending.map((p) => p.code).sort()).toEqual([a.code, b.code].sort());
    // Meanwhile the edge still has the old copies: this is what the retry loop is for.
    await new Promise((r) => setTimeout(r, 600));
    expect((await kvRecord(a.code))?.url).toBe("https://example.com/one");
    expect(await kvRecord(b.code)).not.toBeNull();
    const [row] = await s.sql<{ attempts: number; last_error: string }[]>`SELECT attempts, last_error FROM edge_sync_pending WHERE code = ${a.code}`;
    expect(row!.attempts).toBeGreaterThan(0); // retried (and failed) while down
    expect(row!.last_error).toBeTruthy();

    down = false;
    // Backoff after failures is 2 s, then 4 s: the keys go through within a few passes.
    const count = async () => (await s.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM edge_sync_pending`)[0]!.n;
    await eventually(async () => (await count()) === 0, 20_000, 200);
    expect(await s.sql`SELECT code, attempts, last_error FROM edge_sync_pending`).toEqual([]);
    expect((await kvRecord(a.code))?.url).toBe("https://example.com/two");
    expect(await kvRecord(b.code)).toBeNull();
    const res = await visit(a.code);
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toBe("https://example.com/two");
    expect((await visit(b.code)).status).toBe(404);
  }, 40_000);
});
