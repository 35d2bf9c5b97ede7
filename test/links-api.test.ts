import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "csv-parse/sync";
import { verifyPassword } from "../shared/password.ts";
import { body, json, startStack, type Stack } from "./helpers.ts";

/** The link API: CRUD, lookup, listing, workspaces, domains, bulk, CSV import/export, QR. */
let s: Stack;
let other: string; // admin key of a second workspace
let wsId: number;
beforeAll(async () => {
  s = await startStack({ edge: false });
  const res = await fetch(`${s.ingest.url}/api/workspaces`, { method: "POST", headers: json(s.adminKey), body: JSON.stringify({ name: "other" }) });
  expect(res.status).toBe(201);
  other = (await body(res)).admin_key.key;
  await s.sql`UPDATE api_keys SET requests_per_minute = 1000000`;
  wsId = Number((await s.sql`SELECT min(id) AS id FROM workspaces`)[0]!.id);
  await s.sql`INSERT INTO domains (workspace_id, hostname, verified_at) VALUES (${wsId}, 'go.brand.test', now())`;
});
afterAll(() => s.close());

const api = (path: string, init: RequestInit & { key?: string } = {}) =>
  fetch(`${s.ingest.url}/api/links${path}`, { ...init, headers: { ...json(init.key ?? s.adminKey), ...(init.headers as Record<string, string>) } });
const post = (b: unknown, key?: string) => api("", { method: "POST", body: JSON.stringify(b), key });
const patch = (id: number, b: unknown, key?: string) => api(`/${id}`, { method: "PATCH", body: JSON.stringify(b), key });

