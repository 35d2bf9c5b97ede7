import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { body, json, startStack, type Stack } from "../helpers.ts";

/**
 * Request bodies under /api: 1 MiB for JSON routes (POST /api/links/bulk 10 MiB, the CSV import
 * 5 MiB), 413 too_large before the rest is read, whether the size is declared (Content-Length)
 * or not (chunked); nothing is stored.
 */
let s: Stack;
beforeAll(async () => {
  s = await startStack({ edge: false });
});
afterAll(() => s.close());

const MiB = 1024 * 1024;
const links = async () => Number((await s.sql`SELECT count(*) AS n FROM links`)[0]!.n);
const linkJson = (titleBytes: number) => JSON.stringify({ url: "https://example.com/big", title: "t".repeat(titleBytes) });

/**
 * POST over a raw socket: the head, then `send` bytes of `payload` (as one chunk when chunked,
 * with no terminating chunk), and the response read as soon as it is complete — the rest of the
 * body is never sent, so an answer proves the server did not wait for it.
 */
function rawPost(path: string, payload: Buffer, send: number, headers: Record<string, string>, { chunked = false, method = "POST" } = {}): Promise<{ status: number; body: string }> {
  const u = new URL(s.ingest.url);
  const head = [`${method} ${path} HTTP/1.1`, `Host: ${u.host}`, `Authorization: Bearer ${s.adminKey}`, "Content-Type: application/json", ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)].join("\r\n");
  return new Promise((resolve, reject) => {
    const sock = connect(Number(u.port), u.hostname, () => {
      sock.write(head + "\r\n\r\n");
      const part = payload.subarray(0, send);
      sock.write(chunked ? Buffer.concat([Buffer.from(part.length.toString(16) + "\r\n"), part, Buffer.from("\r\n")]) : part);
    });
    let out = Buffer.alloc(0);
    const done = () => {
      const text = out.toString("utf8");
      const i = text.indexOf("\r\n\r\n");
      if (i < 0) return;
      const len = /content-length: (\d+)/i.exec(text.slice(0, i));
      if (!len || Buffer.byteLength(text.slice(i + 4)) < Number(len[1])) return;
      sock.destroy();
      resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? 0), body: text.slice(i + 4) });
    };
    sock.on("error", reject).on("data", (d: Buffer) => {
      out = Buffer.concat([out, d]);
      done();
    });
  });
}

describe("request body limits", () => {
  it("a declared 100 MB JSON body to POST /api/links: 413 too_large before the rest is sent", async () => {
    const before = await links();
    const payload = Buffer.from(linkJson(64 * 1024));
    const res = await rawPost("/api/links", payload, payload.length, { "Content-Length": String(100 * 1000 * 1000) });
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body).error).toMatchObject({ status: 413, code: "too_large" });
    expect(await links()).toBe(before);
  });

  it("a chunked (undeclared) body over 1 MiB: 413 too_large once it passes the limit, without the rest", async () => {
    const before = await links();
    const payload = Buffer.from(linkJson(2 * MiB));
    const res = await rawPost("/api/links", payload, MiB + 4096, { "Transfer-Encoding": "chunked" }, { chunked: true });
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body).error).toMatchObject({ status: 413, code: "too_large" });
    expect(await links()).toBe(before);
  });

  it("every JSON route under /api has the limit (keys, workspaces, domains, link updates)", async () => {
    const big = Buffer.from(JSON.stringify({ name: "x".repeat(MiB + 1) }));
    for (const [method, path] of [["POST", "/api/keys"], ["POST", "/api/workspaces"], ["POST", "/api/domains"], ["PATCH", "/api/links/1"], ["POST", "/api/pipeline/dlq/replay"]] as const) {
      const res = await rawPost(path, big, 1024, { "Content-Length": String(big.length) }, { method });
      expect(res.status, path).toBe(413);
      expect(JSON.parse(res.body).error.code).toBe("too_large");
    }
    expect(Number((await s.sql`SELECT count(*) AS n FROM workspaces`)[0]!.n)).toBe(1);
  });

  it("under the limit a body is read as before; bulk has its own, larger, limit", async () => {
    // 0.9 MiB: read and validated (the title is too long), not refused for its size.
    const near = await fetch(`${s.ingest.url}/api/links`, { method: "POST", headers: json(s.adminKey), body: linkJson(0.9 * MiB) });
    expect(near.status).toBe(400);
    // A 2 MiB bulk request is read (and validated: these titles are too long, item by item)…
    const bulk = JSON.stringify({ links: Array.from({ length: 200 }, () => ({ url: "https://example.com/b", title: "t".repeat(10_000) })) });
    expect(bulk.length).toBeGreaterThan(MiB);
    const ok = await fetch(`${s.ingest.url}/api/links/bulk`, { method: "POST", headers: json(s.adminKey), body: bulk });
    expect(ok.status).toBe(200);
    expect((await body(ok)).results.every((r: { status: number }) => r.status === 400)).toBe(true);
    // …one over 10 MiB is not.
    const before = await links();
    const payload = Buffer.from(JSON.stringify({ links: [{ url: "https://example.com/b", title: "t".repeat(11 * MiB) }] }));
    const res = await rawPost("/api/links/bulk", payload, 64 * 1024, { "Content-Length": String(payload.length) });
    expect(res.status).toBe(413);
    expect(await links()).toBe(before);
  });
});
