import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { edgeLinkSchema, linkKey } from "../shared/event.ts";
import { checkVerifier } from "../shared/password.ts";
import { requestMessage, sign, SIGNATURE_HEADER } from "../shared/signing.ts";
import { body, json, KEYS, startStack, type Stack } from "./helpers.ts";

/** KV write-through of the link API: create, update, slug/domain moves, delete; /v1/resolve agrees. */
let s: Stack;
beforeAll(async () => {
  s = await startStack();
  const [ws] = await s.sql`SELECT min(id) AS id FROM workspaces`;
  await s.sql`INSERT INTO domains (workspace_id, hostname, verified_at) VALUES (${ws!.id}, 'go.brand.test', now())`;
});
afterAll(() => s.close());

const kvGet = async (domain: string, code: string) => (await s.edge!.mf.getKVNamespace("LINKS")).get(linkKey(domain, code), "json");
const api = (path: string, method = "GET", b?: unknown) =>
  fetch(`${s.ingest.url}/api/links${path}`, { method, headers: json(s.adminKey), ...(b === undefined ? {} : { body: JSON.stringify(b) }) });
const resolve = async (code: string, domain = "") => {
  const path = `/v1/resolve/${code}?domain=${domain}`;
  return fetch(s.ingest.url + path, { headers: { [SIGNATURE_HEADER]: await sign(KEYS.resolve, requestMessage("GET", path)) } });
};

describe("KV write-through", () => {
  it("pushes the compact record: UTM merged, expiry in ms, password verifier, targeting, never the password or its hash", async () => {
    const link = await body(
      await api("", "POST", {
        url: "https://example.com/kv?utm_source=keep",
        slug: "kv-full",
        redirect_status: 307,
        expires_at: "2031-01-01T00:00:00Z",
        expired_url: "https://example.com/expired",
        password: "open sesame",
        targeting: [{ device: ["mobile"], url: "https://m.example.com/kv" }],
        utm: { utm_source: "ignored", utm_medium: "email" },
      }),
    );
    const rec = await kvGet("", "kv-full");
    expect(edgeLinkSchema.parse(rec)).toEqual(rec);
    expect(rec).toMatchObject({
      id: link.id,
      domain: "",
      code: "kv-full",
      url: "https://example.com/kv?utm_source=keep&utm_medium=email",
      status: 307,
      expires_at: Date.parse("2031-01-01T00:00:00Z"),
      expired_url: "https://example.com/expired",
      targeting: [{ device: ["mobile"], url: "https://m.example.com/kv" }],
      utm: { utm_source: "ignored", utm_medium: "email" },
    });
    expect((rec as { gone?: true }).gone).toBeUndefined();
    const verifier = (rec as { password: string }).password;
    expect(await checkVerifier("open sesame", verifier, [KEYS.password])).toBe(true);
    expect(JSON.stringify(rec)).not.toContain("open sesame");
    const [row] = await s.sql`SELECT password_hash FROM links WHERE id = ${link.id}`;
    expect(JSON.stringify(rec)).not.toContain(row!.password_hash.split("$")[3]);
    expect(rec).not.toHaveProperty("password_hash");
    // /v1/resolve gives the very same record (one mapping: toEdgeLink).
    expect(await body(await resolve("kv-full"))).toEqual(rec);
  });

  it("updates the record; archived or limit reached → gone", async () => {
    const link = await body(await api("", "POST", { url: "https://example.com/a", slug: "kv-upd" }));
    expect(await kvGet("", "kv-upd")).toEqual({ id: link.id, domain: "", code: "kv-upd", url: "https://example.com/a", status: 302 });
    await api(`/${link.id}`, "PATCH", { url: "https://example.com/b", archived: true });
    expect(await kvGet("", "kv-upd")).toMatchObject({ url: "https://example.com/b", gone: true });
    await api(`/${link.id}`, "PATCH", { archived: false });
    expect(await kvGet("", "kv-upd")).not.toHaveProperty("gone");
    await s.sql`UPDATE links SET limit_reached_at = now() WHERE id = ${link.id}`;
    expect(await body(await resolve("kv-upd"))).toMatchObject({ gone: true });
  });

  it("moves the key when the slug or domain changes, and deletes it with the link", async () => {
    const link = await body(await api("", "POST", { url: "https://example.com/m", slug: "kv-old" }));
    expect(await kvGet("", "kv-old")).not.toBeNull();
    let res = await api(`/${link.id}`, "PATCH", { slug: "kv-new" });
    expect(res.status).toBe(200);
    expect(await kvGet("", "kv-old")).toBeNull();
    expect(await kvGet("", "kv-new")).toMatchObject({ code: "kv-new" });
    res = await api(`/${link.id}`, "PATCH", { domain: "go.brand.test" });
    expect(await kvGet("", "kv-new")).toBeNull();
    expect(await kvGet("go.brand.test", "kv-new")).toMatchObject({ domain: "go.brand.test", code: "kv-new" });
    expect((await api(`/${link.id}`, "DELETE")).status).toBe(200);
    expect(await kvGet("go.brand.test", "kv-new")).toBeNull();
    expect((await resolve("kv-new", "go.brand.test")).status).toBe(404);
  });

  it("a new link redirects at once from the edge", async () => {
    await api("", "POST", { url: "https://example.com/now", slug: "kv-now", utm: { utm_campaign: "launch" } });
    const res = await fetch(`${s.edge!.url}/kv-now`, { redirect: "manual" });
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toBe("https://example.com/now?utm_campaign=launch");
  });
});
