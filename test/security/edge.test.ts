import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { linkKey, type EdgeLink } from "../../shared/event.ts";
import { hashPassword, passwordVerifier } from "../../shared/password.ts";
import { KEYS, startStack, type Stack } from "../helpers.ts";

/**
 * The worker against hostile requests (issue 7): Host spoofing against custom domains, path
 * traversal and CR/LF in codes and query strings → never a Location built from request input
 * (only a stored destination, or none); security headers on every page the worker renders.
 * Requests go over a raw socket to workerd, so Host and the request line are exactly as sent.
 */
let s: Stack;
beforeAll(async () => {
  s = await startStack();
  const kv = await s.edge!.mf.getKVNamespace("LINKS");
  const put = (l: EdgeLink) => kv.put(linkKey(l.domain, l.code), JSON.stringify(l));
  await put({ id: 9001, domain: "go.example", code: "brand", url: "https://example.com/custom", status: 302 } as EdgeLink);
  await put({ id: 9002, domain: "", code: "home", url: "https://example.com/primary", status: 302 } as EdgeLink);
  await put({ id: 9003, domain: "", code: "old", url: "https://example.com/old", status: 302, expires_at: Date.now() - 1000 } as EdgeLink);
  await put({ id: 9004, domain: "", code: "locked", url: "https://example.com/secret", status: 302, password: await passwordVerifier(await hashPassword("pw-123456"), KEYS.password) } as EdgeLink);
});
afterAll(() => s.close());

const SAFE = new Set(["https://example.com/custom", "https://example.com/primary"]);

let lastBody = "";
/** One raw HTTP/1.1 request; returns status and headers (lower-cased names). */
function raw(requestLine: string, headers: string[]): Promise<{ status: number; headers: Map<string, string[]> }> {
  const u = new URL(s.edge!.url);
  return new Promise((resolve, reject) => {
    const sock = connect(Number(u.port), u.hostname, () => sock.write([requestLine, ...headers, "Connection: close", "", ""].join("\r\n")));
    let out = "";
    sock.on("error", reject);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      sock.destroy();
      const [head = ""] = out.split("\r\n\r\n");
      const lines = head.split("\r\n");
      const h = new Map<string, string[]>();
      for (const l of lines.slice(1)) {
        const i = l.indexOf(":");
        const k = l.slice(0, i).toLowerCase();
        h.set(k, [...(h.get(k) ?? []), l.slice(i + 1).trim()]);
      }
      lastBody = out.slice(head.length + 4, head.length + 400);
      resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(lines[0]!)?.[1] ?? 0), headers: h });
    };
    // Only the head matters: done once it is complete (workerd may keep the socket open).
    sock.on("data", (d) => {
      out += d;
      if (out.includes("\r\n\r\n")) setTimeout(finish, 20);
    });
    sock.on("close", finish);
  });
}
const get = (path: string, host: string, extra: string[] = []) => raw(`GET ${path} HTTP/1.1`, [`Host: ${host}`, "User-Agent: sec-test", ...extra]);

/**
 * A stored destination: its origin and path exactly; only its query may come from the request
 * (the visitor's query is forwarded, docs/API.md "Redirect conventions"), parsed, never raw.
 */
function storedDestination(loc: string): boolean {
  if (/[\u0000-\u001f\u007f]/.test(loc)) return false;
  try {
    const u = new URL(loc);
    return SAFE.has(u.origin + u.pathname) && !u.hash;
  } catch {
    return false;
  }
}

/** Every answer: a Location only if it is a stored destination (or the worker's own same-origin reload). */
function assertNoInjectedLocation(label: string, r: { status: number; headers: Map<string, string[]> }, { runtime500 = false } = {}) {
  const loc = r.headers.get("location") ?? [];
  expect(loc.length, label).toBeLessThanOrEqual(1);
  if (loc.length) expect(storedDestination(loc[0]!), `${label} → ${loc[0]}`).toBe(true);
  for (const k of r.headers.keys()) expect(["x-injected", "set-cookie"].includes(k) && !label.includes("locked"), `${label}: ${k}`).toBe(false);
  if (!(runtime500 && r.status === 500 && lastBody === "Internal Server Error")) expect(r.status, `${label}: ${lastBody}`).toBeLessThan(500);
}