describe("CRUD", () => {
  it("creates a link with every field, never showing the password hash", async () => {
    const res = await post({
      url: "https://example.com/spring",
      slug: "spring",
      title: "Spring sale",
      tags: ["sale", "spring", "sale"],
      redirect_status: 301,
      expires_at: "2030-01-01T00:00:00+02:00",
      expired_url: "https://example.com/over",
      max_clicks: 1000,
      password: "hunter2",
      targeting: [{ country: ["DE", "AT"], url: "https://example.de/spring" }],
      utm: { utm_source: "newsletter", utm_campaign: "spring" },
    });
    expect(res.status).toBe(201);
    const link = await body(res);
    expect(link).toMatchObject({
      code: "spring",
      domain: "",
      short_url: "http://localhost:8787/spring",
      url: "https://example.com/spring",
      title: "Spring sale",
      tags: ["sale", "spring"],
      redirect_status: 301,
      expires_at: "2029-12-31T22:00:00.000Z",
      expired_url: "https://example.com/over",
      max_clicks: 1000,
      has_password: true,
      targeting: [{ country: ["DE", "AT"], url: "https://example.de/spring" }],
      utm: { utm_source: "newsletter", utm_campaign: "spring" },
      archived: false,
      forward_query: true,
      crawlable: false,
      limit_reached_at: null,
    });
    expect(JSON.stringify(link)).not.toMatch(/hunter2|pbkdf2/);
    const [row] = await s.sql`SELECT password_hash FROM links WHERE id = ${link.id}`;
    expect(await verifyPassword("hunter2", row!.password_hash)).toBe(true);
    expect(await body(await api(`/${link.id}`))).toEqual(link);
  });

  it("validates fields: tags, status, expiry, slug, unknown fields", async () => {
    const bad = [
      [{ url: "https://e.com/", tags: Array.from({ length: 21 }, (_, i) => `t${i}`) }, "tags"],
      [{ url: "https://e.com/", tags: ["x".repeat(51)] }, "tags.0"],
      [{ url: "https://e.com/", tags: ["a,b"] }, "tags.0"],
      [{ url: "https://e.com/", redirect_status: 303 }, "redirect_status"],
      [{ url: "https://e.com/", expires_at: "tomorrow" }, "expires_at"],
      [{ url: "https://e.com/", max_clicks: 0 }, "max_clicks"],
      [{ url: "https://e.com/", slug: "api" }, "slug"],
      [{ url: "https://e.com/", targeting: [{ country: ["de"], url: "https://e.com/" }] }, "targeting.0.country.0"],
      [{ url: "https://e.com/", utm: { utm_foo: "x" } }, "utm"],
      [{ url: "https://e.com/", bogus: 1 }, ""],
    ] as const;
    for (const [b, field] of bad) {
      const res = await post(b);
      expect(res.status, JSON.stringify(b)).toBe(400);
      const e = (await body(res)).error;
      expect(e.code).toBe("invalid_body");
      if (field) expect(e.field).toBe(field);
    }
    const res = await api("", { method: "POST", body: "{not json" });
    expect(res.status).toBe(400);
    expect((await body(res)).error.code).toBe("invalid_json");
  });

  it("updates partially; null clears; slug changes are checked by the UNIQUE constraint", async () => {
    const link = await body(await post({ url: "https://example.com/p", title: "T", password: "pw", max_clicks: 5 }));
    await s.sql`UPDATE links SET limit_reached_at = now() WHERE id = ${link.id}`;
    let res = await patch(link.id, { title: null, password: null, tags: ["x"], max_clicks: 10, archived: true, slug: "patched", forward_query: false, crawlable: true });
    expect(res.status).toBe(200);
    const got = await body(res);
    expect(got).toMatchObject({ url: "https://example.com/p", title: null, has_password: false, tags: ["x"], max_clicks: 10, archived: true, code: "patched", limit_reached_at: null, forward_query: false, crawlable: true });
    expect((await patch(link.id, { forward_query: "no" })).status).toBe(400);
    expect(Date.parse(got.updated_at)).toBeGreaterThanOrEqual(Date.parse(link.updated_at));
    res = await patch(link.id, { slug: "spring" });
    expect(res.status).toBe(409);
    expect((await body(res)).error).toMatchObject({ code: "slug_taken", field: "slug" });
    expect((await body(await api(`/${link.id}`))).code).toBe("patched");
    expect((await patch(999_999_999, { title: "x" })).status).toBe(404);
  });

  it("deletes (hard); clicks stay", async () => {
    const link = await body(await post({ url: "https://example.com/del" }));
    const res = await api(`/${link.id}`, { method: "DELETE" });
    expect(res.status).toBe(200);
    expect((await body(res)).id).toBe(link.id);
    expect((await api(`/${link.id}`)).status).toBe(404);
    expect((await api(`/${link.id}`, { method: "DELETE" })).status).toBe(404);
  });

  it("looks a link up by domain and slug", async () => {
    const link = await body(await post({ url: "https://example.com/brand", slug: "spring", domain: "GO.Brand.Test" }));
    expect(link).toMatchObject({ domain: "go.brand.test", short_url: "http://go.brand.test/spring" });
    expect((await body(await api("/info?domain=go.brand.test&slug=spring"))).id).toBe(link.id);
    expect((await body(await api("/info?slug=spring"))).domain).toBe("");
    expect((await api("/info?domain=go.brand.test&slug=nope")).status).toBe(404);
    expect((await api("/info")).status).toBe(400);
  });

  it("refuses a domain the workspace does not own", async () => {
    let res = await post({ url: "https://example.com/", domain: "not-mine.test" });
    expect(res.status).toBe(400);
    expect((await body(res)).error).toMatchObject({ code: "unknown_domain", field: "domain" });
    res = await post({ url: "https://example.com/", domain: "go.brand.test" }, other);
    expect((await body(res)).error.code).toBe("unknown_domain");
  });

  it("never shows another workspace's links (404, nothing leaked)", async () => {
    const mine = await body(await post({ url: "https://example.com/secret", slug: "secret", tags: ["secret"] }));
    for (const [path, method] of [[`/${mine.id}`, "GET"], [`/${mine.id}`, "PATCH"], [`/${mine.id}`, "DELETE"], [`/${mine.id}/qr`, "GET"], ["/info?slug=secret", "GET"]] as const) {
      const res = await api(path, { method, key: other, ...(method === "PATCH" ? { body: "{}" } : {}) });
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(JSON.stringify(await body(res))).not.toContain("example.com/secret");
    }
    const list = await body(await api("?archived=all", { key: other }));
    expect(list.items).toEqual([]);
    expect(await (await api("/export", { key: other })).text()).not.toContain("secret");
    // The other workspace can take the same slug? No: (domain, code) is global; it gets 409.
    expect((await post({ url: "https://example.com/x", slug: "secret" }, other)).status).toBe(409);
    expect((await api(`/${mine.id}`)).status).toBe(200);
  });

  it("needs the right scopes", async () => {
    const res = await fetch(`${s.ingest.url}/api/keys`, { method: "POST", headers: json(s.adminKey), body: JSON.stringify({ name: "ro", scopes: ["links:read"] }) });
    const ro = (await body(res)).key;
    await s.sql`UPDATE api_keys SET requests_per_minute = 1000000`;
    expect((await api("", { key: ro })).status).toBe(200);
    expect((await post({ url: "https://example.com/" }, ro)).status).toBe(403);
    expect((await api("/bulk", { method: "POST", key: ro, body: JSON.stringify({ links: [{ url: "https://example.com/" }] }) })).status).toBe(403);
    expect((await api("", { headers: { Authorization: "" } })).status).toBe(401);
  });
});

