import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { body, json, startStack, type Stack } from "../helpers.ts";

/**
 * SQL injection in every parameter of the link API (and the stats API's PostgreSQL side): each
 * payload is refused with a 400 JSON error or treated as data (no match), and every row stays
 * exactly as it was. The queries are parameterised (postgres.js tagged templates); this proves it
 * from the outside.
 */
let s: Stack;
let snapshot: string;
const PAYLOADS = [
  "' OR '1'='1",
  "' OR 1=1 --",
  "\" OR \"\"=\"",
  "'; DROP TABLE links; --",
  "'); DELETE FROM links; --",
  "1; UPDATE links SET url='https://evil.example'",
  "%' OR '%'='",
  "\\'; SELECT pg_sleep(5); --",
  "' UNION SELECT id, key_hash FROM api_keys --",
  "1' AND (SELECT count(*) FROM api_keys) > 0 --",
  "$1",
  "${1}",
  "_",
  "%",
  "\\",
  "' || (SELECT current_user) || '",
  "1 OR 1=1",
  "-1",
  "1e400",
  "eyJpZCI6IjEgT1IgMT0xIn0", // base64 of {"id":"1 OR 1=1"}: a forged cursor
  Buffer.from(JSON.stringify({ t: "2020-01-01' OR '1'='1", id: "1; DROP TABLE links" })).toString("base64url"),
];
const snap = async () => JSON.stringify(await s.sql`SELECT id, workspace_id, domain, code, url, title, tags, archived, updated_at FROM links ORDER BY id`);

beforeAll(async () => {
  s = await startStack({ edge: false });
  await s.sql`UPDATE api_keys SET requests_per_minute = 1000000`;
  for (const [i, tag] of ["alpha", "beta", "gamma"].entries()) {
    const res = await fetch(`${s.ingest.url}/api/links`, { method: "POST", headers: json(s.adminKey), body: JSON.stringify({ url: `https://example.com/${i}`, title: `t${i}`, tags: [tag] }) });
    expect(res.status).toBe(201);
  }
  snapshot = await snap();
});
afterAll(() => s.close());

const get = (path: string) => fetch(`${s.ingest.url}${path}`, { headers: json(s.adminKey) });
const isErr = (status: number, b: { error?: { status?: number } }) => status >= 400 && status < 500 && b?.error?.status === status;

describe("SQL injection in link API parameters", () => {
  for (const param of ["q", "tag", "domain", "cursor", "sort", "archived", "limit"]) {
    it(`?${param}=<payload>: 400 or no match; rows intact`, async () => {
      for (const p of PAYLOADS) {
        const res = await get(`/api/links?${new URLSearchParams({ [param]: p })}`);
        const b = await body(res);
        if (res.status === 200) {
          // Treated as data: a payload matches no link (except q/tag/domain wildcards taken literally).
          expect(b.items.length, `${param}=${p}`).toBe(0);
        } else expect(isErr(res.status, b), `${param}=${p}: ${res.status} ${JSON.stringify(b)}`).toBe(true);
      }
      expect(await snap()).toBe(snapshot);
    });
  }

  it("export and info take the same payloads as data", async () => {
    for (const p of PAYLOADS) {
      for (const path of [`/api/links/export?${new URLSearchParams({ q: p })}`, `/api/links/export?${new URLSearchParams({ tag: p })}`, `/api/links/info?${new URLSearchParams({ slug: p })}`, `/api/links/info?${new URLSearchParams({ slug: "x", domain: p })}`]) {
        const res = await get(path);
        expect(res.status, `${path}`).toBeLessThan(500);
        if (path.includes("export")) {
          const text = await res.text();
          expect(text, path).not.toContain("example.com/");
        } else {
          expect([400, 404], path).toContain(res.status);
          await res.arrayBuffer();
        }
      }
    }
    expect(await snap()).toBe(snapshot);
  });

  it("ids in the path (GET, PATCH, DELETE, qr): 400 or 404, never another row touched", async () => {
    for (const p of PAYLOADS) {
      for (const [method, suffix, b] of [["GET", "", undefined], ["PATCH", "", JSON.stringify({ title: "pwned" })], ["DELETE", "", undefined], ["GET", "/qr", undefined]] as const) {
        const res = await fetch(`${s.ingest.url}/api/links/${encodeURIComponent(p)}${suffix}`, { method, headers: json(s.adminKey), body: b });
        const out = await res.text();
        expect([400, 404], `${method} ${p}${suffix}: ${res.status} ${out.slice(0, 200)}`).toContain(res.status);
      }
    }
    expect(await snap()).toBe(snapshot);
  });

  it("the stats API's PostgreSQL parameters (link, tag, domain) and recent clicks: 4xx/503, never 500", async () => {
    for (const p of PAYLOADS) {
      for (const path of [`/api/stats?${new URLSearchParams({ tag: p })}`, `/api/stats?${new URLSearchParams({ domain: p })}`, `/api/stats?${new URLSearchParams({ link: p })}`, `/api/clicks/recent?${new URLSearchParams({ link: p })}`]) {
        const res = await get(path);
        const b = await body(res);
        expect(res.status === 503 || isErr(res.status, b), `${path}: ${res.status} ${JSON.stringify(b)}`).toBe(true);
      }
    }
    expect(await snap()).toBe(snapshot);
    expect((await s.sql`SELECT count(*)::int AS n FROM api_keys`)[0]!.n).toBeGreaterThan(0);
  });
});
