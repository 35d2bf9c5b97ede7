import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkUrl, isPrivateHost, normaliseHost } from "../../shared/destination.ts";
import { linkKey } from "../../shared/event.ts";
import { requestMessage, sign, SIGNATURE_HEADER } from "../../shared/signing.ts";
import { body, json, KEYS, startStack, type Stack } from "../helpers.ts";

/**
 * One destination rule set on both sides (issue 15): ingest refuses what shared/destination.ts
 * refuses, and so does the worker for a *signed* KV push, so a leaked admin key cannot put a
 * `javascript:` URL, a header-splitting URL, a private address or a field of the wrong type
 * into KV. Private, loopback and link-local destinations are refused unless
 * ALLOW_PRIVATE_DESTINATIONS=true; percent-encoded bidi controls are refused.
 */
const PRIVATE = [
  "http://10.0.0.1/",
  "http://127.0.0.1:8080/admin",
  "http://127.1/",
  "http://0x7f.1/",
  "http://2130706433/",
  "http://[::1]/",
  "http://[::ffff:127.0.0.1]/",
  "http://[fe80::1]/",
  "http://[fd00::1]/",
  "http://169.254.169.254/latest/meta-data/",
  "http://0.0.0.0/",
  "http://100.64.0.1/",
  "http://172.16.5.4/",
  "http://192.168.1.1/",
  "http://localhost/",
  "http://localhost.localdomain/",
  "http://api.localhost/",
  "http://metadata.google.internal/computeMetadata/v1/",
  "http://printer.local/",
  "http://intranet/",
];
const PUBLIC = ["https://example.com/", "http://8.8.8.8/", "http://[2606:4700::1111]/", "http://172.32.0.1/", "https://xn--bcher-kva.example/"];
const BIDI = ["https://example.com/%E2%80%AEgnp.exe", "https://example.com/?q=%e2%80%ae", "https://example.com/%25E2%2580%25AE", "https://example.com/%E2%81%A6x", "https://example.com/%E2%80%8Bx"];

describe("shared rules", () => {
  it.each(PRIVATE)("%s is private", (url) => {
    const r = checkUrl(url);
    expect(r).toMatchObject({ ok: false, reason: expect.stringMatching(/private or local/) });
    expect(checkUrl(url, { allowPrivate: true }).ok).toBe(true);
  });
  it.each(PUBLIC)("%s is not", (url) => expect(checkUrl(url).ok).toBe(true));
  it.each(BIDI)("%s (an encoded bidi or zero-width character) is refused", (url) => expect(checkUrl(url, { allowPrivate: true })).toMatchObject({ ok: false, reason: expect.stringMatching(/format character/) }));
  it("an encoded space or ✓ is still fine; hosts normalise as the URL parser does", () => {
    expect(checkUrl("https://example.com/a%20b?q=%E2%9C%93").ok).toBe(true);
    expect(normaliseHost("0x7F.1")).toBe("127.0.0.1");
    expect(isPrivateHost(normaliseHost("LOCALHOST."))).toBe(true);
  });
});

let s: Stack;
let allowed: Stack;
beforeAll(async () => {
  [s, allowed] = await Promise.all([
    startStack(),
    startStack({ edge: false, env: { ALLOW_PRIVATE_DESTINATIONS: "true" } }),
  ]);
});
afterAll(async () => Promise.all([s?.close(), allowed?.close()]));

const create = (st: Stack, b: object) => fetch(`${st.ingest.url}/api/links`, { method: "POST", headers: json(st.adminKey), body: JSON.stringify(b) });

describe("the link API", () => {
  it("refuses private destinations (url, expired_url, targeting) with 400 unsafe_url, and stores none", async () => {
    for (const url of PRIVATE) {
      const res = await create(s, { url });
      expect(res.status, url).toBe(400);
      expect((await body(res)).error).toMatchObject({ status: 400, code: "unsafe_url", field: "url" });
    }
    expect((await body(await create(s, { url: "https://example.com/", expired_url: "http://10.1.2.3/" }))).error).toMatchObject({ code: "unsafe_url", field: "expired_url" });
    expect((await body(await create(s, { url: "https://example.com/", targeting: [{ country: ["DE"], url: "http://[::1]/" }] }))).error).toMatchObject({ code: "unsafe_url", field: "targeting.0.url" });
    const [row] = await s.sql`SELECT count(*)::int AS n FROM links`;
    expect(row!.n).toBe(0);
  });

  it("takes them with ALLOW_PRIVATE_DESTINATIONS=true", async () => {
    for (const url of ["http://10.0.0.1/", "http://169.254.169.254/", "http://printer.local/"]) expect((await create(allowed, { url })).status, url).toBe(201);
  });

  it("refuses percent-encoded bidi controls, decoded or encoded", async () => {
    for (const url of [...BIDI, "https://example.com/\u202egnp.exe"]) {
      const res = await create(s, { url });
      expect(res.status, url).toBe(400);
      expect((await body(res)).error.code).toBe("unsafe_url");
    }
  });
});

describe("the worker's admin route (a signed push)", () => {
  const good = { id: 77, domain: "", code: "pushed", url: "https://example.com/ok", status: 302 };
  const put = async (record: unknown) => {
    const raw = JSON.stringify(record);
    return fetch(`${s.edge!.url}/_admin/links`, {
      method: "PUT",
      headers: { "content-type": "application/json", [SIGNATURE_HEADER]: await sign(KEYS.edgeAdmin, requestMessage("PUT", "/_admin/links", raw)) },
      body: raw,
    });
  };
  const kv = async (code: string) => (await s.edge!.mf.getKVNamespace("LINKS")).get(linkKey("", code));

  it("takes a record that passes the rules", async () => {
    expect((await put(good)).status).toBe(204);
    expect(JSON.parse((await kv("pushed"))!)).toEqual(good);
  });

  it.each([
    ["javascript: URL", { url: "javascript:alert(document.cookie)" }, "unsafe_url"],
    ["data: URL", { url: "data:text/html,<script>alert(1)</script>" }, "unsafe_url"],
    ["CR/LF URL", { url: "https://example.com/\r\nSet-Cookie: a=b" }, "unsafe_url"],
    ["encoded CR/LF URL", { url: "https://example.com/%0d%0aSet-Cookie:a=b" }, "unsafe_url"],
    ["private URL", { url: "http://169.254.169.254/latest/meta-data/" }, "unsafe_url"],
    ["encoded bidi URL", { url: "https://example.com/%E2%80%AEgnp.exe" }, "unsafe_url"],
    ["javascript: expired_url", { expired_url: "javascript:alert(1)" }, "unsafe_url"],
    ["javascript: targeting URL", { targeting: [{ country: ["DE"], url: "javascript:alert(1)" }] }, "unsafe_url"],
    ["unknown field", { redirect_to: "https://evil.example/" }, "invalid_body"],
    ["the old password_hash field", { password_hash: "pbkdf2-sha256$1$a$b" }, "invalid_body"],
    ["status of the wrong type", { status: "302" }, "invalid_body"],
    ["gone of the wrong type", { gone: "yes" }, "invalid_body"],
    ["id of the wrong type", { id: "77" }, "invalid_body"],
  ])("refuses a %s with 400 and leaves KV as it was", async (_label, change, code) => {
    const res = await put({ ...good, code: "hostile", ...change });
    expect(res.status).toBe(400);
    expect((await body(res)).error).toMatchObject({ status: 400, code });
    expect(await kv("hostile")).toBeNull();
  });
});
