import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { linkKey, robotsKey } from "../shared/event.ts";
import { requestMessage, sign, SIGNATURE_HEADER } from "../shared/signing.ts";
import { body, eventually, json, KEYS, startStack, type Stack } from "./helpers.ts";

// Redirect conventions (issue "Integrations and operations"): the visitor's query is forwarded
// to the destination unless the link turns it off, with a stated precedence; robots.txt
// disallows all but the crawlable links of the Host's domain; X-Robots-Tag: noindex on every
// redirect but a crawlable link's. Links go through the API, visits through the worker in workerd.

let s: Stack;
const CUSTOM = "go.conv.test";
let ws: string;
beforeAll(async () => {
  s = await startStack({ env: { EDGE_SYNC_RETRY_MS: "100" } });
  ws = (await s.sql<{ id: string }[]>`SELECT min(id) AS id FROM workspaces`)[0]!.id;
  await s.sql`INSERT INTO domains (workspace_id, hostname, verified_at) VALUES (${ws}, ${CUSTOM}, now())`;
});
afterAll(() => s.close());

const api = async (path: string, method: string, b?: unknown, status = method === "POST" ? 201 : 200) => {
  const res = await fetch(`${s.ingest.url}/api/links${path}`, { method, headers: json(s.adminKey), ...(b === undefined ? {} : { body: JSON.stringify(b) }) });
  expect(res.status).toBe(status);
  return body(res);
};
const create = (b: Record<string, unknown>) => api("", "POST", b);
const patch = (id: number, b: Record<string, unknown>) => api(`/${id}`, "PATCH", b);

/** One visit through Miniflare's dispatchFetch (its URL sets the Host). */
async function visit(path: string, host = "localhost") {
  const res = await s.edge!.mf.dispatchFetch(`http://${host}${path}`, { redirect: "manual", headers: { "user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0" } });
  return { status: res.status, location: res.headers.get("location"), robots: res.headers.get("x-robots-tag"), type: res.headers.get("content-type"), text: await res.text() };
}
const robotsTxt = async (host = "localhost") => (await visit("/robots.txt", host)).text;
const kv = async (key: string) => (await s.edge!.mf.getKVNamespace("LINKS")).get(key);

describe("query forwarding", () => {
  it("forwards the visitor's query by default: the visitor's keys win over the destination's own and the link's UTM", async () => {
    const link = await create({ url: "https://example.com/landing?id=7&utm_source=site", slug: "fwd", utm: { utm_source: "nl", utm_medium: "email" } });
    expect(link).toMatchObject({ forward_query: true, crawlable: false });
    // The destination's own utm_source beats the link's UTM (merged at ingest); utm_medium comes from the UTM.
    expect((await visit("/fwd")).location).toBe("https://example.com/landing?id=7&utm_source=site&utm_medium=email");
    // The visitor's keys replace the destination's (Shlink's and Dub's rule); new keys are appended.
    expect((await visit("/fwd?utm_source=x&ref=y")).location).toBe("https://example.com/landing?id=7&utm_medium=email&utm_source=x&ref=y");
    expect((await visit("/fwd?utm_medium=social&id=8")).location).toBe("https://example.com/landing?utm_source=site&utm_medium=social&id=8");
    // The QR marker is never forwarded, other parameters of a QR visit are.
    expect((await visit("/fwd?qr=1&ref=qr")).location).toBe("https://example.com/landing?id=7&utm_source=site&utm_medium=email&ref=qr");
    expect((await visit("/fwd?qr=1")).location).toBe("https://example.com/landing?id=7&utm_source=site&utm_medium=email");
  });

  it("records where the visitor actually went as the click's original_url", async () => {
    await create({ url: "https://example.com/clicked#top", slug: "fwd-click" });
    expect((await visit("/fwd-click?ref=mail&qr=1")).location).toBe("https://example.com/clicked?ref=mail#top");
    const rows = await eventually(async () => {
      const r = await s.sql<{ original_url: string; qr: boolean }[]>`SELECT original_url, qr FROM clicks WHERE code = 'fwd-click'`;
      return r.length ? r : null;
    });
    expect(rows).toEqual([{ original_url: "https://example.com/clicked?ref=mail#top", qr: true }]);
  });

  it("forwards nothing for a link with forward_query false, and again once it is switched back on", async () => {
    const link = await create({ url: "https://example.com/fixed?a=1", slug: "no-fwd", forward_query: false });
    expect(link.forward_query).toBe(false);
    expect(await api(`/${link.id}`, "GET")).toMatchObject({ forward_query: false, crawlable: false });
    expect(JSON.parse((await kv(linkKey("", "no-fwd")))!)).toMatchObject({ forward_query: false });
    expect((await visit("/no-fwd?a=2&ref=y")).location).toBe("https://example.com/fixed?a=1");

    await patch(link.id, { forward_query: true });
    expect(JSON.parse((await kv(linkKey("", "no-fwd")))!)).not.toHaveProperty("forward_query"); // the default costs no bytes
    expect((await visit("/no-fwd?a=2&ref=y")).location).toBe("https://example.com/fixed?a=2&ref=y");
  });

  it("forwards on a custom domain too", async () => {
    await create({ url: "https://example.com/custom", slug: "fwd", domain: CUSTOM });
    expect((await visit("/fwd?ref=c", CUSTOM)).location).toBe("https://example.com/custom?ref=c");
  });
});

