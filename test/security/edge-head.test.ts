import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { linkKey, type EdgeLink } from "../../shared/event.ts";
import { seedLinks } from "../fixtures.ts";
import { body, eventually, json, startStack, type Stack } from "../helpers.ts";

/**
 * HEAD at the edge: link checkers and unfurlers send HEAD, and no visitor went anywhere, so a
 * HEAD gets the very redirect a GET gets (status, Location, headers, no body) and is no click.
 * HEADs go out first under a checker's User-Agent, then a browser's GET: once the GET's click is
 * in PostgreSQL, any HEAD click would be too (same isolate, beacons in order), and there is none.
 */
let s: Stack;
beforeAll(async () => {
  s = await startStack();
});
afterAll(() => s.close());

const CHECKER = "LinkChecker/10.0 (+https://example.net/bot)";
const BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0";
const visit = (code: string, method: "GET" | "HEAD", ua: string) => fetch(`${s.edge!.url}/${code}`, { method, headers: { "user-agent": ua }, redirect: "manual" });
const clicks = (code: string) => s.sql`SELECT user_agent, original_url FROM clicks WHERE code = ${code}`;

async function createLink(slug: string) {
  const res = await fetch(`${s.ingest.url}/api/links`, { method: "POST", headers: json(s.adminKey), body: JSON.stringify({ url: `https://example.com/${slug}`, slug }) });
  expect(res.status).toBe(201);
  return (await body(res)) as { code: string; url: string };
}

/** The redirect's observable parts: a HEAD must match a GET in all of them. */
const shape = (r: Response) => ({ status: r.status, location: r.headers.get("location"), cacheControl: r.headers.get("cache-control") });

describe("HEAD requests", () => {
  it("get the same 302 and Location as a GET, and only the GET is a click row", async () => {
    const link = await createLink("head-check");
    const heads: Response[] = [];
    for (let i = 0; i < 3; i++) heads.push(await visit(link.code, "HEAD", CHECKER));
    const get = await visit(link.code, "GET", BROWSER);
    expect(shape(get)).toEqual({ status: 302, location: link.url, cacheControl: "private, max-age=0" });
    for (const h of heads) {
      expect(shape(h)).toEqual(shape(get));
      expect(await h.text()).toBe("");
    }

    const rows = await eventually(async () => ((await clicks(link.code)).some((r) => r.user_agent === BROWSER) ? clicks(link.code) : null));
    expect(rows).toEqual([{ user_agent: BROWSER, original_url: link.url }]);
  });

  it("get an expired link's fallback redirect uncounted too", async () => {
    const expired = { id: 7001, domain: "", code: "head-old", url: "https://example.com/old", status: 302, expires_at: Date.now() - 1000, expired_url: "https://example.com/over" } as EdgeLink;
    await seedLinks(s.sql, [{ link_id: expired.id, domain: "", code: expired.code, original_url: expired.url }]);
    await (await s.edge!.mf.getKVNamespace("LINKS")).put(linkKey("", expired.code), JSON.stringify(expired));
    const head = await visit(expired.code, "HEAD", CHECKER);
    expect(shape(head)).toEqual({ status: 302, location: "https://example.com/over", cacheControl: "private, max-age=0" });
    expect(shape(await visit(expired.code, "GET", BROWSER))).toEqual(shape(head));

    const rows = await eventually(async () => ((await clicks(expired.code)).some((r) => r.user_agent === BROWSER) ? clicks(expired.code) : null));
    expect(rows).toEqual([{ user_agent: BROWSER, original_url: "https://example.com/over" }]);
  });
});
