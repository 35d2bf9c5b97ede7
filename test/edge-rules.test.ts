import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { linkKey, type EdgeLink } from "../shared/event.ts";
import { hashPassword, passwordVerifier } from "../shared/password.ts";
import { requestMessage, sign, SIGNATURE_HEADER } from "../shared/signing.ts";
import { seedLinks } from "./fixtures.ts";
import { eventually, KEYS, startStack, type Stack } from "./helpers.ts";

// Link rules at the edge (issue 5): custom domains, expiry and click limits, passwords,
// targeting, redirect statuses, UTM and QR, against the real worker in workerd, KV, ingest
// and PostgreSQL. Links are seeded in KV (or pushed through the signed admin route).

let s: Stack;
let nextId = 5000;
beforeAll(async () => {
  s = await startStack();
});
afterAll(() => s.close());

const UA = {
  iphone: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
  android: "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
  windows: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
};

type Visit = { host?: string; country?: string; ua?: string; lang?: string; cookie?: string; query?: string; method?: string; form?: string };
/** One visit through Miniflare's dispatchFetch: its URL sets Host, `cf` sets request.cf.country. */
async function visit(code: string, v: Visit = {}) {
  const headers: Record<string, string> = { "user-agent": v.ua ?? UA.windows };
  if (v.lang) headers["accept-language"] = v.lang;
  if (v.cookie) headers.cookie = v.cookie;
  if (v.form !== undefined) headers["content-type"] = "application/x-www-form-urlencoded";
  const res = await s.edge!.mf.dispatchFetch(`http://${v.host ?? "localhost"}/${code}${v.query ?? ""}`, {
    method: v.method ?? (v.form !== undefined ? "POST" : "GET"),
    headers,
    body: v.form,
    cf: { country: (v.country ?? "US") as IncomingRequestCfProperties["country"], colo: "DEV" },
    redirect: "manual",
  });
  return { status: res.status, location: res.headers.get("location"), headers: res.headers, text: await res.text() };
}

/** A link's record in KV, and its row in PostgreSQL (ingest takes clicks only for a link that is there). */
const seed = async (link: Omit<EdgeLink, "id"> & { id?: number }) => {
  const [row] = await s.sql<{ id: string }[]>`SELECT nextval(pg_get_serial_sequence('links', 'id')) AS id`;
  const full = { id: Number(row!.id), ...link } as EdgeLink;
  await seedLinks(s.sql, [{ link_id: full.id, domain: full.domain, code: full.code, original_url: full.url }]);
  await (await s.edge!.mf.getKVNamespace("LINKS")).put(linkKey(full.domain, full.code), JSON.stringify(full));
  return full;
};
/** The verifier an edge record carries for `password` (what ingest pushes). */
const verifierOf = async (password: string) => (await passwordVerifier(await hashPassword(password), KEYS.password))!;
/** The signed KV write-through ingest uses (also drops the isolate's cached copy). */
async function admin(method: "PUT" | "DELETE", body: object) {
  const raw = JSON.stringify(body);
  return fetch(`${s.edge!.url}/_admin/links`, {
    method,
    headers: { "content-type": "application/json", [SIGNATURE_HEADER]: await sign(KEYS.edgeAdmin, requestMessage(method, "/_admin/links", raw)) },
    body: raw,
  });
}

const clicks = (code: string) => s.sql`SELECT domain, link_id, original_url, redirect_status, qr FROM clicks WHERE code = ${code} ORDER BY received_at, original_url`;
/** Waits for `n` click rows of the code, then a little longer so a stray extra row would show. */
async function clicksAfter(code: string, n: number) {
  await eventually(async () => (await clicks(code)).length >= n, 5000);
  await new Promise((r) => setTimeout(r, 150));
  return clicks(code);
}