describe("listing", () => {
  let ids: number[] = [];
  beforeAll(async () => {
    const res = await api("/bulk", {
      method: "POST",
      body: JSON.stringify({
        links: Array.from({ length: 25 }, (_, i) => ({
          url: `https://list.example/${i}`,
          slug: `list-${i}`,
          title: i === 7 ? "100% off_sale" : `List ${i}`,
          tags: i % 2 ? ["odd", "list"] : ["even", "list"],
          archived: i === 24,
        })),
      }),
    });
    ids = (await body(res)).results.map((r: { link: { id: number } }) => r.link.id);
  });

  it("pages through with an opaque cursor, newest first, no gaps or repeats", async () => {
    const seen: number[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page = await body(await api(`?tag=list&limit=10${cursor ? `&cursor=${cursor}` : ""}`));
      seen.push(...page.items.map((l: { id: number }) => l.id));
      cursor = page.next_cursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    // Bulk items are created concurrently: the order is (created_at, id) as PostgreSQL has them.
    const order = async (dir: "ASC" | "DESC", archived: boolean) =>
      (await s.sql`SELECT id FROM links WHERE 'list' = ANY(tags) AND (${archived} OR NOT archived) ORDER BY created_at ${s.sql.unsafe(dir)}, id ${s.sql.unsafe(dir)}`).map((r) => Number(r.id));
    expect(seen).toEqual(await order("DESC", false)); // the archived one is hidden by default
    expect(seen).toHaveLength(24);
    const asc = await body(await api("?tag=list&limit=100&sort=created_at&archived=all"));
    expect(asc.items.map((l: { id: number }) => l.id)).toEqual(await order("ASC", true));
    expect([...asc.items.map((l: { id: number }) => l.id)].sort()).toEqual([...ids].sort());
    expect(asc.next_cursor).toBeNull();
  });

  it("filters by tag, archived, domain and searches url/slug/title with literal wildcards", async () => {
    expect((await body(await api("?tag=odd&limit=100"))).items).toHaveLength(12);
    expect((await body(await api("?tag=list&archived=true"))).items.map((l: { code: string }) => l.code)).toEqual(["list-24"]);
    const pct = await body(await api(`?q=${encodeURIComponent("100% off_")}`));
    expect(pct.items.map((l: { code: string }) => l.code)).toEqual(["list-7"]);
    expect((await body(await api(`?q=${encodeURIComponent("%")}&tag=list`))).items).toHaveLength(1);
    expect((await body(await api(`?q=${encodeURIComponent("_")}&tag=list`))).items).toHaveLength(1);
    expect((await body(await api("?q=LIST-1&tag=list&limit=100"))).items).toHaveLength(11); // list-1, list-10..19
    expect((await body(await api("?q=list.example/3"))).items.map((l: { code: string }) => l.code)).toEqual(["list-3"]);
    expect((await body(await api("?domain=go.brand.test"))).items.every((l: { domain: string }) => l.domain === "go.brand.test")).toBe(true);
  });

  it("refuses bad queries", async () => {
    expect((await body(await api("?limit=101"))).error).toMatchObject({ code: "invalid_query", field: "limit" });
    expect((await body(await api("?cursor=garbage"))).error).toMatchObject({ code: "invalid_cursor", field: "cursor" });
    const first = await body(await api("?limit=1"));
    expect((await api(`?limit=1&sort=created_at&cursor=${first.next_cursor}`)).status).toBe(400);
  });
});

describe("bulk", () => {
  it("creates up to 1,000 links, one result per item; bad items fail alone", async () => {
    const links: unknown[] = Array.from({ length: 1000 }, (_, i) => ({ url: `https://bulk.example/${i}`, tags: ["bulk"] }));
    links[3] = { url: "javascript:alert(1)" };
    links[10] = { url: "https://bulk.example/dup", slug: "spring" };
    links[500] = { nope: true };
    const res = await api("/bulk", { method: "POST", body: JSON.stringify({ links }) });
    expect(res.status).toBe(200);
    const r = await body(res);
    expect(r).toMatchObject({ created: 997, failed: 3 });
    expect(r.results).toHaveLength(1000);
    expect(r.results.map((x: { index: number }) => x.index)).toEqual([...Array(1000).keys()]);
    expect(r.results[3]).toMatchObject({ index: 3, status: 400, error: { code: "unsafe_url", field: "url" } });
    expect(r.results[10]).toMatchObject({ index: 10, status: 409, error: { code: "slug_taken" } });
    expect(r.results[500]).toMatchObject({ index: 500, status: 400, error: { code: "invalid_body" } });
    expect(r.results[0]).toMatchObject({ status: 201, link: { url: "https://bulk.example/0" } });
    const [n] = await s.sql`SELECT count(*) AS n FROM links WHERE 'bulk' = ANY(tags)`;
    expect(Number(n!.n)).toBe(997);
    expect((await api("/bulk", { method: "POST", body: JSON.stringify({ links: Array(1001).fill({ url: "https://e.com/" }) }) })).status).toBe(400);
    expect((await api("/bulk", { method: "POST", body: JSON.stringify({ links: [] }) })).status).toBe(400);
  });
});

describe("CSV", () => {
  const csvPost = (csv: string, key = s.adminKey) =>
    fetch(`${s.ingest.url}/api/links/import`, { method: "POST", headers: { Authorization: `Bearer ${key}`, "content-type": "text/csv" }, body: csv });
  const exportCsv = async (query: string, key = s.adminKey) => {
    const res = await fetch(`${s.ingest.url}/api/links/export${query}`, { headers: { Authorization: `Bearer ${key}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/csv/);
    return res.text();
  };
  const rowsOf = (csv: string) => parse(csv, { columns: true }) as Record<string, string>[];

  it("imports 1,000 rows with per-row results, and the export round-trips", async () => {
    const lines = ["url,slug,domain,title,tags,redirect_status,expires_at"];
    for (let i = 0; i < 1000; i++) {
      const title = i % 3 === 0 ? `"Quoted, ""title"" ${i}"` : `Row ${i}`;
      lines.push(`https://import.example/${i}?a=1&b=2,imp-${i},${i % 10 === 0 ? "go.brand.test" : ""},${title},"csv;imp${i % 5}|batch",${i % 2 ? 301 : ""},${i % 7 === 0 ? "2031-05-01T10:00:00Z" : ""}`);
    }
    lines[1 + 3] = "ftp://import.example/bad,imp-bad,,Bad,csv,,"; // row index 3
    lines[1 + 9] = "https://import.example/dup,imp-8,,Dup,csv,,"; // row index 9: slug of row 8
    const res = await csvPost(lines.join("\r\n") + "\r\n");
    expect(res.status).toBe(200);
    const r = await body(res);
    expect(r).toMatchObject({ format: "linkflow", created: 998, failed: 2 });
    expect(r.results).toHaveLength(1000);
    expect(r.results[3]).toMatchObject({ index: 3, status: 400, error: { code: "unsafe_url" } });
    expect(r.results[9]).toMatchObject({ index: 9, status: 409, error: { code: "slug_taken" } });
    expect(r.results[0].link).toMatchObject({ domain: "go.brand.test", code: "imp-0", title: 'Quoted, "title" 0', tags: ["csv", "imp0", "batch"], expires_at: "2031-05-01T10:00:00.000Z" });
    expect(r.results[1].link).toMatchObject({ redirect_status: 301, url: "https://import.example/1?a=1&b=2" });

    // Extra fields survive the trip too.
    await fetch(`${s.ingest.url}/api/links/${r.results[2].link.id}`, {
      method: "PATCH",
      headers: json(s.adminKey),
      body: JSON.stringify({ utm: { utm_source: "csv" }, expired_url: "https://import.example/gone", max_clicks: 9, archived: true, forward_query: false, crawlable: true }),
    });

    const exported = await exportCsv("?tag=csv");
    const rows = rowsOf(exported);
    expect(rows).toHaveLength(998);
    expect(Object.keys(rows[0]!)).toEqual(["url", "slug", "domain", "title", "tags", "redirect_status", "expires_at", "expired_url", "max_clicks", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "archived", "forward_query", "crawlable", "short_url", "created_at"]);
    expect(rows.find((r) => r.utm_source === "csv")).toMatchObject({ forward_query: "false", crawlable: "true" });

    // Import the export into another workspace (after freeing the slugs), export again: same links.
    await s.sql`DELETE FROM links WHERE 'csv' = ANY(tags)`;
    await s.sql`UPDATE domains SET workspace_id = (SELECT max(id) FROM workspaces) WHERE hostname = 'go.brand.test'`;
    try {
      const again = await body(await csvPost(exported, other));
      expect(again).toMatchObject({ format: "linkflow", created: 998, failed: 0 });
      // Rows are created concurrently, so compare by slug; created_at is the import's own time.
      const strip = (csv: string) =>
        rowsOf(csv)
          .map(({ created_at: _c, ...rest }) => rest)
          .sort((a, b) => a.slug!.localeCompare(b.slug!));
      expect(strip(await exportCsv("?tag=csv", other))).toEqual(strip(exported));
    } finally {
      await s.sql`DELETE FROM links WHERE domain = 'go.brand.test'`;
      await s.sql`UPDATE domains SET workspace_id = ${wsId} WHERE hostname = 'go.brand.test'`;
    }
  });

  it("recognises Bitly's and Shlink's export layouts", async () => {
    const bitly = [
      "id,link,custom_bitlinks,long_url,title,archived,created_at,created_by,client_id,tags",
      'bit.ly/3abc,https://bit.ly/3abc,"bit.ly/bitly-custom, go.brand.test/other",https://bitly.example/a,Bitly A,false,2024-01-02T03:04:05+0000,me,x,"red,blue"',
      "bit.ly/3def,https://bit.ly/3def,,https://bitly.example/b,Bitly B,false,2024-01-02T03:04:05+0000,me,x,",
    ].join("\n");
    let r = await body(await csvPost(bitly));
    expect(r).toMatchObject({ format: "bitly", created: 2, failed: 0 });
    expect(r.results[0].link).toMatchObject({ url: "https://bitly.example/a", code: "bitly-custom", domain: "", title: "Bitly A", tags: ["red", "blue"] });
    expect(r.results[1].link.url).toBe("https://bitly.example/b");
    expect(r.results[1].link.code).toMatch(/^[0-9A-Za-z]{7}$/);

    const shlink = ["Long URL,Short URL,Title,Short code,Domain,Tags,Visits", "https://shlink.example/a,https://s.test/shl-a,Shlink A,shl-a,,a|b,3", "https://shlink.example/b,https://go.brand.test/shl-b,,shl-b,go.brand.test,,0"].join("\n");
    r = await body(await csvPost(shlink));
    expect(r).toMatchObject({ format: "shlink", created: 2, failed: 0 });
    expect(r.results[0].link).toMatchObject({ url: "https://shlink.example/a", code: "shl-a", title: "Shlink A", tags: ["a", "b"], domain: "" });
    expect(r.results[1].link).toMatchObject({ code: "shl-b", domain: "go.brand.test" });
  });

  it("refuses what is not a link CSV", async () => {
    expect((await body(await csvPost("foo,bar\n1,2"))).error.code).toBe("invalid_csv");
    expect((await body(await csvPost(""))).error.code).toBe("invalid_csv");
    const res = await fetch(`${s.ingest.url}/api/links/import`, { method: "POST", headers: json(s.adminKey), body: "{}" });
    expect(res.status).toBe(415);
  });
});

describe("QR codes", () => {
  it("encodes the short URL with ?qr=1, as SVG or PNG of the asked size", async () => {
    const link = await body(await post({ url: "https://example.com/qr", slug: "qr-me" }));
    let res = await api(`/${link.id}/qr`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("image/svg+xml");
    const svg = await res.text();
    expect(svg).toMatch(/^<svg[^>]+width="512"/);

    res = await api(`/${link.id}/qr?format=png&size=128`);
    expect(res.headers.get("content-type")).toBe("image/png");
    const png = Buffer.from(await res.arrayBuffer());
    expect(png.subarray(1, 4).toString()).toBe("PNG");
    expect(png.readUInt32BE(16)).toBe(128); // IHDR width

    const QRCode = (await import("qrcode")).default;
    const expected = await QRCode.toString("http://localhost:8787/qr-me?qr=1", { type: "svg", width: 512, margin: 2, errorCorrectionLevel: "M" });
    expect(svg).toBe(expected);

    for (const q of ["?size=63", "?size=2049", "?format=gif"]) expect((await api(`/${link.id}/qr${q}`)).status).toBe(400);
  });
});
