import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requestMessage, sign, SIGNATURE_HEADER, type KeyMaterial } from "../shared/signing.ts";
import { body, EDGE_SECRET, json, KEYS, startStack, type Stack } from "./helpers.ts";

let s: Stack;
beforeAll(async () => {
  s = await startStack({ edge: false });
});
afterAll(() => s.close());

const create = (body: unknown, key = s.adminKey) =>
  fetch(`${s.ingest.url}/api/links`, { method: "POST", headers: json(key), body: JSON.stringify(body) });

describe("links API", () => {
  it("creates a link with a generated base62 code and reads it back", async () => {
    const res = await create({ url: "https://example.com/a?b=1" });
    expect(res.status).toBe(201);
    const link = await body(res);
    expect(link).toMatchObject({ url: "https://example.com/a?b=1", redirect_status: 302 });
    expect(link.code).toMatch(/^[0-9A-Za-z]{7,}$/);
    expect(link.short_url).toBe(`http://localhost:8787/${link.code}`);
    expect(Number.isInteger(link.id)).toBe(true);
    expect(new Date(link.created_at).toISOString()).toBe(link.created_at);

    const got = await fetch(`${s.ingest.url}/api/links/${link.id}`, { headers: json(s.adminKey) });
    expect(got.status).toBe(200);
    expect(await body(got)).toEqual(link);
    const byCode = await fetch(`${s.ingest.url}/api/links/info?slug=${link.code}`, { headers: json(s.adminKey) });
    expect(await body(byCode)).toEqual(link);
    const [row] = await s.sql`SELECT url FROM links WHERE code = ${link.code}`;
    expect(row!.url).toBe("https://example.com/a?b=1");
  });

  it("takes a custom slug once; the UNIQUE constraint refuses the second", async () => {
    const first = await create({ url: "https://example.com/sale", slug: "my-sale" });
    expect(first.status).toBe(201);
    expect((await body(first)).code).toBe("my-sale");
    const second = await create({ url: "https://example.com/other", slug: "my-sale" });
    expect(second.status).toBe(409);
    expect(await body(second)).toMatchObject({ error: { status: 409, code: "slug_taken", field: "slug" } });
    // Slugs are case-sensitive.
    expect((await create({ url: "https://example.com/x", slug: "My-Sale" })).status).toBe(201);
  });

  it("refuses bad URLs and slugs with a JSON error naming the field", async () => {
    for (const url of ["javascript:alert(1)", "ftp://example.com/", "not a url", ""]) {
      const res = await create({ url });
      expect(res.status).toBe(400);
      expect((await body(res)).error).toMatchObject({ code: "unsafe_url", field: "url" });
    }
    const res = await create({ url: 42 });
    expect(res.status).toBe(400);
    expect((await body(res)).error).toMatchObject({ code: "invalid_body", field: "url" });
    for (const slug of ["api", "a/b", "x".repeat(65), "../x"]) {
      const res = await create({ url: "https://example.com/", slug });
      expect(res.status).toBe(400);
      expect((await body(res)).error.field).toBe("slug");
    }
    expect((await create("nope")).status).toBe(400);
  });

  it("needs a valid key; stores keys only as hashes", async () => {
    const none = await fetch(`${s.ingest.url}/api/links`, { method: "POST", body: "{}" });
    expect(none.status).toBe(401);
    expect((await body(none)).error.code).toBe("unauthorized");
    expect((await create({ url: "https://example.com/" }, "lf_AAAAAAAA_wrongwrongwrongwrong")).status).toBe(401);
    // The right prefix with a wrong secret (the last character changed, whatever it was).
    const wrong = s.adminKey.slice(0, -1) + (s.adminKey.endsWith("x") ? "y" : "x");
    expect((await create({ url: "https://example.com/" }, wrong)).status).toBe(401);
    const rows = await s.sql`SELECT prefix, key_hash FROM api_keys`;
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) {
      // The secret: everything after "lf_<8-character prefix>_" (it may itself hold "_").
      expect(JSON.stringify(r)).not.toContain(/^lf_[^_]{8}_(.+)$/.exec(s.adminKey)![1]);
      expect((r.key_hash as Buffer).length).toBe(32);
    }
    expect((await fetch(`${s.ingest.url}/api/links/999999999`, { headers: json(s.adminKey) })).status).toBe(404);
    expect((await fetch(`${s.ingest.url}/api/links/info?slug=nothere`, { headers: json(s.adminKey) })).status).toBe(404);
  });
});

describe("GET /v1/resolve/:code", () => {
  const resolve = async (code: string, secret: KeyMaterial = KEYS.resolve) => {
    const path = `/v1/resolve/${code}?domain=`;
    return fetch(s.ingest.url + path, { headers: { [SIGNATURE_HEADER]: await sign(secret, requestMessage("GET", path)) } });
  };

  it("returns the compact edge record to a signed caller", async () => {
    const link = await body(await create({ url: "https://example.com/r", slug: "resolve-me" }));
    const res = await resolve("resolve-me");
    expect(res.status).toBe(200);
    expect(await body(res)).toEqual({ id: link.id, domain: "", code: "resolve-me", url: "https://example.com/r", status: 302 });
  });

  it("404s an unknown code and 401s an unsigned or wrongly signed call", async () => {
    expect((await resolve("no-such-code")).status).toBe(404);
    expect((await resolve("resolve-me", "wrong-secret-0123456789")).status).toBe(401);
    // EDGE_SECRET itself, or another purpose's key, is not the resolve key.
    expect((await resolve("resolve-me", EDGE_SECRET)).status).toBe(401);
    expect((await resolve("resolve-me", KEYS.beacon)).status).toBe(401);
    expect((await fetch(`${s.ingest.url}/v1/resolve/resolve-me?domain=`)).status).toBe(401);
  });
});