describe("custom domains", () => {
  it("picks the link by Host: the same code on two hosts, from KV and from the origin", async () => {
    await seed({ domain: "", code: "same", url: "https://example.com/primary", status: 302 });
    await seed({ domain: "go.example", code: "same", url: "https://example.com/custom", status: 302 });
    // Only in PostgreSQL: the origin resolve must be asked for this Host's domain.
    await s.sql`INSERT INTO domains (workspace_id, hostname, verified_at) VALUES (1, 'b.example', now())`;
    await s.sql`INSERT INTO links (workspace_id, domain, code, url) VALUES (1, 'b.example', 'same', 'https://example.com/origin-b')`;

    expect((await visit("same")).location).toBe("https://example.com/primary");
    expect((await visit("same", { host: "go.example" })).location).toBe("https://example.com/custom");
    expect((await visit("same", { host: "GO.example:8443" })).location).toBe("https://example.com/custom");
    const b = await visit("same", { host: "b.example" });
    expect([b.status, b.location, b.headers.get("x-cache-tier")]).toEqual([302, "https://example.com/origin-b", "origin"]);
    expect(s.proxy.hits.some((h) => h.path === "/v1/resolve/same?domain=b.example")).toBe(true);
    expect((await visit("same", { host: "nobody.example" })).status).toBe(404);

    const rows = await clicksAfter("same", 4);
    expect(rows.map((r) => `${r.domain}|${r.original_url}`).sort()).toEqual([
      "b.example|https://example.com/origin-b",
      "go.example|https://example.com/custom",
      "go.example|https://example.com/custom",
      "|https://example.com/primary",
    ]);
  });
});

describe("expiry and click limits", () => {
  it("expires at expires_at even while the record sits in the isolate cache: 410, no click", async () => {
    await seed({ domain: "", code: "soon", url: "https://example.com/soon", status: 302, expires_at: Date.now() + 1500 });
    expect((await visit("soon")).status).toBe(302);
    expect((await visit("soon")).headers.get("x-cache-tier")).toBe("isolate");
    await new Promise((r) => setTimeout(r, 1600));
    const res = await visit("soon");
    expect(res.status).toBe(410);
    expect(res.headers.get("content-type")).toMatch(/text\/html/);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.text).toContain("expired");
    expect(await clicksAfter("soon", 2)).toHaveLength(2);
  });

  it("sends visitors of an expired link to its expired_url (302) and counts that click", async () => {
    const l = await seed({ domain: "", code: "was", url: "https://example.com/was", status: 308, expires_at: Date.now() - 1000, expired_url: "https://example.com/ended" });
    const res = await visit("was");
    expect([res.status, res.location, res.headers.get("cache-control")]).toEqual([302, "https://example.com/ended", "private, max-age=0"]);
    const rows = await clicksAfter("was", 1);
    expect(rows).toEqual([{ domain: "", link_id: String(l.id), original_url: "https://example.com/ended", redirect_status: 302, qr: false }]);
  });

  it("answers a gone link (click limit reached, archived) like an expired one", async () => {
    await seed({ domain: "", code: "limit", url: "https://example.com/x", status: 302, gone: true });
    await seed({ domain: "", code: "limit-fb", url: "https://example.com/x", status: 302, gone: true, expired_url: "https://example.com/sold-out" });
    expect((await visit("limit")).status).toBe(410);
    expect(await visit("limit-fb")).toMatchObject({ status: 302, location: "https://example.com/sold-out" });
    expect(await clicksAfter("limit-fb", 1)).toHaveLength(1);
    expect(await clicks("limit")).toHaveLength(0);
  });
});

