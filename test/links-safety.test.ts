import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { body, json, startStack, type Stack } from "./helpers.ts";

/** URL safety through the API: 50 malicious destinations, each refused with a reason, none stored. */
let s: Stack;
beforeAll(async () => {
  s = await startStack({ edge: false });
  await s.sql`UPDATE api_keys SET requests_per_minute = 1000000`;
  const [ws] = await s.sql`SELECT min(id) AS id FROM workspaces`;
  // Custom domains are the shortener's own hosts too (any workspace's): a loop.
  await s.sql`INSERT INTO domains (workspace_id, hostname, verified_at) VALUES (${ws!.id}, 'go.brand.test', now()), (${ws!.id}, 'xn--bcher-kva.example', now())`;
});
afterAll(() => s.close());

const create = (b: unknown) => fetch(`${s.ingest.url}/api/links`, { method: "POST", headers: json(s.adminKey), body: JSON.stringify(b) });

const MALICIOUS = [
  // schemes, in any case, with tricks
  "javascript:alert(1)",
  "JAVASCRIPT:alert(1)",
  "JaVaScRiPt:alert(document.cookie)",
  "javascript://example.com/%0aalert(1)",
  " javascript:alert(1)",
  "java\tscript:alert(1)",
  "java\nscript:alert(1)",
  "javascript&colon;alert(1)",
  "%6Aavascript:alert(1)",
  "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
  "DATA:text/html,<script>alert(1)</script>",
  "file:///etc/passwd",
  "FILE://C:/Windows/win.ini",
  "vbscript:msgbox(1)",
  "VBScript:MsgBox(1)",
  "ftp://example.com/file",
  "mailto:a@example.com",
  "blob:https://example.com/uuid",
  "about:blank",
  // no scheme or no host
  "//evil.example/x",
  "evil.example",
  "https:evil.example",
  "https:///evil.example",
  "https://",
  "https://:80/",
  // credentials
  "https://user:pass@example.com/",
  "https://admin@example.com/",
  "https://example.com@evil.example/",
  "http://:secret@example.com/",
  // header injection and control characters, raw and encoded
  "https://example.com/\r\nSet-Cookie: session=x",
  "https://example.com/%0d%0aSet-Cookie:%20session=x",
  "https://example.com/%0D%0ALocation:%20https://evil.example",
  "https://example.com/%250d%250aX-Injected:1",
  "https://example.com/a%00b",
  "https://example.com/a%09b",
  "https://example.com/\u0000",
  "https://example.com/\u202Efdp.exe",
  // whitespace and backslashes
  "https://exa mple.com/",
  "https://example.com/a b",
  "https://example.com\\@evil.example/",
  "https:\\\\evil.example\\x",
  // too long
  "https://example.com/" + "x".repeat(2100),
  // loops: the shortener's own hosts (SHORT_BASE_URL, primary hosts, custom domains), normalised
  "http://localhost:8787/abc",
  "HTTP://LOCALHOST/abc",
  "http://localhost./abc",
  "http://127.0.0.1/abc",
  "http://0x7f.0.0.1/abc",
  "https://GO.BRAND.TEST/x",
  "https://go.brand.test./x",
  "https://BÜCHER.example/x",
];

describe("URL safety", () => {
  it("has 50 malicious destinations", () => expect(MALICIOUS).toHaveLength(50));

  it("refuses every one with 400 unsafe_url and a reason, and stores none", async () => {
    const before = Number((await s.sql`SELECT count(*) AS n FROM links`)[0]!.n);
    for (const url of MALICIOUS) {
      const res = await create({ url });
      const b = await body(res);
      expect(res.status, url).toBe(400);
      expect(b.error, url).toMatchObject({ status: 400, code: "unsafe_url", field: "url" });
      expect(b.error.message.length, url).toBeGreaterThan(10);
    }
    expect(Number((await s.sql`SELECT count(*) AS n FROM links`)[0]!.n)).toBe(before);
    const [row] = await s.sql`SELECT count(*) AS n FROM links WHERE url ILIKE '%javascript%' OR url ILIKE '%localhost%' OR url ILIKE '%brand.test%'`;
    expect(Number(row!.n)).toBe(0);
  });

  it("checks expired_url and targeting URLs too, naming the field", async () => {
    let res = await create({ url: "https://example.com/", expired_url: "javascript:alert(1)" });
    expect((await body(res)).error).toMatchObject({ code: "unsafe_url", field: "expired_url" });
    res = await create({ url: "https://example.com/", targeting: [{ country: ["DE"], url: "https://example.de/" }, { device: ["mobile"], url: "https://go.brand.test/loop" }] });
    expect((await body(res)).error).toMatchObject({ code: "unsafe_url", field: "targeting.1.url" });
  });

  it("also on PATCH", async () => {
    const link = await body(await create({ url: "https://example.com/ok" }));
    const res = await fetch(`${s.ingest.url}/api/links/${link.id}`, { method: "PATCH", headers: json(s.adminKey), body: JSON.stringify({ url: "https://example.com/%0d%0a" }) });
    expect(res.status).toBe(400);
    expect((await body(res)).error.code).toBe("unsafe_url");
    const [row] = await s.sql`SELECT url FROM links WHERE id = ${link.id}`;
    expect(row!.url).toBe("https://example.com/ok");
  });

  it("stores the normalised URL of a safe destination", async () => {
    const link = await body(await create({ url: "HTTPS://Example.COM/Path?q=1" }));
    expect(link.url).toBe("https://example.com/Path?q=1");
  });
});
