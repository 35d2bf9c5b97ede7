import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_BEACON_BYTES } from "../../shared/event.ts";
import { sign, SIGNATURE_HEADER } from "../../shared/signing.ts";
import { clickEvent, postBeacon, seedLinks } from "../fixtures.ts";
import { body, KEYS, startStack, type Stack } from "../helpers.ts";

/**
 * Beacon security beyond test/clicks.test.ts (which covers wrong key, unsigned, expired, a
 * tampered body, 70 kB, text/plain): a signature reused for another body or from the future,
 * the size limit at its edge, duplicate and injected headers, content types that only look JSON.
 */
let s: Stack;
beforeAll(async () => {
  s = await startStack({ edge: false });
  await seedLinks(s.sql, [clickEvent()]); // the link clickEvent()'s clicks name
});
afterAll(() => s.close());

const count = async () => Number((await s.sql`SELECT count(*) AS n FROM clicks`)[0]!.n);
const now = () => Math.floor(Date.now() / 1000);

/** A raw HTTP/1.1 request over a socket (fetch merges duplicate headers and refuses some values). */
function raw(headers: [string, string][], payload: string, { chunked = false } = {}): Promise<{ status: number; body: string }> {
  const u = new URL(s.ingest.url);
  const bytes = Buffer.from(payload);
  const head = [`POST /v1/clicks HTTP/1.1`, `Host: ${u.host}`, "Connection: close", ...headers.map(([k, v]) => `${k}: ${v}`), chunked ? "Transfer-Encoding: chunked" : `Content-Length: ${bytes.length}`].join("\r\n");
  return new Promise((resolve, reject) => {
    const sock = connect(Number(u.port), u.hostname, () => {
      sock.write(head + "\r\n\r\n");
      if (chunked) sock.write(Buffer.concat([Buffer.from(bytes.length.toString(16) + "\r\n"), bytes, Buffer.from("\r\n0\r\n\r\n")]));
      else sock.write(bytes);
    });
    let out = "";
    sock.on("error", reject);
    sock.on("data", (d) => (out += d)).on("close", () => {
      const status = Number(/^HTTP\/1\.1 (\d+)/.exec(out)?.[1] ?? 0);
      const i = out.indexOf("\r\n\r\n");
      let b = out.slice(i + 4);
      if (/transfer-encoding: chunked/i.test(out.slice(0, i))) b = b.replace(/^[0-9a-f]+\r\n/, "").replace(/\r\n0\r\n\r\n$/, "");
      resolve({ status, body: b });
    });
  });
}