describe("indexing", () => {
  it("sends X-Robots-Tag: noindex on every redirect but a crawlable link's, and on the worker's pages", async () => {
    await create({ url: "https://example.com/hidden", slug: "idx-no" });
    const crawlable = await create({ url: "https://example.com/public", slug: "idx-yes", crawlable: true });
    expect(crawlable.crawlable).toBe(true);
    expect(await visit("/idx-no")).toMatchObject({ status: 302, robots: "noindex" });
    expect(await visit("/idx-yes")).toMatchObject({ status: 302, location: "https://example.com/public", robots: null });
    expect(await visit("/nope-404")).toMatchObject({ status: 404, robots: "noindex" });
    // An archived crawlable link is gone: its fallback redirect is noindex.
    await patch(crawlable.id, { archived: true, expired_url: "https://example.com/over" });
    expect(await visit("/idx-yes")).toMatchObject({ status: 302, location: "https://example.com/over", robots: "noindex" });
  });

  it("serves robots.txt per domain: Disallow: / with an Allow line per crawlable link, kept up to date", async () => {
    const nothing = "User-agent: *\nDisallow: /\n";
    const custom = await robotsTxt(CUSTOM);
    expect(custom).toBe(nothing);
    const primary = await visit("/robots.txt");
    expect(primary).toMatchObject({ status: 200, type: "text/plain; charset=utf-8" });
    expect(primary.text).toBe("User-agent: *\nAllow: /idx-yes\nDisallow: /\n"); // from the test above (archived, still listed)

    const a = await create({ url: "https://example.com/a", slug: "rob-a" });
    expect(await robotsTxt()).toBe("User-agent: *\nAllow: /idx-yes\nDisallow: /\n");
    await patch(a.id, { crawlable: true });
    expect(await robotsTxt()).toBe("User-agent: *\nAllow: /idx-yes\nAllow: /rob-a\nDisallow: /\n");
    expect(await robotsTxt(CUSTOM)).toBe(nothing); // another code space

    // A custom domain lists its own crawlable codes; a move takes the code from one list to the other.
    const b = await create({ url: "https://example.com/b", slug: "rob-b", domain: CUSTOM, crawlable: true });
    expect(await robotsTxt(CUSTOM)).toBe("User-agent: *\nAllow: /rob-b\nDisallow: /\n");
    await patch(b.id, { domain: "", slug: "rob-b2" });
    expect(await robotsTxt(CUSTOM)).toBe(nothing);
    expect(await robotsTxt()).toBe("User-agent: *\nAllow: /idx-yes\nAllow: /rob-a\nAllow: /rob-b2\nDisallow: /\n");

    // Switched off, or deleted: gone from the list.
    await patch(a.id, { crawlable: false });
    await api(`/${b.id}`, "DELETE");
    expect(await robotsTxt()).toBe("User-agent: *\nAllow: /idx-yes\nDisallow: /\n");
  });

  it("heals a robots.txt push that did not reach the worker through edge_sync_pending, from PostgreSQL", async () => {
    // A change that reached PostgreSQL only (as when the worker was unreachable), recorded for retry.
    await s.sql`INSERT INTO links (workspace_id, domain, code, url, crawlable) VALUES (${ws}, ${CUSTOM}, 'rob-db', 'https://example.com/db', true)`;
    await s.sql`INSERT INTO edge_sync_pending (domain, code, last_error) VALUES (${CUSTOM}, 'robots.txt', 'test')`;
    expect(await eventually(async () => (await robotsTxt(CUSTOM)).includes("Allow: /rob-db"), 10_000)).toBe(true);
    expect(await eventually(async () => (await s.sql`SELECT 1 FROM edge_sync_pending WHERE domain = ${CUSTOM}`).length === 0, 10_000)).toBe(true);
    expect(await kv(robotsKey(CUSTOM))).toBe("User-agent: *\nAllow: /rob-db\nDisallow: /\n");
  });

  it("takes the robots list only signed, and only codes (no line can be injected)", async () => {
    const put = async (payload: unknown, signed = true) => {
      const raw = JSON.stringify(payload);
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (signed) headers[SIGNATURE_HEADER] = await sign(KEYS.edgeAdmin, requestMessage("PUT", "/_admin/robots", raw));
      return fetch(`${s.edge!.url}/_admin/robots`, { method: "PUT", headers, body: raw });
    };
    expect((await put({ domain: "evil.test", allow: ["x"] }, false)).status).toBe(401);
    expect((await put({ domain: "evil.test", allow: ["x\nAllow: /"] })).status).toBe(400);
    expect((await put({ domain: "evil.test", allow: ["../x"] })).status).toBe(400);
    expect(await kv(robotsKey("evil.test"))).toBeNull();
  });
});