describe("password-protected links", () => {
  it("form → wrong password 401 → right password → redirect; the cookie serves the next visit; clicks only for redirects", async () => {
    await seed({ domain: "", code: "locked", url: "https://example.com/private", status: 307, password: await verifierOf("open sesame") });
    const form = await visit("locked", { query: "?qr=1" });
    expect(form.status).toBe(200);
    expect(form.headers.get("content-type")).toMatch(/^text\/html/);
    expect(form.headers.get("cache-control")).toBe("no-store");
    expect(form.headers.get("content-security-policy")).toContain("default-src 'none'");
    expect(form.text).toMatch(/<form method="post">/);
    expect(form.text).not.toMatch(/https?:\/\//); // no external assets
    expect(form.text).not.toContain("example.com/private"); // the destination stays hidden

    const wrong = await visit("locked", { form: "password=open+sesam", query: "?qr=1" });
    expect(wrong.status).toBe(401);
    expect(wrong.text).toContain("not right");
    expect(wrong.headers.get("set-cookie")).toBeNull();
    expect((await visit("locked", { form: "password=" + "x".repeat(5000) })).status).toBe(401); // over the size limit: refused unread

    const right = await visit("locked", { form: "password=open+sesame", query: "?qr=1" });
    expect(right.status).toBe(303);
    expect(right.location).toBe("/locked?qr=1");
    const setCookie = right.headers.get("set-cookie")!;
    expect(setCookie).toMatch(/^lf_unlock=[^;]+; Max-Age=86400; Path=\/locked; HttpOnly; SameSite=Lax$/); // http: no Secure
    const cookie = setCookie.split(";")[0]!;

    const go = await visit("locked", { cookie, query: "?qr=1" });
    expect([go.status, go.location]).toEqual([307, "https://example.com/private"]);
    const again = await visit("locked", { cookie });
    expect(again.status).toBe(307);
    // The cookie belongs to this link only.
    await seed({ domain: "", code: "locked2", url: "https://example.com/p2", status: 302, password: await verifierOf("open sesame") });
    expect((await visit("locked2", { cookie })).status).toBe(200);

    const rows = await clicksAfter("locked", 2);
    expect(rows.map((r) => [r.original_url, r.redirect_status, r.qr])).toEqual([
      ["https://example.com/private", 307, true],
      ["https://example.com/private", 307, false],
    ]);
    expect(await clicks("locked2")).toHaveLength(0);
  });

  it("a new password invalidates the cookies given out for the old one", async () => {
    const l = await seed({ domain: "", code: "rotate", url: "https://example.com/r", status: 302, password: await verifierOf("one") });
    const cookie = (await visit("rotate", { form: "password=one" })).headers.get("set-cookie")!.split(";")[0]!;
    expect((await visit("rotate", { cookie })).status).toBe(302);
    expect((await admin("PUT", { ...l, password: await verifierOf("two") })).status).toBe(204);
    expect((await visit("rotate", { cookie })).status).toBe(200);
    expect((await visit("rotate", { form: "password=one" })).status).toBe(401);
    expect((await visit("rotate", { form: "password=two" })).status).toBe(303);
  });

  it("a POST to a link without a password goes back to it as a GET, uncounted", async () => {
    await seed({ domain: "", code: "open-post", url: "https://example.com/o", status: 302 });
    expect(await visit("open-post", { form: "password=x" })).toMatchObject({ status: 303, location: "/open-post" });
    await new Promise((r) => setTimeout(r, 200));
    expect(await clicks("open-post")).toHaveLength(0);
  });
});

describe("targeting", () => {
  it("routes by country (request.cf), device (User-Agent) and language, first matching rule, UTM merged", async () => {
    const l = await seed({
      domain: "",
      code: "geo",
      url: "https://example.com/?utm_source=nl",
      status: 302,
      utm: { utm_source: "nl" },
      targeting: [
        { country: ["DE"], device: ["mobile"], url: "https://example.com/de-mobile" },
        { country: ["DE"], url: "https://example.com/de" },
        { os: ["ios"], url: "https://apps.example/ios?utm_source=app" },
        { device: ["mobile"], url: "https://m.example.com/" },
        { language: ["fr"], url: "https://example.com/fr" },
      ],
    });
    const where = async (v: Visit) => (await visit("geo", v)).location;
    expect(await where({ country: "DE", ua: UA.android })).toBe("https://example.com/de-mobile?utm_source=nl");
    expect(await where({ country: "DE", ua: UA.windows })).toBe("https://example.com/de?utm_source=nl");
    expect(await where({ country: "US", ua: UA.iphone })).toBe("https://apps.example/ios?utm_source=app"); // existing utm_source kept, not duplicated
    expect(await where({ country: "US", ua: UA.android })).toBe("https://m.example.com/?utm_source=nl");
    expect(await where({ country: "US", ua: UA.windows, lang: "en-GB, fr-CA;q=0.8" })).toBe("https://example.com/fr?utm_source=nl");
    expect(await where({ country: "US", ua: UA.windows, lang: "en-US,en;q=0.9" })).toBe(l.url);
    // Each click records where the visitor went.
    const rows = await clicksAfter("geo", 6);
    expect(rows.map((r) => r.original_url).sort()).toEqual(
      [
        "https://example.com/de-mobile?utm_source=nl",
        "https://example.com/de?utm_source=nl",
        "https://apps.example/ios?utm_source=app",
        "https://m.example.com/?utm_source=nl",
        "https://example.com/fr?utm_source=nl",
        l.url,
      ].sort(),
    );
  });
});

describe("statuses, UTM and QR", () => {
  it("honours 301, 307 and 308", async () => {
    for (const status of [301, 307, 308] as const) {
      await seed({ domain: "", code: `s${status}`, url: `https://example.com/${status}`, status });
      expect(await visit(`s${status}`)).toMatchObject({ status, location: `https://example.com/${status}` });
    }
  });

  it("merges UTM into a targeting URL without duplicating its own parameters", async () => {
    await seed({
      domain: "",
      code: "utm",
      url: "https://example.com/?utm_source=x&utm_medium=y",
      status: 302,
      utm: { utm_source: "x", utm_medium: "y", utm_campaign: "z" },
      targeting: [{ country: ["JP"], url: "https://example.jp/?utm_medium=keep&ref=1#top" }],
    });
    const res = await visit("utm", { country: "JP" });
    expect(res.location).toBe("https://example.jp/?utm_medium=keep&ref=1&utm_source=x&utm_campaign=z#top");
    expect(new URL(res.location!).searchParams.getAll("utm_medium")).toEqual(["keep"]);
  });

  it("?qr=1 marks the click and is not forwarded to the destination", async () => {
    await seed({ domain: "", code: "qr", url: "https://example.com/menu?table=4", status: 302 });
    const res = await visit("qr", { query: "?qr=1" });
    expect([res.status, res.location]).toEqual([302, "https://example.com/menu?table=4"]);
    await visit("qr");
    const rows = await clicksAfter("qr", 2);
    expect(rows.map((r) => r.qr).sort()).toEqual([false, true]);
  });
});

describe("admin route with the extended record", () => {
  it("accepts every rule field on PUT, serves it at once, and DELETE removes it", async () => {
    const link = {
      id: nextId++,
      domain: "go.example",
      code: "full",
      url: "https://example.com/full?utm_source=a",
      status: 301,
      expires_at: Date.now() + 86_400_000,
      expired_url: "https://example.com/ended",
      password: await verifierOf("pw"),
      targeting: [{ country: ["DE"], device: ["desktop"], os: ["Windows"], language: ["de"], url: "https://example.de/" }],
      utm: { utm_source: "a" },
    };
    expect((await admin("PUT", link)).status).toBe(204);
    expect(await (await s.edge!.mf.getKVNamespace("LINKS")).get(linkKey("go.example", "full"), "json")).toEqual(link);
    expect((await visit("full", { host: "go.example" })).status).toBe(200); // the password form
    const cookie = (await visit("full", { host: "go.example", form: "password=pw" })).headers.get("set-cookie")!.split(";")[0]!;
    expect(await visit("full", { host: "go.example", cookie, country: "DE", lang: "de-DE" })).toMatchObject({ status: 301, location: "https://example.de/?utm_source=a" });
    expect((await admin("PUT", { ...link, targeting: [{ device: ["phone"], url: "x" }] })).status).toBe(400);
    expect((await admin("DELETE", { domain: "go.example", code: "full" })).status).toBe(204);
    expect((await visit("full", { host: "go.example" })).status).toBe(404);
  });
});