describe("beacon security", () => {
  it("a valid signature reused for a different body, or a batch built around it, is refused", async () => {
    const before = await count();
    const a = JSON.stringify(clickEvent());
    const sig = await sign(KEYS.beacon, a);
    const other = JSON.stringify(clickEvent());
    const send = (b: string, h = sig) => fetch(`${s.ingest.url}/v1/clicks`, { method: "POST", headers: { "content-type": "application/json", [SIGNATURE_HEADER]: h }, body: b });
    for (const b of [other, `[${a}]`, `${a} `, ` ${a}`, `${a}\n`, a.replace("}", ',"qr":true}')]) {
      const res = await send(b);
      expect(res.status, b.slice(0, 40)).toBe(401);
      expect((await body(res)).error).toMatchObject({ status: 401, code: "bad_signature" });
    }
    // The signed time is part of the MAC: moving t inside the window breaks it.
    const moved = sig.replace(/t=(\d+)/, (_, t) => `t=${Number(t) - 1}`);
    expect((await send(a, moved)).status).toBe(401);
    // A signature from the future (beyond the window) is as expired as one from the past. A
    // minute past the window's edge: at +301 a second ticking over before ingest reads its
    // clock put it back inside (seen once in CI).
    expect((await body(await postBeacon(s.ingest.url, JSON.parse(a), { t: now() + 360 }))).error.message).toMatch(/expired/);
    expect(await count()).toBe(before);
    // The original still works (and only once counts).
    expect((await send(a)).status).toBe(202);
    expect(await count()).toBe(before + 1);
  });

  it("a signature reused outside the window is refused even for the very body it signed", async () => {
    const e = clickEvent();
    const rawBody = JSON.stringify(e);
    for (const t of [now() - 301, now() - 86_400, 0, now() + 10_000]) {
      const res = await fetch(`${s.ingest.url}/v1/clicks`, { method: "POST", headers: { "content-type": "application/json", [SIGNATURE_HEADER]: await sign(KEYS.beacon, rawBody, t) }, body: rawBody });
      expect(res.status).toBe(401);
    }
    expect((await s.sql`SELECT count(*)::int AS n FROM clicks WHERE click_id = ${e.click_id}`)[0]!.n).toBe(0);
  });

  it("the 64 KiB limit holds at its edge, also without a Content-Length (chunked)", async () => {
    const before = await count();
    const pad = (n: number) => {
      const e = clickEvent();
      const b = JSON.stringify(e);
      return b.slice(0, -1) + " ".repeat(n - b.length) + "}";
    };
    const over = pad(MAX_BEACON_BYTES + 1);
    expect(Buffer.byteLength(over)).toBe(MAX_BEACON_BYTES + 1);
    const res = await postBeacon(s.ingest.url, over);
    expect(res.status, await res.clone().text()).toBe(413);
    expect((await body(res)).error).toMatchObject({ status: 413, code: "body_too_large" });
    const exact = pad(MAX_BEACON_BYTES);
    expect((await postBeacon(s.ingest.url, exact)).status).toBe(202);
    // Chunked: no Content-Length to check up front.
    const big = pad(MAX_BEACON_BYTES * 4);
    const chunked = await raw([["content-type", "application/json"], [SIGNATURE_HEADER, await sign(KEYS.beacon, big)]], big, { chunked: true });
    expect(chunked.status).toBe(413);
    expect(JSON.parse(chunked.body).error.code).toBe("body_too_large");
    expect(await count()).toBe(before + 1);
  });

  it("content types that only look like JSON, and JSON with odd parameters", async () => {
    const e = clickEvent();
    for (const ct of ["application/jsonx", "application/json-patch+json", "text/json", "application/x-json", "application/xml;application/json"]) {
      const res = await postBeacon(s.ingest.url, e, { headers: { "content-type": ct } });
      expect(res.status, ct).toBe(415);
      expect((await body(res)).error).toMatchObject({ status: 415, code: "unsupported_media_type" });
    }
    // A charset parameter is fine (and so is the case of the type).
    expect((await postBeacon(s.ingest.url, e, { headers: { "content-type": "Application/JSON; charset=utf-8" } })).status).toBe(202);
  });

  it("duplicate X-Signature headers (one good, one bad, either order) and CR/LF in the header are refused", async () => {
    const before = await count();
    const b = JSON.stringify(clickEvent());
    const good = await sign(KEYS.beacon, b);
    const bad = await sign("not-the-edge-secret-xx", b);
    for (const pair of [[good, bad], [bad, good], [good, good]]) {
      const res = await raw([["content-type", "application/json"], [SIGNATURE_HEADER, pair[0]!], [SIGNATURE_HEADER, pair[1]!]], b);
      // Node joins duplicates with ", ": "t=..,v1=.., t=..,v1=.." — one MAC per header, never "any of".
      expect(res.status, pair.join(" | ")).toBe(401);
    }
    // Extra parameters appended to a good header cannot override t or v1 after the fact.
    for (const h of [`${good},v1=${"0".repeat(64)}`, `${good},t=${now() - 1}`, `t=${now() - 9999},${good}`]) {
      const res = await raw([["content-type", "application/json"], [SIGNATURE_HEADER, h]], b);
      expect(res.status, h).toBe(401);
    }
    // Header injection: Node's HTTP parser refuses CR/LF inside a header value (400, no row).
    const injected = (await raw([["Content-Type", "application/json"], [SIGNATURE_HEADER, `${good}\rX-Evil: 1`]], b)).status;
    expect(injected).toBeGreaterThanOrEqual(400);
    expect(injected).toBeLessThan(500);
    expect(await count()).toBe(before);
  });
});