describe("Host header spoofing", () => {
  it("a custom domain's code answers only on that Host; a spoofed or look-alike Host never redirects", async () => {
    const ok = await get("/brand", "go.example");
    expect([ok.status, ok.headers.get("location")?.[0]]).toEqual([302, "https://example.com/custom"]);
    const hosts = ["evil.example", "go.example.evil.example", "evil.example.go.example", "xgo.example", "go.example@evil.example", "go.example%2eevil.example", "go.example:80@evil.example", "[::1]", "", "go.example, evil.example", "localhost"];
    for (const host of hosts) {
      const r = await get("/brand", host);
      // A Host that is no hostname ("a@b", "%2e", ", ") is refused by workerd's own HTTP server before the worker
      // runs (kj: "invalid hostname when stringifying URL", a plain 500); Cloudflare's edge refuses
      // such a Host upstream. Not the worker's code: allowed here, but still no Location.
      assertNoInjectedLocation(`Host ${host}`, r, { runtime500: !/^[a-z0-9.:[\]-]*$/i.test(host) });
      expect(r.status, `Host ${host}`).not.toBe(302);
    }
    // Forwarding headers are not a source of the Host or the destination.
    for (const h of ["X-Forwarded-Host: evil.example", "X-Original-URL: //evil.example/", "X-Rewrite-URL: /evil", "Forwarded: host=evil.example"]) {
      const r = await get("/brand", "go.example", [h]);
      expect([r.status, r.headers.get("location")?.[0]], h).toEqual([302, "https://example.com/custom"]);
      const r2 = await get("/brand", "evil.example", [h.replace("evil.example", "go.example")]);
      expect(r2.status, h).toBe(404);
    }
    // Two Host headers: refused or answered for neither.
    const two = await raw("GET /brand HTTP/1.1", ["Host: evil.example", "Host: go.example"]);
    assertNoInjectedLocation("two Hosts", two, { runtime500: true });
  });
});

describe("path traversal and CR/LF", () => {
  const paths = [
    "/../brand", "/%2e%2e/brand", "/..%2fbrand", "/%2e%2e%2fbrand", "/home/../brand", "/home/..%2f..%2fetc%2fpasswd",
    "//evil.example", "//evil.example/home", "/%2F%2Fevil.example", "/%5Cevil.example", "/\\evil.example", "/home%2F%2Fevil.example",
    "/home%0d%0aLocation:%20https://evil.example", "/home%0D%0ASet-Cookie:%20x=1", "/home%0aX-Injected:%201", "/home%00", "/%E2%80%AEhome",
    "/home?next=https://evil.example", "/home?%0d%0aLocation:%20https://evil.example", "/home?x=%0d%0aX-Injected:1", "/home#//evil.example",
    "/home;evil.example", "/home/.", "/home%2f", "/.%2e/home", "/HOME", "/" + "a".repeat(65), "/_admin/../home", "/https:%2f%2fevil.example",
  ];
  it(`${paths.length} hostile paths on the primary host: 404 or the stored destination, never a Location from the request`, async () => {
    for (const p of paths) assertNoInjectedLocation(p, await get(p, "localhost"));
  });
  it("a raw CR or LF in the request line or a header is refused by the HTTP parser (4xx, no Location)", async () => {
    for (const [line, hs] of [
      ["GET /home\rLocation: https://evil.example HTTP/1.1", ["Host: localhost"]],
      ["GET /home HTTP/1.1", ["Host: localhost\rX-Injected: 1"]],
      ["GET /home HTTP/1.1", ["Host: localhost", "Cookie: a=1\rX-Injected: 1"]],
    ] as [string, string[]][]) {
      const r = await raw(line, hs);
      assertNoInjectedLocation(JSON.stringify(line + hs.join("|")), r);
      if (r.status !== 0) expect(r.status === 302 ? "302" : String(r.status)[0]).not.toBe("5");
    }
  });
});

describe("security headers on the worker's pages", () => {
  it("404, 410 and the password form: CSP with frame-ancestors 'none', nosniff, no-store", async () => {
    const pages = [await get("/nope-nope", "localhost"), await get("/old", "localhost"), await get("/locked", "localhost"), await get("/brand", "evil.example")];
    expect(pages.map((p) => p.status)).toEqual([404, 410, 200, 404]);
    for (const p of pages) {
      expect(p.headers.get("content-security-policy")?.[0]).toMatch(/frame-ancestors 'none'/);
      expect(p.headers.get("content-security-policy")?.[0]).toMatch(/default-src 'none'/);
      expect(p.headers.get("x-content-type-options")?.[0]).toBe("nosniff");
      expect(p.headers.get("cache-control")?.[0]).toBe("no-store");
    }
  });

  it("the password form's 303 goes back to the same path (relative), whatever the query; a wrong password gets the same headers", async () => {
    const post = (query: string, password: string) =>
      s.edge!.mf.dispatchFetch(`http://localhost/locked${query}`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: `password=${password}`, redirect: "manual" });
    for (const q of ["?next=//evil.example", "?x=%0d%0aLocation:%20https://evil.example", "?@evil.example", ""]) {
      const res = await post(q, "pw-123456");
      expect(res.status, q).toBe(303);
      const loc = res.headers.get("location")!;
      expect(loc.startsWith("/locked"), `${q} → ${loc}`).toBe(true);
      expect(/[\r\n]/.test(loc)).toBe(false);
      await res.arrayBuffer();
    }
    const wrong = await post("", "nope");
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get("content-security-policy")).toMatch(/frame-ancestors 'none'/);
    expect(wrong.headers.get("x-content-type-options")).toBe("nosniff");
    await wrong.arrayBuffer();
  });
});
